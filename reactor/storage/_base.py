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

Every write is safe to send again. Each call carries a token (fresh unless the caller
passes one) that the store keeps with what the call changed, so a call resent after
its reply was lost -- applied, but not known to be -- recognises its own effect and
reports success instead of a conflict with itself.

Leases are stamped and compared in the store's own clock (Redis server time), never a
caller's: a writer says how long its lease lasts, the store says when it ends.
"""

from __future__ import annotations

import abc
import os
import random
from collections.abc import Awaitable, Callable
from typing import TypeAlias

import attrs

from .._status import Status

__all__ = [
    "DEFAULT_RETENTION",
    "TAKEN_TTL",
    "CorrelationTaken",
    "EarlyPayloadWaiting",
    "Storage",
    "StoredExecution",
    "WriteConflict",
    "bound_to_running_loop",
    "new_token",
    "register_loop_owner",
]

DEFAULT_RETENTION = 7 * 24 * 3600.0
"""Seconds a finished execution is kept before it expires."""

TAKEN_TTL = 60.0
"""Seconds a store remembers what a :meth:`Storage.take_early` token took, so that the
call resent after a lost reply gets the payload again rather than nothing."""


Finalizer: TypeAlias = Callable[[], Awaitable[object]]
"""Releases a resource bound to one event loop; awaited on that loop."""

_loop_owners: list[Callable[[Finalizer], None]] = []


def register_loop_owner(adopt: Callable[[Finalizer], None]) -> None:
    """Be told of every resource a store binds to an event loop.

    For a layer above storage that owns event loops (the sync facade): ``adopt`` is
    called, on the loop concerned, with a finalizer the owner awaits there before it
    closes that loop. Storage itself never imports such a layer.
    """
    _loop_owners.append(adopt)


def bound_to_running_loop(finalize: Finalizer) -> None:
    """Tell the loop owners that ``finalize()`` must run before the running loop closes."""
    for adopt in _loop_owners:
        adopt(finalize)


# Tokens come from a private generator: one seeded by the application (random.seed)
# could repeat tokens across processes. Reseeded in a forked child, which would otherwise
# repeat its parent's tokens.
_token_source = random.Random()
os.register_at_fork(after_in_child=_token_source.seed)


def new_token() -> str:
    """A random 128-bit token naming one storage call or one owner of a lease, unique
    across processes and forks (without a system call each, unlike ``os.urandom``)."""
    return f"{_token_source.getrandbits(128):032x}"


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
        lease_expires: While running: when the owner's lease runs out (unix time in the
            store's clock). Set by the store from the ``lease_seconds`` of the write or
            :meth:`Storage.touch` that stamped it; ignored in a record given to ``write``.
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

    def written(
        self,
        *,
        version: int,
        created_at: float,
        updated_at: float,
        lease_expires: float | None,
    ) -> StoredExecution:
        """This envelope as a write stored it (what ``evolve`` does, on the hot path)."""
        return StoredExecution(
            self.id,
            self.reactor,
            self.status,
            version,
            self.body,
            self.correlation_ids,
            self.deadline,
            lease_expires,
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
    #: Whether its methods must run inside an asyncio task (a timeout that cancels a
    #: call in flight needs one): a sync call on a store that needs none may start
    #: without an event loop iteration, as long as nothing suspends.
    needs_task: bool = True
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
    async def write(
        self,
        record: StoredExecution,
        *,
        expected_version: int,
        lease_seconds: float | None = None,
        token: str | None = None,
        takeover: bool = False,
    ) -> StoredExecution:
        """Store ``record`` if the stored version is ``expected_version``; all or nothing.

        ``expected_version=0`` creates: it fails if the execution exists. On success the
        stored version is ``expected_version + 1`` and the stored envelope is returned.
        In the same atomic step: correlation ids newly listed are registered (a finished
        status registers none), ids no longer listed or of a finished execution are
        released, the status index and the deadline and lease schedules are updated, and a
        finished execution gets the ``retention`` expiry (a live one has none).

        The ``lease_expires`` of ``record`` is ignored: a running execution written with
        ``lease_seconds`` holds a lease until the store's clock reads its current time
        plus ``lease_seconds`` (``0`` or less: expired at once, for any worker to take
        over); without ``lease_seconds``, or not running, it holds none.

        A write whose stored version is already ``expected_version + 1`` with the same
        ``token`` was applied by an earlier send of this call: it succeeds again and
        returns the envelope as then stored, changing nothing.

        Args:
            record: The envelope to store (its ``version`` is ignored).
            expected_version: The version the writer last read (``0``: create).
            lease_seconds: Length of the lease, for a running execution.
            token: Names this write; by default a fresh one. Pass the token of an
                earlier call to send that same write again.
            takeover: Taking over a running execution whose owner went silent: refused
                while its lease has not run out by the store's clock (renewals keep the
                version, so the compare-and-set alone cannot tell a renewed lease).

        Raises:
            WriteConflict: the stored version differs, or a takeover found the lease
                still held; nothing was written.
            CorrelationTaken: a newly listed correlation id is held by another live
                execution of the same reactor; nothing was written.
            EarlyPayloadWaiting: an early payload is stored for a newly listed correlation
                id; nothing was written.
        """

    @abc.abstractmethod
    async def touch(self, execution_id: str, *, version: int, lease_seconds: float) -> bool:
        """Extend the lease to ``lease_seconds`` from now in the store's clock, keeping the
        version. Sending it again is harmless: it stamps the lease afresh.

        Returns:
            ``False`` if the stored version is no longer ``version`` (someone else wrote:
            the owner should reload), else ``True``.
        """

    @abc.abstractmethod
    async def reserve_idempotency_key(self, reactor: str, key: str, execution_id: str) -> str:
        """Bind ``key`` to ``execution_id`` unless it is bound already (for ``retention``).

        A resend after a lost reply finds the key bound to ``execution_id`` and so
        reports it bound by this call.

        Returns:
            The execution id the key is bound to: ``execution_id`` if this call bound it.
        """

    @abc.abstractmethod
    async def put_early(
        self,
        reactor: str,
        correlation_id: str,
        payload: str,
        *,
        ttl: float,
        token: str | None = None,
    ) -> str | None:
        """Store a payload that arrived before any execution waits on ``correlation_id``.

        Args:
            reactor: Registry name of the reactor.
            correlation_id: The correlation id the payload is for.
            payload: The payload's JSON text.
            ttl: Seconds the payload waits before it expires.
            token: Names this call; by default a fresh one. A call with the token of the
                payload stored reports it stored again instead of a conflict.

        Returns:
            ``None`` if stored; the id of the live execution holding ``correlation_id`` if
            one does (nothing is stored then: resume it instead).

        Raises:
            WriteConflict: another call's early payload is already stored for this
                correlation id.
        """

    @abc.abstractmethod
    async def take_early(
        self, reactor: str, correlation_id: str, *, token: str | None = None
    ) -> str | None:
        """Remove and return the early payload stored for ``correlation_id``, if any.

        Args:
            reactor: Registry name of the reactor.
            correlation_id: The correlation id the payload is for.
            token: Names this call; by default a fresh one. The store remembers what a
                token took for :data:`TAKEN_TTL` seconds: a call with that token again
                returns the same payload, so a resend after a lost reply loses nothing.
        """

    @abc.abstractmethod
    async def due(self, now: float, *, limit: int = 100) -> list[str]:
        """Ids of live executions whose ``deadline`` is at or before ``now``, soonest first."""

    @abc.abstractmethod
    async def expired_leases(self, *, limit: int = 100) -> list[str]:
        """Ids of running executions whose lease ran out by the store's clock, soonest first."""

    @abc.abstractmethod
    async def list_page(
        self,
        *,
        status: Status | None = None,
        reactor: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[StoredExecution], str | None]:
        """One page of executions, newest first, filtered by status and reactor name.

        Must not scan the whole keyspace: implementations keep an index per status, and
        the cost of a page depends on ``limit``, not on how many executions there are.

        Args:
            status: Only executions with this status.
            reactor: Only executions of this reactor.
            limit: Most executions on the page.
            cursor: Where the page starts: the cursor the previous page returned (with
                the same filters), or ``None`` for the first page.

        Returns:
            The page, and the cursor of the next one, or ``None`` if there is no more.
            A page holds ``limit`` executions unless it is the last one. Executions
            created or changing status while paging may be missed or listed twice.

        Raises:
            ValueError: ``cursor`` is not one this store returned.
        """

    async def list(
        self, *, status: Status | None = None, reactor: str | None = None, limit: int = 100
    ) -> list[StoredExecution]:
        """The first page of :meth:`list_page`: executions, newest first."""
        if limit < 1:
            return []
        page, _ = await self.list_page(status=status, reactor=reactor, limit=limit)
        return page

    async def aclose(self) -> None:  # noqa: B027 -- optional hook, nothing to close by default
        """Release connections held by the storage."""
