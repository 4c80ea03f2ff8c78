"""Issue 18, accounts and tokens: registration off by default, the password policy,
throttled logins, hashing off the event loop, revocation, current password for self
changes, `exp` required."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

from app.db.models import User
from app.main import create_app
from app.services import passwords, tokens
from app.settings import Settings
from app.state import Core
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, bearer, login, make_settings
from tests.foundation.helpers import assert_problem, client_for, me, running, try_login, user_id

GOOD_PASSWORD = "a-long-enough-password"


async def register(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/v1/auth/register", json={"email": email, "password": password})


# --- registration -------------------------------------------------------------------


def test_registration_is_off_by_default() -> None:
    assert Settings(_env_file=None).allow_registration is False  # type: ignore[call-arg]


async def test_registration_without_opting_in_is_403(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path)
    defaults = settings.model_copy(
        update={"allow_registration": Settings.model_fields["allow_registration"].default}
    )
    async with running(defaults) as application, client_for(application) as http:
        assert_problem(await register(http, "new@example.com", GOOD_PASSWORD), 403)


async def test_registered_accounts_are_operators_not_admins(client: httpx.AsyncClient) -> None:
    response = await register(client, "new@example.com", GOOD_PASSWORD)
    assert response.status_code == 201, response.text
    assert (response.json()["role"], response.json()["is_superuser"]) == ("operator", False)


# --- password policy ----------------------------------------------------------------


async def test_register_with_a_short_password_is_400_register_invalid_password(
    client: httpx.AsyncClient,
) -> None:
    response = await register(client, "new@example.com", "a")
    assert_problem(response, 400)
    detail = response.json()["detail"]
    assert detail["code"] == "REGISTER_INVALID_PASSWORD"
    assert "10 characters" in detail["reason"]


async def test_self_patch_with_a_short_password_is_400_update_user_invalid_password(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.patch(
        "/v1/users/me",
        json={"password": "short", "current_password": "password"},
        headers=user_headers,
    )
    assert_problem(response, 400)
    assert response.json()["detail"]["code"] == "UPDATE_USER_INVALID_PASSWORD"


async def test_admin_patch_with_a_short_password_is_400_update_user_invalid_password(
    client: httpx.AsyncClient, admin_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    target = await user_id(client, user_headers)
    response = await client.patch(
        f"/v1/users/{target}", json={"password": "short"}, headers=admin_headers
    )
    assert_problem(response, 400)
    assert response.json()["detail"]["code"] == "UPDATE_USER_INVALID_PASSWORD"


class TestPolicySetting:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"password_min_length": 20}

    async def test_password_min_length_is_configurable(self, client: httpx.AsyncClient) -> None:
        assert (await register(client, "a@example.com", "x" * 19)).status_code == 400
        assert (await register(client, "b@example.com", "x" * 20)).status_code == 201


# --- throttling -----------------------------------------------------------------------

THROTTLED = {
    "login_max_failures_per_account": 3,
    "login_max_failures_per_address": 6,
    "login_failure_window_seconds": 60,
}


def assert_throttled(response: httpx.Response) -> None:
    assert_problem(response, 429)
    assert response.json()["type"] == "/v1/problems/too-many-requests"
    assert 1 <= int(response.headers["Retry-After"]) <= 60


class TestThrottle:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return THROTTLED

    async def test_login_is_throttled_per_account_after_repeated_failures(
        self, client: httpx.AsyncClient
    ) -> None:
        for _ in range(3):
            assert (await try_login(client, ADMIN_EMAIL, "wrong-password")).status_code == 400
        assert_throttled(await try_login(client, ADMIN_EMAIL, "wrong-password"))
        # Locked: even the right password waits out the window.
        assert_throttled(await try_login(client, ADMIN_EMAIL, ADMIN_PASSWORD))

    async def test_failures_on_other_accounts_do_not_block_a_login(
        self, client: httpx.AsyncClient
    ) -> None:
        for _ in range(3):
            await try_login(client, "someone-else@example.com", "wrong-password")
        assert_throttled(await try_login(client, "someone-else@example.com", "wrong-password"))
        assert (await try_login(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 200

    async def test_login_is_throttled_per_client_address(self, client: httpx.AsyncClient) -> None:
        for n in range(6):
            response = await try_login(client, f"nobody-{n}@example.com", "wrong-password")
            assert response.status_code == 400
        assert_throttled(await try_login(client, "fresh@example.com", "wrong-password"))

    async def test_registration_is_throttled_after_repeated_failures(
        self, client: httpx.AsyncClient
    ) -> None:
        for _ in range(3):
            assert (await register(client, "r@example.com", "short")).status_code == 400
        assert_throttled(await register(client, "r@example.com", GOOD_PASSWORD))

    async def test_wrong_current_passwords_are_throttled_like_logins(
        self, client: httpx.AsyncClient, user_headers: dict[str, str]
    ) -> None:
        body = {"password": GOOD_PASSWORD, "current_password": "not-it"}
        for _ in range(3):
            response = await client.patch("/v1/users/me", json=body, headers=user_headers)
            assert response.status_code == 400
        assert_throttled(await client.patch("/v1/users/me", json=body, headers=user_headers))


async def test_throttle_is_shared_by_replicas_through_redis(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, redis_url=redis_url, **THROTTLED)
    async with (
        running(settings) as one,
        running(settings) as two,
        client_for(one) as first,
        client_for(two) as second,
    ):
        for _ in range(3):
            assert (await try_login(first, ADMIN_EMAIL, "wrong")).status_code == 400
        assert_throttled(await try_login(second, ADMIN_EMAIL, ADMIN_PASSWORD))


# --- hashing off the event loop -------------------------------------------------------


class SpyHash(PasswordHash):
    """The real (cheap) argon2, recording the thread of every hash and verify; `delay`
    makes each one hold its thread like production-cost hashing does."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))
        self.delay = delay
        self.calls: list[tuple[str, str]] = []

    def _record(self, kind: str) -> None:
        self.calls.append((kind, threading.current_thread().name))
        if self.delay:
            time.sleep(self.delay)

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self._record("hash")
        return super().hash(password, salt=salt)

    def verify_and_update(
        self, password: str | bytes, hash: str | bytes
    ) -> tuple[bool, str | None]:
        self._record("verify")
        return super().verify_and_update(password, hash)


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> SpyHash:
    found = SpyHash()
    monkeypatch.setattr(passwords, "PASSWORDS", found)
    return found


