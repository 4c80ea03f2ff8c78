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
    Forbidden,
    JobCancelled,
    JobFailed,
    JobserverSdkError,
    ResultTimeout,
    ServerUnavailable,
    ServerUnreachable,
    TaskCancelled,
    TaskNotCompleted,
    TokenRejected,
)
from jobserver_sdk.job import Job, payload_of
from jobserver_sdk.service import JobService, ScheduleInfo, Task, TaskInfo
from jobserver_sdk.sync import SyncJobService, SyncTask
from jobserver_sdk.worker import Worker

__all__ = [
    "ApiError",
    "Client",
    "DeclarationConflict",
    "Forbidden",
    "Job",
    "JobCancelled",
    "JobFailed",
    "JobService",
    "JobserverSdkError",
    "ResultTimeout",
    "ScheduleInfo",
    "ServerUnavailable",
    "ServerUnreachable",
    "SyncJobService",
    "SyncTask",
    "Task",
    "TaskCancelled",
    "TaskContext",
    "TaskInfo",
    "TaskNotCompleted",
    "TokenRejected",
    "Worker",
    "current_context",
    "payload_of",
]
