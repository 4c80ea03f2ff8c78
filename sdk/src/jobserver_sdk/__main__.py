"""`python -m jobserver_sdk worker module:Class ... --url URL --token TOKEN`: run a Worker."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from jobserver_sdk.errors import JobserverSdkError
from jobserver_sdk.job import Job
from jobserver_sdk.worker import Worker


def load_job(spec: str) -> type[Job]:
    """`package.module:ClassName` -> the Job subclass."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not attr:
        raise SystemExit(f"expected module:Class, got {spec!r}")
    found = getattr(importlib.import_module(module_name), attr, None)
    if not (isinstance(found, type) and issubclass(found, Job)):
        raise SystemExit(f"{spec} is not a jobserver_sdk.Job subclass")
    return found


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m jobserver_sdk")
    commands = root.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run the given Job classes until SIGTERM")
    worker.add_argument("jobs", nargs="+", metavar="module:Class")
    worker.add_argument("--url", default=os.environ.get("JOBSERVER_URL", "http://127.0.0.1:8000"))
    worker.add_argument("--token", default=os.environ.get("JOBSERVER_TOKEN"))
    worker.add_argument("--room", default="@global", help="room to register the jobs in")
    worker.add_argument("--concurrency", type=int, default=8)
    worker.add_argument("--grace", type=float, default=30.0, help="seconds to finish on stop")
    worker.add_argument(
        "--connect-seconds",
        type=float,
        default=5.0,
        help="how long to wait for the server at the start before giving up",
    )
    worker.add_argument("--log-level", default="INFO")
    return root


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if not args.token:
        raise SystemExit("--token (or JOBSERVER_TOKEN) is required")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    sys.path.insert(0, os.getcwd())  # module:Class resolves from where the command runs
    jobs = [load_job(spec) for spec in args.jobs]
    # What the user can mend (a URL, a token, a room, a server that is down) ends the
    # command with one line and exit code 1, not a traceback.
    try:
        worker = Worker(
            args.url,
            args.token,
            jobs=jobs,
            room=args.room,
            concurrency=args.concurrency,
            grace_seconds=args.grace,
            connect_seconds=args.connect_seconds,
        )
        asyncio.run(worker.run())
    except (JobserverSdkError, ValueError) as exc:
        raise SystemExit(f"jobserver_sdk worker: {exc}") from None


if __name__ == "__main__":
    main()
