"""A minimal host app for the reference server, zndraw-joblib 0.1.7, to benchmark ours against.

The library ships a router, not a server: this mounts it the way its integration guide
describes (zndraw-auth JWT login, the RFC 9457 handler, the sweeper, Socket.IO attached) and
nothing more. On SQLite every session is serialised behind one asyncio.Lock and the file runs
in WAL mode, as the guide asks of the host. Provider reads and @internal jobs are not wired.

    uv run python scripts/reference_host.py --port 8765 \
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/ref

The admin and the JWT secret come from the library's own settings: ZNDRAW_AUTH_SECRET_KEY,
ZNDRAW_AUTH_DEFAULT_ADMIN_EMAIL, ZNDRAW_AUTH_DEFAULT_ADMIN_PASSWORD; ZNDRAW_JOBLIB_* as usual.
The schema is created at start (create_all), the admin created or promoted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt
import socketio
import uvicorn
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from zndraw_auth import (
    AuthSettings,
    Base,
    UserCreate,
    UserRead,
    UserUpdate,
    admin_token_router,
    auth_backend,
    cli_login_router,
    create_engine_for_url,
    ensure_default_admin,
    fastapi_users,
)
from zndraw_joblib import JobLibSettings, ProblemException, problem_exception_handler, run_sweeper
from zndraw_joblib import router as joblib_router
from zndraw_socketio import wrap

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./reference.db"
JWT_AUDIENCE = "fastapi-users:auth"


class SerialSessions:
    """A session maker that hands out one session at a time.

    SQLite has one writer; the library leaves queueing for it to the host, and a lock held for
    a session's whole life keeps concurrent requests from ever meeting a locked database.
    """

    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self._maker = maker
        self._lock = asyncio.Lock()

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[AsyncSession]:
        async with self._lock, self._maker() as session:
            yield session


def make_sessions(engine: AsyncEngine) -> Callable[[], Any]:
    maker = async_sessionmaker(engine, expire_on_commit=False)
    if engine.dialect.name != "sqlite":
        return maker

    @event.listens_for(engine.sync_engine, "connect")
    def _wal(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    return SerialSessions(maker)


def make_socketio(secret: str) -> socketio.AsyncServer:
    """Socket.IO with the same JWT as REST; nobody listens during a benchmark, but the
    library emits its events into it as in a real host."""
    sio = socketio.AsyncServer(async_mode="asgi", cors_allowed_origins=[])

    @sio.event
    async def connect(_sid: str, _environ: dict[str, Any], auth: Any) -> bool:
        token = auth.get("token") if isinstance(auth, dict) else None
        try:
            jwt.decode(token or "", secret, audience=JWT_AUDIENCE, algorithms=["HS256"])
        except jwt.PyJWTError:
            return False
        return True

    return sio


def include_routers(app: FastAPI) -> None:
    """zndraw-auth's routes in ZnDraw's layout (/v1/auth, /v1/admin), then /v1/joblib."""
    app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/v1/auth/jwt")
    app.include_router(fastapi_users.get_register_router(UserRead, UserCreate), prefix="/v1/auth")
    users = fastapi_users.get_users_router(UserRead, UserUpdate)
    app.include_router(users, prefix="/v1/auth/users")
    app.include_router(cli_login_router, prefix="/v1/auth/cli-login")
    app.include_router(admin_token_router, prefix="/v1/admin")
    app.include_router(joblib_router)
    app.add_exception_handler(ProblemException, problem_exception_handler)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}


def create_app(database_url: str) -> socketio.ASGIApp:
    auth_settings = AuthSettings()
    joblib_settings = JobLibSettings()
    engine = create_engine_for_url(database_url)
    sessions = make_sessions(engine)
    sio = make_socketio(auth_settings.secret_key.get_secret_value())
    tsio = wrap(sio)

    async def sweeper_sessions() -> AsyncIterator[AsyncSession]:
        async with sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)
        async with sessions() as session:
            await ensure_default_admin(session, auth_settings)
        sweeper = asyncio.create_task(run_sweeper(sweeper_sessions, joblib_settings, tsio))
        yield
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await engine.dispose()

    app = FastAPI(title="zndraw-joblib reference host", lifespan=lifespan)
    app.state.engine = engine
    app.state.session_maker = sessions
    app.state.auth_settings = auth_settings
    app.state.joblib_settings = joblib_settings
    app.state.tsio = tsio
    include_routers(app)
    return socketio.ASGIApp(sio, other_asgi_app=app)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("REFERENCE_DATABASE_URL", DEFAULT_DATABASE_URL),
        help="SQLAlchemy async URL (env REFERENCE_DATABASE_URL)",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    uvicorn.run(
        create_app(args.database_url),
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
    )


if __name__ == "__main__":
    main()
