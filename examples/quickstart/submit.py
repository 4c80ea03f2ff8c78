"""Terminal 2: submit a task and wait for its result."""

import asyncio
import os

from jobs import ROOM, SayHello
from jobserver_sdk import JobService

url = os.environ["JOBSERVER_URL"]
token = os.environ["JOBSERVER_TOKEN"]


async def main() -> None:
    async with JobService(url, token, room=ROOM) as service:
        task = await service.submit(SayHello(who="Ada"))
        print(f"submitted {task.id}")
        print(f"result: {await task.result(timeout=60)}")


asyncio.run(main())
