"""One ready-queue loop that runs the nodes of a frame and the elements of a map.

Work is launched from a ready queue up to a concurrency limit; each finished item is
handed to a ``settle`` callback that may make more items ready. An item that is alone
is awaited directly: a task costs ~10 µs, which the common chain of one step after
another would pay for nothing.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["TaskCounter", "Tasks", "schedule"]

K = TypeVar("K")
R = TypeVar("R")


class TaskCounter(Protocol):
    """Counts the tasks a run has in flight (a sync step runs inline only when none is)."""

    active_tasks: int


class Tasks(Generic[K]):
    """Tasks a scheduling loop started, handed back as they finish.

    Unlike ``asyncio.wait(FIRST_COMPLETED)``, which re-registers a callback on every
    pending task at each call (quadratic over a map of thousands of elements), each
    completion costs O(1).
    """

    def __init__(self, counter: TaskCounter) -> None:
        self._counter = counter
        #: The tasks running, with their keys (tested for emptiness on the hot path: a
        #: dict's truth costs no Python call, unlike ``__len__``).
        self.running: dict[asyncio.Future[Any], K] = {}
        self._finished: deque[asyncio.Future[Any]] = deque()
        self._wakeup: asyncio.Future[None] | None = None

    def start(self, coro: Coroutine[Any, Any, Any], key: K) -> None:
        task = asyncio.ensure_future(coro)
        self._counter.active_tasks += 1
        self.running[task] = key
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._counter.active_tasks -= 1
        self._finished.append(task)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def finished(self) -> list[tuple[K, Any]]:
        """Wait for at least one task to finish; return (key, result) of all finished."""
        while not self._finished:
            self._wakeup = asyncio.get_running_loop().create_future()
            await self._wakeup
        done = []
        while self._finished:
            task = self._finished.popleft()
            done.append((self.running.pop(task), task.result()))
        return done

    def cancel(self) -> None:
        for task in self.running:
            task.cancel()


async def schedule(
    ready: deque[K],
    launch: Callable[[K], Coroutine[Any, Any, R]],
    settle: Callable[[K, R], Awaitable[None] | None],
    *,
    limit: int | None,
    stopping: Callable[[], bool],
    counter: TaskCounter,
    checkpoint: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run items from ``ready`` until none is ready or running.

    Args:
        ready: Items ready to launch; ``settle`` may append more.
        launch: Starts one item's work.
        settle: Takes one item's outcome (may be a coroutine function).
        limit: How many items may run at once (``None``: unbounded).
        stopping: Checked before each launch: once true, nothing more starts.
        counter: Counts the tasks in flight.
        checkpoint: Awaited after each batch of settled items, before anything more is
            launched (a durable run records completions before dependents start).
    """
    tasks: Tasks[K] = Tasks(counter)
    try:
        while True:
            while ready and (limit is None or len(tasks.running) < limit) and not stopping():
                item = ready.popleft()
                if not tasks.running and not ready:
                    # Alone: awaited directly, no task.
                    settled = settle(item, await launch(item))
                    if settled is not None:
                        await settled
                    if checkpoint is not None and ready:
                        # Nothing ready: the loop ends and its caller stores the outcome.
                        await checkpoint()
                else:
                    tasks.start(launch(item), item)
            if not tasks.running:
                return
            for item, outcome in await tasks.finished():
                settled = settle(item, outcome)
                if settled is not None:
                    await settled
            if checkpoint is not None and (ready or tasks.running):
                await checkpoint()
    finally:
        tasks.cancel()
