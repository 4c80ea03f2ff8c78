"""Start-up rules: the JWT secret, the schema, the default admin.

Each refusal raises StartupRefused with one line that tells the admin what to do.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sys
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.db import migrate
from app.errors import BadRequest, StartupRefused
from app.services import users
from app.settings import GENERATED_SECRET_FILE, MIN_SECRET_LENGTH, Settings

log = logging.getLogger(__name__)

SECRET_FILE = GENERATED_SECRET_FILE
ADMIN_PASSWORD_FILE = "admin-password"
EMBEDDED_ADMIN_EMAIL = "admin@localhost"


def _write_private(path: Path, content: str) -> None:
    """Create PATH (mode 0600) with CONTENT; FileExistsError if it exists.

    Written aside, then hard-linked into place: a process starting at the same moment
    sees either no file or the whole file, never an empty secret.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.link(draft, path)
    finally:
        draft.unlink()


def resolve_secret(settings: Settings) -> str:
    """The configured secret; on SQLite one generated once and kept in DATA_DIR (0600).
    Production (PostgreSQL) refuses to start without a real one."""
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value()
        if not settings.is_sqlite and len(value) < MIN_SECRET_LENGTH:
            raise StartupRefused(
                f"JOBSERVER_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters"
            )
        return value
    if not settings.is_sqlite:
        raise StartupRefused(
            "JOBSERVER_SECRET_KEY is required with PostgreSQL "
            f"(at least {MIN_SECRET_LENGTH} characters)"
        )
    path = settings.data_dir / SECRET_FILE
    if not path.exists():
        # Another process may write it first; then use theirs.
        with contextlib.suppress(FileExistsError):
            _write_private(path, secrets.token_urlsafe(48))
    return path.read_text().strip()


async def prepare_schema(engine: AsyncEngine, settings: Settings) -> None:
    """SQLite upgrades itself; PostgreSQL must already be at head."""
    if settings.is_sqlite:
        await migrate.upgrade_async(engine)
        return
    current, head = await migrate.revisions_async(engine)
    if current != head:
        raise StartupRefused(
            f"database schema is at {current or 'nothing'}, code expects {head}: "
            "run `jobserver db upgrade`"
        )


async def ensure_default_admin(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    """Configured admin: created when no account has its email; an existing account is
    never changed (a non-admin one is refused with one error line). SQLite with no admin
    configured: admin@localhost with a random password kept in DATA_DIR."""
    email = settings.default_admin_email
    password = settings.default_admin_password
    if email and password:
        await _ensure_configured_admin(
            sessionmaker, email, password.get_secret_value(), settings.password_min_length
        )
    elif email:
        log.warning("JOBSERVER_DEFAULT_ADMIN_EMAIL is set without a password: skipped")
    elif not settings.is_sqlite:
        log.warning("no default admin configured: create one with `jobserver users create`")
    else:
        await _ensure_embedded_admin(sessionmaker, settings.data_dir)


# Several processes (uvicorn --workers, replicas) start at once; all but one lose the
# race to insert the admin. users.create reports a user it can already see as
# BadRequest, one it cannot see yet as the unique constraint's IntegrityError.
LOST_CREATE_RACE = (IntegrityError, BadRequest)


async def _ensure_configured_admin(
    sessionmaker: async_sessionmaker[AsyncSession], email: str, password: str, min_length: int
) -> None:
    for attempt in range(2):
        async with sessionmaker() as session:
            try:
                outcome = await users.ensure_admin(session, email, password, min_length)
                await session.commit()
            except LOST_CREATE_RACE:
                if attempt:
                    raise
                continue  # the winner created it: look again
        if outcome.created:
            log.info("default admin %s created", email)
        elif outcome.weak_password:
            log.error(
                "JOBSERVER_DEFAULT_ADMIN_PASSWORD is refused (%s): admin %s not created",
                outcome.weak_password,
                email,
            )
        elif outcome.refused:
            log.error(
                "JOBSERVER_DEFAULT_ADMIN_EMAIL %s belongs to an existing account that is not "
                "an admin: not promoting it (use `jobserver users set-role %s admin` if it "
                "should be)",
                email,
                email,
            )
        return


async def _ensure_embedded_admin(
    sessionmaker: async_sessionmaker[AsyncSession], data_dir: Path
) -> None:
    generated = secrets.token_urlsafe(16)
    async with sessionmaker() as session:
        if await users.get_by_email(session, EMBEDDED_ADMIN_EMAIL) is not None:
            return
        try:
            await users.create(session, EMBEDDED_ADMIN_EMAIL, generated, role="admin")
            await session.commit()
        except LOST_CREATE_RACE:
            return  # the winner writes and prints the password
    path = data_dir / ADMIN_PASSWORD_FILE
    path.unlink(missing_ok=True)
    _write_private(path, generated + "\n")
    # Printed once to the terminal, never logged: this is how the first admin learns it.
    sys.stderr.write(
        f"\n  Created admin {EMBEDDED_ADMIN_EMAIL} with password {generated}\n"
        f"  (kept in {path}; change it with `jobserver users set-password`)\n\n"
    )
