"""Start-up rules (issue 2 §5, AUTH.md bootstrap): default admin, secrets, schema."""

from __future__ import annotations

import asyncio
import logging
import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app import bootstrap
from app.bootstrap import ADMIN_PASSWORD_FILE, EMBEDDED_ADMIN_EMAIL, SECRET_FILE
from app.db import migrate
from app.db.models import User
from app.db.session import make_engine, make_sessionmaker
from app.errors import StartupRefused
from app.main import create_app
from app.services import passwords, users
from app.settings import Settings
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PG_URL, make_settings
from tests.factories import make_user
from tests.foundation.helpers import client_for, running, try_login


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def embedded_settings(data_dir: Path) -> Settings:
    """Zero configuration: nothing but a data directory."""
    return Settings(_env_file=None, data_dir=data_dir, background_enabled=False)  # type: ignore[call-arg]


async def user_by_email(database_url: str, email: str) -> User | None:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            return await users.get_by_email(session, email)
    finally:
        await engine.dispose()


async def downgrade_to_base(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        await migrate.downgrade_async(engine, "base")
    finally:
        await engine.dispose()


async def test_default_admin_is_created_at_start(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path)
    async with running(settings) as application, client_for(application) as http:
        assert (await try_login(http, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 200
    admin = await user_by_email(database_url, ADMIN_EMAIL)
    assert admin is not None
    assert (admin.role, admin.is_superuser, admin.is_active) == ("admin", True, True)


async def test_default_admin_is_idempotent_across_restarts(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path)
    for _ in range(2):
        async with running(settings):
            pass
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        count = await session.scalar(select(func.count()).select_from(User))
    await engine.dispose()
    assert count == 1


async def test_existing_non_admin_with_the_admin_email_is_not_promoted(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        await make_user(session, ADMIN_EMAIL, role="viewer", password="the-old-password")
        await session.commit()
    await engine.dispose()
    settings = make_settings(database_url, tmp_path, default_admin_password="a-new-password")
    with caplog.at_level(logging.ERROR, logger="app.bootstrap"):
        async with running(settings) as application, client_for(application) as http:
            assert (await try_login(http, ADMIN_EMAIL, "the-old-password")).status_code == 200
            assert (await try_login(http, ADMIN_EMAIL, "a-new-password")).status_code == 400
    kept = await user_by_email(database_url, ADMIN_EMAIL)
    assert kept is not None
    assert (kept.role, kept.is_superuser) == ("viewer", False)
    refusals = [r for r in caplog.records if "not promoting" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.ERROR


async def test_existing_admin_with_the_admin_email_is_left_alone(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        await make_user(session, ADMIN_EMAIL, role="admin", password="the-old-password")
        await session.commit()
    await engine.dispose()
    settings = make_settings(database_url, tmp_path, default_admin_password="a-new-password")
    with caplog.at_level(logging.INFO, logger="app.bootstrap"):
        async with running(settings) as application, client_for(application) as http:
            assert (await try_login(http, ADMIN_EMAIL, "the-old-password")).status_code == 200
    assert "default admin" not in caplog.text
    assert "not promoting" not in caplog.text


async def test_configured_admin_password_below_the_policy_creates_no_admin(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url, tmp_path, default_admin_password="short")
    with caplog.at_level(logging.ERROR, logger="app.bootstrap"):
        async with running(settings):
            pass
    assert await user_by_email(database_url, ADMIN_EMAIL) is None
    assert "JOBSERVER_DEFAULT_ADMIN_PASSWORD is refused" in caplog.text


async def test_admin_email_without_password_is_skipped_with_a_warning(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(database_url, tmp_path, default_admin_password=None)
    with caplog.at_level(logging.WARNING, logger="app.bootstrap"):
        async with running(settings):
            pass
    assert await user_by_email(database_url, ADMIN_EMAIL) is None
    assert await user_by_email(database_url, EMBEDDED_ADMIN_EMAIL) is None
    assert "without a password" in caplog.text


async def test_embedded_mode_creates_admin_localhost_once_and_keeps_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = embedded_settings(tmp_path / "data")
    password_file = tmp_path / "data" / ADMIN_PASSWORD_FILE
    async with running(settings) as application:
        password = password_file.read_text().strip()
        assert mode_of(password_file) == 0o600
        assert password in capsys.readouterr().err
        async with client_for(application) as http:
            assert (await try_login(http, EMBEDDED_ADMIN_EMAIL, password)).status_code == 200
    async with running(settings) as application:
        assert password not in capsys.readouterr().err
        assert password_file.read_text().strip() == password
        async with client_for(application) as http:
            assert (await try_login(http, EMBEDDED_ADMIN_EMAIL, password)).status_code == 200


async def test_embedded_admin_is_an_admin(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path / "data")
    async with running(settings):
        pass
    admin = await user_by_email(settings.effective_database_url, EMBEDDED_ADMIN_EMAIL)
    assert admin is not None
    assert (admin.role, admin.is_superuser) == ("admin", True)


async def test_sqlite_generates_a_secret_once_and_reuses_it(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path / "data")
    secret_file = tmp_path / "data" / SECRET_FILE
    first = create_app(settings).state.core.secret
    assert mode_of(secret_file) == 0o600
    assert secret_file.read_text().strip() == first
    assert len(first) >= 32
    assert create_app(settings).state.core.secret == first


async def test_embedded_login_token_survives_a_restart(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path / "data")
    password_file = tmp_path / "data" / ADMIN_PASSWORD_FILE
    async with running(settings) as application, client_for(application) as http:
        login = await try_login(http, EMBEDDED_ADMIN_EMAIL, password_file.read_text().strip())
        token = login.json()["access_token"]
    async with running(settings) as application, client_for(application) as http:
        me = await http.get("/v1/auth/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200


def test_postgresql_refuses_to_start_without_secret_key(tmp_path: Path) -> None:
    settings = make_settings(PG_URL, tmp_path, secret_key=None)
    with pytest.raises(StartupRefused, match="JOBSERVER_SECRET_KEY is required"):
        create_app(settings)


def test_postgresql_refuses_a_secret_key_shorter_than_32_characters(tmp_path: Path) -> None:
    settings = make_settings(PG_URL, tmp_path, secret_key="x" * 31)
    with pytest.raises(StartupRefused, match="at least 32 characters"):
        create_app(settings)


def test_postgresql_accepts_a_32_character_secret_key(tmp_path: Path) -> None:
    settings = make_settings(PG_URL, tmp_path, secret_key="x" * 32)
    assert create_app(settings).state.core.secret == "x" * 32


def test_postgresql_never_writes_a_secret_file(tmp_path: Path) -> None:
    with pytest.raises(StartupRefused):
        create_app(make_settings(PG_URL, tmp_path, secret_key=None))
    assert not (tmp_path / SECRET_FILE).exists()


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_postgresql_refuses_an_out_of_date_schema(database_url: str, tmp_path: Path) -> None:
    await downgrade_to_base(database_url)
    with pytest.raises(StartupRefused, match="run `jobserver db upgrade`"):
        async with running(make_settings(database_url, tmp_path)):
            pass


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_sqlite_upgrades_its_schema_at_start(database_url: str, tmp_path: Path) -> None:
    await downgrade_to_base(database_url)
    async with running(make_settings(database_url, tmp_path)):
        pass
    engine = make_engine(database_url)
    current, head = await migrate.revisions_async(engine)
    await engine.dispose()
    assert current == head is not None


async def test_replicas_starting_together_create_one_admin(
    database_url: str, tmp_path: Path
) -> None:
    """Several server processes (uvicorn --workers, replicas) bootstrap at the same time."""
    settings = make_settings(database_url, tmp_path)
    engines = [make_engine(database_url) for _ in range(3)]
    try:
        await asyncio.gather(
            *(bootstrap.ensure_default_admin(make_sessionmaker(e), settings) for e in engines)
        )
    finally:
        for engine in engines:
            await engine.dispose()
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as session:
        count = await session.scalar(select(func.count()).select_from(User))
    await engine.dispose()
    assert count == 1


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_embedded_processes_starting_together_create_one_admin_and_one_password(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, default_admin_email=None)
    engines = [make_engine(database_url) for _ in range(3)]
    try:
        await asyncio.gather(
            *(bootstrap.ensure_default_admin(make_sessionmaker(e), settings) for e in engines)
        )
    finally:
        for engine in engines:
            await engine.dispose()
    admin = await user_by_email(database_url, EMBEDDED_ADMIN_EMAIL)
    assert admin is not None
    password = (tmp_path / ADMIN_PASSWORD_FILE).read_text().strip()
    assert passwords.PASSWORDS.verify(password, admin.hashed_password)


async def test_processes_starting_together_share_one_generated_secret(tmp_path: Path) -> None:
    settings = embedded_settings(tmp_path / "data")
    found = await asyncio.gather(
        *(asyncio.to_thread(bootstrap.resolve_secret, settings) for _ in range(8))
    )
    assert len(set(found)) == 1
    assert len(found[0]) >= 32
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == [SECRET_FILE]
