"""Names of the Redis keys :class:`~reactor.storage.RedisStorage` uses.

Every key starts with the storage's prefix (``reactor`` by default), so several
applications can share one Redis database. The templates below are the only place
key names are spelled out; the Lua scripts build the keys they discover at run
time (an execution found in an index, an old status) from the affixes
:class:`Keys` derives from these same templates.

In the templates, ``{reactor}`` is the reactor's registry name percent-encoded
(:func:`urllib.parse.quote`: only ``A-Za-z0-9_.-~`` kept as they are), so that a ``:``
inside a name cannot let two different (reactor, id) pairs spell the same key.

Each execution is a single hash whose key is hash-tagged by the execution id
(``{exec:<id>}``). The other keys are shared indexes that a write updates in the same
script as the execution, so they cannot live in the execution's Cluster slot: the
storage needs a standalone Redis, not Redis Cluster.
"""

from __future__ import annotations

import functools
import urllib.parse

import attrs

__all__ = [
    "CORRELATIONS",
    "DEADLINES",
    "EARLY",
    "EXECUTION",
    "IDEMPOTENCY",
    "LEASES",
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

# Stands for the variable part of a template when it is split into a head and a tail
# for the Lua scripts; it cannot occur in a template or a prefix meant for Redis keys.
_HOLE = "\0"


@functools.lru_cache(maxsize=1024)
def _segment(reactor: str) -> str:
    return urllib.parse.quote(reactor, safe="")


@attrs.frozen
class Keys:
    """The key names of one storage prefix.

    Attributes:
        prefix: First segment of every key.
    """

    prefix: str = "reactor"

    def execution(self, execution_id: str) -> str:
        """Key of the hash holding execution ``execution_id``."""
        head, tail = self.execution_affixes()
        return head + execution_id + tail

    @functools.cache  # noqa: B019 -- Keys is a small frozen value; a few live instances
    def execution_affixes(self) -> tuple[str, str]:
        """``(head, tail)`` such that ``head + execution_id + tail`` is the execution key."""
        head, _, tail = EXECUTION.format(prefix=self.prefix, execution_id=_HOLE).partition(_HOLE)
        return head, tail

    def correlations(self, reactor: str) -> str:
        """Key of the correlation index of ``reactor``."""
        return CORRELATIONS.format(prefix=self.prefix, reactor=_segment(reactor))

    def status(self, status: str, reactor: str | None = None) -> str:
        """Key of the index of executions with ``status``, of ``reactor`` if given."""
        if reactor is None:
            return STATUS.format(prefix=self.prefix, status=status)
        return REACTOR_STATUS.format(prefix=self.prefix, status=status, reactor=_segment(reactor))

    @functools.lru_cache(maxsize=1024)  # noqa: B019 -- see execution_affixes
    def status_affixes(self, reactor: str | None = None) -> tuple[str, str]:
        """``(head, tail)`` such that ``head + status + tail`` is :meth:`status` of ``reactor``."""
        head, _, tail = self.status(_HOLE, reactor).partition(_HOLE)
        return head, tail

    @property
    def deadlines(self) -> str:
        """Key of the deadline schedule."""
        return DEADLINES.format(prefix=self.prefix)

    @property
    def leases(self) -> str:
        """Key of the lease schedule."""
        return LEASES.format(prefix=self.prefix)

    def idempotency(self, reactor: str, key: str) -> str:
        """Key binding idempotency ``key`` of ``reactor`` to an execution id."""
        return IDEMPOTENCY.format(prefix=self.prefix, reactor=_segment(reactor), key=key)

    def taken(self, reactor: str, correlation_id: str, token: str) -> str:
        """Key of what the ``take_early`` call named ``token`` took for ``correlation_id``."""
        return TAKEN.format(
            prefix=self.prefix,
            reactor=_segment(reactor),
            token=urllib.parse.quote(token, safe=""),
            correlation_id=correlation_id,
        )

    def early(self, reactor: str, correlation_id: str) -> str:
        """Key of the early payload waiting for ``correlation_id`` of ``reactor``."""
        return EARLY.format(
            prefix=self.prefix, reactor=_segment(reactor), correlation_id=correlation_id
        )
