"""The `Job` base class: a pydantic model whose fields are the payload, plus `handle()`
(async, or sync to run in a thread)."""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PrivateAttr
from pydantic._internal._model_construction import ModelMetaclass

from jobserver_sdk.context import ContextAttribute

DEFAULT_CATEGORY = "modifiers"
# Settings a payload field may share its name with (an email's `priority`, say): the
# field is the payload's; the setting keeps Job's default (`job_name`: the class name),
# which a submit's arguments or `declare` can still override.
SHADOWABLE_SETTINGS = ("job_name", "job_category", "max_attempts", "timeout_seconds", "priority")
_SHADOW_WARNING = (
    rf'Field name "({"|".join(SHADOWABLE_SETTINGS)})" in "[^"]+" shadows an attribute '
    r'in parent "Job"'
)


class JobMeta(ModelMetaclass):
    """pydantic's metaclass, without its warning for a field named like a Job setting:
    that name is allowed on purpose (see SHADOWABLE_SETTINGS)."""

    def __new__(
        mcs,
        name: str,
        bases: tuple[type[Any], ...],
        namespace: dict[str, Any],
        **kwargs: Any,
    ) -> type:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_SHADOW_WARNING, category=UserWarning)
            return super().__new__(mcs, name, bases, namespace, **kwargs)


class Job(BaseModel, metaclass=JobMeta):
    """A job type. Subclass it, declare the payload as fields, implement `handle()`.

    Class variables tune the job; all have defaults:
    `job_name` (the class name), `job_category` ("modifiers"), `max_attempts` (1),
    `timeout_seconds` (None: no limit), `priority` (0, higher is claimed first),
    `validate_payload` (True: the server refuses a submit whose payload does not match
    the model's JSON schema with 422, whoever sends it).

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
    validate_payload: ClassVar[bool] = True

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
            "validate_payload": cls.validate_payload,
        }
        if cls.timeout_seconds is not None:
            body["timeout_seconds"] = cls.timeout_seconds
        return body


def payload_of(job: Job) -> dict[str, Any]:
    """The task payload: the job's fields as JSON. A function, not a method, so that a
    field may be called anything (`payload` too).

    Example:
        >>> class Mail(Job):
        ...     payload: str
        >>> payload_of(Mail(payload="hi"))
        {'payload': 'hi'}
    """
    return job.model_dump(mode="json")
