"""The SDK quickstart runs as written: sdk/README.md shows the files of
examples/quickstart/ verbatim, and with an ordinary user made by the `jobserver` commands
it shows, its worker (terminal 1) and its submit scripts (terminal 2) run as processes
against a live server (both backends)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import uuid
from pathlib import Path

import pytest

from tests.sdk.conftest import Server

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart"
README = ROOT / "sdk" / "README.md"
FILES = ["jobs.py", "worker.py", "submit.py", "submit_sync.py"]
WITHIN = 60.0


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", markdown, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("name", FILES)
def test_the_readme_shows_each_quickstart_file_verbatim(name: str) -> None:
    assert (QUICKSTART / name).read_text() in python_blocks(README.read_text())


def test_the_readme_shows_how_to_run_each_terminal() -> None:
    text = README.read_text()
    for name in ("worker.py", "submit.py"):
        assert f"uv run python examples/quickstart/{name}" in text


async def jobserver(server: Server, *args: str) -> str:
    """A `jobserver` command with the server's own settings, as the README runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=ROOT,
        env=server.live.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(WITHIN):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def ordinary_users_token(server: Server) -> str:
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    await jobserver(
        server, "users", "create", email, "--role", "operator", "--password", "long-enough-pw"
    )
    return (await jobserver(server, "token", email, "--lifetime", "3600")).strip()


def terminal_env(server: Server, token: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBSERVER_")}
    return {**env, "JOBSERVER_URL": server.url, "JOBSERVER_TOKEN": token}


async def run_script(name: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        name,
        cwd=QUICKSTART,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(WITHIN):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_the_quickstart_runs_in_two_terminals_with_an_ordinary_users_token(
    server: Server, tmp_path: Path
) -> None:
    token = await ordinary_users_token(server)
    env = terminal_env(server, token)
    # Terminal 1. Its output goes to a file: a pipe nobody reads could fill and block it.
    log_path = tmp_path / "terminal-1.log"
    with log_path.open("wb") as log:
        worker = await asyncio.create_subprocess_exec(
            sys.executable, "worker.py", cwd=QUICKSTART, env=env, stdout=log, stderr=log
        )
    try:
        async with asyncio.timeout(WITHIN):
            while True:
                if "serves demo:modifiers:SayHello" in log_path.read_text():
                    break
                assert worker.returncode is None, log_path.read_text()
                await asyncio.sleep(0.1)
        # Terminal 2: the async script, then the blocking one.
        submitted = await run_script("submit.py", env)
        assert re.fullmatch(
            r"submitted [0-9a-f-]{36}\nresult: \{'greeted': 'Ada'\}\n", submitted
        ), submitted
        submitted_sync = await run_script("submit_sync.py", env)
        assert submitted_sync.endswith("result: {'greeted': 'Grace'}\n"), submitted_sync
        worker.send_signal(signal.SIGINT)  # Ctrl-C
        async with asyncio.timeout(WITHIN):
            assert await worker.wait() == 0
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
        output = log_path.read_text()
    task_ids = re.findall(r"submitted ([0-9a-f-]{36})", submitted + submitted_sync)
    for task_id in task_ids:
        assert f"task {task_id} demo:modifiers:SayHello attempt 1/3 completed in" in output
    assert "hello Ada" in output
    assert "hello Grace" in output
    assert "Traceback" not in output
