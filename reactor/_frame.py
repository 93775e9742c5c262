"""Frames: one reactor being run inside an execution (the root, or a compose/map child),
and the scope a failure stops."""

from __future__ import annotations

from typing import Any

import attrs

from ._plan import Node, Plan

__all__ = ["Failed", "Frame", "Scope"]


@attrs.frozen
class Failed:
    """A node that failed in a scope: what rollback needs to compensate it."""

    node: Node
    path: str
    error: BaseException
    compensate: bool


@attrs.define(eq=False)
class Scope:
    """Where a failure stops work: the whole run, or one element of a
    ``map_(fail_fast=False)``."""

    parent: Scope | None = None
    failure: tuple[str, BaseException] | None = None
    failed: list[Failed] = attrs.Factory(list)

    def stopped(self) -> bool:
        """Whether this scope or one around it has failed."""
        scope: Scope | None = self
        while scope is not None:
            if scope.failure is not None:
                return True
            scope = scope.parent
        return False


@attrs.define(eq=False)
class Frame:
    """One reactor being run inside an execution.

    Attributes:
        plan: The reactor's plan.
        prefix: Path prefix of its steps (``""`` for the root, ``"payment."``...).
        inputs: Its validated inputs.
        instance: The ``self`` its step bodies receive.
        scope: Where its failures stop work.
        max_concurrency: How many of its steps may run at once, if bounded.
    """

    plan: Plan
    prefix: str
    inputs: dict[str, Any]
    instance: Any
    scope: Scope
    max_concurrency: int | None
