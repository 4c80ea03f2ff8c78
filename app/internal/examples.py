"""Two example @internal extensions, on with JOBSERVER_EXAMPLE_EXTENSIONS=true: Echo and Sleep."""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

from pydantic import Field

from app.internal.extensions import Extension

log = logging.getLogger(__name__)


class Echo(Extension):
    """Returns its payload (and logs it): the smallest end-to-end check."""

    category: ClassVar[str] = "modifiers"

    message: str = Field("hello", description="Text to echo back")

    def run(self, vis: Any, **kwargs: Any) -> Any:
        log.info("echo %s: %s", getattr(vis, "task_id", "-"), self.message)
        return self.model_dump()


class Sleep(Extension):
    """Sleeps for `seconds`: a stand-in for long work."""

    category: ClassVar[str] = "modifiers"

    seconds: float = Field(1.0, ge=0, le=3600, description="How long to sleep")

    def run(self, vis: Any, **kwargs: Any) -> Any:
        time.sleep(self.seconds)
        return {"slept": self.seconds}
