"""The sync facade: drive the async core on one reused event loop per thread.

A new loop per call (``asyncio.run``) costs ~190 µs here, against ~8-14 µs for
``run_until_complete`` on a loop kept alive, so each thread keeps its own loop.

On a store whose methods need no task (the memory store), a call starts *eagerly*: the
coroutine is stepped by hand, with the facade's loop set as the running one, and a run
that never suspends -- sync steps, inline -- completes without an event loop iteration
(~1 µs instead of ~8). At its first suspension (a future to wait on, an async step: see
:func:`reactor._invoke.in_task`) the rest continues as a task on the loop, in the same
context.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

from ._invoke import INLINE_ALLOWED
from .storage._base import register_loop_owner

__all__ = ["close_with_loop", "owns_running_loop", "run_sync"]

T = TypeVar("T")


class _Holder:
    """A thread's facade loop, closed when the thread ends rather than leaked."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.finalizers: list[Callable[[], Awaitable[object]]] = []

    def __del__(self) -> None:
        if self.loop.is_running() or self.loop.is_closed():
            return
        for finalize in self.finalizers:
            with contextlib.suppress(Exception):
                self.loop.run_until_complete(finalize())
        self.loop.close()


def close_with_loop(finalize: Callable[[], Awaitable[object]]) -> None:
    """Have ``finalize()`` run on the running loop before the facade closes it.

    For resources bound to one event loop (a Redis client's connections, say). Does
    nothing on a loop the facade does not own: its owner closes it.
    """
    holder: _Holder | None = getattr(_local, "holder", None)
    if holder is not None and owns_running_loop():
        holder.finalizers.append(finalize)


# Storage binds clients to event loops without knowing this layer: it tells us.
register_loop_owner(close_with_loop)


_local = threading.local()


def _loop() -> asyncio.AbstractEventLoop:
    holder: _Holder | None = getattr(_local, "holder", None)
    if holder is None or holder.loop.is_closed():
        holder = _Holder()
        _local.holder = holder
    return holder.loop


def owns_running_loop() -> bool:
    """Whether the running event loop is this thread's facade loop (not the user's)."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        return False
    holder: _Holder | None = getattr(_local, "holder", None)
    return holder is not None and running is holder.loop


class _Rest:
    """The rest of a coroutine that suspended while stepped by hand, to await in a task:
    passes what it yields to the task and what the task sends or throws back to it."""

    def __init__(self, coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
        self._coro = coro
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded = self._coro, self._yielded
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # thrown in by the task (cancellation)
                try:
                    yielded = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as done:
                    return done.value


async def _finish(rest: _Rest) -> Any:
    return await rest


def _run_on_facade_loop(coro: Coroutine[Any, Any, T], eager: bool) -> T:
    # The facade owns this loop: nothing else can run on it, so sync steps may be called
    # inline. Reset afterwards, so a user's own loop in this thread never inherits it.
    token = INLINE_ALLOWED.set(True)
    try:
        loop = _loop()
        if not eager:
            return loop.run_until_complete(coro)
        context = contextvars.copy_context()  # what a task would run it in
        asyncio.events._set_running_loop(loop)
        try:
            yielded = context.run(coro.send, None)
        except StopIteration as done:
            result: T = done.value
            return result
        finally:
            asyncio.events._set_running_loop(None)
        rest = loop.create_task(_finish(_Rest(coro, yielded)), context=context)
        return loop.run_until_complete(rest)  # type: ignore[no-any-return]
    finally:
        INLINE_ALLOWED.reset(token)


def run_sync(coro: Coroutine[Any, Any, T], *, eager: bool = False) -> T:
    """Run ``coro`` to completion from synchronous code.

    ``eager``: start it without an event loop iteration (see the module's docstring):
    only for coroutines whose awaits outside user code need no task (the memory store).

    Called from a sync step that the facade runs inline on its own loop (a step calling
    ``cancel`` on its own execution, say), the loop is busy, so ``coro`` runs on a
    short-lived thread instead.

    Raises:
        RuntimeError: when called from inside a user's running event loop (use the
            ``a``-prefixed twin, e.g. ``await Reactor.arun(...)``).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_loop = False
    else:
        in_loop = True
    if not in_loop:
        return _run_on_facade_loop(coro, eager)
    if owns_running_loop():
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(_run_on_facade_loop, coro, eager).result()
    coro.close()
    raise RuntimeError(
        "reactor's sync API was called inside a running event loop; "
        "await the async twin instead (arun, aresume, afind, acancel, aundo)"
    )
