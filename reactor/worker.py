"""The worker: fires active interrupt timeouts and recovers crashed executions.

A :class:`Worker` polls its storage's two schedules -- deadlines of paused executions
(``Storage.due``) and leases of running ones (``Storage.expired_leases``) -- and acts on
what it finds through :func:`reactor._actions.expire_overdue` and
:func:`reactor._actions.recover`. Both are exactly-once across every caller (a
compare-and-set claim), so any number of workers, in any number of processes, may poll
the same storage: a worker that loses a race simply finds nothing to do.

Example::

    worker = Worker(concurrency=8)
    await worker.run(stop_event)    # until stop_event is set
    fired = await worker.run_once() # or: act on what is due now, then return

When a task queue is installed (:func:`reactor.celery.install`), a recovered execution,
and one an ``on_timeout`` payload resumes, is claimed here and continued by one of its
workers instead of in this process (a timeout that fails an execution rolls it back
here).

Each action is one structlog line on the ``reactor.worker`` logger
(``reactor.worker.timeout_fired``, ``reactor.worker.recovered``, ...).
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import Set as AbstractSet

import structlog

from ._actions import expire_overdue, recover
from ._background import hand_off
from ._config import get_config, storage_for
from ._dispatch import installed
from ._executor import suspend_all
from ._reactor import Reactor, registered
from ._records import Execution
from ._status import Status
from .errors import ExecutionNotFound, ReactorError
from .storage import Storage, StoredExecution

__all__ = ["Worker"]

_log = structlog.get_logger("reactor.worker")

# An execution the worker could not act on (reactor not importable, storage trouble,
# changed definition...) is retried after a delay doubling from the first to the last
# value: soon enough for a blip, rarely enough not to spin on a lasting fault.
_FIRST_BACKOFF = 1.0
_MAX_BACKOFF = 60.0


class _Job(enum.Enum):
    """What a worker does to an execution it picked up."""

    TIMEOUT = "timeout_fired"
    RECOVERY = "recovered"


class Worker:
    """Fires due active timeouts and recovers executions whose lease expired.

    Args:
        storage: The storage to poll. Default: the configured one
            (``reactor.configure(storage=...)`` or ``$REACTOR_REDIS_URL``), looked up when
            the worker starts. Actions go through each reactor's own storage, which must
            be the same store.
        concurrency: Most actions in progress at once. A recovered execution runs to
            its end (or next pause) inside its action, so long steps hold a slot.
        poll_interval: Seconds between polls when there is nothing to do; an active
            timeout fires at most about this long after its deadline.
        batch: Ids read from a schedule at once; the worker hands them out as slots free.
        grace: On stop, the most seconds :meth:`run` waits for the steps in flight;
            ``None`` (the default) waits for them however long they take. Actions still
            in progress then are listed in :attr:`abandoned` and left running.

    Attributes:
        abandoned: Ids of the executions whose actions were still in progress when
            :meth:`run` returned after its ``grace`` period (empty otherwise). Their
            steps should be stopped with the process (``reactor worker`` exits at once);
            their leases then run out and a worker recovers them from their last
            checkpoint.

    Raises:
        ValueError: ``concurrency`` or ``batch`` is below 1, or ``poll_interval`` or
            ``grace`` is negative.
    """

    def __init__(
        self,
        *,
        storage: Storage | None = None,
        concurrency: int = 4,
        poll_interval: float = 0.2,
        batch: int = 100,
        grace: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency!r}")
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch!r}")
        if poll_interval < 0:
            raise ValueError(f"poll_interval cannot be negative, not {poll_interval!r}")
        if grace is not None and not grace >= 0:
            raise ValueError(f"grace cannot be negative, not {grace!r}")
        self._storage = storage
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.batch = batch
        self.grace = grace
        self.abandoned: list[str] = []
        self._in_hand: dict[str, asyncio.Task[bool]] = {}
        # id -> (monotonic time before which it is left alone, delay used)
        self._backoff: dict[str, tuple[float, float]] = {}
        # Ids read from each schedule and not handed out yet; one read serves many picks.
        self._candidates: dict[_Job, list[str]] = {job: [] for job in _Job}

    def __repr__(self) -> str:
        return f"<Worker concurrency={self.concurrency} poll_interval={self.poll_interval}>"

    @property
    def storage(self) -> Storage:
        """The storage this worker polls."""
        # The base class has no storage of its own, so this is the configured default.
        return self._storage if self._storage is not None else storage_for(Reactor)

    # ------------------------------------------------------------------ public

    async def run_once(self) -> int:
        """Act on everything due now, then return (burst mode).

        Fires every overdue active timeout and recovers every execution whose lease
        expired, ``concurrency`` at a time, including what becomes due meanwhile; an
        execution it acted on without effect (another worker won) is not retried.

        Returns:
            How many actions took effect (timeouts fired plus executions recovered).

        Raises:
            StorageError: a schedule could not be read.
        """
        done = 0
        tried: set[str] = set()
        tasks: dict[asyncio.Task[bool], str] = {}
        while True:
            for job, execution_id in await self._pick(self.concurrency - len(tasks), exclude=tried):
                tasks[self._dispatch(job, execution_id)] = execution_id
            if not tasks:
                return done
            finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                execution_id = tasks.pop(task)
                if task.result():
                    done += 1
                else:
                    tried.add(execution_id)

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Poll and act until ``stop`` is set (forever if not given), then stop cleanly.

        On stop it takes no more work, asks the runs of its own actions to stop after
        their steps in flight (:func:`reactor._executor.suspend_all`: they checkpoint with
        an expired lease, so another worker continues them at once), waits for its
        actions to end -- at most ``grace`` seconds, after which it lists the rest in
        :attr:`abandoned` -- and returns. A storage error while polling is logged and
        the poll retried after ``poll_interval``.

        Args:
            stop: Set it to make the worker stop.
        """
        stop = stop if stop is not None else asyncio.Event()
        stopping = asyncio.ensure_future(stop.wait())
        _log.info(
            "reactor.worker.started",
            concurrency=self.concurrency,
            poll_interval=self.poll_interval,
            storage=repr(self.storage),
        )
        try:
            while not stop.is_set():
                room = self.concurrency - len(self._in_hand)
                picked: list[tuple[_Job, str]] = []
                if room > 0:
                    try:
                        picked = await self._pick(room)
                    except ReactorError as exc:
                        _log.error("reactor.worker.poll_failed", error=str(exc))
                for job, execution_id in picked:
                    self._dispatch(job, execution_id)
                if self._in_hand and len(picked) == room:
                    # Saturated: more may be waiting, so poll again as soon as a slot frees.
                    await asyncio.wait(
                        [stopping, *self._in_hand.values()], return_when=asyncio.FIRST_COMPLETED
                    )
                else:
                    await asyncio.wait([stopping], timeout=self.poll_interval)
        finally:
            stopping.cancel()
            # Only this worker's runs: another worker may share the process.
            suspended = suspend_all(self._in_hand)
            in_hand = dict(self._in_hand)
            _log.info("reactor.worker.stopping", in_hand=len(in_hand), suspended=suspended)
            late: AbstractSet[asyncio.Task[bool]] = set()
            if in_hand:
                # _act never raises, so there is no exception to collect.
                _, late = await asyncio.wait(in_hand.values(), timeout=self.grace)
            self.abandoned = [key for key, task in in_hand.items() if task in late]
            if self.abandoned:
                _log.warning(
                    "reactor.worker.abandoned", grace=self.grace, execution_ids=self.abandoned
                )
            _log.info("reactor.worker.stopped")

    # ---------------------------------------------------------------- internals

    async def _pick(
        self, room: int, *, exclude: AbstractSet[str] = frozenset()
    ) -> list[tuple[_Job, str]]:
        """Up to ``room`` (job, id) pairs: overdue timeouts first, then expired leases."""
        if room <= 0:
            return []
        clock = time.monotonic()
        for execution_id, (until, _) in list(self._backoff.items()):
            if until + _MAX_BACKOFF < clock:
                # Long eligible and never picked again: it left the schedules.
                del self._backoff[execution_id]
        blocked = {*self._in_hand}
        blocked.update(key for key, (until, _) in self._backoff.items() if until > clock)
        # Ids in hand or cooling may stand at the head of a schedule: read past them.
        # (Excluded ids need not: acted on without effect, they left the schedules.)
        limit = self.batch + len(blocked)
        blocked.update(exclude)
        picked: list[tuple[_Job, str]] = []
        for job in _Job:
            candidates = self._candidates[job]
            refilled = False
            while len(picked) < room:
                while candidates and len(picked) < room:
                    execution_id = candidates.pop()
                    if execution_id not in blocked:
                        blocked.add(execution_id)
                        picked.append((job, execution_id))
                if len(picked) == room or refilled:
                    break
                candidates[:] = await self._read(job, blocked, limit)
                refilled = True
        return picked

    async def _read(self, job: _Job, blocked: AbstractSet[str], limit: int) -> list[str]:
        """Some ids from the schedule of ``job``, chosen at random among ``limit``."""
        if job is _Job.TIMEOUT:
            ids = await self.storage.due(get_config().clock(), limit=limit)
        else:
            ids = await self.storage.expired_leases(limit=limit)
        fresh = [execution_id for execution_id in dict.fromkeys(ids) if execution_id not in blocked]
        # All of them are overdue. Workers reading the same batch would race for the
        # same executions; each taking a few at random, and reading again once they are
        # done, keeps them mostly apart.
        return random.sample(fresh, min(len(fresh), 2 * self.concurrency))

    def _dispatch(self, job: _Job, execution_id: str) -> asyncio.Task[bool]:
        task = asyncio.ensure_future(self._act(job, execution_id))
        self._in_hand[execution_id] = task
        task.add_done_callback(lambda _: self._in_hand.pop(execution_id, None))
        return task

    async def _act(self, job: _Job, execution_id: str) -> bool:
        """Fire or recover one execution; whether it took effect. Never raises."""
        fields = {"job": job.name.lower(), "execution_id": execution_id}
        try:
            stored = await self.storage.load(execution_id)
            if stored is None:
                # Ended and expired since the poll: nothing left to do.
                return False
            fields["reactor"] = stored.reactor
            if not _needs(job, stored):
                # Read a while ago, and another worker got there first.
                return False
            try:
                cls = registered(stored.reactor)
            except ExecutionNotFound as exc:
                self._back_off(execution_id)
                _log.warning("reactor.worker.reactor_unknown", **fields, error=exc.detail)
                return False
            outcome: Execution | None
            if job is _Job.TIMEOUT:
                outcome = await expire_overdue(
                    cls.__reactor_plan__,
                    storage_for(cls),
                    execution_id,
                    strategies=("active",),
                    background=installed() is not None,
                )
            else:
                # With a task queue installed, the continuation is claimed here and run
                # by one of its workers.
                resume_run = hand_off if installed() is not None else recover
                outcome = await resume_run(cls.__reactor_plan__, storage_for(cls), execution_id)
        except ReactorError as exc:
            self._back_off(execution_id)
            _log.error("reactor.worker.action_failed", **fields, error=str(exc))
            return False
        except Exception:
            # A bug, not a refusal: keep the traceback, and keep the worker alive.
            self._back_off(execution_id)
            _log.exception("reactor.worker.action_crashed", **fields)
            return False
        self._backoff.pop(execution_id, None)
        if outcome is None:
            # Another worker acted first, or it no longer needed us.
            return False
        _log.info(f"reactor.worker.{job.value}", **fields, status=outcome.status.value)
        return True

    def _back_off(self, execution_id: str) -> None:
        _, previous = self._backoff.get(execution_id, (0.0, 0.0))
        delay = min(_MAX_BACKOFF, previous * 2) if previous else _FIRST_BACKOFF
        self._backoff[execution_id] = (time.monotonic() + delay, delay)


def _needs(job: _Job, stored: StoredExecution) -> bool:
    """Whether ``stored`` is still in the state ``job`` acts on (cheap, before the
    executor's own exactly-once check)."""
    now = get_config().clock()
    if job is _Job.TIMEOUT:
        return (
            stored.status is Status.PAUSED
            and stored.deadline is not None
            and stored.deadline <= now
        )
    # Whether the lease ran out is the store's to say (in its own clock): the takeover
    # write is refused while it holds.
    return stored.status is Status.RUNNING
