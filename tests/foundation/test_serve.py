"""Zero configuration end to end: `jobserver serve`, the admin password file, first login."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from app.bootstrap import ADMIN_PASSWORD_FILE, EMBEDDED_ADMIN_EMAIL
from tests.live import start_server


@pytest.mark.slow
def test_zero_config_serve_answers_and_the_admin_logs_in(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBSERVER_", "ZNDRAW_"))}
    env["JOBSERVER_DATA_DIR"] = str(tmp_path / "data")
    server = start_server(env, tmp_path / "server.log")
    try:
        password = (tmp_path / "data" / ADMIN_PASSWORD_FILE).read_text().strip()
        assert password in server.log()
        token = server.token(EMBEDDED_ADMIN_EMAIL, password)
        me = httpx.get(
            f"{server.url}/v1/auth/users/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert me.status_code == 200
        assert (me.json()["email"], me.json()["is_superuser"]) == (EMBEDDED_ADMIN_EMAIL, True)
        bad = httpx.get(f"{server.url}/v1/auth/users/me", headers={"Authorization": "Bearer x"})
        assert bad.status_code == 401
        assert bad.headers["content-type"] == "application/problem+json"
    finally:
        server.kill()
