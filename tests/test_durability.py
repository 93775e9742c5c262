"""Guarantees under faults (DESIGN §9), each proven by injecting the fault: SIGKILL at a
chosen moment, a stalled or cut link, a Redis restart, a skewed clock, concurrent
resumes. Step and hook calls are counted in Redis across processes (``faults.Calls``),
with the most that ever ran at once."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reactor import (
    AlreadyResumed,
    Context,
    ExecutionNotFound,
    NotPaused,
    PayloadInvalid,
    Reactor,
    ReactorWarning,
    Status,
    configure,
    get_config,
    step,
)
from reactor._sync import run_sync
from reactor.storage import RedisStorage, Storage
from reactor.worker import Worker

from apps.durable import Approval, Chain, LongAsync, Unwinding
from faults import Calls, Child, Proxy, RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture
def lease() -> Iterator[Callable[[float], None]]:
    """Set this process's lease length for the test."""
    saved = get_config().lease_seconds

    def set_lease(seconds: float) -> None:
        configure(lease_seconds=seconds)

    yield set_lease
    configure(lease_seconds=saved)


def _child(
    reactor: str,
    execution_id: str,
    url: str,
    *,
    sleep: float,
    lease: float,
    counts_url: str | None = None,
) -> Child:
    """Run ``reactor`` in a child process on the Redis at ``url``."""
    code = (
        "import os\n"
        "from reactor import configure\n"
        f"configure(lease_seconds={lease})\n"
        f"from apps.durable import {reactor}\n"
        f"{reactor}.run(execution_id=os.environ['EXECUTION_ID'])\n"
    )
    env = {
        "REACTOR_REDIS_URL": url,
        "FAULTS_REDIS_URL": counts_url or url,
        "EXECUTION_ID": execution_id,
        "DURABLE_SLEEP": str(sleep),
    }
    return Child(code, env=env)


def _recover(storage: Storage, *, timeout: float = 10) -> None:
    """Let a worker recover what the crashed process left, once its lease ran out."""
    deadline = time.monotonic() + timeout
    while run_sync(Worker(storage=storage).run_once()) == 0:
        assert time.monotonic() < deadline, "nothing was recovered"
        time.sleep(0.1)


def _keep_recovering(storage: Storage, stop: threading.Event) -> threading.Thread:
    """A worker that tries to take over, every 50 ms, until ``stop`` is set."""

    def loop() -> None:
        worker = Worker(storage=storage)
        while not stop.is_set():
            run_sync(worker.run_once())
            time.sleep(0.05)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


# -------------------------------------------------- 1. the crash window


def test_a_crash_runs_again_only_the_step_in_flight(
    shared: Storage, redis_url: str, calls: Calls
) -> None:
    with _child("Chain", "chain-1", redis_url, sleep=30, lease=1.0) as child:
        # Killed the moment `c` starts: `a` and `b` completed milliseconds before.
        child.kill_when("c started")
    stored = run_sync(shared.load("chain-1"))
    assert stored is not None and stored.status is Status.RUNNING
    _recover(shared)
    done = Chain.find("chain-1")
    assert done.completed and done.result == 3
    assert (calls.count("a"), calls.count("b"), calls.count("c")) == (1, 1, 2)


# ------------------------------------- 2. renewal that survives transient errors


def test_a_stalled_renewal_is_retried_and_nothing_runs_twice(
    shared: Storage, redis_url: str, calls: Calls, proxy: Proxy
) -> None:
    # The run talks to Redis through the proxy with short timeouts; the worker does not.
    through = f"{proxy.url}?socket_timeout=0.2"
    with _child("LongAsync", "long-1", through, sleep=3.5, lease=2.0, counts_url=redis_url) as c:
        c.wait_for("long started")
        stop = threading.Event()
        worker = _keep_recovering(shared, stop)
        try:
            time.sleep(0.5)
            # Every renewal fails for a second (each times out), then the link is back.
            proxy.stall()
            time.sleep(1.0)
            proxy.cut()
            proxy.resume()
            assert c.wait(20) == 0, c.output
        finally:
            stop.set()
            worker.join(5)
    done = LongAsync.find("long-1")
    assert done.completed and done.result == "first then long"
    assert calls.count("long") == 1 and calls.overlap("long") == 1
    assert calls.count("after") == 1


