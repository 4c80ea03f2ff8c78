"""A handler's result travels in a batch of reports: one that JSON cannot encode must fail
its own task, not the encoding of the whole batch."""

from __future__ import annotations

from datetime import UTC, datetime

from jobserver_sdk.worker import Claimed

from tests.sdk.jobs import SayHello


def _claimed() -> Claimed:
    return Claimed(id="t1", job=SayHello, attempt=2, payload={})


def test_a_result_json_cannot_encode_fails_its_own_task() -> None:
    report = _claimed().report("completed", result={"at": datetime.now(UTC)})
    assert (report.status, report.result, report.attempt) == ("failed", None, 2)
    assert report.error is not None
    assert report.error.startswith("result is not JSON-serialisable: TypeError")


def test_a_json_result_is_reported_as_given() -> None:
    report = _claimed().report("completed", result={"n": [1, 2]})
    assert (report.status, report.result, report.error) == ("completed", {"n": [1, 2]}, None)
    assert report.size == len('{"n": [1, 2]}')
