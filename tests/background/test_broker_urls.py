"""JOBSERVER_BROKER_URL: the scheme picks the broker; a wrong or unreachable URL refuses
the start of `jobserver serve` and `jobserver worker` with one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from taskiq import InMemoryBroker
from taskiq_aio_pika import AioPikaBroker
from taskiq_aio_sqs import SQSBroker
from taskiq_nats import PullBasedJetStreamBroker
from taskiq_redis import ListQueueBroker
from typer.testing import CliRunner

from app.cli import app as cli
from app.errors import StartupRefused
from app.internal.broker_urls import make_broker, probe
from app.settings import Settings
from tests.background.processes import free_port


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("memory://", InMemoryBroker),
        ("redis://127.0.0.1:6379/11", ListQueueBroker),
        ("amqp://guest:guest@127.0.0.1:5672/", AioPikaBroker),
        ("nats://127.0.0.1:4222", PullBasedJetStreamBroker),
        ("sqs://jobs?region=eu-west-1", SQSBroker),
        ("sqs://jobs?region=us-east-1&endpoint_url=http://127.0.0.1:9324", SQSBroker),
    ],
)
def test_broker_url_scheme_picks_the_broker(url: str, kind: type) -> None:
    assert isinstance(make_broker(url), kind)


def test_broker_defaults_to_redis_when_redis_is_set_else_memory() -> None:
    assert Settings(_env_file=None).effective_broker_url == "memory://"  # type: ignore[call-arg]
    with_redis = Settings(_env_file=None, redis_url="redis://h:6379/0")  # type: ignore[call-arg]
    assert with_redis.effective_broker_url == "redis://h:6379/0"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("kafka://127.0.0.1:9092", "no known scheme"),
        ("127.0.0.1:5672", "no known scheme"),
        ("sqs://?region=us-east-1", "not of the form"),
        ("sqs://jobs?region=us-east-1&endpont_url=http://x", "unknown option endpont_url"),
    ],
)
def test_malformed_broker_url_is_refused(url: str, reason: str) -> None:
    with pytest.raises(StartupRefused, match=reason):
        make_broker(url)


@pytest.mark.parametrize(
    "template",
    ["amqp://guest:guest@127.0.0.1:{port}/", "nats://127.0.0.1:{port}", "redis://127.0.0.1:{port}"],
)
async def test_unreachable_broker_is_refused(template: str) -> None:
    url = template.format(port=free_port())
    with pytest.raises(StartupRefused, match="cannot use broker"):
        await probe(url)


async def test_missing_sqs_queue_is_refused(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    url = f"sqs://nowhere?region=us-east-1&endpoint_url={moto_endpoint}"
    with pytest.raises(StartupRefused, match="create the queue first"):
        await probe(url)


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_cli_refuses_unreachable_broker_with_one_line(command: str, tmp_path: Path) -> None:
    env = {
        "JOBSERVER_DATA_DIR": str(tmp_path),
        "JOBSERVER_REDIS_URL": "redis://127.0.0.1:6379/11",
        "JOBSERVER_BROKER_URL": f"amqp://guest:secret@127.0.0.1:{free_port()}/",
    }
    result = CliRunner().invoke(cli, [command], env=env)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: cannot use broker amqp://guest:****@127.0.0.1:")


def test_shared_broker_without_redis_is_refused(tmp_path: Path) -> None:
    env = {
        "JOBSERVER_DATA_DIR": str(tmp_path),
        "JOBSERVER_BROKER_URL": "nats://127.0.0.1:4222",
    }
    result = CliRunner().invoke(cli, ["serve"], env=env)
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "error: JOBSERVER_BROKER_URL 'nats://127.0.0.1:4222' needs JOBSERVER_REDIS_URL too "
        "(`jobserver worker` reports to the servers through Redis); unset it for embedded mode"
    ]
