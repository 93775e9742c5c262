"""Background execution without a task queue: a dispatcher that keeps the jobs, run
by hand. ``submit`` stores and enqueues, ``background=True`` claims and enqueues, and
a job advances its execution only while it still owns it (see ``test_celery.py`` for
the same against real Celery workers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from reactor import (
    AlreadyResumed,
    Execution,
    InputInvalid,
    ReactorError,
    Status,
    Storage,
    configure,
)
from reactor._background import advance
from reactor._config import storage_for
from reactor._dispatch import install_dispatcher
from reactor._sync import run_sync
from reactor.storage import MemoryStorage
from reactor.testing import FakeClock
from reactor.worker import Worker

from apps import counters, runs, undone
from apps.background import Approval, Chain, Crashy, Fanned, Line
from apps.timeouts import Defaulting

Job = tuple[str, str, str]


@pytest.fixture
def jobs(shared: Storage) -> Iterator[list[Job]]:
    """Jobs enqueued meanwhile, in order; nothing runs them unless the test does."""
    queued: list[Job] = []
    install_dispatcher(lambda *job: queued.append(job))
    try:
        yield queued
    finally:
        install_dispatcher(None)


def deliver(job: Job) -> Status | None:
    """Run one job as a task queue's worker would; the status it left, if it acted."""
    reactor, execution_id, owner = job
    cls = {c.name: c for c in (Chain, Approval, Crashy, Fanned, Line, Defaulting)}[reactor]
    outcome = run_sync(advance(cls.__reactor_plan__, storage_for(cls), execution_id, owner))
    return None if outcome is None else outcome.status


def test_submit_stores_the_execution_and_enqueues_it(jobs: list[Job]) -> None:
    ex = Chain.submit(n=3)
    assert ex.status is Status.RUNNING and ex.results == {}
    assert Chain.find(ex.id).status is Status.RUNNING
    assert jobs == [(Chain.name, ex.id, jobs[0][2])]
    assert runs(ex.id, "a") == 0
    assert deliver(jobs[0]) is Status.COMPLETED
    assert Chain.find(ex.id).result == 7


def test_a_job_delivered_twice_runs_nothing_twice(jobs: list[Job]) -> None:
    ex = Chain.submit(n=1)
    assert deliver(jobs[0]) is Status.COMPLETED
    assert deliver(jobs[0]) is None
    assert [runs(ex.id, s) for s in "abc"] == [1, 1, 1]


def test_same_idempotency_key_gives_the_same_execution(jobs: list[Job]) -> None:
    first = Chain.submit(n=1, idempotency_key="order-9")
    second = Chain.submit(n=1, idempotency_key="order-9")
    assert second.id == first.id and len(jobs) == 1


def test_submit_checks_inputs_before_storing(jobs: list[Job]) -> None:
    with pytest.raises(InputInvalid):
        Chain.submit(n="three")
    assert jobs == []


def test_submit_needs_a_task_queue(shared: Storage) -> None:
    with pytest.raises(ReactorError, match=r"reactor\.celery\.install"):
        Chain.submit(n=1)


def test_submit_needs_a_shared_store(jobs: list[Job]) -> None:
    saved = Chain.storage
    Chain.storage = MemoryStorage()
    try:
        with pytest.raises(ReactorError, match="RedisStorage"):
            Chain.submit(n=1)
    finally:
        Chain.storage = saved


def test_background_resume_claims_once_and_enqueues(jobs: list[Job]) -> None:
    ex = Approval.run()
    assert ex.paused
    resumed = Approval.resume_by_correlation_id(
        "approve-order-1", {"approved": True}, background=True
    )
    assert resumed.status is Status.RUNNING and runs(ex.id, "ship") == 0
    with pytest.raises(AlreadyResumed):
        Approval.resume(ex.id, {"approved": False}, step="approval", background=True)
    [job] = jobs
    assert deliver(job) is Status.COMPLETED
    assert Approval.find(ex.id).result == "shipped"
    assert runs(ex.id, "ship") == 1


def test_a_job_leaves_an_execution_another_process_owns_alone(jobs: list[Job]) -> None:
    ex = Chain.submit(n=1)
    reactor, execution_id, owner = jobs[0]
    # A job enqueued earlier with another claim (the execution was handed over since).
    assert deliver((reactor, execution_id, owner[::-1])) is None
    assert runs(ex.id, "a") == 0 and Chain.find(ex.id).status is Status.RUNNING


