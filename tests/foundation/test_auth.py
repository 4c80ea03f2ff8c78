"""The auth contract (AUTH.md): login, logout, register, /users/me and /users/{id}."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

from app.services import tokens
from app.state import Core
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, login
from tests.foundation.helpers import assert_problem, deactivate, me, user_id

# --- login / logout ---------------------------------------------------------


async def test_login_form_returns_a_bearer_token(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/jwt/login", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type"}
    assert body["token_type"] == "bearer"


async def test_login_token_claims_are_fastapi_users_claims(
    client: httpx.AsyncClient, core: Core
) -> None:
    token = await login(client, ADMIN_EMAIL, ADMIN_PASSWORD)
    claims = jwt.decode(token, core.secret, algorithms=["HS256"], audience=tokens.AUDIENCE)
    assert claims["aud"] == [tokens.AUDIENCE]
    assert uuid.UUID(claims["sub"])
    assert claims["exp"] - time.time() == pytest.approx(3600, abs=60)


@pytest.mark.parametrize(
    ("username", "password"),
    [(ADMIN_EMAIL, "wrong-password"), ("nobody@example.com", ADMIN_PASSWORD)],
    ids=["wrong-password", "unknown-email"],
)
async def test_bad_credentials_are_400_problem_with_login_bad_credentials(
    client: httpx.AsyncClient, username: str, password: str
) -> None:
    response = await client.post(
        "/v1/auth/jwt/login", data={"username": username, "password": password}
    )
    assert_problem(response, 400, "LOGIN_BAD_CREDENTIALS")


async def test_inactive_user_cannot_log_in(
    client: httpx.AsyncClient, core: Core, user_headers: dict[str, str]
) -> None:
    await deactivate(core, "user@example.com")
    response = await client.post(
        "/v1/auth/jwt/login", data={"username": "user@example.com", "password": "password"}
    )
    assert_problem(response, 400, "LOGIN_BAD_CREDENTIALS")


async def test_login_without_fields_is_422_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/v1/auth/jwt/login", data={}), 422)


async def test_logout_is_204(client: httpx.AsyncClient, user_headers: dict[str, str]) -> None:
    response = await client.post("/v1/auth/jwt/logout", headers=user_headers)
    assert response.status_code == 204


async def test_logout_without_token_is_401_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.post("/v1/auth/jwt/logout"), 401)


# --- register ---------------------------------------------------------------


async def test_register_creates_an_operator_ignoring_privileged_fields(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/auth/register",
        json={
            "email": "new@example.com",
            "password": "a-password",
            "is_superuser": True,
            "is_active": False,
            "is_verified": True,
            "role": "admin",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == "new@example.com"
    assert (body["is_superuser"], body["is_active"], body["is_verified"]) == (False, True, False)
    assert body["role"] == "operator"
    assert {"id", "email", "is_active", "is_superuser", "is_verified"} <= set(body)
    assert await login(client, "new@example.com", "a-password")


async def test_register_duplicate_email_is_400_register_user_already_exists(
    client: httpx.AsyncClient,
) -> None:
    body = {"email": "dup@example.com", "password": "a-password"}
    assert (await client.post("/v1/auth/register", json=body)).status_code == 201
    response = await client.post("/v1/auth/register", json=body)
    assert_problem(response, 400, "REGISTER_USER_ALREADY_EXISTS")


async def test_register_invalid_email_is_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/auth/register", json={"email": "not-an-email", "password": "a-password"}
    )
    assert_problem(response, 422)


class TestRegistrationOff:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"allow_registration": False}

    async def test_register_is_403_problem_when_registration_is_off(
        self, client: httpx.AsyncClient
    ) -> None:
        response = await client.post(
            "/v1/auth/register", json={"email": "new@example.com", "password": "a-password"}
        )
        assert_problem(response, 403)
        assert (
            await client.post(
                "/v1/auth/jwt/login", data={"username": "new@example.com", "password": "x"}
            )
        ).status_code == 400


# --- /users/me --------------------------------------------------------------


async def test_users_me_returns_the_caller(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await me(client, user_headers)
    assert response.status_code == 200
    body = response.json()
    assert body["email"] == "user@example.com"
    assert (body["is_active"], body["is_superuser"], body["role"]) == (True, False, "operator")


async def test_users_me_without_token_is_401_problem(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/v1/auth/users/me"), 401)


async def test_users_me_patch_changes_password(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.patch(
        "/v1/auth/users/me",
        json={"password": "a-new-password", "current_password": "password"},
        headers=user_headers,
    )
    assert response.status_code == 200, response.text
    assert await login(client, "user@example.com", "a-new-password")


async def test_user_cannot_change_its_own_role_or_superuser_flag(
    client: httpx.AsyncClient, viewer_headers: dict[str, str]
) -> None:
    response = await client.patch(
        "/v1/auth/users/me",
        json={"role": "admin", "is_superuser": True, "is_active": True},
        headers=viewer_headers,
    )
    assert response.status_code == 200, response.text
    again = (await me(client, viewer_headers)).json()
    assert (again["role"], again["is_superuser"]) == ("viewer", False)


async def test_users_me_patch_to_a_taken_email_is_400(
    client: httpx.AsyncClient, user_headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    response = await client.patch(
        "/v1/auth/users/me",
        json={"email": "other@example.com", "current_password": "password"},
        headers=user_headers,
    )
    assert_problem(response, 400, "UPDATE_USER_EMAIL_ALREADY_EXISTS")


# --- /users/{id}, admin only, under both prefixes ---------------------------

USER_PREFIXES = ["/v1/auth/users", "/v1/users"]


async def test_admin_reads_any_user_under_both_prefixes(
    client: httpx.AsyncClient, admin_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    target = await user_id(client, user_headers)
    for prefix in USER_PREFIXES:
        response = await client.get(f"{prefix}/{target}", headers=admin_headers)
        assert response.status_code == 200
        assert response.json()["email"] == "user@example.com"


async def test_users_by_id_is_403_problem_for_non_admins(
    client: httpx.AsyncClient, user_headers: dict[str, str], other_headers: dict[str, str]
) -> None:
    target = await user_id(client, other_headers)
    for prefix in USER_PREFIXES:
        for method in ("GET", "PATCH", "DELETE"):
            response = await client.request(
                method,
                f"{prefix}/{target}",
                headers=user_headers,
                json={"is_superuser": True} if method == "PATCH" else None,
            )
            assert_problem(response, 403)
    assert (await me(client, other_headers)).json()["is_superuser"] is False


async def test_unknown_user_id_is_404_problem(
    client: httpx.AsyncClient, admin_headers: dict[str, str]
) -> None:
    for prefix in USER_PREFIXES:
        response = await client.get(f"{prefix}/{uuid.uuid4()}", headers=admin_headers)
        assert_problem(response, 404)


async def test_admin_making_a_user_superuser_makes_it_admin(
    client: httpx.AsyncClient, admin_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    target = await user_id(client, user_headers)
    response = await client.patch(
        f"/v1/auth/users/{target}", json={"is_superuser": True}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert (response.json()["role"], response.json()["is_superuser"]) == ("admin", True)


async def test_admin_setting_role_viewer_clears_superuser(
    client: httpx.AsyncClient, admin_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    target = await user_id(client, user_headers)
    await client.patch(f"/v1/users/{target}", json={"role": "admin"}, headers=admin_headers)
    response = await client.patch(
        f"/v1/users/{target}", json={"role": "viewer"}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert (response.json()["role"], response.json()["is_superuser"]) == ("viewer", False)


async def test_admin_clearing_superuser_demotes_to_operator(
    client: httpx.AsyncClient, admin_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    target = await user_id(client, user_headers)
    await client.patch(f"/v1/users/{target}", json={"role": "admin"}, headers=admin_headers)
    response = await client.patch(
        f"/v1/users/{target}", json={"is_superuser": False}, headers=admin_headers
    )
    assert (response.json()["role"], response.json()["is_superuser"]) == ("operator", False)


async def test_admin_deletes_a_user(
    client: httpx.AsyncClient, admin_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    target = await user_id(client, user_headers)
    response = await client.delete(f"/v1/auth/users/{target}", headers=admin_headers)
    assert response.status_code == 204
    assert_problem(await me(client, user_headers), 401)
