"""The storage interface the executor talks to.

Storage knows executions, not steps: it keeps one :class:`StoredExecution` per
execution -- an envelope of the fields it must index (status, correlation ids,
deadline, lease) around an opaque JSON ``body`` owned by the executor -- and
offers a handful of atomic operations on it.

Every state change is one compare-and-set :meth:`Storage.write` of the whole
envelope against the version the writer last read, so concurrent writers
(two resumers of the same interrupt, a worker and a crashed owner, ...) are
serialized: exactly one wins, the others get :class:`WriteConflict` carrying
the current envelope and decide again from there.
"""

from __future__ import annotations

import abc

import attrs

from .._status import Status

__all__ = [
    "DEFAULT_RETENTION",
    "CorrelationTaken",
    "EarlyPayloadWaiting",
    "Storage",
    "StoredExecution",
    "WriteConflict",
]

DEFAULT_RETENTION = 7 * 24 * 3600.0
"""Seconds a finished execution is kept before it expires."""


@attrs.frozen
class StoredExecution:
    """One execution as storage sees it.

    Attributes:
        id: The execution id.
        reactor: Registry name of the reactor class (``module.QualName`` by default).
        status: The execution's status.
        version: Compare-and-set version; storage sets it on each write (first write: 1).
            ``0`` means "never written".
        body: The executor's JSON text; storage never looks inside.
        correlation_ids: Correlation ids this execution holds; storage indexes them per
            ``reactor`` while the execution is live and releases them when it finishes
            or stops listing them.
        deadline: Earliest deadline (unix time) the worker must act on, or ``None``.
        lease_expires: While running: when the owner's lease runs out (unix time).
        reason: Why the execution ended this way (cancel reason...), for listings.
        created_at: Unix time of creation.
        updated_at: Unix time of the last write.
    """

    id: str
    reactor: str
    status: Status
    version: int
    body: str
    correlation_ids: tuple[str, ...] = ()
    deadline: float | None = None
    lease_expires: float | None = None
    reason: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0

    def evolve(self, **changes: object) -> StoredExecution:
        """Return a copy with ``changes`` applied."""
        return attrs.evolve(self, **changes)  # type: ignore[arg-type]

    def written(self, *, version: int, created_at: float, updated_at: float) -> StoredExecution:
        """This envelope as a write stored it (what ``evolve`` does, on the hot path)."""
        return StoredExecution(
            self.id,
            self.reactor,
            self.status,
            version,
            self.body,
            self.correlation_ids,
            self.deadline,
            self.lease_expires,
            self.reason,
            created_at,
            updated_at,
        )


class WriteConflict(Exception):
    """A compare-and-set write lost: the stored version is not the expected one.

    Attributes:
        current: The envelope as it is stored now (``None`` if it does not exist).
    """

    def __init__(self, execution_id: str, current: StoredExecution | None) -> None:
        super().__init__(f"execution {execution_id!r} changed concurrently")
        self.current = current


class CorrelationTaken(Exception):
    """A correlation id in a write is held by another live execution of the reactor."""

    def __init__(self, correlation_id: str, holder: str) -> None:
        super().__init__(f"correlation id {correlation_id!r} is held by {holder!r}")
        self.correlation_id = correlation_id
        self.holder = holder


class EarlyPayloadWaiting(Exception):
    """A write registers a correlation id for which an early payload is stored.

    Nothing was written; the writer should :meth:`Storage.take_early` it and use it.
    """

    def __init__(self, correlation_id: str) -> None:
        super().__init__(f"an early payload waits for correlation id {correlation_id!r}")
        self.correlation_id = correlation_id


class Storage(abc.ABC):
    """Where executions live. Implementations must make each method atomic.

    Implementations: :class:`reactor.storage.MemoryStorage` (one process),
    :class:`reactor.storage.RedisStorage` (production).
    """

    #: Whether executions survive the process (enables leases and crash recovery).
    durable: bool = False
    #: Seconds a finished execution is kept.
    retention: float = DEFAULT_RETENTION

    @abc.abstractmethod
    async def load(self, execution_id: str) -> StoredExecution | None:
        """Return the stored execution, or ``None`` if there is none."""

    @abc.abstractmethod
    async def load_by_correlation(
        self, reactor: str, correlation_id: str
    ) -> StoredExecution | None:
        """Return the live execution of ``reactor`` holding ``correlation_id``, or ``None``."""

    @abc.abstractmethod
    async def write(self, record: StoredExecution, *, expected_version: int) -> StoredExecution:
        """Store ``record`` if the stored version is ``expected_version``; all or nothing.

        ``expected_version=0`` creates: it fails if the execution exists. On success the
        stored version is ``expected_version + 1`` and the stored envelope is returned.
        In the same atomic step: correlation ids newly listed are registered (a finished
        status registers none), ids no longer listed or of a finished execution are
        released, the status index and the deadline and lease schedules are updated, and a
        finished execution gets the ``retention`` expiry (a live one has none).

        Raises:
            WriteConflict: the stored version differs; nothing was written.
            CorrelationTaken: a newly listed correlation id is held by another live
                execution of the same reactor; nothing was written.
            EarlyPayloadWaiting: an early payload is stored for a newly listed correlation
                id; nothing was written.
        """

    @abc.abstractmethod
    async def touch(self, execution_id: str, *, version: int, lease_expires: float) -> bool:
        """Extend the lease without changing the version.

        Returns:
            ``False`` if the stored version is no longer ``version`` (someone else wrote:
            the owner should reload), else ``True``.
        """

    @abc.abstractmethod
    async def reserve_idempotency_key(self, reactor: str, key: str, execution_id: str) -> str:
        """Bind ``key`` to ``execution_id`` unless it is bound already (for ``retention``).

        Returns:
            The execution id the key is bound to: ``execution_id`` if this call bound it.
        """

    @abc.abstractmethod
    async def put_early(
        self, reactor: str, correlation_id: str, payload: str, *, ttl: float
    ) -> str | None:
        """Store a payload that arrived before any execution waits on ``correlation_id``.

        Returns:
            ``None`` if stored; the id of the live execution holding ``correlation_id`` if
            one does (nothing is stored then: resume it instead).

        Raises:
            WriteConflict: an early payload is already stored for this correlation id.
        """

    @abc.abstractmethod
    async def take_early(self, reactor: str, correlation_id: str) -> str | None:
        """Remove and return the early payload stored for ``correlation_id``, if any."""

    @abc.abstractmethod
    async def due(self, now: float, *, limit: int = 100) -> list[str]:
        """Ids of live executions whose ``deadline`` is at or before ``now``, soonest first."""

    @abc.abstractmethod
    async def expired_leases(self, now: float, *, limit: int = 100) -> list[str]:
        """Ids of running executions whose lease expired at or before ``now``."""

    @abc.abstractmethod
    async def list(
        self, *, status: Status | None = None, reactor: str | None = None, limit: int = 100
    ) -> list[StoredExecution]:
        """Executions, newest first, filtered by status and reactor name.

        Must not scan the whole keyspace: implementations keep an index per status.
        """

    async def aclose(self) -> None:  # noqa: B027 -- optional hook, nothing to close by default
        """Release connections held by the storage."""
