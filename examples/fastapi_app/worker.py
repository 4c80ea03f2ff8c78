"""The example's worker: runs SayHello tasks of room "demo" until Ctrl-C.

Run: `uv run python -m examples.fastapi_app.worker` with JOBSERVER_URL and JOBSERVER_TOKEN
set; or the generic `uv run python -m jobserver_sdk worker examples.fastapi_app.jobs:SayHello
--room demo`.
"""

from __future__ import annotations

import asyncio
import logging
import os

from jobserver_sdk import Worker

from examples.fastapi_app.jobs import ROOM, SayHello


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    url = os.environ.get("JOBSERVER_URL", "http://127.0.0.1:8000")
    worker = Worker(url, os.environ["JOBSERVER_TOKEN"], jobs=[SayHello], room=ROOM)
    asyncio.run(worker.run())


if __name__ == "__main__":
    main()
