"""A worker's identity on the server: one id for its whole life, its registration, and the
heartbeat thread that keeps it alive whatever the event loop is doing.

Everything here is blocking and thread-safe: the heartbeat thread calls it, and the event
loop calls it through `asyncio.to_thread`.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Sequence

from jobserver_sdk.client import Link, SyncClient
from jobserver_sdk.errors import ApiError, Forbidden, JobserverSdkError, TokenRejected
from jobserver_sdk.job import Job

log = logging.getLogger("jobserver_sdk.worker")

JOBLIB = "/v1/joblib"
# Registration is retried this long through a server restart before the worker gives up.
REGISTER_RETRY_SECONDS = 300.0
RETIRE_RETRY_SECONDS = 10.0


class Identity:
    """The worker's id (chosen here, kept for life) and its registration on the server.

    The server sweeps a worker it has not heard from; the next request naming it gets a
    404. Whoever sees that 404 calls `register(seen)` with the generation it read before
    sending: the first caller re-creates the worker with the same id and re-links its jobs,
    later callers of that generation find it done. So concurrent 404s (heartbeat thread and
    claim loop) register once, and no second worker is ever created.

    Example:
        >>> identity = Identity(url, token, "demo", [SayHello], heartbeat_seconds=15)
        >>> identity.register()  # creates the worker, links SayHello
        >>> identity.start_heartbeats()
    """

    def __init__(
        self,
        url: str,
        token: str,
        room: str,
        jobs: Sequence[type[Job]],
        *,
        heartbeat_seconds: float,
        link: Link | None = None,
    ) -> None:
        self.id = uuid.uuid4()
        self.room = room
        self.jobs = list(jobs)
        self.heartbeat_seconds = heartbeat_seconds
        self.generation = 0  # + 1 per registration on the server
        # Called (from whichever thread registered) after every registration.
        self.on_registered: Callable[[], None] = lambda: None
        self._http = SyncClient(url, token, link=link)
        self._lock = threading.Lock()  # one registration at a time; one request at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, seen: int | None = None) -> bool:
        """Create the worker with its id and link every job. With `seen`, only when no
        registration happened since that generation; True when this call registered."""
        with self._lock:
            if self._stop.is_set() or (seen is not None and seen != self.generation):
                return False
            self._create()
            for cls in self.jobs:
                body = {**cls.registration(), "worker_id": str(self.id)}
                path = f"{JOBLIB}/rooms/{self.room}/jobs"
                try:
                    self._http.request("PUT", path, json=body, retry_seconds=REGISTER_RETRY_SECONDS)
                except Forbidden as exc:
                    raise _explain(exc, self.room) from None
            self.generation += 1
        log.info(
            "worker %s serves %s", self.id, ", ".join(c.full_name(self.room) for c in self.jobs)
        )
        self.on_registered()
        return True

    def _create(self) -> None:
        body = {"id": str(self.id)}
        created = self._http.request(
            "POST",
            f"{JOBLIB}/workers",
            json=body,
            fenced=True,
            retry_seconds=REGISTER_RETRY_SECONDS,
        )
        if created["id"] != str(self.id):  # a server that does not know worker ids
            raise JobserverSdkError(f"server gave worker id {created['id']}, not {self.id}")

    # --- heartbeats -------------------------------------------------------------------
    def start_heartbeats(self) -> None:
        """Heartbeat every `heartbeat_seconds` from a thread of its own, so a handler that
        blocks the event loop does not make the server think the worker is gone."""
        self._thread = threading.Thread(
            target=self._beat_until_stopped, name=f"jobserver-heartbeat-{self.id}", daemon=True
        )
        self._thread.start()

    def retire(self) -> None:
        """Stop heartbeating and delete the worker on the server (its links and providers
        go; tasks it still holds are failed or retried by the server's rules). Nothing
        registers it again afterwards."""
        self._stop.set()
        with self._lock:  # after any registration in flight, never before it
            try:
                self._http.request(
                    "DELETE", f"{JOBLIB}/workers/{self.id}", retry_seconds=RETIRE_RETRY_SECONDS
                )
            except JobserverSdkError as exc:
                log.warning("could not delete worker %s: %s", self.id, exc)
        self.close()

    def close(self) -> None:
        """Stop heartbeating and close the connections (blocks until the thread ends)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._http.close()

    def _beat_until_stopped(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                self.beat()
            except Exception:  # never let the thread die: the next beat may work
                log.exception("heartbeat of worker %s failed", self.id)

    def beat(self) -> None:
        """One heartbeat; a 404 (swept) registers the worker again."""
        seen = self.generation
        try:
            with self._lock:
                self._http.request(
                    "PATCH", f"{JOBLIB}/workers/{self.id}", retry_seconds=self.heartbeat_seconds
                )
        except TokenRejected:
            return  # the worker stops on it (Link.on_token_rejected)
        except ApiError as exc:
            if exc.status != 404:
                log.warning("heartbeat refused: %s", exc)
                return
            log.warning("worker %s is gone on the server; registering it again", self.id)
            self.register(seen)
        except JobserverSdkError as exc:
            # The link logged the lost connection once; this is every beat during it.
            log.debug("heartbeat failed: %s", exc)


def _explain(exc: Forbidden, room: str) -> Forbidden:
    """A refused registration, with what to do about it when the room is the reason."""
    if not room.startswith("@"):
        return exc
    hint = (
        f"{exc.detail}: registering jobs in {room} needs an admin's token; give the "
        'worker a room of your own instead (room="demo", or --room demo)'
    )
    return Forbidden(exc.status, exc.type, hint)
