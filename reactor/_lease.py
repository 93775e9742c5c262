"""Leases: who runs an execution, and keeping that claim alive while steps run.

A durable run checkpoints and renews its lease from a heartbeat task once a pass over the
graph has lasted ``checkpoint_after``; while the loop's thread is blocked inside a sync
step called inline, the :class:`Watchdog` thread beats instead.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Protocol

from ._config import get_config
from .errors import StorageError

__all__ = ["Beating", "Heartbeat", "Lease", "Watchdog", "watchdog"]


class Lease:
    """A run's hold on its execution: until when it surely holds, and keeping it.

    The store stamps a lease in its own clock when it applies a write or renewal; the
    process only knows when it *sent* that call. So the lease surely holds until the send
    time plus its length, on this process's monotonic clock -- no clock of another machine
    is ever compared with it.

    Attributes:
        deadline: ``time.monotonic()`` until which the lease surely holds (``None``: no
            lease held, e.g. on storage that keeps none).
        next_beat: When the next renewal is due (``time.monotonic()``).
    """

    __slots__ = ("deadline", "next_beat")

    def __init__(self) -> None:
        self.deadline: float | None = None
        self.next_beat = 0.0

    def granted(self, sent: float, seconds: float | None) -> None:
        """A write or renewal sent at ``sent`` was applied with a lease of ``seconds``."""
        self.deadline = sent + seconds if seconds else None

    def lapsed(self) -> bool:
        """Whether the lease may have run out (another process may own the execution)."""
        return self.deadline is not None and time.monotonic() > self.deadline

    async def keep(
        self,
        beat: Callable[[], Coroutine[Any, Any, None]],
        *,
        stopped: Callable[[], bool],
        failed: Callable[[Exception], None],
        lost: Callable[[], None],
    ) -> None:
        """Renew by calling ``beat`` every third of the lease (at most every second)
        until ``stopped()`` or cancelled.

        A renewal that fails (a dropped connection, a stalled link: ``StorageError``) is
        tried again until the lease would run out; then ``lost()`` is called and keeping
        ends, rather than the run going on beside a process that may have taken over.
        """
        interval = min(get_config().lease_seconds / 3, 1.0)
        while not stopped():
            if time.monotonic() >= self.next_beat:
                try:
                    await beat()
                except (StorageError, OSError) as exc:
                    failed(exc)
                    if self.lapsed():
                        lost()
                        return
                    await asyncio.sleep(min(interval, 0.05))
                    continue
                self.next_beat = time.monotonic() + interval
            await asyncio.sleep(interval)


class Beating(Protocol):
    """A run as the watchdog sees it."""

    state_lock: threading.Lock
    lease: Lease

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
                if now - since < config.checkpoint_after or now < run.lease.next_beat:
                    continue
                with run.state_lock:
                    if run not in self._armed:
                        continue
                    try:
                        loop.run_until_complete(run.beat(locked=False))
                    except Exception as exc:  # a failed beat is retried next time
                        run.beat_failed(exc)
                run.lease.next_beat = now + min(config.lease_seconds / 3, 1.0)


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
