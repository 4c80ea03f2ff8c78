"""Shared fixtures: a fresh migrated database per test on SQLite and on PostgreSQL, the app
built with create_app(Settings(...)), and an HTTP client over ASGI.

PostgreSQL comes from JOBSERVER_TEST_POSTGRES_URL, Redis from JOBSERVER_TEST_REDIS_URL.
With JOBSERVER_TEST_REQUIRE_SERVICES=1 an unreachable service fails the run; without it
the tests needing it are skipped with one summary line.

The suite runs in pytest-xdist workers (pyproject's addopts). Each worker is a session of
its own: its own template databases (named by its pid), its own Redis database (the
configured number minus the worker's index: gw0 15, gw1 14, ...) and its own block of
ports (tests/live.py).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.db import migrate
from app.db.session import make_engine
from app.main import create_app
from app.services import passwords
from app.settings import Settings
from app.state import Core
from tests.pg_clones import PgClones

PG_URL = os.environ.get(
    "JOBSERVER_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
# "gw0", "gw1", ... in a pytest-xdist worker; unset in a run without workers (-n0).
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
WORKER_INDEX = int(XDIST_WORKER.removeprefix("gw") or 0)


def _worker_redis_url(url: str, index: int) -> str:
    """The worker's own database: tests flush it, so two workers never share one."""
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    if base - index < 0:
        raise RuntimeError(
            f"JOBSERVER_TEST_REDIS_URL {url}: worker gw{index} would need Redis database "
            f"{base - index}; use a higher database number or fewer workers"
        )
    return parts._replace(path=f"/{base - index}").geturl()


REDIS_URL = _worker_redis_url(
    os.environ.get("JOBSERVER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"), WORKER_INDEX
)
REQUIRE_SERVICES = os.environ.get("JOBSERVER_TEST_REQUIRE_SERVICES") == "1"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin-password"
BACKENDS = ("sqlite", "postgresql")

_unavailable: dict[str, str] = {}


def _service_missing(name: str, reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{name} unreachable ({reason}) and JOBSERVER_TEST_REQUIRE_SERVICES=1")
    _unavailable[name] = reason
    pytest.skip(f"{name} unreachable")


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In an xdist worker: hand the unreachable services to the controller's summary."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["jobserver_unavailable"] = dict(_unavailable)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """In the xdist controller: a worker finished; collect what it found unreachable."""
    _unavailable.update(getattr(node, "workeroutput", {}).get("jobserver_unavailable", {}))


# pytest-xdist: `-n auto` (pyproject's addopts) starts this many workers. Most tests wait on
# sockets, sleeps and subprocess servers rather than on the CPU, so on a 2-core machine
# more workers than cores pay. `--dist loadfile` keeps a file's tests on one worker (its
# module-scoped servers start once, module-ordered tests keep their order).
DEFAULT_WORKERS = 4


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """PYTEST_XDIST_AUTO_NUM_WORKERS (xdist's own variable) when set; no workers for a run
    of one file (with loadfile it would use a single worker anyway, after starting them
    all); otherwise one worker per file named, at most DEFAULT_WORKERS. `-n N` and `-n0`
    on the command line override all of this."""
    configured = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS")
    if configured:
        return int(configured)
    files: set[Path] = set()
    for arg in config.args:
        path = config.invocation_params.dir / arg.split("::", 1)[0]
        if not path.is_file():  # a directory: many files
            return DEFAULT_WORKERS
        files.add(path.resolve())
    return min(len(files), DEFAULT_WORKERS) if len(files) > 1 else 0


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, reason in _unavailable.items():
        terminalreporter.write_line(
            f"SKIPPED all {name} variants: {name} unreachable ({reason}); "
            "set JOBSERVER_TEST_REQUIRE_SERVICES=1 to make this an error"
        )
    # The compose stack's load runs (tests/container) record their throughput, one line
    # each, so the one-replica and the scaled figure show side by side in every run.
    figures = [
        str(value)
        for outcome in ("passed", "failed")
        for report in terminalreporter.stats.get(outcome, [])
        for name, value in getattr(report, "user_properties", [])
        if name == "stack_load"
    ]
    if figures:
        terminalreporter.write_sep("-", "compose stack load runs")
        for line in figures:
            terminalreporter.write_line(line)


def _pg_url(database: str) -> str:
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


async def _pg_admin(statement: str) -> None:
    engine = make_engine(PG_URL)
    try:
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """Real argon2 at its lowest cost: at production cost (~0.5 s a hash on a busy CI box)
    the four hashes of a typical auth test would dominate the whole run."""
    original = passwords.PASSWORDS
    passwords.PASSWORDS = PasswordHash(
        (Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1), BcryptHasher())
    )
    yield
    passwords.PASSWORDS = original


