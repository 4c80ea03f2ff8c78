"""When a schedule fires: its rule (a cron expression read in an IANA timezone, or a fixed
period) and the plan of one leader pass over it. Pure functions of times; no database.

A period's fire times are anchored on the schedule's `next_fire_at` (next + k * period),
so a schedule keeps its phase across passes, restarts and downtime. Cron fire times come
from cronsim, iterated in the schedule's timezone: a time that a DST change skips fires at
the first moment after the gap, and one it repeats fires once (its first occurrence).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from app.errors import InvalidSchedule

ONE_SECOND = timedelta(seconds=1)
MICROSECOND = timedelta(microseconds=1)
# A pass fires at most this many on-time fire times of one schedule (a period of a second
# after a stall of the leader); the rest fire in the next pass, none is lost.
MAX_FIRES_PER_PASS = 100


@dataclass(frozen=True)
class Rule:
    """Exactly one of `cron` (read in `timezone`) and `every_seconds`."""

    cron: str | None
    timezone: str
    every_seconds: float | None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def first_after(self, moment: datetime) -> datetime:
        """A new (or changed, or re-enabled) schedule's first fire time after `moment`:
        one period later, or the cron expression's next time."""
        if self.cron is None:
            return moment + self._period
        return self._cron_after(moment)

    def at_or_after(self, anchor: datetime, moment: datetime) -> datetime:
        """The first fire time >= `moment` of the series that contains `anchor`."""
        if self.cron is None:
            return anchor + self._period * max(0, self._periods_until(anchor, moment))
        # Cron times are whole seconds: the first one after ceil(moment) - 1 s is >= moment.
        whole = moment.replace(microsecond=0)
        if whole < moment:
            whole += ONE_SECOND
        return self._cron_after(whole - ONE_SECOND)

    def after(self, anchor: datetime, moment: datetime) -> datetime:
        """The first fire time > `moment` of the series that contains `anchor`."""
        return self.at_or_after(anchor, moment + MICROSECOND)

    def last_before(self, anchor: datetime, moment: datetime) -> datetime:
        """The last fire time < `moment` of the series that contains `anchor` (`anchor` <
        `moment`, so there is one)."""
        if self.cron is None:
            return anchor + self._period * (self._periods_until(anchor, moment) - 1)
        # Reverse iteration starts strictly before a whole second, and at the whole second
        # itself when `moment` has a fraction: either way strictly before `moment`.
        found = next(CronSim(self.cron, moment.astimezone(self.zone), reverse=True))
        return max(found.astimezone(UTC), anchor)

    @property
    def _period(self) -> timedelta:
        assert self.every_seconds is not None
        return timedelta(seconds=self.every_seconds)

    def _periods_until(self, anchor: datetime, moment: datetime) -> int:
        """Periods from `anchor` to the first fire time >= `moment` (in exact microseconds,
        so no float drift moves a fire time between passes)."""
        period = self._period // MICROSECOND
        return -(-((moment - anchor) // MICROSECOND) // period)

    def _cron_after(self, moment: datetime) -> datetime:
        assert self.cron is not None
        return next(CronSim(self.cron, moment.astimezone(self.zone))).astimezone(UTC)


def rule_of(cron: str | None, timezone: str, every_seconds: float | None) -> Rule:
    """The rule, or the problem with it (422) named."""
    if (cron is None) == (every_seconds is None):
        raise InvalidSchedule("Give exactly one of 'cron' and 'every_seconds'")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(f"Unknown timezone '{timezone}' (an IANA name)") from None
    if every_seconds is not None:
        if not math.isfinite(every_seconds) or every_seconds < 1:
            raise InvalidSchedule("'every_seconds' must be at least 1")
        return Rule(None, timezone, every_seconds)
    assert cron is not None
    try:
        next(CronSim(cron, datetime.now(zone)))
    except (CronSimError, StopIteration) as error:
        raise InvalidSchedule(f"Bad cron expression '{cron}': {error or 'never fires'}") from None
    return Rule(cron, timezone, None)


@dataclass(frozen=True)
class Plan:
    """One pass over a due schedule: what fires now (in time order) and the next fire time.
    `missed`: some fire times were older than the grace (the leader was down)."""

    fires: list[datetime]
    next_fire_at: datetime
    missed: bool


def plan(rule: Rule, next_fire_at: datetime, now: datetime, grace: float, catch_up: bool) -> Plan:
    """Fire times due since `next_fire_at`: those within `grace` of `now` fire; older ones
    were missed (downtime), and only with `catch_up` does the latest of them fire."""
    cutoff = now - timedelta(seconds=grace)
    fires: list[datetime] = []
    start = next_fire_at
    missed = next_fire_at < cutoff
    if missed:
        if catch_up:
            fires.append(rule.last_before(next_fire_at, cutoff))
        start = rule.at_or_after(next_fire_at, cutoff)
    upcoming = start
    for moment in _series(rule, next_fire_at, start):
        upcoming = moment
        if moment > now or len(fires) >= MAX_FIRES_PER_PASS:
            break
        fires.append(moment)
    return Plan(fires, upcoming, missed)


def _series(rule: Rule, anchor: datetime, start: datetime) -> Iterator[datetime]:
    moment = start
    while True:
        yield moment
        moment = rule.after(anchor, moment)
