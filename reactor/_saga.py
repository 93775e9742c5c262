"""Rollback (the saga): which hooks run, in which order, and what went wrong.

A failed step's own ``compensate`` runs first, then the ``undo`` of every completed step
newest first; a failing hook is recorded and the rollback goes on. The caller hands in
how to call one hook and what to do once a step is undone (record it), so this module
knows nothing of runs or storage.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence

import attrs

from ._frame import Failed
from ._paths import map_group
from .errors import FailureInfo, ReactorError, RollbackFailure

__all__ = ["CallHook", "compensations", "failure", "outcome", "roll_back", "undo_order"]

CallHook = Callable[[str, str, BaseException | None], Awaitable[RollbackFailure | None]]
"""``call_hook(path, kind, error)`` runs the ``kind`` hook (``"undo"`` or ``"compensate"``)
of the step at ``path``; it returns what went wrong, if anything."""


def undo_order(paths: Sequence[str], start: int = 0) -> list[str]:
    """Newest first, except that the steps of a map are undone element by element,
    highest index first (newest first within an element), where the map's newest
    step stands."""
    ordered: list[str] = []
    seen: set[str] = set()
    for path in reversed(paths):
        group = map_group(path, start)
        if group is None:
            ordered.append(path)
            continue
        map_path = group[0]
        if map_path in seen:
            continue
        seen.add(map_path)
        by_index: dict[int, list[str]] = {}
        for p in paths:
            g = map_group(p, start)
            if g is not None and g[0] == map_path:
                by_index.setdefault(g[1], []).append(p)
        for index in sorted(by_index, reverse=True):
            inner_start = len(f"{map_path}[{index}].")
            ordered.extend(undo_order(by_index[index], inner_start))
    return ordered


async def roll_back(
    compensate: Sequence[tuple[str, BaseException]],
    undo_stack: Sequence[str],
    call_hook: CallHook,
    *,
    compensated: Callable[[list[RollbackFailure]], Awaitable[None]],
    undone: Callable[[str, RollbackFailure | None], Awaitable[None]],
) -> list[RollbackFailure]:
    """Run the ``compensate`` hooks of the failed steps, then undo the steps of
    ``undo_stack`` (oldest first as completed) newest first.

    Args:
        compensate: ``(path, error)`` of each failed step whose compensate hook runs.
        undo_stack: Paths of the completed steps with an undo hook, oldest first.
        call_hook: Runs one hook.
        compensated: Told once every compensate hook returned, with what failed (the
            caller records it before the first undo).
        undone: Told after each undo hook returned, with what failed if it did (the
            caller records the step as undone before the next).

    Returns:
        The hooks that failed.
    """
    problems: list[RollbackFailure] = []
    for path, error in compensate:
        problem = await call_hook(path, "compensate", error)
        if problem:
            problems.append(problem)
    await compensated(problems)
    for path in undo_order(undo_stack):
        problem = await call_hook(path, "undo", None)
        if problem:
            problems.append(problem)
        await undone(path, problem)
    return problems


def compensations(failed: Iterable[Failed]) -> list[tuple[str, BaseException]]:
    """``(path, error)`` of the failed steps that ask for their compensate hook."""
    return [(f.path, f.error) for f in failed if f.compensate and f.node.compensate is not None]


def failure(step: str | None, exc: BaseException) -> FailureInfo:
    """What an exception that failed ``step`` says, for :attr:`Execution.error`."""
    detail = exc.detail if isinstance(exc, ReactorError) else str(exc)
    return FailureInfo(
        step=step,
        message=detail,
        type=type(exc).__name__,
        traceback="".join(traceback.format_exception(exc)) if exc.__traceback__ else None,
    )


def outcome(
    cause: tuple[str, BaseException] | None, problems: list[RollbackFailure]
) -> FailureInfo | None:
    """The failure a rollback leaves: its cause with the failed hooks, or -- for a rollback
    no step caused (undo, cancel) -- only the failed hooks, if any."""
    if cause is None:
        if not problems:
            return None
        return FailureInfo(
            step=None,
            message="some undo hooks failed",
            type="RollbackFailed",
            rollback_failures=problems,
        )
    path, exc = cause
    return attrs.evolve(failure(path, exc), rollback_failures=problems)
