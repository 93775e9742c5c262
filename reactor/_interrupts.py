"""Pending interrupts: what an execution waits on, how a payload is checked against an
interrupt's schema, and which deadlines have passed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from . import _codec
from ._body import StoredPending, Tree
from ._plan import Node
from ._records import PendingInterrupt

__all__ = ["Pending", "overdue", "schema_errors"]


@attrs.define
class Pending:
    """An interrupt the execution waits on.

    Attributes:
        path: The interrupt's step path.
        correlation_id: The business key it registered, if any.
        request: What its body returned (decoded).
        request_tree: The same, encoded for storage.
        deadline: Unix time it times out at, if any.
        strategy: ``"lazy"`` or ``"active"``.
        attempts_left: Invalid strict resumes still allowed (``None``: unlimited).
        kind: ``"interrupt"``; ``"breakpoint"`` or ``"suspended"`` for a hold, which no
            node backs and whose payload is ignored.
        since: Unix time the execution reached it.
    """

    path: str
    correlation_id: str | None
    request: Any
    request_tree: Tree
    deadline: float | None
    strategy: str
    attempts_left: int | None
    kind: str = "interrupt"
    since: float | None = None

    @classmethod
    def hold(cls, path: str, kind: str, request: dict[str, Any], since: float) -> Pending:
        """A breakpoint or operator pause: resumed like an interrupt, payload ignored."""
        return cls(path, None, request, Tree(request), None, "lazy", None, kind, since)

    @property
    def is_hold(self) -> bool:
        """Whether it is a breakpoint or an operator pause rather than an interrupt."""
        return self.kind != "interrupt"

    def stored(self) -> StoredPending:
        return StoredPending(
            self.correlation_id,
            self.request_tree,
            self.deadline,
            self.strategy,
            self.attempts_left,
            self.kind,
            self.since,
        )

    @classmethod
    def from_stored(cls, path: str, stored: StoredPending) -> Pending:
        return cls(
            path,
            stored.cid,
            _codec.decode(stored.request),
            stored.request,
            stored.deadline,
            stored.strategy,
            stored.attempts_left,
            stored.kind,
            stored.since,
        )

    def public(self, node: Node | None) -> PendingInterrupt:
        """The view callers get (:attr:`Execution.interrupts`); ``node`` is the
        interrupt's (``None`` for a hold)."""
        return PendingInterrupt(
            step=self.path,
            correlation_id=self.correlation_id,
            request=self.request,
            schema=node.decl.schema if node is not None else None,
            deadline=dt.datetime.fromtimestamp(self.deadline, dt.UTC)
            if self.deadline is not None
            else None,
            attempts_left=self.attempts_left,
            kind=self.kind,
        )


def schema_errors(node: Node, payload: Any) -> list[dict[str, str]]:
    """Every violation of the interrupt's schema by ``payload`` (``[]``: valid)."""
    if node.validator is None:
        return []
    try:
        found = sorted(
            node.validator.iter_errors(payload), key=lambda e: list(map(str, e.absolute_path))
        )
    except RecursionError:
        # A recursive schema ({"$ref": "#"}) follows the payload down as deep as it goes;
        # a payload it cannot check is not accepted.
        return [{"path": "/", "message": "nested too deeply to be checked against the schema"}]
    return [
        {"path": "/" + "/".join(str(p) for p in e.absolute_path), "message": e.message}
        for e in found
    ]


def overdue(
    pending: Mapping[str, Pending], now: float, *, strategies: Iterable[str] = ("lazy", "active")
) -> str | None:
    """The first pending interrupt whose deadline has passed, among ``strategies``."""
    for path, p in pending.items():
        if p.deadline is not None and p.deadline <= now and p.strategy in strategies:
            return path
    return None
