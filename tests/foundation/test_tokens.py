"""Tokens (AUTH.md): admin-minted tokens, what a token must be to be accepted, roles."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt

from app.services import tokens
from app.state import Core
from tests.conftest import bearer
from tests.foundation.helpers import assert_problem, deactivate, me, user_id

# --- admin-minted tokens ----------------------------------------------------


async def mint(client: httpx.AsyncClient, target: str, headers: dict[str, str]) -> httpx.Response:
    return await client.post(f"/v1/admin/users/{target}/token", headers=headers)


async def test_admin_mints_a_working_token_with_impersonated_by(
    client: httpx.AsyncClient,
    core: Core,
    admin_headers: dict[str, str],
    user_headers: dict[str, str],
) -> None:
    target = await user_id(client, user_headers)
    admin_id = await user_id(client, admin_headers)
    response = await mint(client, target, admin_headers)
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    token = response.json()["access_token"]
    claims = jwt.decode(token, core.secret, algorithms=["HS256"], audience=tokens.AUDIENCE)
    assert (claims["sub"], claims["impersonated_by"]) == (target, admin_id)
    assert claims["aud"] == tokens.AUDIENCE
    assert "iat" in claims
    assert (await me(client, bearer(token))).json()["id"] == target
    workers = await client.get("/v1/joblib/workers", headers=bearer(token))
    assert workers.status_code == 200


async def test_minting_a_token_is_403_problem_for_non_admins(
    client: httpx.AsyncClient, user_headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    target = await user_id(client, other_headers)
    assert_problem(await mint(client, target, user_headers), 403)


async def test_minting_a_token_for_a_missing_user_is_404_problem(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    assert_problem(await mint(client, str(uuid.uuid4()), admin_headers), 404, "User not found")


async def test_minting_a_token_for_an_inactive_user_is_404_problem(
    client: httpx.AsyncClient,
    core: Core,
    admin_headers: dict[str, str],
    user_headers: dict[str, str],
) -> None:
    target = await user_id(client, user_headers)
    await deactivate(core, "user@example.com")
    assert_problem(await mint(client, target, admin_headers), 404, "User not found")


# --- token validation -------------------------------------------------------

PROTECTED = ["/v1/auth/users/me", "/v1/joblib/workers"]


async def test_token_of_an_inactive_user_is_401_problem(
    client: httpx.AsyncClient, core: Core, user_headers: dict[str, str]
) -> None:
    await deactivate(core, "user@example.com")
    for path in PROTECTED:
        assert_problem(await client.get(path, headers=user_headers), 401)


async def test_expired_token_is_401_problem(
    client: httpx.AsyncClient, core: Core, user_headers: dict[str, str]
) -> None:
    subject = await user_id(client, user_headers)
    expired = jwt.encode(
        {"sub": subject, "aud": tokens.AUDIENCE, "exp": int(time.time()) - 10},
        core.secret,
        algorithm="HS256",
    )
    for path in PROTECTED:
        assert_problem(await client.get(path, headers=bearer(expired)), 401)


async def test_token_signed_with_another_secret_is_401_problem(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    subject = await user_id(client, user_headers)
    forged = tokens.mint(uuid.UUID(subject), "another-secret-that-is-long-enough-000", 60)
    for path in PROTECTED:
        assert_problem(await client.get(path, headers=bearer(forged)), 401)


async def test_both_audience_forms_are_accepted(
    client: httpx.AsyncClient, core: Core, user_headers: dict[str, str]
) -> None:
    subject = await user_id(client, user_headers)
    for aud in ([tokens.AUDIENCE], tokens.AUDIENCE):
        token = jwt.encode(
            {"sub": subject, "aud": aud, "exp": int(time.time()) + 60},
            core.secret,
            algorithm="HS256",
        )
        for path in PROTECTED:
            assert (await client.get(path, headers=bearer(token))).status_code == 200, (aud, path)


async def test_wrong_audience_is_401_problem(
    client: httpx.AsyncClient, core: Core, user_headers: dict[str, str]
) -> None:
    subject = await user_id(client, user_headers)
    token = jwt.encode(
        {"sub": subject, "aud": "someone-else", "exp": int(time.time()) + 60},
        core.secret,
        algorithm="HS256",
    )
    for path in PROTECTED:
        assert_problem(await client.get(path, headers=bearer(token)), 401)


async def test_garbage_token_is_401_problem(client: httpx.AsyncClient) -> None:
    for path in PROTECTED:
        assert_problem(await client.get(path, headers=bearer("not-a-jwt")), 401)


# --- roles on /v1/joblib ----------------------------------------------------


async def test_viewer_gets_403_problem_on_a_joblib_write(
    client: httpx.AsyncClient, viewer_headers: dict[str, str]
) -> None:
    assert_problem(await client.post("/v1/joblib/workers", headers=viewer_headers), 403)
    registration = await client.put(
        "/v1/joblib/rooms/r1/jobs",
        json={"category": "modifiers", "name": "Echo", "schema_": {}},
        headers=viewer_headers,
    )
    assert_problem(registration, 403)


async def test_viewer_can_read_joblib(
    client: httpx.AsyncClient, viewer_headers: dict[str, str]
) -> None:
    assert (await client.get("/v1/joblib/workers", headers=viewer_headers)).status_code == 200
    assert (await client.get("/v1/joblib/rooms/r1/jobs", headers=viewer_headers)).status_code == 200


async def test_operator_can_write_joblib(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    assert (await client.post("/v1/joblib/workers", headers=user_headers)).status_code == 201
