"""Names of the Redis keys :class:`~reactor.storage.RedisStorage` uses.

Every key starts with the storage's prefix (``reactor`` by default), so several
applications can share one Redis database. The templates below are the only place
key names are spelled out: the Lua scripts never build a key name, every key a script
touches is passed to it in ``KEYS`` (see :mod:`reactor.storage._lua`).

In the templates, ``{reactor}`` is the reactor's registry name percent-encoded
(:func:`urllib.parse.quote`: only ``A-Za-z0-9_.-~`` kept as they are), so that a ``:``
inside a name cannot let two different (reactor, id) pairs spell the same key.

Standalone layout: each execution is a single hash whose key is hash-tagged by the
execution id (``{exec:<id>}``); the other keys are shared indexes that a write updates in
the same script as the execution.

Cluster layout (``Keys(prefix, cluster=True)``, for Redis Cluster): every key of one
reactor carries the hash tag ``{<prefix>:<reactor>}``, so all of them -- executions,
indexes, schedules, idempotency keys, early payloads -- live in one slot and each script
runs on one node. There is no index across reactors: listings, schedules and lookups by
id alone walk the reactors named in :data:`REACTORS`, the one key outside any reactor's
slot.
"""

from __future__ import annotations

import functools
import urllib.parse

import attrs

__all__ = [
    "CLUSTER_CORRELATIONS",
    "CLUSTER_DEADLINES",
    "CLUSTER_EARLY",
    "CLUSTER_EXECUTION",
    "CLUSTER_EXPIRY",
    "CLUSTER_IDEMPOTENCY",
    "CLUSTER_LEASES",
    "CLUSTER_REACTOR_STATUS",
    "CLUSTER_TAKEN",
    "CORRELATIONS",
    "DEADLINES",
    "EARLY",
    "EXECUTION",
    "EXPIRY",
    "IDEMPOTENCY",
    "LEASES",
    "REACTORS",
    "REACTOR_EXPIRY",
    "REACTOR_STATUS",
    "STATUS",
    "TAKEN",
    "Keys",
]

EXECUTION = "{prefix}:{{exec:{execution_id}}}"
"""Hash: one execution's envelope. No TTL while live; ``retention`` once finished."""

CORRELATIONS = "{prefix}:corr:{reactor}"
"""Hash: correlation id -> id of the live execution of the reactor holding it."""

STATUS = "{prefix}:status:{status}"
"""Sorted set: ids of executions with this status, scored by ``created_at``."""

REACTOR_STATUS = "{prefix}:status:{status}:{reactor}"
"""Sorted set: like :data:`STATUS`, restricted to one reactor."""

EXPIRY = "{prefix}:expiry:{status}"
"""Sorted set (finished statuses): the ids of :data:`STATUS` of the same status, scored by
when the execution expires, so that a finished write can drop expired entries of the
index without reading (or naming) the executions behind them."""

REACTOR_EXPIRY = "{prefix}:expiry:{status}:{reactor}"
"""Sorted set: like :data:`EXPIRY`, for :data:`REACTOR_STATUS`."""

DEADLINES = "{prefix}:deadlines"
"""Sorted set: ids of live executions with a deadline, scored by the deadline."""

LEASES = "{prefix}:leases"
"""Sorted set: ids of running executions with a lease, scored by ``lease_expires``."""

IDEMPOTENCY = "{prefix}:idem:{reactor}:{key}"
"""String: id of the execution an idempotency key is bound to; expires after ``retention``."""

EARLY = "{prefix}:early:{reactor}:{correlation_id}"
"""Hash (``payload``, ``token``): a payload that arrived before any execution waited on it,
and the token of the call that stored it; expires after its ttl."""

TAKEN = "{prefix}:taken:{reactor}:{token}:{correlation_id}"
"""String: the early payload the ``take_early`` call named ``token`` took, so the same call
sent again gets it too; expires after :data:`~reactor.storage._base.TAKEN_TTL`."""

# The cluster layout: the templates above, each under its reactor's hash tag.
_TAG = "{{{prefix}:{reactor}}}"
CLUSTER_EXECUTION = _TAG + ":exec:{execution_id}"
CLUSTER_CORRELATIONS = _TAG + ":corr"
CLUSTER_REACTOR_STATUS = _TAG + ":status:{status}"
CLUSTER_EXPIRY = _TAG + ":expiry:{status}"
CLUSTER_DEADLINES = _TAG + ":deadlines"
CLUSTER_LEASES = _TAG + ":leases"
CLUSTER_IDEMPOTENCY = _TAG + ":idem:{key}"
CLUSTER_EARLY = _TAG + ":early:{correlation_id}"
CLUSTER_TAKEN = _TAG + ":taken:{token}:{correlation_id}"

