"""Screenshots of every dashboard page, light and dark, for the README (docs/screenshots/).

    uv run python scripts/dashboard_screenshots.py
    uv run python scripts/dashboard_screenshots.py --out /tmp/shots --chromium /usr/bin/chromium

Starts the server in this process on a fresh SQLite data directory (embedded mode, no Redis),
fills it with demo data, mostly through the API (three jobs, tasks finished over the last
hour, failures of two kinds, a running task, a schedule), signs in as the demo admin and
photographs each page the router lists (app/dashboard/sitemap.py) at 1280x800 in both color
schemes. Re-run it after a dashboard change; it overwrites the PNGs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import uvicorn
from playwright.async_api import Page, ViewportSize, async_playwright
from pydantic import SecretStr
from sqlalchemy import select, update

from app.dashboard import sitemap
from app.db.models import Task
from app.db.types import utcnow
from app.main import create_app
from app.services import tokens, users
from app.settings import Settings
from app.state import Core

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
SCHEMES: tuple[Literal["light", "dark"], ...] = ("light", "dark")
PASSWORD = "demo-password"
ADMIN = "admin@demo.example"
ROOM = "demo"
CATEGORY = "modifiers"  # the contract's job categories are fixed
JOBS = ("Resize", "Report", "Train")
FINISHED_PER_JOB = 40
PENDING_PER_JOB = 4
FAILURES = (
    ("ValueError: image is empty", 'File "resize.py", line 12, in resize'),
    ("TimeoutError: warehouse did not answer", 'File "report.py", line 40, in fetch'),
)
# The run form's screenshot shows a job with a schema (every other demo job takes anything).
REPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "n": {"type": "integer", "title": "Batch", "minimum": 0},
        "format": {"type": "string", "enum": ["pdf", "csv", "html"], "default": "pdf"},
        "recipients": {"type": "array", "items": {"type": "string"}, "title": "Recipients"},
        "include_charts": {"type": "boolean", "default": True},
    },
    "required": ["n"],
}
LOGIN = "/dashboard/login"
NAMES = {
    "/dashboard": "overview",
    LOGIN: "login",
    "/dashboard/tasks": "tasks",
    "/dashboard/tasks/{task_id}": "task",
    "/dashboard/jobs/{job_name}": "job",
    "/dashboard/failures": "failures",
    "/dashboard/users": "users",
    "/dashboard/jobs/{job_name}/run": "run",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _name_of(path: str) -> str:
    """A file name for a page: its known short name, else its path, flattened."""
    if path in NAMES:
        return NAMES[path]
    return path.removeprefix("/dashboard/").replace("{", "").replace("}", "").replace("/", "-")


async def _user(core: Core, email: str, role: str) -> dict[str, str]:
    async with core.sessionmaker() as db:
        user = await users.create(db, email, PASSWORD, role=role)
        await db.commit()
    return {"Authorization": f"Bearer {tokens.mint(user.id, core.secret, 3600)}"}


async def _spread_over_the_last_hour(core: Core, ids: list[str], rng: random.Random) -> None:
    """Finished tasks at random minutes of the last hour, so the charts have a shape (the
    triggers keep the per-minute counts from the rows, as for every writer)."""
    async with core.sessionmaker() as db:
        now = (await db.execute(select(utcnow()))).scalar_one()
        for task_id in ids:
            done = now - timedelta(seconds=rng.uniform(30, 3500))
            started = done - timedelta(seconds=rng.uniform(0.2, 8))
            await db.execute(
                update(Task)
                .where(Task.id == uuid.UUID(task_id))
                .values(
                    status="completed",
                    run_at=started - timedelta(seconds=rng.uniform(0, 3)),
                    claimed_at=started,
                    started_at=started,
                    completed_at=done,
                    result={"ok": True},
                )
            )
        await db.commit()


async def seed(http: httpx.AsyncClient, core: Core) -> dict[str, str]:
    """Demo data through the API; returns an example value for each page's path parameter."""
    rng = random.Random(21)
    ops = await _user(core, "ops@demo.example", "operator")
    await _user(core, "viewer@demo.example", "viewer")
    workers: dict[str, str] = {}
    for name in JOBS:
        body: dict[str, Any] = {"category": CATEGORY, "name": name}
        if name == "Report":
            body |= {"schema": REPORT_SCHEMA, "validate_payload": True}
        answer = await http.put(f"/v1/joblib/rooms/{ROOM}/jobs", json=body, headers=ops)
        answer.raise_for_status()
        workers[name] = answer.json()["worker_id"]
    finished: list[str] = []
    for name in JOBS:
        job = f"{ROOM}:{CATEGORY}:{name}"
        for n in range(FINISHED_PER_JOB + PENDING_PER_JOB):
            answer = await http.post(
                f"/v1/joblib/rooms/{ROOM}/tasks/{job}", json={"payload": {"n": n}}, headers=ops
            )
            answer.raise_for_status()
            if n < FINISHED_PER_JOB:
                finished.append(answer.json()["id"])
    await _spread_over_the_last_hour(core, finished, rng)
    failed = await _fail_some(http, ops, workers)
    await _run_one(http, ops, workers["Train"])
    schedule = {
        "job_name": f"{ROOM}:{CATEGORY}:Report",
        "room_id": ROOM,
        "cron": "0 6 * * *",
        "payload": {"n": 0, "format": "pdf"},
    }
    (await http.post("/v1/joblib/schedules", json=schedule, headers=ops)).raise_for_status()
    return {"task_id": failed, "job_name": f"{ROOM}:{CATEGORY}:Report"}


