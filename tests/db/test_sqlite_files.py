"""The SQLite database and its -wal/-shm files are readable by the server's user only:
they hold every payload, result and password hash (0644 let any local user read them)."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx

from app.main import create_app
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, login, make_settings

SQLITE_FILES = ("jobserver.db", "jobserver.db-wal", "jobserver.db-shm")


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def start_and_write(data_dir: Path) -> None:
    """Start the embedded server on DATA_DIR's database and write through both connections
    (the ORM's and the task store's), so that -wal and -shm exist."""
    settings = make_settings(None, data_dir)  # type: ignore[arg-type]
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = {
                "Authorization": f"Bearer {await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)}"
            }
            job = {"category": "modifiers", "name": "Probe", "schema_": {}}
            registered = await client.put("/v1/joblib/rooms/r1/jobs", json=job, headers=headers)
            assert registered.status_code in (200, 201), registered.text
            submitted = await client.post(
                "/v1/joblib/rooms/r1/tasks/r1:modifiers:Probe", json={}, headers=headers
            )
            assert submitted.status_code == 202, submitted.text
            modes = {name: mode_of(data_dir / name) for name in SQLITE_FILES}
    assert modes == dict.fromkeys(SQLITE_FILES, 0o600)


async def test_sqlite_files_are_created_private(tmp_path: Path) -> None:
    await start_and_write(tmp_path / "data")


async def test_a_new_data_directory_is_private(tmp_path: Path) -> None:
    await start_and_write(tmp_path / "data")
    assert mode_of(tmp_path / "data") == 0o700


async def test_sqlite_files_of_an_older_start_are_made_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    await start_and_write(data_dir)
    for name in SQLITE_FILES:
        path = data_dir / name
        if path.exists():
            path.chmod(0o644)
    await start_and_write(data_dir)
