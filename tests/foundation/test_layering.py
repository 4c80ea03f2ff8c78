"""The one-way flow: app.services imports with neither FastAPI nor Socket.IO (STYLE.md)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import app.services

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("fastapi", "starlette", "socketio", "engineio")

PROBE = """
import importlib, json, pkgutil, sys
import app.services
names = [m.name for m in pkgutil.iter_modules(app.services.__path__, "app.services.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted(sys.modules)}))
"""


def test_services_import_without_fastapi_or_socketio() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    found = json.loads(result.stdout)
    expected = {m.name for m in pkgutil.iter_modules(app.services.__path__, "app.services.")}
    assert set(found["modules"]) == expected
    assert len(expected) >= 10
    leaked = [name for name in found["loaded"] if name.split(".")[0] in FORBIDDEN]
    assert leaked == []
