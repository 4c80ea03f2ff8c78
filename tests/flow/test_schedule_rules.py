"""When schedules fire: cron in a timezone (DST included), fixed periods, and which due
fire times a pass fires (on time, missed, caught up). Pure functions: no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.errors import InvalidSchedule
from app.services.schedules.rules import MAX_FIRES_PER_PASS, plan, rule_of

BERLIN = "Europe/Berlin"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
GRACE = 60.0


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_a_cron_fires_at_its_local_time_in_its_timezone() -> None:
    rule = rule_of("0 9 * * *", BERLIN, None)
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
    assert rule.first_after(utc(2026, 1, 10, 12)) == utc(2026, 1, 11, 8)
    assert rule.first_after(utc(2026, 7, 10, 12)) == utc(2026, 7, 11, 7)


def test_a_cron_keeps_its_local_time_across_a_dst_change() -> None:
    rule = rule_of("0 9 * * *", BERLIN, None)
    before = rule.first_after(utc(2026, 3, 28, 12))  # Berlin springs forward on March 29
    assert before == utc(2026, 3, 29, 7)
    assert rule.after(before, before) == utc(2026, 3, 30, 7)


def test_a_local_time_that_dst_skips_fires_once_after_the_gap() -> None:
    rule = rule_of("30 2 * * *", BERLIN, None)  # 02:30 does not exist on March 29
    fire = rule.first_after(utc(2026, 3, 28, 12))
    assert fire == utc(2026, 3, 29, 1)  # 03:00 CEST, the first moment after the gap
    assert rule.after(fire, fire) == utc(2026, 3, 30, 0, 30)


def test_a_local_time_that_dst_repeats_fires_once() -> None:
    rule = rule_of("30 2 * * *", BERLIN, None)  # 02:30 happens twice on October 25
    fire = rule.first_after(utc(2026, 10, 24, 12))
    assert fire == utc(2026, 10, 25, 0, 30)  # the first 02:30 (CEST)
    assert rule.after(fire, fire) == utc(2026, 10, 26, 1, 30)


def test_a_period_fires_one_period_after_creation_and_keeps_its_phase() -> None:
    rule = rule_of(None, "UTC", 7.5)
    first = rule.first_after(T0)
    assert first == T0 + timedelta(seconds=7.5)
    assert rule.after(first, T0 + timedelta(seconds=100)) == T0 + timedelta(seconds=105)


@pytest.mark.parametrize(
    ("cron", "timezone", "every", "problem"),
    [
        ("61 * * * *", "UTC", None, "Bad cron expression"),
        ("* * *", "UTC", None, "Bad cron expression"),
        ("* * * * *", "Mars/Olympus", None, "Unknown timezone"),
        (None, "UTC", 0.5, "at least 1"),
        ("* * * * *", "UTC", 5.0, "exactly one"),
        (None, "UTC", None, "exactly one"),
    ],
)
def test_a_bad_rule_is_refused_with_its_problem_named(
    cron: str | None, timezone: str, every: float | None, problem: str
) -> None:
    with pytest.raises(InvalidSchedule, match=problem):
        rule_of(cron, timezone, every)


def test_every_fire_time_within_the_grace_fires_in_order() -> None:
    rule = rule_of(None, "UTC", 10)
    planned = plan(rule, T0, T0 + timedelta(seconds=25), GRACE, catch_up=False)
    assert planned.fires == [T0 + timedelta(seconds=s) for s in (0, 10, 20)]
    assert planned.next_fire_at == T0 + timedelta(seconds=30)
    assert not planned.missed


def test_missed_fire_times_are_skipped_without_catch_up() -> None:
    rule = rule_of("0 * * * *", "UTC", None)
    planned = plan(rule, T0, T0 + timedelta(hours=5, minutes=30), GRACE, catch_up=False)
    assert planned.fires == []
    assert planned.missed
    assert planned.next_fire_at == T0 + timedelta(hours=6)


def test_with_catch_up_only_the_latest_missed_fire_time_fires() -> None:
    rule = rule_of("0 * * * *", "UTC", None)
    planned = plan(rule, T0, T0 + timedelta(hours=5, minutes=30), GRACE, catch_up=True)
    assert planned.fires == [T0 + timedelta(hours=5)]
    assert planned.next_fire_at == T0 + timedelta(hours=6)


def test_after_downtime_the_on_time_fire_times_still_fire() -> None:
    rule = rule_of(None, "UTC", 30)
    now = T0 + timedelta(hours=1, seconds=10)
    planned = plan(rule, T0, now, GRACE, catch_up=False)
    assert planned.fires == [T0 + timedelta(minutes=59, seconds=30), T0 + timedelta(hours=1)]
    assert planned.next_fire_at == T0 + timedelta(hours=1, seconds=30)


def test_a_pass_fires_a_bounded_number_and_leaves_the_rest_due() -> None:
    rule = rule_of(None, "UTC", 1)
    now = T0 + timedelta(seconds=MAX_FIRES_PER_PASS + 20)
    planned = plan(rule, T0, now, grace=3600, catch_up=False)
    assert len(planned.fires) == MAX_FIRES_PER_PASS
    assert planned.next_fire_at == T0 + timedelta(seconds=MAX_FIRES_PER_PASS)
