"""Password policy and hashing. Hashing costs tens to hundreds of milliseconds of CPU, so it
runs on a small thread pool of its own: never on the event loop (which would stall every
other request) and never on asyncio's default executor (which other work can fill)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

# The same hashers fastapi-users uses: argon2 for new hashes, bcrypt still accepted.
# Looked up at each call, so a test may swap in cheaper parameters.
PASSWORDS = PasswordHash((Argon2Hasher(), BcryptHasher()))
THREAD_PREFIX = "password-hash"
DEFAULT_THREADS = 2


class PasswordPolicyError(ValueError):
    """The password breaks the policy; the message says how, in one line."""


def check_policy(password: str, min_length: int) -> None:
    if len(password) < min_length:
        raise PasswordPolicyError(f"Password must be at least {min_length} characters long")
    if not password.strip():
        raise PasswordPolicyError("Password must not be only whitespace")


class _Pool:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._threads = DEFAULT_THREADS
        self._executor: ThreadPoolExecutor | None = None

    def configure(self, threads: int) -> None:
        """Size of the pool; takes effect for the next pool (the first, normally)."""
        with self._lock:
            if threads != self._threads and self._executor is not None:
                self._executor.shutdown(wait=False)
                self._executor = None
            self._threads = threads

    def executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix=THREAD_PREFIX)
            return self._executor


_pool = _Pool()


def hash_now(password: str) -> str:
    """Hash in the calling thread: for synchronous callers outside a running server."""
    return PASSWORDS.hash(password)


def _verify_now(password: str, hashed: str) -> tuple[bool, str | None]:
    return PASSWORDS.verify_and_update(password, hashed)


def configure(threads: int) -> None:
    _pool.configure(threads)


async def hash_password(password: str) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool.executor(), hash_now, password)


async def verify(password: str, hashed: str) -> tuple[bool, str | None]:
    """(matches, a stronger hash to store or None)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool.executor(), _verify_now, password, hashed)


async def verify_user(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """Like verify; for an unknown account (None) it hashes the password anyway, so an
    unknown email costs the same time as a wrong password and reveals nothing."""
    if hashed is None:
        await hash_password(password)
        return False, None
    return await verify(password, hashed)
