"""The servers under test for bench_side_by_side.py: started as subprocesses on fresh
databases (PostgreSQL `bench_<random>`, SQLite in a temporary directory), stopped by PID, and
every database, Redis index and git worktree they needed removed afterwards."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import redis
from sqlalchemy.engine import URL, make_url

ROOT = Path(__file__).resolve().parent.parent
ADMIN_EMAIL = "bench@example.com"
READY_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
DATABASES = ("pg", "sqlite")
# Children get a clean slate: no settings leaking in from the caller's shell.
SCRUBBED_ENV_PREFIXES = ("JOBSERVER_", "ZNDRAW_", "VIRTUAL_ENV")


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass
class Target:
    """One server to start: what (ours, ref, rev), on which database, and what it became."""

    label: str
    spec: str
    kind: str
    db: str
    rev: str | None = None
    url: str = ""
    commit: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    database_url: str = ""  # PostgreSQL targets: for scripts that seed or inspect it


def parse_target(label: str, text: str, default_db: str) -> Target:
    body, db = text, default_db
    head, _, tail = text.rpartition(":")
    if head and tail in DATABASES:
        body, db = head, tail
    if body in ("ours", "ref"):
        return Target(label, text, body, db)
    if body.startswith("rev:") and len(body) > 4:
        return Target(label, text, "rev", db, rev=body[4:])
    raise SystemExit(f"unknown target {text!r}: ours, ref or rev:<git-rev>, optionally :pg/:sqlite")


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_ENV_PREFIXES)}
    return env | extra


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


class Sitting:
    """Owns everything one run creates. Resources join the current scope and are undone,
    in reverse order, when it ends; the temporary directory goes last, with close()."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.stack = contextlib.ExitStack()
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-"))
        self.password = secrets.token_urlsafe(18)
        self.secret = secrets.token_urlsafe(48)
        self.next_redis_db = args.redis_db

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        outer, self.stack = self.stack, contextlib.ExitStack()
        try:
            with self.stack:
                yield
        finally:
            self.stack = outer

    def close(self) -> None:
        try:
            self.stack.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # --- resources -----------------------------------------------------------------
    def database(self) -> URL:
        """A fresh PostgreSQL database, dropped when the sitting closes."""
        admin = make_url(self.args.pg)
        name = f"bench_{secrets.token_hex(4)}"
        pg_admin(admin, f'CREATE DATABASE "{name}"')
        self.stack.callback(pg_admin, admin, f'DROP DATABASE "{name}" WITH (FORCE)')
        return admin.set(database=name)

    def redis_url(self) -> str:
        """A Redis db index of its own, flushed before and after."""
        url = f"{self.args.redis.rstrip('/')}/{self.next_redis_db}"
        self.next_redis_db += 1
        client = redis.Redis.from_url(url)
        client.flushdb()
        self.stack.callback(client.close)
        self.stack.callback(client.flushdb)
        return url

    def worktree(self, rev: str) -> tuple[Path, str]:
        """A detached worktree of REV outside the repo, with its own synced venv."""
        commit = git("rev-parse", "--verify", f"{rev}^{{commit}}")
        path = self.tmp / f"rev-{commit[:10]}"
        git("worktree", "add", "--detach", str(path), commit)
        self.stack.callback(git, "worktree", "remove", "--force", str(path))
        say(f"[{rev}] uv sync --locked in {path}")
        self.run_logged(["uv", "sync", "--locked"], path, child_env(), f"sync-{commit[:10]}")
        return path, commit

    def run_logged(self, cmd: list[str], cwd: Path, env: dict[str, str], name: str) -> None:
        log = self.tmp / f"{name}.log"
        with log.open("w") as out:
            done = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{log.read_text()[-3000:]}")

    def launch(self, target: Target, cmd: list[str], env: dict[str, str]) -> None:
        """Start a server in its own session; stop it by PID when the sitting closes."""
        port = free_port()
        target.url = f"http://127.0.0.1:{port}"
        log = self.tmp / f"{target.label}-server.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [*cmd, "--port", str(port)],
                cwd=self.tmp,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.stack.callback(stop, proc)
        wait_ready(target.url, proc, log)
        target.details["pid"] = proc.pid


def pg_admin(url: URL, statement: str) -> None:
    async def execute() -> None:
        connection = await asyncpg.connect(plain_dsn(url))
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    asyncio.run(execute())