async def test_password_hashing_runs_on_its_own_pool_not_the_event_loop(
    client: httpx.AsyncClient, user_headers: dict[str, str], spy: SpyHash
) -> None:
    loop_thread = threading.current_thread().name
    await asyncio.gather(*(try_login(client, "user@example.com", "wrong!") for _ in range(4)))
    await register(client, "new@example.com", GOOD_PASSWORD)
    await client.patch(
        "/v1/users/me",
        json={"password": GOOD_PASSWORD, "current_password": "password"},
        headers=user_headers,
    )
    assert len(spy.calls) >= 7
    threads = {thread for _, thread in spy.calls}
    assert loop_thread not in threads
    assert all(name.startswith(passwords.THREAD_PREFIX) for name in threads), threads


async def test_unknown_email_login_performs_a_hash(client: httpx.AsyncClient, spy: SpyHash) -> None:
    response = await try_login(client, "nobody@example.com", "some-password")
    assert response.status_code == 400
    assert [kind for kind, _ in spy.calls] == ["hash"]


async def test_parallel_logins_do_not_stall_the_event_loop(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each hash holds its thread for a second, as a production-cost hash does on a slow
    # machine. A ticker measures the longest gap between its 10 ms sleeps: hashing on the
    # loop would stretch a gap to a second or more; on the pool the loop keeps ticking, and
    # /health answers meanwhile.
    monkeypatch.setattr(passwords, "PASSWORDS", SpyHash(delay=1.0))
    longest = 0.0
    done = asyncio.Event()

    async def tick() -> None:
        nonlocal longest
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(0.01)
            now = time.monotonic()
            longest = max(longest, now - last)
            last = now

    ticker = asyncio.create_task(tick())
    logins = [asyncio.create_task(try_login(client, ADMIN_EMAIL, "wrong")) for _ in range(4)]
    health = await client.get("/health")
    await asyncio.gather(*logins)
    done.set()
    await ticker
    assert health.status_code == 200
    assert longest < 0.5, f"the event loop stalled {longest:.2f} s"


# --- revocation -----------------------------------------------------------------------


async def test_logout_ends_the_token(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    second = bearer(await login(client, "user@example.com", "password"))
    assert (await client.post("/v1/auth/jwt/logout", headers=user_headers)).status_code == 204
    for headers in (user_headers, second):
        assert_problem(await me(client, headers), 401)
        assert_problem(await client.get("/v1/joblib/workers", headers=headers), 401)
    assert (
        await me(client, bearer(await login(client, "user@example.com", "password")))
    ).is_success


async def test_password_change_ends_old_tokens(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    response = await client.patch(
        "/v1/auth/users/me",
        json={"password": GOOD_PASSWORD, "current_password": "password"},
        headers=user_headers,
    )
    assert response.status_code == 200, response.text
    assert_problem(await client.get("/v1/joblib/workers", headers=user_headers), 401)
    assert await login(client, "user@example.com", GOOD_PASSWORD)


async def test_role_change_ends_tokens(
    client: httpx.AsyncClient, admin_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    target = await user_id(client, user_headers)
    response = await client.patch(
        f"/v1/users/{target}", json={"role": "viewer"}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert_problem(await client.get("/v1/joblib/workers", headers=user_headers), 401)


async def test_deactivation_ends_tokens_even_after_reactivation(
    client: httpx.AsyncClient, admin_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    target = await user_id(client, user_headers)
    for active in (False, True):
        response = await client.patch(
            f"/v1/users/{target}", json={"is_active": active}, headers=admin_headers
        )
        assert response.status_code == 200, response.text
    assert_problem(await client.get("/v1/joblib/workers", headers=user_headers), 401)


async def test_admin_minted_token_carries_the_generation_and_ends_with_logout(
    client: httpx.AsyncClient, admin_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    target = await user_id(client, user_headers)
    minted = await client.post(f"/v1/admin/users/{target}/token", headers=admin_headers)
    worker = bearer(minted.json()["access_token"])
    assert (await client.get("/v1/joblib/workers", headers=worker)).status_code == 200
    await client.post("/v1/auth/jwt/logout", headers=user_headers)
    assert_problem(await client.get("/v1/joblib/workers", headers=worker), 401)


async def test_token_of_an_older_generation_is_401_and_missing_gen_counts_as_zero(
    client: httpx.AsyncClient, core: Core, user_headers: dict[str, str]
) -> None:
    subject = uuid.UUID(await user_id(client, user_headers))
    exp = int(time.time()) + 60
    no_gen = jwt.encode(
        {"sub": str(subject), "aud": tokens.AUDIENCE, "exp": exp}, core.secret, "HS256"
    )
    assert (await me(client, bearer(no_gen))).status_code == 200
    await client.post("/v1/auth/jwt/logout", headers=user_headers)
    assert_problem(await me(client, bearer(no_gen)), 401)
    current = tokens.mint(subject, core.secret, 60, generation=1)
    assert (await me(client, bearer(current))).status_code == 200


# --- current password -----------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/v1/users", "/v1/auth/users"])
@pytest.mark.parametrize(
    ("change", "current", "code"),
    [
        ({"password": GOOD_PASSWORD}, None, "UPDATE_USER_CURRENT_PASSWORD_REQUIRED"),
        ({"password": GOOD_PASSWORD}, "wrong-one", "UPDATE_USER_BAD_CURRENT_PASSWORD"),
        ({"email": "mine@example.com"}, None, "UPDATE_USER_CURRENT_PASSWORD_REQUIRED"),
        ({"email": "mine@example.com"}, "wrong-one", "UPDATE_USER_BAD_CURRENT_PASSWORD"),
    ],
)
async def test_self_change_of_password_or_email_needs_the_current_password(
    client: httpx.AsyncClient,
    user_headers: dict[str, str],
    prefix: str,
    change: dict[str, str],
    current: str | None,
    code: str,
) -> None:
    body = dict(change) if current is None else {**change, "current_password": current}
    response = await client.patch(f"{prefix}/me", json=body, headers=user_headers)
    assert_problem(response, 400)
    assert response.json()["detail"]["code"] == code
    unchanged = await me(client, user_headers)
    assert unchanged.json()["email"] == "user@example.com"
    right = await client.patch(
        f"{prefix}/me", json={**change, "current_password": "password"}, headers=user_headers
    )
    assert right.status_code == 200, right.text


async def test_admin_changes_another_users_password_without_its_current_one(
    client: httpx.AsyncClient, admin_headers: dict[str, str], user_headers: dict[str, str]
) -> None:
    target = await user_id(client, user_headers)
    response = await client.patch(
        f"/v1/users/{target}", json={"password": GOOD_PASSWORD}, headers=admin_headers
    )
    assert response.status_code == 200, response.text
    assert await login(client, "user@example.com", GOOD_PASSWORD)


# --- exp and lifetimes ----------------------------------------------------------------


async def test_token_without_exp_is_401(
    client: httpx.AsyncClient, core: Core, user_headers: dict[str, str]
) -> None:
    subject = await user_id(client, user_headers)
    forever = jwt.encode({"sub": subject, "aud": tokens.AUDIENCE}, core.secret, "HS256")
    for path in ("/v1/auth/users/me", "/v1/joblib/workers"):
        assert_problem(await client.get(path, headers=bearer(forever)), 401)


def test_token_lifetime_above_the_maximum_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MAX_TOKEN_LIFETIME_SECONDS"):
        make_settings(
            "sqlite+aiosqlite://",
            tmp_path,
            token_lifetime_seconds=7200,
            max_token_lifetime_seconds=3600,
        )


def test_app_builds_with_default_account_settings(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", tmp_path)
    assert create_app(settings).state.core.throttle is not None


class TestThrottleWindow:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"login_max_failures_per_account": 1, "login_failure_window_seconds": 1}

    async def test_a_throttled_account_logs_in_again_after_the_window(
        self, client: httpx.AsyncClient
    ) -> None:
        assert (await try_login(client, ADMIN_EMAIL, "wrong")).status_code == 400
        assert_throttled(await try_login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
        await asyncio.sleep(1.1)
        assert (await try_login(client, ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 200


async def test_a_stronger_rehash_at_login_keeps_the_users_tokens(
    client: httpx.AsyncClient, core: Core
) -> None:
    async with core.sessionmaker() as session:
        user = User(
            email="old@example.com",
            hashed_password=BcryptHasher().hash("an-old-bcrypt-password"),
            role="operator",
        )
        session.add(user)
        await session.commit()
        user_id_ = user.id
    before = bearer(tokens.mint(user_id_, core.secret, 60))
    assert await login(client, "old@example.com", "an-old-bcrypt-password")
    async with core.sessionmaker() as session:
        found = await session.get(User, user_id_)
        assert found is not None
        assert found.hashed_password.startswith("$argon2")
        assert found.token_generation == 0
    assert (await me(client, before)).status_code == 200
