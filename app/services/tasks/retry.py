"""Retry policy: when a failed attempt runs again. Pure, so it is testable without a clock."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# A retried attempt is due after a delay drawn between these fractions of the backoff,
# so workers failing together do not retry together ("equal jitter").
JITTER_LOW = 0.5
JITTER_HIGH = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 2.0
    max_seconds: float = 3600.0

    def backoff(self, attempt: int) -> float:
        """min(cap, base * 2^attempt): the delay before the attempt after `attempt`."""
        return float(min(self.max_seconds, self.base_seconds * 2**attempt))

    def delay(self, attempt: int, draw: Callable[[], float] = random.random) -> float:
        """The backoff with jitter applied; `draw` returns a number in [0, 1)."""
        return self.backoff(attempt) * self.fraction(draw)

    @staticmethod
    def fraction(draw: Callable[[], float] = random.random) -> float:
        """The jitter: the share of the backoff a retry waits (PostgreSQL's statements
        take it as a parameter and apply the same formula)."""
        return JITTER_LOW + (JITTER_HIGH - JITTER_LOW) * draw()
