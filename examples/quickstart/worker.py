"""Terminal 1: run SayHello tasks until Ctrl-C."""

import asyncio
import logging
import os

from jobs import ROOM, SayHello
from jobserver_sdk import Worker

url = os.environ["JOBSERVER_URL"]  # e.g. http://127.0.0.1:8000
token = os.environ["JOBSERVER_TOKEN"]  # an ordinary user's token

logging.basicConfig(format="%(asctime)s %(message)s")
logging.getLogger("jobserver_sdk").setLevel(logging.INFO)  # one line per task

asyncio.run(Worker(url, token, jobs=[SayHello], room=ROOM).run())