async def _claim(http: httpx.AsyncClient, headers: dict[str, str], worker: str) -> str:
    answer = await http.post("/v1/joblib/tasks/claim", json={"worker_id": worker}, headers=headers)
    answer.raise_for_status()
    task: dict[str, Any] = answer.json()["task"]
    return str(task["id"])


async def _fail_some(
    http: httpx.AsyncClient, headers: dict[str, str], workers: dict[str, str]
) -> str:
    """Claims and fails a few tasks with tracebacks (the inbox's groups); returns one."""
    last = ""
    for i, worker in enumerate([workers["Resize"]] * 3 + [workers["Report"]] * 2):
        error, frame = FAILURES[0] if i < 3 else FAILURES[1]
        last = await _claim(http, headers, worker)
        await http.patch(f"/v1/joblib/tasks/{last}", json={"status": "running"}, headers=headers)
        trace = f"Traceback (most recent call last):\n  {frame}\n{error}"
        body = {"status": "failed", "error": error, "traceback": trace}
        (
            await http.patch(f"/v1/joblib/tasks/{last}", json=body, headers=headers)
        ).raise_for_status()
    return last


async def _run_one(http: httpx.AsyncClient, headers: dict[str, str], worker: str) -> None:
    task = await _claim(http, headers, worker)
    body = {"status": "running", "progress": 0.4, "progress_message": "epoch 4 of 10"}
    (await http.patch(f"/v1/joblib/tasks/{task}", json=body, headers=headers)).raise_for_status()


async def _sign_in(page: Page, base: str) -> None:
    await page.goto(f"{base}/dashboard/login")
    await page.fill('input[name="email"]', ADMIN)
    await page.fill('input[name="password"]', PASSWORD)
    await page.click('button[type="submit"]')
    await page.wait_for_url(f"{base}/dashboard")


async def shoot(base: str, pages: dict[str, str], out: Path, chromium: str) -> list[Path]:
    """A PNG per page (template -> path) and color scheme; signed-in pages once live."""
    written: list[Path] = []
    signed_out = {t: p for t, p in pages.items() if t == LOGIN}
    signed_in = {t: p for t, p in pages.items() if t != LOGIN}
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--headless"])
        for scheme in SCHEMES:
            context = await browser.new_context(
                viewport=VIEWPORT, color_scheme=scheme, locale="en-GB", timezone_id="UTC"
            )
            page = await context.new_page()
            for template, path in signed_out.items():
                await page.goto(f"{base}{path}")
                written.append(await _save(page, out, template, scheme))
            await _sign_in(page, base)
            for template, path in signed_in.items():
                await page.goto(f"{base}{path}")
                await page.get_by_test_id("live-state").filter(has_text="live").wait_for()
                written.append(await _save(page, out, template, scheme))
            await context.close()
        await browser.close()
    return written


async def _save(page: Page, out: Path, template: str, scheme: str) -> Path:
    target = out / f"{_name_of(template)}-{scheme}.png"
    await page.screenshot(path=target)
    return target


async def main(out: Path, chromium: str) -> None:
    with tempfile.TemporaryDirectory() as data:
        settings = Settings(
            data_dir=Path(data),
            default_admin_email=ADMIN,
            default_admin_password=SecretStr(PASSWORD),
        )
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            port = _free_port()
            config = uvicorn.Config(app, port=port, lifespan="off", log_level="warning")
            server = uvicorn.Server(config)
            serving = asyncio.create_task(server.serve())
            while not server.started:  # noqa: ASYNC110  # uvicorn offers a flag, no event
                await asyncio.sleep(0.05)
            base = f"http://127.0.0.1:{port}"
            try:
                async with httpx.AsyncClient(base_url=base) as http:
                    examples = await seed(http, app.state.core)
                pages = {t: sitemap.fill(t, examples) for t in sitemap.pages(app)}
                for target in await shoot(base, pages, out, chromium):
                    print(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)  # noqa: T201
            finally:
                await app.state.core.dashboard_feed.close()
                server.should_exit = True
                await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    arguments = parser.parse_args()
    arguments.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(arguments.out, arguments.chromium))
