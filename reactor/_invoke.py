"""Calling user code: binding parameters by name, and calling sync or async bodies inline
or off the event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import operator
import threading
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from . import _codec
from ._config import get_config
from ._frame import Frame
from ._plan import Binding, Call
from ._records import Context
from .errors import ArgumentInvalid, ReactorError

__all__ = [
    "INLINE_ALLOWED",
    "Binder",
    "call_now",
    "call_off_loop",
    "in_task",
    "step_threads",
]

INLINE_ALLOWED: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "reactor_inline_allowed", default=False
)
"""Set by the sync facade while it drives a run on its private loop: sync steps may then be
called inline (on a user's loop they would block everything else)."""


async def in_task() -> None:
    """Make sure what follows runs inside an asyncio task.

    The sync facade may start a run eagerly, outside any task (:mod:`reactor._sync`); user
    coroutines may need one (``asyncio.timeout()`` does). Yielding once hands the rest of
    the run to a task.
    """
    if asyncio.current_task() is None:
        await asyncio.sleep(0)


# Sync steps leave the event loop on their own pool so a map of blocking elements is not
# throttled by the loop's small default executor. Sized by configure(step_threads=...):
# made on first use, and made again when that size changes.
_step_threads: concurrent.futures.ThreadPoolExecutor | None = None
_step_threads_size = 0
_step_threads_lock = threading.Lock()


def step_threads() -> concurrent.futures.ThreadPoolExecutor:
    """The pool ``def`` steps run on off the loop, of the configured size."""
    global _step_threads, _step_threads_size
    size = get_config().step_threads
    pool = _step_threads
    if pool is not None and _step_threads_size == size:
        return pool
    with _step_threads_lock:
        if _step_threads is None or _step_threads_size != size:
            old = _step_threads
            _step_threads = concurrent.futures.ThreadPoolExecutor(
                size, thread_name_prefix="reactor-step"
            )
            _step_threads_size = size
            if old is not None:
                # Steps already on it finish there; new ones go to the new pool.
                old.shutdown(wait=False)
        return _step_threads


class _Undiggable(Exception):
    """A path segment is missing; :meth:`Binder.argument` says which argument and where."""


def _dig(value: Any, path: Sequence[str | int]) -> Any:
    for key in path:
        try:
            if isinstance(value, Mapping):
                value = value[key]
            elif isinstance(key, int) and isinstance(value, Sequence):
                value = operator.getitem(value, key)
            else:
                value = getattr(value, str(key))
        except (KeyError, IndexError, AttributeError, TypeError) as exc:
            raise _Undiggable(f"cannot follow {key!r} in {type(value).__name__}") from exc
    return value


class Binder:
    """Gives the parameters of user callables their values within one execution."""

    __slots__ = ("execution_id", "fence", "reactor", "results")

    def __init__(self, execution_id: str, reactor: str, results: dict[str, Any]) -> None:
        self.execution_id = execution_id
        self.reactor = reactor
        self.results = results
        #: The owner's fence (see :attr:`reactor.Context.fence`).
        self.fence = 1

    def bind(
        self,
        frame: Frame,
        call: Call,
        path: str,
        *,
        attempt: int = 1,
        own: Any = None,
        error: BaseException | None = None,
    ) -> dict[str, Any]:
        """Keyword arguments for ``call`` run as the node at ``path``.

        Raises:
            ArgumentInvalid: a value cannot be dug out or converted.
        """
        kwargs: dict[str, Any] = {}
        for b in call.bindings:
            if b.direct:
                kwargs[b.param] = self.results[frame.prefix + b.name]
            else:
                kwargs[b.param] = self.argument(
                    frame, b, path, attempt=attempt, own=own, error=error
                )
        return kwargs

    def argument(
        self,
        frame: Frame,
        b: Binding,
        path: str,
        *,
        attempt: int = 1,
        own: Any = None,
        error: BaseException | None = None,
    ) -> Any:
        """The value of one binding (see :meth:`bind`)."""
        kind = b.kind
        if kind == "result":
            v = self.results[frame.prefix + b.name]
        elif kind == "input":
            v = frame.inputs[b.name]
        elif kind == "value":
            v = b.constant
        elif kind == "context":
            v = Context(self.execution_id, path, attempt, self.reactor, self.fence)
        elif kind == "own_result":
            v = own
        else:
            v = error
        if b.path:
            try:
                v = _dig(v, b.path)
            except _Undiggable as exc:
                raise ArgumentInvalid(
                    f"argument {b.param!r}: {exc} (from {b.name!r}, path {b.path})",
                    reactor=self.reactor,
                    execution_id=self.execution_id,
                    step=path,
                ) from exc
        if b.hint is not None:
            try:
                v = _codec.structure(v, b.hint)
            except Exception as exc:
                # A SerializationError's own message would repeat the context suffix.
                why = exc.detail if isinstance(exc, ReactorError) else str(exc)
                raise ArgumentInvalid(
                    f"argument {b.param!r} cannot be converted to {b.hint!r}: {why}",
                    reactor=self.reactor,
                    execution_id=self.execution_id,
                    step=path,
                ) from exc
        return v


def call_now(call: Call, instance: Any, kwargs: dict[str, Any]) -> Any:
    """Call a sync ``call`` on the current thread."""
    return call.fn(instance, **kwargs) if call.method else call.fn(**kwargs)


async def call_off_loop(
    call: Call, instance: Any, kwargs: dict[str, Any], timeout: float | None
) -> Any:
    """Await an async ``call``, or run a sync one on a step thread; bounded by ``timeout``."""
    fn = partial(call.fn, instance) if call.method else call.fn
    if call.is_async:
        await in_task()
        if timeout is None:
            return await fn(**kwargs)
        return await asyncio.wait_for(fn(**kwargs), timeout)
    future = asyncio.get_running_loop().run_in_executor(step_threads(), partial(fn, **kwargs))
    if timeout is None:
        return await future
    return await asyncio.wait_for(future, timeout)
