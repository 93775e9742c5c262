"""reactor.celery against real Celery workers: two ``celery -A celery_app worker
--pool=prefork -c 1`` subprocesses, broker and result backend on a redis-server of this
module's own (the suite's server is flushed between tests, which would drop Celery's
queue bindings under the running workers). Steps count their starts in Redis, so a
test sees what ran in every worker process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reactor import Execution, Status
from reactor._dispatch import install_dispatcher, installed
from reactor._fanout import element_id
from reactor._sync import run_sync
from reactor.storage import RedisStorage
from reactor.worker import Worker

from apps import TESTS, counters, runs, subprocess_env, undone
from apps.background import Approval, Chain, Crashy, Fanned
from conftest import reactor_using, wait_until
from faults import RedisServer

pytest.importorskip("celery")

pytestmark = [pytest.mark.slow, pytest.mark.redis]


LEASE_SECONDS = 1.5
"""The workers' lease: a crashed worker's execution is recoverable this soon."""


def start_worker(name: str, url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**subprocess_env(url), "REACTOR_LEASE_SECONDS": str(LEASE_SECONDS)}
    command = [
        *(sys.executable, "-m", "celery", "-A", "celery_app", "worker"),
        *("--pool=prefork", "-c", "1", "-n", f"{name}@%h", "-l", "INFO"),
        *("--without-mingle", "--without-gossip", "--without-heartbeat"),
    ]
    with log.open("wb") as out:
        return subprocess.Popen(command, cwd=TESTS, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("celery-redis"))
    with pytest.MonkeyPatch.context() as patch:
        # The app module, the step counters and the workers all read it.
        patch.setenv("REACTOR_REDIS_URL", server.url)
        with reactor_using(RedisStorage.from_url(server.url)):
            yield server.url
    server.stop()


@pytest.fixture(scope="module")
def workers(broker: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """Two Celery workers, ready; this process enqueues to them. Their logs."""
    import celery_app  # reads $REACTOR_REDIS_URL, set by `broker`

    directory = tmp_path_factory.mktemp("celery-workers")
    logs = [directory / f"w{n}.log" for n in (1, 2)]
    processes = [start_worker(f"w{n}", broker, log) for n, log in zip((1, 2), logs, strict=True)]
    assert installed() is not None  # celery_app installed reactor's task
    try:
        for log in logs:
            wait_until(lambda log=log: b" ready." in log.read_bytes(), timeout=30, what=str(log))
        yield logs
    finally:
        install_dispatcher(None)
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        celery_app.app.close()


def finished(cls: Any, execution_id: str, timeout: float = 20) -> Execution:
    def done() -> Execution | None:
        ex: Execution = cls.find(execution_id)
        return ex if ex.status is not Status.RUNNING else None

    return wait_until(done, timeout=timeout, what=f"execution {execution_id} to finish")


def test_a_submitted_execution_completes_on_a_celery_worker(workers: list[Path]) -> None:
    ex = Chain.submit(n=3)
    assert ex.status is Status.RUNNING and ex.results == {}
    assert Chain.find(ex.id).status in (Status.RUNNING, Status.COMPLETED)
    done = finished(Chain, ex.id)
    assert done.status is Status.COMPLETED and done.result == 7
    assert [runs(ex.id, s) for s in "abc"] == [1, 1, 1]


def test_a_background_resume_returns_before_the_next_step_runs(workers: list[Path]) -> None:
    ex = Approval.run()
    assert ex.paused

    def webhook(correlation_id: str, payload: Any) -> Execution:
        return Approval.resume_by_correlation_id(correlation_id, payload, background=True)

    started = time.monotonic()
    answered = webhook("approve-order-1", {"approved": True})
    took = time.monotonic() - started
    # `ship` takes 0.3 s: the handler answered without running it.
    assert took < 0.25, took
    assert answered.status is Status.RUNNING and "ship" not in answered.results
    done = finished(Approval, ex.id)
    assert done.result == "shipped" and runs(ex.id, "ship") == 1


def test_a_killed_worker_process_s_execution_completes_once(workers: list[Path]) -> None:
    ex = Crashy.submit()
    pid = wait_until(lambda: counters().get(f"pid:{ex.id}"), timeout=20, what="step b to start")
    assert int(pid) != os.getpid()
    # Killed once `a` is checkpointed (at once, or ``checkpoint_after`` into `b`).
    wait_until(lambda: "a" in Crashy.find(ex.id).results, timeout=10, what="a checkpoint")
    os.kill(int(pid), signal.SIGKILL)
    # The Celery worker delivers the job again (acks_late, reject_on_worker_lost): it
    # finds the execution claimed by the dead process and leaves it. Once that lease
    # runs out, the reactor worker claims it and enqueues its continuation.
    worker = Worker(concurrency=1)

    def recovered() -> bool:
        return run_sync(worker.run_once()) > 0

    wait_until(recovered, timeout=LEASE_SECONDS + 10, what="the lease to expire")
    done = finished(Crashy, ex.id)
    assert done.status is Status.COMPLETED and done.result == "abc"
    # `a` completed before the crash; `b` was in flight and runs again.
    assert [runs(ex.id, s) for s in "abc"] == [1, 2, 1]


def test_the_same_job_delivered_twice_runs_nothing_twice(workers: list[Path]) -> None:
    dispatcher = installed()
    assert dispatcher is not None
    jobs: list[tuple[str, str, str]] = []
    install_dispatcher(lambda *job: jobs.append(job))
    try:
        ex = Chain.submit(n=5)
    finally:
        install_dispatcher(dispatcher)
    [job] = jobs
    for _ in range(3):  # to both workers at once, then once more
        dispatcher(*job)
    done = finished(Chain, ex.id)
    assert done.result == 11
    dispatcher(*job)  # late, after the end
    time.sleep(0.5)
    assert [runs(ex.id, s) for s in "abc"] == [1, 1, 1]


def ended(cls: Any, execution_id: str, timeout: float) -> Execution:
    def done() -> Execution | None:
        ex: Execution = cls.find(execution_id)
        return ex if ex.status.finished else None

    return wait_until(done, timeout=timeout, what=f"execution {execution_id} to end")


def test_a_fanned_out_map_of_1000_items_matches_the_in_process_one(
    workers: list[Path],
) -> None:
    items = list(range(1000))
    tag = uuid.uuid4().hex
    dispatcher = installed()
    install_dispatcher(None)  # no task queue: the same map runs in this process
    try:
        here = Fanned.run(items=items, tag=f"{tag}-here")
        here_failed = Fanned.run(items=items, tag=f"{tag}-here-failed", fail_after=True)
    finally:
        install_dispatcher(dispatcher)

    ex = Fanned.run(items=items, tag=tag)
    assert ex.status is Status.PAUSED  # waits for its first batch of 100
    fanned_failed = Fanned.run(items=items, tag=f"{tag}-failed", fail_after=True)
    done = ended(Fanned, ex.id, timeout=120)
    failed = ended(Fanned, fanned_failed.id, timeout=120)

    assert done.completed and here.completed
    assert done.results["lines"] == here.results["lines"] == [2 * n for n in items]
    assert done.result == here.result
    # The elements ran on both worker processes.
    pids = {int(pid) for pid in counters().smembers(f"pids:{tag}")}
    assert len(pids) == 2 and os.getpid() not in pids
    assert failed.failed and here_failed.failed
    assert failed.error is not None and here_failed.error is not None
    assert failed.error.step == here_failed.error.step == "total"
    expected = [str(n) for n in reversed(items)]
    assert undone(f"{tag}-failed") == undone(f"{tag}-here-failed") == expected


def gated_run(tag: str) -> tuple[Any, Execution, int, list[int]]:
    """A :class:`celery_app.Gated` map of four elements on the two workers: one
    completed, two inside their ``enter`` (waiting for the gate), one queued behind
    them. The reactor, the paused parent, the completed element and those waiting."""
    from celery_app import Gated  # imported once `workers` set $REACTOR_REDIS_URL

    ex = Gated.run(items=[0, 1, 2, 3], tag=tag)
    assert ex.status is Status.PAUSED

    def waiting() -> tuple[int, list[int]] | None:
        entered = [i for i in range(4) if runs(tag, f"enter{i}")]
        passed = [i for i in range(4) if runs(tag, f"after{i}")]
        if len(entered) < 3 or not passed:
            return None
        return passed[0], [i for i in entered if i != passed[0]]

    first, at_gate = wait_until(waiting, timeout=15, what="two elements at the gate")
    return Gated, ex, first, at_gate


def step_starts(tag: str) -> dict[str, int]:
    return {f"{s}{i}": runs(tag, f"{s}{i}") for s in ("enter", "after") for i in range(4)}


@pytest.mark.parametrize("undo", [False, True], ids=["cancel", "undo"])
def test_ending_a_fanned_out_parent_ends_its_elements_in_flight(
    workers: list[Path], undo: bool
) -> None:
    tag = uuid.uuid4().hex
    try:
        cls, ex, first, at_gate = gated_run(tag)
        ended_parent = cls.undo(ex.id) if undo else cls.cancel(ex.id)
        assert ended_parent.status is Status.CANCELLED
        # Those at the gate finish the step in flight and start no other; the queued
        # one starts none.
        counters().set(f"open:{tag}", 1)
        gate = cls.__reactor_plan__.nodes["gates"].child.reactor
        ids = [element_id(ex.id, "gates", index) for index in range(4)]
        statuses = [ended(gate, i, timeout=10).status for i in ids]
    finally:
        counters().set(f"open:{tag}", 1)
    time.sleep(1)  # anything still to start would have started by now
    assert statuses == [
        Status.COMPLETED if i == first and not undo else Status.CANCELLED for i in range(4)
    ]
    assert step_starts(tag) == {
        **{f"enter{i}": int(i == first or i in at_gate) for i in range(4)},
        **{f"after{i}": int(i == first) for i in range(4)},
    }
    # Each completed `enter` undone once, as the in-process map undoes them: those in
    # flight by their workers, the completed element by the undo.
    assert sorted(undone(tag)) == (sorted(str(i) for i in [first, *at_gate]) if undo else [])
    assert cls.find(ex.id).status is Status.CANCELLED


def test_a_failed_fanned_out_element_names_its_step_as_in_process(workers: list[Path]) -> None:
    items = list(range(6))
    tag = uuid.uuid4().hex
    dispatcher = installed()
    install_dispatcher(None)  # no task queue: the same map runs in this process
    try:
        here = Fanned.run(items=items, tag=f"{tag}-here", fail_at=3)
    finally:
        install_dispatcher(dispatcher)
    fanned = ended(Fanned, Fanned.run(items=items, tag=tag, fail_at=3).id, timeout=15)
    assert here.failed and fanned.failed
    assert here.error is not None and fanned.error is not None
    assert fanned.error.step == here.error.step == "lines[3].price"
    assert (fanned.error.type, fanned.error.message) == (here.error.type, here.error.message)
    assert fanned.error.message == "cannot price 3"