def test_a_process_that_lost_its_lease_starts_no_further_step(
    shared: Storage, redis_url: str, calls: Calls, proxy: Proxy
) -> None:
    through = f"{proxy.url}?socket_timeout=0.2"
    with _child("LongAsync", "long-2", through, sleep=2.5, lease=1.0, counts_url=redis_url) as c:
        c.wait_for("long started")
        # Longer than the lease: the process cannot know it still owns the execution.
        proxy.stall()
        _recover(shared)  # a worker takes over (and runs `long` again: it was in flight)
        proxy.resume()
        c.wait(20)
        assert "lease_lost" in c.output or calls.count("after") == 1, c.output
    done = LongAsync.find("long-2")
    assert done.completed
    assert calls.count("after") == 1  # the old owner never started it
    # The new owner's fence is greater: external systems can refuse the old one's writes.
    assert sorted(calls.notes("fence")) == ["1", "2"]


# ----------------------------------------- 3. a Redis restart between two calls


def test_a_redis_restart_between_pause_and_resume_is_invisible(
    aof_redis: RedisServer, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REACTOR_REDIS_URL", calls.url)  # counters stay on the suite's server
    storage = RedisStorage.from_url(aof_redis.url)
    Approval.storage = storage
    try:
        paused = Approval.run()
        assert paused.paused
        aof_redis.kill()
        aof_redis.restart()
        done = Approval.resume(paused.id, {"ok": True})
    finally:
        Approval.storage = None
        run_sync(storage.aclose())
    assert done.completed
    assert (calls.count("reserve"), calls.count("ship"), calls.count("release")) == (1, 1, 0)


# ---------------------------------------------------------- 4. durable rollback


def test_a_rollback_keeps_its_lease_while_hooks_outlast_it(
    shared: Storage, calls: Calls, lease: Callable[[float], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    lease(1.0)
    monkeypatch.setenv("DURABLE_SLEEP", "1.5")
    stop = threading.Event()
    worker = _keep_recovering(shared, stop)
    try:
        failed = Unwinding.run(execution_id="unwind-1")
    finally:
        stop.set()
        worker.join(5)
    assert failed.failed and failed.error is not None and failed.error.step == "boom"
    for name in ("a", "b", "boom", "compensate_boom", "undo_a", "undo_b"):
        assert (name, calls.count(name), calls.overlap(name)) == (name, 1, 1)


def test_a_rollback_killed_halfway_continues_where_it_stopped(
    shared: Storage, redis_url: str, calls: Calls
) -> None:
    with _child("Unwinding", "unwind-2", redis_url, sleep=30, lease=1.0) as child:
        # Newest first: `b` is undone before `a`; killed while undoing `b`.
        child.kill_when("undoing b")
    _recover(shared)
    done = Unwinding.find("unwind-2")
    assert done.failed and done.error is not None and done.error.step == "boom"
    assert done.error.message == "boom"
    counts = {n: calls.count(n) for n in ("a", "b", "boom", "compensate_boom", "undo_a")}
    assert counts == {"a": 1, "b": 1, "boom": 1, "compensate_boom": 1, "undo_a": 1}
    assert calls.count("undo_b") == 2  # the hook in flight, and only it, ran again


# --------------------------------------------------------------- 5. clocks


def test_a_worker_whose_clock_runs_ahead_takes_over_no_healthy_run(
    shared: Storage, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DURABLE_SLEEP", "1.5")
    saved = get_config().clock
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(LongAsync.run, execution_id="long-3")
        while calls.count("long") == 0:
            time.sleep(0.01)
        time.sleep(0.2)  # its lease (30 s) is stored
        configure(clock=lambda: time.time() + 40)
        try:
            assert run_sync(Worker(storage=shared).run_once()) == 0
        finally:
            configure(clock=saved)
        assert running.result(timeout=10).completed
    assert calls.count("long") == 1


# ------------------------------------------------ 6. attempts counted atomically


def _outcome(call: Callable[[], Any]) -> str:
    try:
        call()
    except PayloadInvalid as exc:
        assert exc.attempts_left is not None and exc.attempts_left >= 0
        return f"invalid:{exc.attempts_left}"
    except (AlreadyResumed, NotPaused, ExecutionNotFound) as exc:
        return type(exc).__name__
    return "accepted"


def test_concurrent_invalid_resumes_use_each_attempt_once(shared: Storage, calls: Calls) -> None:
    paused = Approval.run()
    barrier = threading.Barrier(60)

    def resume(i: int) -> str:
        barrier.wait()
        if i % 2:
            return _outcome(lambda: Approval.resume_by_correlation_id("order-1", {"ok": "x"}))
        return _outcome(lambda: Approval.resume(paused.id, {"ok": "x"}))

    with concurrent.futures.ThreadPoolExecutor(60) as pool:
        outcomes = list(pool.map(resume, range(60)))
    assert sorted(o for o in outcomes if o.startswith("invalid")) == [
        "invalid:0",
        "invalid:1",
        "invalid:2",
    ]
    done = Approval.find(paused.id)
    assert done.cancelled and done.reason == "max_attempts"
    assert calls.count("release") == 1 and calls.count("ship") == 0


def test_a_valid_payload_during_the_cancel_is_refused_not_dropped(
    shared: Storage, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    paused = Approval.run()
    for _ in range(2):
        with pytest.raises(PayloadInvalid):
            Approval.resume(paused.id, {"ok": "x"})
    monkeypatch.setenv("DURABLE_SLEEP", "0.5")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        last = pool.submit(_outcome, lambda: Approval.resume(paused.id, {"ok": "x"}))
        while calls.count("release") == 0:  # the cancel is undoing `reserve`
            time.sleep(0.01)
        with pytest.raises(AlreadyResumed):
            Approval.resume(paused.id, {"ok": True})
        assert last.result() == "invalid:0"
    assert Approval.find(paused.id).cancelled
    assert calls.count("ship") == 0


# ------------------------------------------------- 7. every loser told the same


def test_every_loser_is_told_already_resumed_while_the_winner_runs(
    shared: Storage, calls: Calls, monkeypatch: pytest.MonkeyPatch
) -> None:
    paused = Approval.run()
    monkeypatch.setenv("DURABLE_SLEEP", "1.0")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        winner = pool.submit(Approval.resume, paused.id, {"ok": True})
        while calls.count("ship") == 0:
            time.sleep(0.01)
        for lose in (
            lambda: Approval.resume_by_correlation_id("order-1", {"ok": True}),
            lambda: Approval.resume(paused.id, {"ok": True}),
            lambda: Approval.resume(paused.id, {"ok": True}, step="approval"),
        ):
            with pytest.raises(AlreadyResumed):
                lose()
        assert winner.result(timeout=10).completed
    assert calls.count("ship") == 1


# ------------------------------------------ 9. observability never breaks a run


def test_a_raising_middleware_hook_is_reported_once_and_ignored(memory_storage: Storage) -> None:
    def hook(event: str, fields: dict[str, Any]) -> None:
        raise RuntimeError("sink down")

    saved = get_config().middleware
    configure(middleware=[hook])
    try:
        with pytest.warns(ReactorWarning, match="sink down") as warned:
            done = Chain.run()
            again = Chain.run()
    finally:
        configure(middleware=saved)
    assert done.completed and again.completed
    assert len(warned) == 1


class _Asked(Reactor):
    """Its last step stores an undo request, as another process does when it asks the
    running owner to undo (an interrupt out of attempts, a fanned-out parent cancelled)."""

    undone: list[str] = []

    @step
    def book(self) -> str:
        return "slot-1"

    @book.undo
    def unbook(self, result: str) -> None:
        _Asked.undone.append(result)

    @step
    async def close(self, book: str, context: Context) -> str:
        storage = get_config().storage
        stored = await storage.load(context.execution_id)
        assert stored is not None
        body = json.loads(stored.body)
        body["undo_request"] = "asked"
        await storage.write(
            stored.evolve(body=json.dumps(body)),
            expected_version=stored.version,
            lease_seconds=30,
        )
        return book


@pytest.mark.usefixtures("redis_reactor")
def test_an_undo_request_that_arrives_as_the_run_finishes_undoes_it() -> None:
    _Asked.undone.clear()
    ex = _Asked.run()
    # Not merely marked cancelled with its steps left done: undone, once.
    assert (ex.status, ex.reason) == (Status.CANCELLED, "asked")
    assert _Asked.undone == ["slot-1"]
    assert _Asked.find(ex.id).status is Status.CANCELLED
