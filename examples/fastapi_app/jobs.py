"""The example's one job, shared by the web app (which submits it) and the worker."""

from __future__ import annotations

from jobserver_sdk import Job

ROOM = "demo"


class SayHello(Job):
    """Greets someone; retried up to three times if it fails."""

    max_attempts = 3
    who: str = "world"

    async def handle(self) -> dict[str, str]:
        print(f"say hello {self.who}")
        return {"greeted": self.who}