def test_the_worker_hands_expired_leases_to_the_task_queue(jobs: list[Job]) -> None:
    configure(lease_seconds=0.2)
    try:
        ex = Chain.submit(n=2)
        time.sleep(0.3)  # the job was lost: the submit's lease runs out
        assert run_sync(Worker(concurrency=1).run_once()) == 1
    finally:
        configure(lease_seconds=30.0)
    assert len(jobs) == 2 and jobs[1][2] != jobs[0][2]
    assert runs(ex.id, "a") == 0  # handed over, not run by the worker
    assert deliver(jobs[0]) is None  # the lost job turns up late: no longer the owner
    assert deliver(jobs[1]) is Status.COMPLETED
    assert [runs(ex.id, s) for s in "abc"] == [1, 1, 1]


def drain(jobs: list[Job]) -> None:
    """Deliver jobs, and the jobs they enqueue, until none is left."""
    while jobs:
        deliver(jobs.pop(0))


def in_process(**inputs: Any) -> Execution:
    """Run ``Fanned`` with no task queue: its map runs in this process."""
    install_dispatcher(None)
    return Fanned.run(**inputs)


def test_a_fanned_out_map_gives_the_in_process_result(jobs: list[Job]) -> None:
    items = list(range(250))
    expected = in_process(items=items, tag="here")
    install_dispatcher(lambda *job: jobs.append(job))
    ex = Fanned.run(items=items, tag="there")
    assert ex.status is Status.PAUSED and ex.interrupts == []
    assert len(jobs) == 100  # the first batch
    drain(jobs)
    done = Fanned.find(ex.id)
    assert done.completed and done.results["lines"] == expected.results["lines"]
    assert done.result == expected.result == sum(2 * n for n in items)
    assert counters().get("priced:there") == "250"


def test_a_failure_after_a_fanned_out_map_undoes_its_elements_last_first(
    jobs: list[Job],
) -> None:
    items = list(range(150))
    expected = in_process(items=items, tag="here", fail_after=True)
    install_dispatcher(lambda *job: jobs.append(job))
    Fanned.run(items=items, tag="there", fail_after=True)
    drain(jobs)
    assert expected.failed
    assert undone("there") == undone("here") == [str(n) for n in reversed(items)]


def test_a_failed_element_stops_the_fanned_out_map_and_undoes_the_rest(
    jobs: list[Job],
) -> None:
    ex = Fanned.run(items=list(range(250)), tag="there", fail_at=120)
    drain(jobs)
    failed = Fanned.find(ex.id)
    assert failed.failed and failed.error is not None
    assert failed.error.step == "lines[120].price" and failed.error.message == "cannot price 120"
    # The second batch (100-199) ran; the third never started; all completed ones undone.
    assert counters().get("priced:there") == "200"
    assert undone("there") == [str(n) for n in reversed(range(200)) if n != 120]


def test_elements_that_end_while_the_parent_runs_leave_the_batch_to_it(
    shared: Storage,
) -> None:
    # Each job runs at once on a thread of its own while the parent waits: every element
    # ends (and reports) before the parent reaches its pause, so no element wakes it.
    def at_once(*job: str) -> None:
        worker = threading.Thread(target=deliver, args=(job,))
        worker.start()
        worker.join()

    install_dispatcher(at_once)
    try:
        ex = Fanned.run(items=list(range(250)), tag="inline")
    finally:
        install_dispatcher(None)
    assert ex.completed and ex.result == sum(2 * n for n in range(250))


def test_the_worker_hands_an_on_timeout_resume_to_the_task_queue(
    jobs: list[Job], reactor_clock: FakeClock
) -> None:
    ex = Defaulting.run()
    assert ex.paused
    reactor_clock.advance(2)
    assert run_sync(Worker(concurrency=1).run_once()) == 1
    [job] = jobs
    assert Defaulting.find(ex.id).status is Status.RUNNING and runs(ex.id, "finish") == 0
    assert deliver(job) is Status.COMPLETED
    assert Defaulting.find(ex.id).result == "rejected"


def test_a_cancelled_element_fails_the_fanned_out_map(jobs: list[Job]) -> None:
    ex = Fanned.run(items=list(range(3)), tag="cancelled")
    first, *others = jobs
    jobs.clear()
    Line.cancel(first[1], reason="not needed")  # before its job runs
    for job in others:
        deliver(job)
    drain(jobs)  # the parent, woken by the last report
    failed = Fanned.find(ex.id)
    assert failed.failed and failed.error is not None
    assert "element 0 ended cancelled" in failed.error.message
    assert undone("cancelled") == ["2", "1"]
