"""Extensions only the tests load (through JOBSERVER_INTERNAL_EXTENSIONS)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter as Tally
from typing import Any, ClassVar

from zndraw_joblib.client import Category
from zndraw_joblib.client import Extension as ZnExtension

from app.internal.extensions import Extension


class Counter(Extension):
    """Counts its runs per task, slowly enough for a second delivery to overlap."""

    category: ClassVar[str] = "analysis"
    runs: ClassVar[Tally[uuid.UUID]] = Tally()

    def run(self, vis: Any, **kwargs: Any) -> Any:
        time.sleep(0.2)
        Counter.runs[vis.task_id] += 1
        return None


class Boom(Extension):
    """Always raises."""

    category: ClassVar[str] = "analysis"

    def run(self, vis: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")


class Measure(ZnExtension):
    """A zndraw-joblib Extension, accepted as it is."""

    category: ClassVar[Category] = Category.ANALYSIS
    size: int = 1

    def run(self, vis: Any, **kwargs: Any) -> Any:
        return self.size


class Misfiled(Extension):
    """A category outside the allow-list."""

    category: ClassVar[str] = "filesystem"


class Mark(Extension):
    """Appends its task id to the file `path` on each run: counts runs across processes,
    slowly enough for a second delivery to overlap the first."""

    category: ClassVar[str] = "analysis"

    path: str

    def run(self, vis: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        with open(self.path, "a") as log:
            log.write(f"{vis.task_id}\n")
        return None


class Blocker(Extension):
    """Holds its thread until the test sets `release`: long blocking work, made short."""

    category: ClassVar[str] = "analysis"
    started: ClassVar[list[uuid.UUID]] = []
    release: ClassVar[threading.Event] = threading.Event()

    def run(self, vis: Any, **kwargs: Any) -> Any:
        Blocker.started.append(vis.task_id)
        # Bounded, so a failing test cannot leave a thread behind for the rest of the run.
        Blocker.release.wait(timeout=30)
        return None