def plain_dsn(url: URL) -> str:
    """SQLAlchemy's URL as libpq/asyncpg spell it."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (uv passes it on to the server), then SIGKILL to the session we started."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server for {url} exited ({proc.returncode}):\n{log.read_text()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/health", timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.3)
    raise SystemExit(f"server for {url} not ready after {READY_TIMEOUT:.0f} s:\n{log.read_text()}")


# --- starting each kind of target ------------------------------------------------------


def start_ours(sitting: Sitting, target: Target, project: Path) -> None:
    data_dir = sitting.tmp / f"{target.label}-data"
    env = child_env(
        JOBSERVER_DATA_DIR=str(data_dir),
        JOBSERVER_SECRET_KEY=sitting.secret,
        JOBSERVER_DEFAULT_ADMIN_EMAIL=ADMIN_EMAIL,
        JOBSERVER_DEFAULT_ADMIN_PASSWORD=sitting.password,
        JOBSERVER_LOG_LEVEL="warning",
        JOBSERVER_INTERNAL_EXTENSIONS="",
        # Off by default since issue 18; joblib_bench.py --register creates its user over REST.
        JOBSERVER_ALLOW_REGISTRATION="true",
    )
    uv_run = ["uv", "run", "--project", str(project)]
    if target.db == "pg":
        database = sitting.database()
        env["JOBSERVER_DATABASE_URL"] = database.render_as_string(hide_password=False)
        target.database_url = env["JOBSERVER_DATABASE_URL"]
        env["JOBSERVER_REDIS_URL"] = sitting.redis_url()
        target.details |= {"database": database.database, "redis": env["JOBSERVER_REDIS_URL"]}
        sitting.run_logged([*uv_run, "jobserver", "db", "upgrade"], sitting.tmp, env, "migrate")
    else:
        target.details["database"] = str(data_dir / "jobserver.db")
    sitting.launch(target, [*uv_run, "jobserver", "serve", "--host", "127.0.0.1"], env)


def start_ref(sitting: Sitting, target: Target) -> None:
    if target.db == "pg":
        url = sitting.database().render_as_string(hide_password=False)
    else:
        url = f"sqlite+aiosqlite:///{sitting.tmp / f'{target.label}-reference.db'}"
    target.details["database"] = url.rsplit("/", 1)[-1]
    env = child_env(
        ZNDRAW_AUTH_SECRET_KEY=sitting.secret,
        ZNDRAW_AUTH_DEFAULT_ADMIN_EMAIL=ADMIN_EMAIL,
        ZNDRAW_AUTH_DEFAULT_ADMIN_PASSWORD=sitting.password,
    )
    script = ROOT / "scripts" / "reference_host.py"
    # The reference host is zndraw-joblib's own server: a development dependency.
    uv_run = ["uv", "run", "--project", str(ROOT), "--group", "dev"]
    cmd = [*uv_run, "python", str(script), "--database-url", url]
    sitting.launch(target, cmd, env)
    target.details["zndraw_joblib"] = "0.1.7"


def start(sitting: Sitting, target: Target) -> None:
    say(f"[{target.label}] starting {target.spec}")
    if target.kind == "ref":
        start_ref(sitting, target)
    elif target.kind == "rev":
        assert target.rev is not None
        project, target.commit = sitting.worktree(target.rev)
        start_ours(sitting, target, project)
    else:
        target.commit = git("rev-parse", "HEAD")
        target.details["dirty"] = bool(git("status", "--porcelain", "--untracked-files=no"))
        start_ours(sitting, target, ROOT)
    say(f"[{target.label}] {target.spec} ready at {target.url}")


# --- one server of ours, for the single-target benchmarks --------------------------------


def server_args(**overrides: Any) -> argparse.Namespace:
    """The options a Sitting needs, with this machine's defaults."""
    defaults = {
        "pg": "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        "redis": "redis://127.0.0.1:6379",
        "redis_db": 12,
    }
    return argparse.Namespace(**(defaults | overrides))


def serving_pid(launcher_pid: int) -> int | None:
    """The process that serves (`uv run` starts it as a child): the deepest descendant of
    the launcher, read from Linux /proc; None elsewhere."""
    pid = launcher_pid
    while True:
        # Each thread lists the children it started (uv starts its child from another).
        threads = Path(f"/proc/{pid}/task").glob("*/children")
        try:
            children = [child for path in threads for child in path.read_text().split()]
        except OSError:
            children = []
        if not children:
            return None if pid == launcher_pid else pid
        pid = int(children[0])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def login(url: str, password: str, email: str = ADMIN_EMAIL) -> str:
    """A bearer token for the sitting's admin (OAuth2 password form)."""
    import httpx

    async with httpx.AsyncClient(base_url=url) as client:
        answer = await client.post(
            "/v1/auth/jwt/login", data={"username": email, "password": password}
        )
        answer.raise_for_status()
        return str(answer.json()["access_token"])
