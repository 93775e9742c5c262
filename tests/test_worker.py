"""The worker against the suite's redis-server: active timeouts fired exactly once by
concurrent workers, crash recovery from a checkpoint, graceful shutdown of
``python -m reactor worker``."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from reactor import Execution, Status, Storage
from reactor._executor import suspend_all
from reactor._sync import run_sync
from reactor.storage import RedisStorage, StoredExecution
from reactor.testing import FakeClock
from reactor.worker import Worker

from apps import runs, subprocess_env, undone
from apps.recovery import Gauged, Naps, Slow
from apps.timeouts import Defaulting, Expiring, Reminder
from conftest import left_running, reactor_using, wait_until


@pytest.fixture(params=["redis", "cluster"])
def shared(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Storage]:
    """Reactors on the suite's redis-server under the default prefix, then on its local
    Redis Cluster (``$REACTOR_REDIS_CLUSTER`` tells subprocesses and step counters)."""
    cluster = request.param == "cluster"
    url = request.getfixturevalue("cluster_url" if cluster else "redis_url")
    monkeypatch.setenv("REACTOR_REDIS_URL", url)
    if cluster:
        monkeypatch.setenv("REACTOR_REDIS_CLUSTER", "1")
    with reactor_using(RedisStorage.from_url(url, cluster=cluster)) as storage:
        yield storage


@pytest.fixture
def worker_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """The structlog events logged meanwhile (from any thread)."""
    was_configured = structlog.is_configured()
    with capture_logs() as logs:
        yield logs
    if not was_configured:
        # capture_logs leaves structlog "configured", which would make reactor log every
        # transition in the tests that follow.
        structlog.reset_defaults()


def stored(storage: Storage, execution_id: str) -> StoredExecution:
    found = run_sync(storage.load(execution_id))
    assert found is not None
    return found


def settled(storage: Storage, execution_id: str) -> StoredExecution | None:
    """The stored execution once it has ended. Reads storage only: ``find`` would fire
    an overdue timeout itself and hide what the workers did."""
    found = stored(storage, execution_id)
    return found if found.status.finished else None


class ThreadedWorker:
    """``Worker.run`` on a thread of its own, with its own event loop."""

    def __init__(self, storage: Storage, **options: Any) -> None:
        self.storage = storage
        self.worker = Worker(storage=storage, **options)
        self._started = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),))
        self._thread.start()
        assert self._started.wait(5)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._started.set()
        try:
            await self.worker.run(self._stop)
        except BaseException as exc:
            self._failure = exc
        finally:
            await self.storage.aclose()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        assert not self._thread.is_alive(), "the worker did not stop"
        if self._failure is not None:
            raise self._failure


@pytest.mark.slow
def test_active_timeouts_fire_once_within_two_seconds_with_two_workers(
    shared: Storage, worker_logs: list[MutableMapping[str, Any]]
) -> None:
    expiring = Expiring.run()
    defaulting = Defaulting.run()
    assert expiring.paused and defaulting.paused
    deadlines = {
        ex.id: ex.interrupts[0].deadline.timestamp()  # type: ignore[union-attr]
        for ex in (expiring, defaulting)
    }

    workers = [ThreadedWorker(shared), ThreadedWorker(shared)]
    try:
        failed = wait_until(lambda: settled(shared, expiring.id), timeout=5, what="expiry")
        completed = wait_until(
            lambda: settled(shared, defaulting.id), timeout=5, what="on_timeout resume"
        )
    finally:
        for worker in workers:
            worker.stop()

    assert failed.status is Status.FAILED
    assert completed.status is Status.COMPLETED
    for record in (failed, completed):
        assert 0 <= record.updated_at - deadlines[record.id] < 2
    fired = [e["execution_id"] for e in worker_logs if e["event"] == "reactor.worker.timeout_fired"]
    assert sorted(fired) == sorted(deadlines)

    # Failed: the completed steps were undone once each, newest first.
    assert undone(expiring.id) == ["c", "b", "a"]
    assert [runs(expiring.id, s) for s in ("a", "b", "c", "finish")] == [1, 1, 1, 0]
    error = Expiring.find(expiring.id).error
    assert error is not None and (error.type, error.step) == ("InterruptTimeout", "approval")

    # on_timeout: resumed with its payload and ran to the end once.
    done = Defaulting.find(defaulting.id)
    assert done.results["approval"] == {"approved": False}
    assert done.result == "rejected"
    assert [runs(defaulting.id, s) for s in ("a", "finish")] == [1, 1]


async def _create_reminders(count: int) -> list[str]:
    # Bounded: one event loop's Redis pool refuses more than 100 connections at once.
    gate = asyncio.Semaphore(20)

    async def create() -> Execution:
        async with gate:
            return await Reminder.arun()

    created = await asyncio.gather(*(create() for _ in range(count)))
    assert all(ex.paused for ex in created)
    return [ex.id for ex in created]


def test_two_workers_fire_200_due_timeouts_exactly_once(
    shared: Storage, reactor_clock: FakeClock
) -> None:
    ids = run_sync(_create_reminders(200))
    reactor_clock.advance(2)
    assert len(run_sync(shared.due(reactor_clock(), limit=1000))) == 200

    start = threading.Barrier(2)
    fired: list[int] = []

    async def burst() -> None:
        start.wait()
        try:
            fired.append(await Worker(storage=shared, concurrency=8).run_once())
        finally:
            await shared.aclose()

    threads = [threading.Thread(target=asyncio.run, args=(burst(),)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(fired) == 2 and sum(fired) == 200, fired
    assert run_sync(shared.due(reactor_clock(), limit=1000)) == []
    for execution_id in ids:
        assert stored(shared, execution_id).status is Status.FAILED
        assert undone(execution_id) == ["book"]
        assert runs(execution_id, "book") == 1


@pytest.mark.slow
def test_a_killed_run_is_recovered_from_its_checkpoint(shared: Storage) -> None:
    script = (
        "import reactor, apps.recovery\n"
        "reactor.configure(lease_seconds=1)\n"
        "apps.recovery.Slow.run()\n"
    )
    env = subprocess_env(os.environ["REACTOR_REDIS_URL"])
    process = subprocess.Popen([sys.executable, "-c", script], env=env)

    def in_c() -> str | None:
        # c has started and the checkpoint holds a and b (no step reruns for them).
        for record in run_sync(shared.list(status=Status.RUNNING, reactor=Slow.name)):
            if runs(record.id, "c") and "b" in Slow.find(record.id).results:
                return record.id
        return None

    try:
        execution_id = wait_until(in_c, timeout=15, what="step c with a checkpoint")
    finally:
        process.kill()
        process.wait()

    worker = Worker(storage=shared)
    # Nothing to do while the dead process's lease (1 s) runs out.
    wait_until(lambda: run_sync(worker.run_once()), timeout=5, what="the recovery")

    ex = Slow.find(execution_id)
    assert ex.status is Status.COMPLETED and ex.result == "abcd"
    assert [runs(execution_id, s) for s in "abcd"] == [1, 1, 2, 1]


def test_a_reactor_that_cannot_be_imported_is_logged_once_and_left_alone(
    shared: Storage, worker_logs: list[MutableMapping[str, Any]]
) -> None:
    ghost = StoredExecution(
        id="ghost",
        reactor="nowhere.Missing",
        status=Status.PAUSED,
        version=0,
        body="{}",
        deadline=time.time() - 1,
    )
    run_sync(shared.write(ghost, expected_version=0))
    worker = Worker(storage=shared)
    assert run_sync(worker.run_once()) == 0
    # Backing off: not even loaded again.
    assert run_sync(worker.run_once()) == 0
    assert [(e["event"], e["execution_id"]) for e in worker_logs] == [
        ("reactor.worker.reactor_unknown", "ghost")
    ]
    assert stored(shared, "ghost").version == 1


async def _recover_gauged(storage: Storage, count: int, concurrency: int) -> int:
    """Leave ``count`` Gauged runs suspended in ``first``, then recover them in burst."""
    try:
        ids = [uuid.uuid4().hex for _ in range(count)]
        started = [asyncio.ensure_future(Gauged.arun(execution_id=i)) for i in ids]
        while not all(runs(i, "first") for i in ids):
            await asyncio.sleep(0.01)
        assert suspend_all() == count
        assert all(ex.status is Status.RUNNING for ex in await asyncio.gather(*started))
        return await Worker(storage=storage, concurrency=concurrency).run_once()
    finally:
        await storage.aclose()


def test_at_most_concurrency_actions_at_once(shared: Storage) -> None:
    Gauged.peak = 0
    assert asyncio.run(_recover_gauged(shared, count=6, concurrency=2)) == 6
    assert Gauged.peak == 2
    done = run_sync(shared.list(status=Status.COMPLETED, reactor=Gauged.name))
    assert len(done) == 6
    assert all(runs(record.id, "second") == 1 for record in done)


# ------------------------------------------------------------ the worker command


class WorkerProcess:
    """``python -m reactor worker`` in a subprocess, its stderr read line by line."""

    def __init__(self, url: str) -> None:
        # --app: the worker imports no module named by stored data (DESIGN §9).
        command = [sys.executable, "-m", "reactor", "--app", "apps.recovery", "worker"]
        self.process = subprocess.Popen(
            [*command, "--poll-interval", "0.1"],
            env=subprocess_env(url),
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)
        assert self.process.stderr is not None
        self.process.stderr.close()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.seen):
            try:
                self.seen.append(self.lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"the worker never logged {text!r}; it logged: {self.seen}")

    def terminate(self, timeout: float = 5) -> float:
        """SIGTERM; return how long it took to exit (status 0)."""
        sent = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout) == 0, self.seen
        return time.monotonic() - sent


def test_the_worker_command_exits_promptly_on_sigterm_when_idle(redis_url: str) -> None:
    with WorkerProcess(redis_url) as worker:
        worker.wait_for("reactor.worker.started")
        assert worker.terminate() < 5
        worker.wait_for("reactor.worker.stopped")


@pytest.mark.slow
def test_the_worker_command_checkpoints_the_step_in_flight_on_sigterm(
    shared: Storage,
) -> None:
    execution_id = uuid.uuid4().hex
    asyncio.run(left_running(Naps, execution_id, shared))
    assert "first" in Naps.find(execution_id).results

    with WorkerProcess(os.environ["REACTOR_REDIS_URL"]) as worker:
        wait_until(lambda: runs(execution_id, "nap"), timeout=15, what="the recovery")
        worker.terminate(timeout=10)

    # The step in flight finished and was stored; the run waits for another worker.
    record = stored(shared, execution_id)
    assert record.status is Status.RUNNING
    assert record.lease_expires is not None and record.lease_expires <= time.time()
    assert Naps.find(execution_id).results["nap"] == "rested"
    assert runs(execution_id, "last") == 0

    assert run_sync(Worker(storage=shared).run_once()) == 1
    ex = Naps.find(execution_id)
    assert ex.status is Status.COMPLETED and ex.result == "rested!"
    assert [runs(execution_id, s) for s in ("first", "nap", "last")] == [1, 1, 1]
    assert ex.updated_at is not None and ex.updated_at <= dt.datetime.now(dt.UTC)
