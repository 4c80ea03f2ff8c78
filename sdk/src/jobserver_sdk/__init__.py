"""jobserver SDK: write jobs as pydantic classes with an async `handle()`, submit them with
`JobService`, run them anywhere with `Worker`.

Example:
    >>> from jobserver_sdk import Job, JobService, Worker, JobFailed
    >>> class SayHello(Job):
    ...     who: str = "world"
    ...     async def handle(self) -> dict[str, str]:
    ...         return {"greeted": self.who}
"""

from jobserver_sdk.client import Client
from jobserver_sdk.context import TaskContext, current_context
from jobserver_sdk.errors import (
    ApiError,
    DeclarationConflict,
    JobCancelled,
    JobFailed,
    JobserverSdkError,
    ResultTimeout,
    ServerUnavailable,
)
from jobserver_sdk.job import Job
from jobserver_sdk.service import JobService, ScheduleInfo, Task, TaskInfo
from jobserver_sdk.worker import Worker

__all__ = [
    "ApiError",
    "Client",
    "DeclarationConflict",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobService",
    "JobserverSdkError",
    "ResultTimeout",
    "ScheduleInfo",
    "ServerUnavailable",
    "Task",
    "TaskContext",
    "TaskInfo",
    "Worker",
    "current_context",
]