REACTORS = "{prefix}:reactors"
"""Set (cluster layout): the names of the reactors that have stored executions, which
listings and schedules walk."""


@functools.lru_cache(maxsize=1024)
def _segment(reactor: str) -> str:
    return urllib.parse.quote(reactor, safe="")


@attrs.frozen
class Keys:
    """The key names of one storage prefix.

    In the cluster layout, every method naming a key of one reactor needs that
    reactor (``ValueError`` without it).

    Attributes:
        prefix: First segment of every key.
        cluster: Use the cluster layout (one hash tag per reactor).
    """

    prefix: str = "reactor"
    cluster: bool = False

    def _tagged(self, reactor: str | None) -> str:
        if reactor is None:
            raise ValueError("the cluster layout keeps every key under its reactor's tag")
        return _segment(reactor)

    def execution(self, execution_id: str, reactor: str | None = None) -> str:
        """Key of the hash holding execution ``execution_id`` (of ``reactor``)."""
        if self.cluster:
            return CLUSTER_EXECUTION.format(
                prefix=self.prefix, reactor=self._tagged(reactor), execution_id=execution_id
            )
        return EXECUTION.format(prefix=self.prefix, execution_id=execution_id)

    def correlations(self, reactor: str) -> str:
        """Key of the correlation index of ``reactor``."""
        template = CLUSTER_CORRELATIONS if self.cluster else CORRELATIONS
        return template.format(prefix=self.prefix, reactor=_segment(reactor))

    def status(self, status: str, reactor: str | None = None) -> str:
        """Key of the index of executions with ``status``, of ``reactor`` if given."""
        return self._per_status((CLUSTER_REACTOR_STATUS, STATUS, REACTOR_STATUS), status, reactor)

    def expiry(self, status: str, reactor: str | None = None) -> str:
        """Key of the expiry schedule of :meth:`status` ``(status, reactor)``."""
        return self._per_status((CLUSTER_EXPIRY, EXPIRY, REACTOR_EXPIRY), status, reactor)

    def _per_status(self, templates: tuple[str, str, str], status: str, reactor: str | None) -> str:
        """A key per status: ``templates`` are the cluster one, the one across reactors
        and the one of a reactor (standalone)."""
        cluster, every, one = templates
        if self.cluster:
            return cluster.format(prefix=self.prefix, status=status, reactor=self._tagged(reactor))
        if reactor is None:
            return every.format(prefix=self.prefix, status=status)
        return one.format(prefix=self.prefix, status=status, reactor=_segment(reactor))

    @property
    def deadlines(self) -> str:
        """Key of the deadline schedule (standalone layout)."""
        return DEADLINES.format(prefix=self.prefix)

    @property
    def leases(self) -> str:
        """Key of the lease schedule (standalone layout)."""
        return LEASES.format(prefix=self.prefix)

    def deadlines_of(self, reactor: str) -> str:
        """Key of the deadline schedule holding ``reactor``'s executions."""
        if self.cluster:
            return CLUSTER_DEADLINES.format(prefix=self.prefix, reactor=_segment(reactor))
        return self.deadlines

    def leases_of(self, reactor: str) -> str:
        """Key of the lease schedule holding ``reactor``'s executions."""
        if self.cluster:
            return CLUSTER_LEASES.format(prefix=self.prefix, reactor=_segment(reactor))
        return self.leases

    @property
    def reactors(self) -> str:
        """Key of the set of reactor names (cluster layout)."""
        return REACTORS.format(prefix=self.prefix)

    def idempotency(self, reactor: str, key: str) -> str:
        """Key binding idempotency ``key`` of ``reactor`` to an execution id."""
        template = CLUSTER_IDEMPOTENCY if self.cluster else IDEMPOTENCY
        return template.format(prefix=self.prefix, reactor=_segment(reactor), key=key)

    def taken(self, reactor: str, correlation_id: str, token: str) -> str:
        """Key of what the ``take_early`` call named ``token`` took for ``correlation_id``."""
        return (CLUSTER_TAKEN if self.cluster else TAKEN).format(
            prefix=self.prefix,
            reactor=_segment(reactor),
            token=urllib.parse.quote(token, safe=""),
            correlation_id=correlation_id,
        )

    def early(self, reactor: str, correlation_id: str) -> str:
        """Key of the early payload waiting for ``correlation_id`` of ``reactor``."""
        return (CLUSTER_EARLY if self.cluster else EARLY).format(
            prefix=self.prefix, reactor=_segment(reactor), correlation_id=correlation_id
        )