@dataclass
class Templates:
    """Migrated template databases, cloned per test."""

    sqlite_file: Path | None = None
    pg_name: str | None = None
    pg_error: str | None = None
    pg_clones: PgClones | None = None


@pytest.fixture(scope="session")
async def templates(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Templates]:
    found = Templates()
    base = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite+aiosqlite:///{base}")
    await migrate.upgrade_async(engine)
    await engine.dispose()
    found.sqlite_file = base
    name = f"jobserver_tpl_{os.getpid()}"
    try:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}"')
        await _pg_admin(f'CREATE DATABASE "{name}"')
        engine = make_engine(_pg_url(name))
        await migrate.upgrade_async(engine)
        await engine.dispose()
        found.pg_name = name
        found.pg_clones = PgClones(PG_URL, name, prefix="jobserver_t_")
    except (OSError, Exception) as exc:
        found.pg_error = f"{type(exc).__name__}: {exc}"
    try:
        yield found
    finally:
        try:
            if found.pg_clones is not None:
                found.pg_clones.close()
        finally:
            if found.pg_name:
                await _pg_admin(f'DROP DATABASE IF EXISTS "{found.pg_name}" WITH (FORCE)')


async def clone_pg(templates: Templates) -> str:
    """The URL of a fresh PostgreSQL database cloned from the migrated template (skipped, or
    failed under JOBSERVER_TEST_REQUIRE_SERVICES=1, without PostgreSQL)."""
    if templates.pg_clones is None:
        _service_missing("PostgreSQL", templates.pg_error or "unknown")
    assert templates.pg_clones is not None
    return _pg_url(await templates.pg_clones.take())


def drop_pg(templates: Templates, url: str) -> None:
    """Drop a database from clone_pg, in the background (connections to it are ended)."""
    assert templates.pg_clones is not None
    name = make_url(url).database
    assert name is not None
    templates.pg_clones.give_back(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def database_url(backend: str, templates: Templates, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database cloned from the migrated template."""
    if backend == "sqlite":
        assert templates.sqlite_file is not None
        target = tmp_path / "jobserver.db"
        shutil.copyfile(templates.sqlite_file, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    url = await clone_pg(templates)
    try:
        yield url
    finally:
        drop_pg(templates, url)


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """A Redis database index of its own, flushed before the test."""
    client = Redis.from_url(REDIS_URL)
    try:
        await client.flushdb()
    except Exception as exc:
        await client.aclose()
        _service_missing("Redis", f"{type(exc).__name__}: {exc}")
    yield REDIS_URL
    await client.flushdb()
    await client.aclose()


def make_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "data_dir": data_dir,
        "secret_key": TEST_SECRET,
        "default_admin_email": ADMIN_EMAIL,
        "default_admin_password": ADMIN_PASSWORD,
        "background_enabled": False,
        # Registration is off by default; the tests register users over REST, so opt in.
        "allow_registration": True,
        # No example @internal jobs unless a test asks: contract tests expect @internal empty.
        "internal_extensions": "",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """Override in a test module to tune the app's settings."""
    return {}


@pytest.fixture
def settings(database_url: str, tmp_path: Path, settings_overrides: dict[str, Any]) -> Settings:
    return make_settings(database_url, tmp_path / "data", **settings_overrides)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def core(app: Any) -> Core:
    found: Core = app.state.core
    return found


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def login(client: httpx.AsyncClient, email: str, password: str) -> str:
    response = await client.post(
        "/v1/auth/jwt/login", data={"username": email, "password": password}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def admin_headers(client: httpx.AsyncClient) -> dict[str, str]:
    return bearer(await login(client, ADMIN_EMAIL, ADMIN_PASSWORD))


@pytest.fixture
async def user_headers(client: httpx.AsyncClient, core: Core) -> dict[str, str]:
    """An operator: the role self-registered users get."""
    return await headers_for(client, core, "user@example.com", "operator")


@pytest.fixture
async def other_headers(client: httpx.AsyncClient, core: Core) -> dict[str, str]:
    return await headers_for(client, core, "other@example.com", "operator")


@pytest.fixture
async def viewer_headers(client: httpx.AsyncClient, core: Core) -> dict[str, str]:
    return await headers_for(client, core, "viewer@example.com", "viewer")


async def headers_for(
    client: httpx.AsyncClient, core: Core, email: str, role: str
) -> dict[str, str]:
    from tests.factories import make_user

    async with core.sessionmaker() as session:
        await make_user(session, email, role=role)
        await session.commit()
    return bearer(await login(client, email, "password"))
