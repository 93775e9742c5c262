"""In-process storage: the embedded default for scripts and tests."""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable

from .._status import Status
from ._base import (
    DEFAULT_RETENTION,
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
        clock: Source of unix time, for expiry (tests may pass a fake clock).
    """

    durable = False

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
        self._early: dict[tuple[str, str], tuple[str, float]] = {}

    def _get(self, execution_id: str) -> StoredExecution | None:
        expires = self._expires.get(execution_id)
        if expires is not None and expires <= self._clock():
            del self._expires[execution_id]
            del self._executions[execution_id]
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

    async def write(self, record: StoredExecution, *, expected_version: int) -> StoredExecution:
        with self._lock:
            current = self._get(record.id)
            if (current.version if current else 0) != expected_version:
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
            stored = record.written(
                version=expected_version + 1,
                updated_at=now,
                created_at=current.created_at if current else (record.created_at or now),
            )
            self._executions[record.id] = stored
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

    async def touch(self, execution_id: str, *, version: int, lease_expires: float) -> bool:
        with self._lock:
            current = self._get(execution_id)
            if current is None or current.version != version:
                return False
            self._executions[execution_id] = current.evolve(lease_expires=lease_expires)
            return True

    async def reserve_idempotency_key(self, reactor: str, key: str, execution_id: str) -> str:
        with self._lock:
            entry = self._idempotency.get((reactor, key))
            if entry is not None and entry[1] > self._clock():
                return entry[0]
            self._idempotency[(reactor, key)] = (execution_id, self._clock() + self.retention)
            return execution_id

    async def put_early(
        self, reactor: str, correlation_id: str, payload: str, *, ttl: float
    ) -> str | None:
        with self._lock:
            holder = self._correlations.get((reactor, correlation_id))
            if holder is not None and self._get(holder) is not None:
                return holder
            if self._live_early(reactor, correlation_id):
                raise WriteConflict(correlation_id, None)
            self._early[(reactor, correlation_id)] = (payload, self._clock() + ttl)
            return None

    async def take_early(self, reactor: str, correlation_id: str) -> str | None:
        with self._lock:
            if not self._live_early(reactor, correlation_id):
                return None
            return self._early.pop((reactor, correlation_id))[0]

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

    async def expired_leases(self, now: float, *, limit: int = 100) -> list[str]:
        with self._lock:
            expired = [
                e
                for e in self._live()
                if e.status is Status.RUNNING
                and e.lease_expires is not None
                and e.lease_expires <= now
            ]
            expired.sort(key=lambda e: e.lease_expires or 0.0)
            return [e.id for e in expired[:limit]]

    async def list(
        self, *, status: Status | None = None, reactor: str | None = None, limit: int = 100
    ) -> list[StoredExecution]:
        with self._lock:
            found = [
                e
                for e in self._live()
                if (status is None or e.status is status)
                and (reactor is None or e.reactor == reactor)
            ]
            found.sort(key=lambda e: e.created_at, reverse=True)
            return found[:limit]
