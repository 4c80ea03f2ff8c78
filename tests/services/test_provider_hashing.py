"""REST.md read steps 1-3: canonical parameters, request hash and cache keys (pure functions)."""

from __future__ import annotations

import hashlib
import subprocess
import sys

from app.services.providers import canonical_params, inflight_key, request_hash, result_key


def test_canonical_params_sort_keys_without_spaces() -> None:
    assert canonical_params({"b": "2", "a": "1"}) == '{"a":"1","b":"2"}'


def test_canonical_params_escape_non_ascii() -> None:
    assert canonical_params({"p": "ü/漢"}) == '{"p":"\\u00fc/\\u6f22"}'


def test_request_hash_is_sha256_hex_of_the_canonical_json() -> None:
    assert request_hash('{"path":"/data"}') == hashlib.sha256(b'{"path":"/data"}').hexdigest()
    assert len(request_hash("{}")) == 64


def test_cache_and_inflight_keys() -> None:
    assert result_key("@global:fs:local", "h") == "provider-result:@global:fs:local:h"
    assert inflight_key("@global:fs:local", "h") == "provider-inflight:@global:fs:local:h"


def test_provider_service_imports_without_fastapi_or_socketio() -> None:
    code = (
        "import sys, app.services.providers, app.results; "
        "print(sorted(m for m in ('fastapi', 'socketio') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
