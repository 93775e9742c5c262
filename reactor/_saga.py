"""Rollback (the saga): which hooks run, in which order, what went wrong, and the
rollback's own records (DESIGN §9).

A failed step's own ``compensate`` runs first, then the ``undo`` of every completed step
newest first; a failing hook is recorded and the rollback goes on. The caller hands in
how to call one hook and how to record progress, so this module knows nothing of runs or
storage.
"""

from __future__ import annotations

import traceback
from collections.abc import Awaitable, Callable, Iterable, Sequence

import attrs

from ._body import RollbackState
from ._frame import Failed
from ._paths import map_group
from .errors import FailureInfo, ReactorError, RollbackFailure

__all__ = ["CallHook", "Recorded", "Rollback", "compensations", "failure", "outcome", "undo_order"]

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


class Rollback:
    """One rollback under way: runs the hooks and keeps its record current.

    ``record()`` is awaited once the compensate hooks returned and after each undo hook
    (on durable storage it writes the execution, so a process taking over after a crash
    continues from there and only the hook in flight may run again).

    Args:
        state: The stored record of a whole-execution rollback, kept up to date here
            (``None`` for the rollback of one map element, which has none).
        undo_stack: Paths of the completed steps to undo, oldest first.
        call_hook: Runs one hook.
        record: Records progress.
    """

    def __init__(
        self,
        state: RollbackState | None,
        undo_stack: Sequence[str],
        call_hook: CallHook,
        record: Callable[[], Awaitable[None]],
    ) -> None:
        self.state = state
        self.undo_stack = undo_stack
        self._call_hook = call_hook
        self._record = record
        self.undone: set[str] = set()
        self.problems: list[RollbackFailure] = list(state.problems) if state else []

    def left(self, stack: list[str]) -> list[str]:
        """``stack`` without the steps undone so far."""
        return [p for p in stack if p not in self.undone] if self.undone else stack

    async def run(self, compensate: Sequence[tuple[str, BaseException]]) -> list[RollbackFailure]:
        """Run the ``compensate`` hooks of the failed steps (``(path, error)`` each), then
        undo :attr:`undo_stack` newest first; return the hooks that failed."""
        for path, error in compensate:
            await self._hook(path, "compensate", error)
        if self.state is not None:
            self.state.compensate.clear()
        await self._record()
        for path in undo_order(self.undo_stack):
            await self._hook(path, "undo", None)
            self.undone.add(path)
            await self._record()
        return self.problems

    async def _hook(self, path: str, kind: str, error: BaseException | None) -> None:
        problem = await self._call_hook(path, kind, error)
        if problem is not None:
            self.problems.append(problem)
            if self.state is not None:
                self.state.problems.append(problem)


def compensations(failed: Iterable[Failed]) -> list[tuple[str, BaseException]]:
    """``(path, error)`` of the failed steps that ask for their compensate hook."""
    return [(f.path, f.error) for f in failed if f.compensate and f.node.compensate is not None]


class Recorded(Exception):
    """Stands in for an exception that died with another process, as its failure record
    tells it: a failed step's, for the compensate hook a takeover runs, or the failed step
    of a fanned-out map's element. It fails a step as the original did."""

    def __init__(self, info: FailureInfo) -> None:
        super().__init__(f"{info.type}: {info.message}")
        self.info = info


def failure(step: str | None, exc: BaseException) -> FailureInfo:
    """What an exception that failed ``step`` says, for :attr:`Execution.error`."""
    if isinstance(exc, Recorded):
        return attrs.evolve(exc.info, step=step, rollback_failures=[])
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
