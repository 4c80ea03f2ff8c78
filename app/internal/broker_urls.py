"""JOBSERVER_BROKER_URL -> one of taskiq's own brokers, chosen by the URL's scheme.

Broker packages other than Redis are optional extras (`jobserver[rabbitmq|nats|sqs]`), so
each is imported only when its scheme is asked for. Every refusal is a StartupRefused with
one line for the admin.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

from taskiq import AsyncBroker, InMemoryBroker

from app.errors import StartupRefused
from app.settings import mask_url_password

# One name for the queue / stream / subject on every broker, so an operator finds it.
QUEUE_NAME = "jobserver:internal"
AMQP_EXCHANGE = "jobserver"
AMQP_QUEUE = "jobserver.internal"
NATS_SUBJECT = "jobserver.internal"
NATS_STREAM = "jobserver_internal"
PROBE_SECONDS = 15.0

MEMORY_SCHEMES = frozenset({"memory"})
REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})
AMQP_SCHEMES = frozenset({"amqp", "amqps"})
NATS_SCHEMES = frozenset({"nats", "tls"})
SQS_SCHEMES = frozenset({"sqs"})
SQS_OPTIONS = frozenset({"region", "endpoint_url"})


def scheme_of(url: str) -> str:
    return url.partition("://")[0].lower() if "://" in url else ""


def is_shared(url: str) -> bool:
    """A broker other processes can reach (anything but the in-process memory broker)."""
    return scheme_of(url) not in MEMORY_SCHEMES


def check_workable(broker_url: str, redis_url: str | None) -> None:
    """Only `jobserver worker` consumes a shared broker, and its events reach the servers
    through Redis: a shared broker without Redis would queue tasks nobody runs."""
    if is_shared(broker_url) and redis_url is None:
        raise StartupRefused(
            f"JOBSERVER_BROKER_URL '{mask_url_password(broker_url)}' needs JOBSERVER_REDIS_URL "
            "too (`jobserver worker` reports to the servers through Redis); unset it for "
            "embedded mode"
        )


def make_broker(url: str, *, probing: bool = False) -> AsyncBroker:
    """The broker for this URL; nothing is connected until `startup()`. A probing broker
    gives up on an unreachable server at once instead of retrying."""
    builders: dict[frozenset[str], Callable[[str], AsyncBroker]] = {
        MEMORY_SCHEMES: lambda _: InMemoryBroker(),
        REDIS_SCHEMES: _redis,
        AMQP_SCHEMES: _amqp,
        NATS_SCHEMES: lambda nats_url: _nats(nats_url, probing),
        SQS_SCHEMES: _sqs,
    }
    scheme = scheme_of(url)
    for schemes, build in builders.items():
        if scheme in schemes:
            return build(url)
    raise StartupRefused(
        f"JOBSERVER_BROKER_URL '{mask_url_password(url)}' has no known scheme; use memory://, "
        "redis://, amqp://, nats:// or sqs://QUEUE?region=..."
    )


def _optional(module: str, extra: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise StartupRefused(
            f"this broker needs the '{extra}' extra: pip install 'jobserver[{extra}]' ({exc})"
        ) from exc


def _take_queue(url: str, default: str) -> tuple[str, str]:
    """`?queue=NAME` names the queue (RabbitMQ) or stream (NATS), so several jobserver
    deployments can share one broker; the option is removed before the client sees it."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [value for key, value in query if key == "queue"]
    rest = urlencode([(key, value) for key, value in query if key != "queue"])
    return urlunsplit(parts._replace(query=rest)), (names[-1] if names else default)


def _redis(url: str) -> AsyncBroker:
    from taskiq_redis import ListQueueBroker

    # BRPOP blocks until a message comes. redis-py's default 5 s socket timeout would cut
    # it off on an idle queue, crash the taskiq worker, and could drop a message popped
    # just as the client gave up; keepalive still notices a dead connection.
    broker: AsyncBroker = ListQueueBroker(
        url, queue_name=QUEUE_NAME, socket_timeout=None, socket_keepalive=True
    )
    return broker


def _amqp(url: str) -> AsyncBroker:
    pika: Any = _optional("taskiq_aio_pika", "rabbitmq")
    url, queue = _take_queue(url, AMQP_QUEUE)
    # Durable quorum queue (the package's default type): messages survive a broker restart
    # and are acked only after the task ran, so a dead worker's message is redelivered.
    broker: AsyncBroker = pika.AioPikaBroker(
        url,
        exchange=pika.Exchange(name=AMQP_EXCHANGE),
        task_queues=[pika.Queue(name=queue)],
        dead_letter_queue=pika.Queue(name=f"{queue}.dead"),
    )
    return broker


