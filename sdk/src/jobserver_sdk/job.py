"""The `Job` base class: a pydantic model whose fields are the payload, plus `handle()`
(async, or sync to run in a thread)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

from jobserver_sdk.context import ContextAttribute

DEFAULT_CATEGORY = "modifiers"


class Job(BaseModel):
    """A job type. Subclass it, declare the payload as fields, implement `handle()`.

    Class variables tune the job; all have defaults:
    `job_name` (the class name), `job_category` ("modifiers"), `max_attempts` (1),
    `timeout_seconds` (None: no limit), `priority` (0, higher is claimed first).

    Example:
        >>> class SayHello(Job):
        ...     max_attempts = 3
        ...     who: str = "world"
        ...
        ...     async def handle(self) -> dict[str, str]:
        ...         print(f"say hello {self.who}")
        ...         return {"greeted": self.who}
        >>> SayHello.job_name
        'SayHello'
        >>> SayHello.full_name("demo")
        'demo:modifiers:SayHello'
    """

    model_config = ConfigDict(ignored_types=(ContextAttribute,))

    job_name: ClassVar[str] = "Job"
    job_category: ClassVar[str] = DEFAULT_CATEGORY
    max_attempts: ClassVar[int] = 1
    timeout_seconds: ClassVar[float | None] = None
    priority: ClassVar[int] = 0

    # Inside handle(): the running task's id, attempt, room, worker, and progress reports
    # (jobserver_sdk.context.TaskContext). Neither a field nor part of the payload.
    context = ContextAttribute()  # type: ignore[pydantic-field]  # a descriptor, not a field
    _task_context: Any = PrivateAttr(default=None)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "job_name" not in cls.__dict__:
            cls.job_name = cls.__name__

    def handle(self) -> Any:
        """Run the task: `async def handle` runs on the worker's event loop, a plain
        `def handle` in a thread (for blocking code). The return value (JSON-serialisable,
        or a pydantic model) becomes the task's result; an exception fails the attempt
        with its text."""
        raise NotImplementedError(f"{type(self).__name__}.handle() is not implemented")

    @classmethod
    def full_name(cls, room: str) -> str:
        """The job's name on the server when registered in `room`."""
        return f"{room}:{cls.job_category}:{cls.job_name}"

    @classmethod
    def registration(cls) -> dict[str, Any]:
        """The body of the job registration (`PUT /v1/joblib/rooms/{room}/jobs`)."""
        body: dict[str, Any] = {
            "category": cls.job_category,
            "name": cls.job_name,
            "schema": cls.model_json_schema(),
        }
        if cls.timeout_seconds is not None:
            body["timeout_seconds"] = cls.timeout_seconds
        return body

    def payload(self) -> dict[str, Any]:
        """The task payload: the model's fields as JSON."""
        return self.model_dump(mode="json")
