"""Terminal 2, without asyncio (a script, Flask, Django): the same, blocking."""

import os

from jobs import ROOM, SayHello
from jobserver_sdk import SyncJobService

url = os.environ["JOBSERVER_URL"]
token = os.environ["JOBSERVER_TOKEN"]

with SyncJobService(url, token, room=ROOM) as service:
    task = service.submit(SayHello(who="Grace"))
    print(f"submitted {task.id}")
    print(f"result: {task.result(timeout=60)}")
