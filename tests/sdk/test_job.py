"""The Job base class: defaults of its class variables and what registration sends."""

from __future__ import annotations

from jobserver_sdk import Job
from jobserver_sdk.job import payload_of

from tests.sdk.jobs import Flaky, SayHello, TimesOut


class Renamed(Job):
    job_name = "Greeter"
    job_category = "analysis"


class Unchecked(Job):
    validate_payload = False
    n: int = 0


def test_job_name_defaults_to_the_class_name_and_category_to_modifiers() -> None:
    assert (SayHello.job_name, SayHello.job_category) == ("SayHello", "modifiers")
    assert (SayHello.max_attempts, SayHello.timeout_seconds, SayHello.priority) == (1, None, 0)
    assert Flaky.max_attempts == 3
    assert Renamed.full_name("lab") == "lab:analysis:Greeter"


def test_registration_sends_the_model_schema_and_the_timeout_only_when_set() -> None:
    body = SayHello.registration()
    assert body == {
        "category": "modifiers",
        "name": "SayHello",
        "schema": SayHello.model_json_schema(),
        "validate_payload": True,
    }
    assert TimesOut.registration()["timeout_seconds"] == 0.5


def test_a_job_class_may_opt_out_of_payload_validation() -> None:
    assert Unchecked.registration()["validate_payload"] is False


def test_payload_is_the_fields_as_json() -> None:
    assert payload_of(SayHello(who="Ada")) == {"who": "Ada"}
