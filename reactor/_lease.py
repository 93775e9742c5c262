"""Leases: who runs an execution, and keeping that claim alive while steps run.

A durable run checkpoints and renews its lease from a heartbeat task once a pass over the
graph has lasted ``checkpoint_after``; while the loop's thread is blocked inside a sync
step called inline, the :class:`Watchdog` thread beats instead.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ._config import get_config

__all__ = ["Beating", "Heartbeat", "Watchdog", "new_token", "watchdog"]

# Owner tokens come from a private generator: one seeded by the application
# (random.seed) could repeat tokens across processes. Reseeded in a forked child, which
# would otherwise repeat its parent's tokens.
_token_source = random.Random()
os.register_at_fork(after_in_child=_token_source.seed)


def new_token() -> str:
    """A random 128-bit owner token (without a system call each, unlike a uuid4)."""
    return f"{_token_source.getrandbits(128):032x}"


class Beating(Protocol):
    """A run as the watchdog sees it."""

    state_lock: threading.Lock
    next_beat: float

    def beat(self, *, locked: bool = True) -> Coroutine[Any, Any, None]: ...

    def beat_failed(self, exc: Exception) -> None: ...


class Watchdog:
    """Keeps checkpoints and leases of durable runs while their loop's thread is blocked
    in a sync step called inline.

    Inline calls save a thread hop (~50-150 µs) per step, but a blocked loop cannot run
    the heartbeat task; this one daemon thread does it instead, on an event loop of its
    own. The run's state does not change while its thread is inside the step, and the
    run's ``state_lock`` makes the step's return wait for a beat in progress.
    """

    def __init__(self) -> None:
        self._armed: dict[Beating, float] = {}
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def arm(self, run: Beating) -> None:
        self._armed[run] = time.monotonic()
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._watch, name="reactor-watchdog", daemon=True
                    )
                    self._thread.start()

    def disarm(self, run: Beating) -> None:
        del self._armed[run]
        with run.state_lock:
            pass

    def _watch(self) -> None:
        loop = asyncio.new_event_loop()
        while True:
            config = get_config()
            time.sleep(min(config.checkpoint_after, 0.05) / 2)
            now = time.monotonic()
            for run, since in list(self._armed.items()):
                if now - since < config.checkpoint_after or now < run.next_beat:
                    continue
                with run.state_lock:
                    if run not in self._armed:
                        continue
                    try:
                        loop.run_until_complete(run.beat(locked=False))
                    except Exception as exc:  # a failed beat is retried next time
                        run.beat_failed(exc)
                run.next_beat = now + min(config.lease_seconds / 3, 1.0)


watchdog = Watchdog()


class Heartbeat:
    """Starts ``beats()`` once a pass over the graph has lasted ``checkpoint_after``;
    most passes end sooner and cost only a timer handle."""

    def __init__(self, beats: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._beats = beats
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(
            get_config().checkpoint_after, self._start
        )

    def _start(self) -> None:
        self._task = asyncio.ensure_future(self._beats())

    def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