def _nats(url: str, probing: bool) -> AsyncBroker:
    nats: Any = _optional("taskiq_nats", "nats")
    api: Any = importlib.import_module("nats.js.api")
    url, stream = _take_queue(url, NATS_STREAM)
    subject = NATS_SUBJECT if stream == NATS_STREAM else f"{NATS_SUBJECT}.{stream}"
    # A work-queue stream with one durable pull consumer shared by every worker: each
    # message goes to one worker, and leaves the stream once acked.
    broker: AsyncBroker = nats.PullBasedJetStreamBroker(
        servers=[part.strip() for part in url.split(",") if part.strip()],
        subject=subject,
        stream_name=stream,
        durable=stream,
        stream_config=api.StreamConfig(
            name=stream, subjects=[subject], retention=api.RetentionPolicy.WORK_QUEUE
        ),
        pull_consume_batch=10,
        pull_consume_timeout=5.0,
        # A running worker rides out any NATS outage; the probe fails at the first refusal
        # rather than after nats-py's minutes of retries.
        connect_timeout=5,
        max_reconnect_attempts=1 if probing else -1,
        error_cb=_log_nats_error,
    )
    return broker


async def _log_nats_error(exc: Exception) -> None:
    logging.getLogger(__name__).warning("nats: %s", exc or type(exc).__name__)


def _sqs(url: str) -> AsyncBroker:
    sqs: Any = _optional("taskiq_aio_sqs", "sqs")
    parts = urlsplit(url)
    queue = parts.netloc + parts.path.rstrip("/")
    options = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    unknown = set(options) - SQS_OPTIONS
    if not queue or "/" in queue or unknown:
        raise StartupRefused(
            f"JOBSERVER_BROKER_URL '{url}' is not of the form "
            "sqs://QUEUE?region=REGION[&endpoint_url=URL]"
            + (f" (unknown option {', '.join(sorted(unknown))})" if unknown else "")
        )
    region = (
        options.get("region")
        or os.environ.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
    )
    if not region:
        raise StartupRefused(f"JOBSERVER_BROKER_URL '{url}' needs ?region=... (or AWS_REGION)")
    # Credentials come from the standard AWS chain (environment, profile, instance role).
    # The heartbeat keeps a long task's message invisible while it runs; several messages
    # per receive keep a busy worker fed.
    broker: AsyncBroker = sqs.SQSBroker(
        queue,
        endpoint_url=options.get("endpoint_url") or None,
        region_name=region,
        max_number_of_messages=10,
        wait_time_seconds=10,
        enable_heartbeat=True,
    )
    return broker


async def probe(url: str) -> None:
    """Connect once and let go: a wrong or unreachable broker refuses the start with one
    line instead of a traceback from inside uvicorn or a taskiq child process."""
    broker = make_broker(url, probing=True)
    if not is_shared(url):
        return
    shown = mask_url_password(url)
    with _quiet_libraries():
        try:
            await asyncio.wait_for(_connect(broker, url), PROBE_SECONDS)
        except TimeoutError as exc:
            raise StartupRefused(
                f"broker {shown} did not answer within {PROBE_SECONDS:.0f} s"
            ) from exc
        except Exception as exc:
            raise StartupRefused(f"cannot use broker {shown}: {_reason(url, exc)}") from exc
        finally:
            with contextlib.suppress(Exception):
                await broker.shutdown()


async def _connect(broker: AsyncBroker, url: str) -> None:
    await broker.startup()
    if scheme_of(url) in REDIS_SCHEMES:
        # taskiq-redis connects lazily, on the first message.
        from redis.asyncio import Redis

        client = Redis.from_url(url)
        try:
            await client.ping()
        finally:
            await client.aclose()


def _reason(url: str, exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if scheme_of(url) in NATS_SCHEMES and "no responders" in text.lower():
        return f"{text} (is JetStream enabled on the server: nats-server -js?)"
    if scheme_of(url) in SQS_SCHEMES and "not found" in text.lower():
        return f"{text} (create the queue first)"
    return text


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """The broker clients log each failed connect with a traceback; the refusal line
    says it once. Only the CLI probes, before it has set up any logging of its own."""
    before = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(before)
