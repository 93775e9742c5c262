"""Running and rolling back: exact call order, retries, Halt/Skip, concurrency."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from reactor import Halt, Input, Reactor, Skip, Status, result, step, value
from reactor import input as input_

pytestmark = pytest.mark.usefixtures("memory_storage")


class Recorder(list[str]):
    """Call order shared by the steps of one test."""


def test_failure_compensates_the_failing_step_then_undoes_in_reverse() -> None:
    calls = Recorder()

    class Saga(Reactor):
        @step
        def a(self) -> str:
            calls.append("run a")
            return "A"

        @a.undo
        def undo_a(self, result: str) -> None:
            calls.append(f"undo a({result})")

        @step
        def b(self, a: str) -> str:
            calls.append("run b")
            return a + "B"

        @b.undo
        def undo_b(self, result: str) -> None:
            calls.append(f"undo b({result})")

        @step
        def c(self, b: str) -> str:
            calls.append("run c")
            raise RuntimeError("card declined")

        @c.compensate
        def compensate_c(self, error: Exception, b: str) -> None:
            calls.append(f"compensate c({error}, {b})")

        @c.undo
        def undo_c(self, result: str) -> None:
            calls.append("undo c")  # never: c did not complete

    ex = Saga.run()
    assert calls == [
        "run a",
        "run b",
        "run c",
        "compensate c(card declined, AB)",
        "undo b(AB)",
        "undo a(A)",
    ]
    assert ex.status is Status.FAILED and ex.failed
    assert ex.error is not None
    assert (ex.error.step, ex.error.type, ex.error.message) == (
        "c",
        "RuntimeError",
        "card declined",
    )
    assert "card declined" in (ex.error.traceback or "")
    assert ex.error.rollback_failures == []
    assert Saga.find(ex.id).status is Status.FAILED


def test_retried_until_success() -> None:
    attempts: list[int] = []

    class Flaky(Reactor):
        @step(retries=3)
        def call_api(self, context) -> str:  # type: ignore[no-untyped-def]
            attempts.append(context.attempt)
            if len(attempts) < 3:
                raise ConnectionError("try again")
            return context.idempotency_key

    ex = Flaky.run()
    assert ex.completed
    assert attempts == [1, 2, 3]
    assert ex.result == f"{ex.id}:call_api"


def test_retries_exhausted_compensate_once_then_undo_in_reverse() -> None:
    calls = Recorder()

    class Saga(Reactor):
        @step
        def a(self) -> int:
            calls.append("run a")
            return 1

        @a.undo
        def undo_a(self) -> None:
            calls.append("undo a")

        @step
        def b(self, a: int) -> int:
            calls.append("run b")
            return 2

        @b.undo
        def undo_b(self) -> None:
            calls.append("undo b")

        @step(retries=2, backoff="exponential", base_delay=0.001)
        def c(self, b: int) -> int:
            calls.append("run c")
            raise TimeoutError("upstream")

        @c.compensate
        def compensate_c(self) -> None:
            calls.append("compensate c")

    ex = Saga.run()
    assert calls == [
        "run a",
        "run b",
        "run c",
        "run c",
        "run c",
        "compensate c",
        "undo b",
        "undo a",
    ]
    assert ex.error is not None and ex.error.type == "TimeoutError"


def test_retry_on_excluding_an_error_does_not_retry() -> None:
    calls = Recorder()

    class Saga(Reactor):
        @step(retries=5, retry_on=ConnectionError)
        def charge(self) -> int:
            calls.append("run charge")
            raise ValueError("invalid card")

        @charge.compensate
        def compensate(self) -> None:
            calls.append("compensate charge")

    ex = Saga.run()
    assert calls == ["run charge", "compensate charge"]
    assert ex.error is not None and ex.error.type == "ValueError"


def test_failing_compensate_and_undo_are_recorded_and_rollback_goes_on() -> None:
    calls = Recorder()

    class Saga(Reactor):
        @step
        def a(self) -> int:
            return 1

        @a.undo
        def undo_a(self) -> None:
            calls.append("undo a")

        @step
        def b(self, a: int) -> int:
            return 2

        @b.undo
        def undo_b(self) -> None:
            calls.append("undo b")
            raise OSError("refund service down")

        @step
        def c(self, b: int) -> int:
            raise RuntimeError("boom")

        @c.compensate
        def compensate_c(self) -> None:
            calls.append("compensate c")
            raise KeyError("alert channel")

    ex = Saga.run()
    assert calls == ["compensate c", "undo b", "undo a"]
    assert ex.error is not None
    failures = [(f.step, f.kind, f.message) for f in ex.error.rollback_failures]
    assert failures == [
        ("c", "compensate", "KeyError: 'alert channel'"),
        ("b", "undo", "OSError: refund service down"),
    ]
    stored = Saga.find(ex.id)
    assert stored.error == ex.error


def test_halt_stops_cleanly_and_undoes_nothing() -> None:
    calls = Recorder()

    class Saga(Reactor):
        @step
        def a(self) -> int:
            calls.append("run a")
            return 1

        @a.undo
        def undo_a(self) -> None:
            calls.append("undo a")

        @step
        def check(self, a: int) -> Halt:
            calls.append("run check")
            return Halt("nothing to do today")

        @step
        def later(self, check: object) -> None:
            calls.append("run later")

    ex = Saga.run()
    assert ex.status is Status.HALTED and ex.halted
    assert ex.reason == "nothing to do today"
    assert calls == ["run a", "run check"]
    assert ex.results == {"a": 1}


def test_skip_value_is_recorded_and_never_undone() -> None:
    calls = Recorder()

    class Saga(Reactor):
        @step
        def a(self) -> int:
            return 1

        @a.undo
        def undo_a(self) -> None:
            calls.append("undo a")

        @step
        def reserve(self, a: int) -> Skip[str]:
            return Skip("already reserved")

        @reserve.undo
        def release(self) -> None:
            calls.append("undo reserve")

        @step
        def fail(self, reserve: str) -> None:
            calls.append(f"fail sees {reserve}")
            raise RuntimeError("x")

    ex = Saga.run()
    assert calls == ["fail sees already reserved", "undo a"]
    assert ex.results["reserve"] == "already reserved"


def test_undo_of_a_completed_execution_runs_in_reverse_and_cancels() -> None:
    calls = Recorder()

    class Saga(Reactor):
        @step
        def a(self) -> int:
            return 1

        @a.undo
        def undo_a(self, result: int) -> None:
            calls.append(f"undo a {result}")

        @step
        def b(self, a: int) -> int:
            return 2

        @b.undo
        def undo_b(self, result: int, a: int) -> None:
            calls.append(f"undo b {result} {a}")

    ex = Saga.run()
    assert ex.completed and ex.result == 2
    undone = Saga.undo(ex.id)
    assert calls == ["undo b 2 1", "undo a 1"]
    assert undone.status is Status.CANCELLED and undone.reason == "undo"
    assert Saga.find(ex.id).cancelled


def test_undo_of_a_failed_execution_does_not_undo_twice() -> None:
    calls = Recorder()

    class Saga(Reactor):
        @step
        def a(self) -> int:
            return 1

        @a.undo
        def undo_a(self) -> None:
            calls.append("undo a")

        @step
        def b(self, a: int) -> int:
            raise RuntimeError("x")

    ex = Saga.run()
    assert calls == ["undo a"]
    assert Saga.undo(ex.id).cancelled
    assert calls == ["undo a"]


def test_argument_errors_are_not_retried_nor_compensated() -> None:
    calls = Recorder()

    class Saga(Reactor):
        @step
        def a(self) -> dict[str, int]:
            return {"x": 1}

        @a.undo
        def undo_a(self) -> None:
            calls.append("undo a")

        @step(retries=3, args={"y": result("a", "missing")})
        def b(self, y: int) -> int:
            calls.append("run b")
            return y

        @b.compensate
        def comp(self) -> None:
            calls.append("compensate b")

    ex = Saga.run()
    assert calls == ["undo a"]
    assert ex.error is not None and ex.error.step == "b" and "missing" in ex.error.message


def test_args_sources_and_returns() -> None:
    class Quote(Reactor):
        order = Input(schema={"type": "object"})
        returns = "summary"

        @step(
            args={
                "price": result("lookup", "prices.1"),
                "qty": value(3),
                "sku": input_("order", "sku"),
            }
        )
        def total(self, price: int, qty: int, sku: str) -> str:
            return f"{sku}:{price * qty}"

        @step
        def lookup(self) -> dict[str, list[int]]:
            return {"prices": [5, 7]}

        @step
        def summary(self, total: str) -> str:
            return total.upper()

        @step
        def audit(self, summary: str) -> None:
            pass

    ex = Quote.run(order={"sku": "ab"})
    assert ex.result == "AB:21"
    assert ex.results["total"] == "ab:21"


def test_async_steps_run_concurrently() -> None:
    class Fanout(Reactor):
        @step
        async def a(self) -> int:
            await asyncio.sleep(0.2)
            return 1

        @step
        async def b(self) -> int:
            await asyncio.sleep(0.2)
            return 2

        @step
        async def c(self) -> int:
            await asyncio.sleep(0.2)
            return 3

        @step
        async def d(self) -> int:
            await asyncio.sleep(0.2)
            return 4

        @step
        async def e(self) -> int:
            await asyncio.sleep(0.2)
            return 5

        @step
        def total(self, a: int, b: int, c: int, d: int, e: int) -> int:
            return a + b + c + d + e

    started = time.perf_counter()
    ex = Fanout.run()
    elapsed = time.perf_counter() - started
    assert ex.result == 15
    assert elapsed < 0.6

    started = time.perf_counter()
    assert Fanout.run(max_concurrency=1).result == 15
    assert time.perf_counter() - started >= 1.0


def test_max_concurrency_one_runs_steps_one_at_a_time() -> None:
    active = 0
    peak = 0

    async def body() -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1

    class Fanout(Reactor):
        max_concurrency = 1

        @step
        async def a(self) -> None:
            await body()

        @step
        async def b(self) -> None:
            await body()

        @step
        async def c(self) -> None:
            await body()

    assert Fanout.run().completed
    assert peak == 1
    peak = 0
    assert Fanout.run(max_concurrency=3).completed
    assert peak == 3


def test_sync_steps_run_concurrently_off_the_loop() -> None:
    barrier = threading.Barrier(3, timeout=2)

    class Blocking(Reactor):
        @step
        def a(self) -> str:
            barrier.wait()
            return threading.current_thread().name

        @step
        def b(self) -> str:
            barrier.wait()
            return threading.current_thread().name

        @step
        def c(self) -> str:
            barrier.wait()
            return threading.current_thread().name

    ex = Blocking.run()  # would deadlock on the barrier if the steps ran one by one
    assert ex.completed
    assert len(set(ex.results.values())) == 3


def test_concurrent_failure_undoes_completed_siblings_and_leaves_nothing_running() -> None:
    calls = Recorder()
    running: set[str] = set()

    class Fanout(Reactor):
        @step
        async def fast(self) -> str:
            running.add("fast")
            await asyncio.sleep(0.01)
            running.discard("fast")
            calls.append("done fast")
            return "fast"

        @fast.undo
        def undo_fast(self) -> None:
            calls.append("undo fast")

        @step
        async def slow(self) -> str:
            running.add("slow")
            await asyncio.sleep(0.15)
            running.discard("slow")
            calls.append("done slow")
            return "slow"

        @slow.undo
        def undo_slow(self) -> None:
            calls.append("undo slow")

        @step
        async def boom(self) -> None:
            await asyncio.sleep(0.05)
            calls.append("fail boom")
            raise RuntimeError("boom")

        @step
        def after(self, fast: str, slow: str, boom: None) -> None:
            calls.append("run after")

    ex = Fanout.run()
    assert ex.failed
    assert running == set()
    assert calls == ["done fast", "fail boom", "done slow", "undo slow", "undo fast"]


def test_timeout_bounds_one_attempt() -> None:
    attempts: list[int] = []

    class Slow(Reactor):
        @step(timeout=0.05, retries=1)
        async def call(self, context) -> None:  # type: ignore[no-untyped-def]
            attempts.append(context.attempt)
            await asyncio.sleep(1)

    started = time.perf_counter()
    ex = Slow.run()
    assert time.perf_counter() - started < 0.5
    assert attempts == [1, 2]
    assert ex.error is not None and ex.error.type == "TimeoutError"


def test_arun_in_a_running_loop_and_run_refusing_it() -> None:
    class One(Reactor):
        x = Input(default=2)

        @step
        def double(self, x: int) -> int:
            return x * 2

    async def main() -> int:
        with pytest.raises(RuntimeError, match="arun"):
            One.run()
        ex = await One.arun(x=5)
        return ex.result  # type: ignore[no-any-return]

    assert asyncio.run(main()) == 10
