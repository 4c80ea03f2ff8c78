"""The quickstart's job, imported by both terminals."""

from jobserver_sdk import Job

ROOM = "demo"  # a room of your own: registering jobs in "@global" needs an admin


class SayHello(Job):
    """Its fields are the task's payload; `handle()` runs on the worker."""

    max_attempts = 3  # a failing task is tried up to three times
    who: str = "world"

    def handle(self) -> dict[str, str]:  # a plain `def` runs in a thread; `async def` too
        print(f"hello {self.who}")
        return {"greeted": self.who}  # the task's result
