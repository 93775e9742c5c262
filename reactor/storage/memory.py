"""In-process storage: the embedded default for scripts and tests."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable

from .._status import Status
from ._base import (
    DEFAULT_RETENTION,
    TAKEN_TTL,
    CorrelationTaken,
    EarlyPayloadWaiting,
    Storage,
    StoredExecution,
    WriteConflict,
)

__all__ = ["MemoryStorage"]


class MemoryStorage(Storage):
    """Keeps executions in this process's memory, behind one lock.

    Safe to share between threads (each thread may drive its own event loop), lost
    when the process exits. Envelopes are immutable and bodies are JSON text, so
    what a reader gets can never be changed behind its back.

    Args:
        retention: Seconds a finished execution is kept.
        clock: Source of unix time, for expiry and leases: the store's own clock
            (tests may pass a fake one).
    """

    durable = False
    needs_task = False

    def __init__(
        self, *, retention: float = DEFAULT_RETENTION, clock: Callable[[], float] = time.time
    ) -> None:
        self.retention = retention
        self._clock = clock
        self._lock = threading.Lock()
        self._executions: dict[str, StoredExecution] = {}
        self._expires: dict[str, float] = {}
        # (expiry, id) of finished executions, soonest first: writes purge what is due, so
        # a long-lived process does not keep every finished execution it ever ran.
        self._expiry_queue: list[tuple[float, str]] = []
        self._correlations: dict[tuple[str, str], str] = {}
        self._idempotency: dict[tuple[str, str], tuple[str, float]] = {}
        # (reactor, correlation id) -> (payload, expiry, token of the call that put it).
        self._early: dict[tuple[str, str], tuple[str, float, str | None]] = {}
        # (reactor, correlation id, token) -> (payload taken, expiry), oldest first: all
        # expire TAKEN_TTL after they were taken, so purging pops from the front.
        self._taken: dict[tuple[str, str, str], tuple[str, float]] = {}
        # Token of the write that stored each execution's current version.
        self._tokens: dict[str, str] = {}

    def _get(self, execution_id: str) -> StoredExecution | None:
        expires = self._expires.get(execution_id)
        if expires is not None and expires <= self._clock():
            del self._expires[execution_id]
            del self._executions[execution_id]
            self._tokens.pop(execution_id, None)
            return None
        return self._executions.get(execution_id)

    async def load(self, execution_id: str) -> StoredExecution | None:
        with self._lock:
            return self._get(execution_id)

    async def load_by_correlation(
        self, reactor: str, correlation_id: str
    ) -> StoredExecution | None:
        with self._lock:
            holder = self._correlations.get((reactor, correlation_id))
            return None if holder is None else self._get(holder)

    async def write(
        self,
        record: StoredExecution,
        *,
        expected_version: int,
        lease_seconds: float | None = None,
        token: str | None = None,
        takeover: bool = False,
    ) -> StoredExecution:
        with self._lock:
            current = self._get(record.id)
            if (current.version if current else 0) != expected_version:
                if (
                    token is not None
                    and current is not None
                    and current.version == expected_version + 1
                    and self._tokens.get(record.id) == token
                ):
                    return current  # this very write, sent again
                raise WriteConflict(record.id, current)
            if (
                takeover
                and current is not None
                and current.status is Status.RUNNING
                and current.lease_expires is not None
                and current.lease_expires > self._clock()
            ):
                raise WriteConflict(record.id, current)
            held = (
                set(current.correlation_ids) if current and not current.status.finished else set()
            )
            wanted = set() if record.status.finished else set(record.correlation_ids)
            for cid in wanted - held:
                holder = self._correlations.get((record.reactor, cid))
                if holder is not None and holder != record.id:
                    raise CorrelationTaken(cid, holder)
                if self._live_early(record.reactor, cid):
                    raise EarlyPayloadWaiting(cid)
            for cid in held - wanted:
                if self._correlations.get((record.reactor, cid)) == record.id:
                    del self._correlations[(record.reactor, cid)]
            for cid in wanted:
                self._correlations[(record.reactor, cid)] = record.id
            now = self._clock()
            lease = (
                now + lease_seconds
                if lease_seconds is not None and record.status is Status.RUNNING
                else None
            )
            stored = record.written(
                version=expected_version + 1,
                updated_at=now,
                created_at=current.created_at if current else (record.created_at or now),
                lease_expires=lease,
            )
            self._executions[record.id] = stored
            if token is None:
                self._tokens.pop(record.id, None)
            else:
                self._tokens[record.id] = token
            if record.status.finished:
                self._expires[record.id] = now + self.retention
                heapq.heappush(self._expiry_queue, (now + self.retention, record.id))
            else:
                self._expires.pop(record.id, None)
            self._purge(now)
            return stored

    def _purge(self, now: float) -> None:
        queue = self._expiry_queue
        while queue and queue[0][0] <= now:
            _, execution_id = heapq.heappop(queue)
            self._get(execution_id)  # drops it if its current expiry is due

    def _live_early(self, reactor: str, correlation_id: str) -> bool:
        entry = self._early.get((reactor, correlation_id))
        if entry is None:
            return False
        if entry[1] <= self._clock():
            del self._early[(reactor, correlation_id)]
            return False
        return True

    async def touch(self, execution_id: str, *, version: int, lease_seconds: float) -> bool:
        with self._lock:
            current = self._get(execution_id)
            if current is None or current.version != version:
                return False
            self._executions[execution_id] = current.evolve(
                lease_expires=self._clock() + lease_seconds
            )
            return True

    async def reserve_idempotency_key(self, reactor: str, key: str, execution_id: str) -> str:
        with self._lock:
            entry = self._idempotency.get((reactor, key))
            if entry is not None and entry[1] > self._clock():
                return entry[0]
            self._idempotency[(reactor, key)] = (execution_id, self._clock() + self.retention)
            return execution_id

    async def put_early(
        self,
        reactor: str,
        correlation_id: str,
        payload: str,
        *,
        ttl: float,
        token: str | None = None,
    ) -> str | None:
        with self._lock:
            holder = self._correlations.get((reactor, correlation_id))
            if holder is not None and self._get(holder) is not None:
                return holder
            if self._live_early(reactor, correlation_id):
                if token is not None and self._early[reactor, correlation_id][2] == token:
                    return None  # this very call, sent again
                raise WriteConflict(correlation_id, None)
            self._early[(reactor, correlation_id)] = (payload, self._clock() + ttl, token)
            return None

    async def take_early(
        self, reactor: str, correlation_id: str, *, token: str | None = None
    ) -> str | None:
        with self._lock:
            now = self._clock()
            taken = self._taken
            while taken:
                oldest = next(iter(taken))
                if taken[oldest][1] > now:
                    break
                del taken[oldest]
            if token is not None and (reactor, correlation_id, token) in taken:
                return taken[reactor, correlation_id, token][0]  # this very call, sent again
            if not self._live_early(reactor, correlation_id):
                return None
            payload = self._early.pop((reactor, correlation_id))[0]
            if token is not None:
                taken[reactor, correlation_id, token] = (payload, now + TAKEN_TTL)
            return payload

    def _live(self) -> list[StoredExecution]:
        return [e for e in list(self._executions.values()) if self._get(e.id) is not None]

    async def due(self, now: float, *, limit: int = 100) -> list[str]:
        with self._lock:
            due = [
                e
                for e in self._live()
                if not e.status.finished and e.deadline is not None and e.deadline <= now
            ]
            due.sort(key=lambda e: e.deadline or 0.0)
            return [e.id for e in due[:limit]]

    async def expired_leases(self, *, limit: int = 100) -> list[str]:
        with self._lock:
            now = self._clock()
            expired = [
                e
                for e in self._live()
                if e.status is Status.RUNNING
                and e.lease_expires is not None
                and e.lease_expires <= now
            ]
            expired.sort(key=lambda e: e.lease_expires or 0.0)
            return [e.id for e in expired[:limit]]

    async def list_page(
        self,
        *,
        status: Status | None = None,
        reactor: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[StoredExecution], str | None]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit!r}")
        after = None if cursor is None else _parse_cursor(cursor)
        with self._lock:
            found = [
                e
                for e in self._live()
                if (status is None or e.status is status)
                and (reactor is None or e.reactor == reactor)
                and (after is None or (e.created_at, e.id) < after)
            ]
        # The order of the Redis indexes: newest first, ties by id, highest first.
        found.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        page = found[:limit]
        if len(found) <= limit:
            return page, None
        return page, f"{page[-1].created_at!r}/{page[-1].id}"


def _parse_cursor(cursor: str) -> tuple[float, str]:
    """The (created_at, id) of the last execution of the previous page."""
    created_at, slash, execution_id = cursor.partition("/")
    try:
        if not slash:
            raise ValueError
        return float(created_at), execution_id
    except ValueError:
        raise ValueError(f"not a cursor of MemoryStorage.list_page: {cursor!r}") from None
