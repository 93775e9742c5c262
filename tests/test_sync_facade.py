"""The sync facade's eager start on the memory store (reactor._sync): a run that never
suspends completes without an event loop iteration, and whatever suspends or needs a task
continues as one, with the semantics of a task."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest

from reactor import Input, InputInvalid, PendingInterrupt, Reactor, interrupt, step

pytestmark = pytest.mark.usefixtures("memory_storage")

_seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="caller")


def _loop_iterations(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the event loop runs the facade makes."""
    calls: list[int] = []
    original = asyncio.BaseEventLoop.run_until_complete

    def counted(self: asyncio.BaseEventLoop, future: Any) -> Any:
        calls.append(1)
        return original(self, future)

    monkeypatch.setattr(asyncio.BaseEventLoop, "run_until_complete", counted)
    return calls


class Chain(Reactor):
    x = Input(default=1)

    @step
    def a(self, x: int) -> int:
        # A sync step runs inline, with the facade's loop running, as before.
        asyncio.get_running_loop()
        _seen.set("a")
        return x + 1

    @step
    def b(self, a: int) -> int:
        return a * 10


def test_a_run_that_never_suspends_makes_no_loop_iteration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    iterations = _loop_iterations(monkeypatch)
    ex = Chain.run(x=2)
    assert ex.completed and ex.result == 30
    assert Chain.find(ex.id).result == 30
    assert iterations == []


def test_a_context_variable_set_by_a_step_stays_in_the_run() -> None:
    assert Chain.run().completed
    assert _seen.get() == "caller"


class Timed(Reactor):
    @step
    def first(self) -> int:
        return 1

    @step
    async def fetch(self, first: int) -> bool:
        _seen.set("fetch")
        # asyncio.timeout() needs a task: the run hands itself to one before this step.
        async with asyncio.timeout(5):
            await asyncio.sleep(0.001)
        return asyncio.current_task() is not None

    @step
    def last(self, fetch: bool) -> bool:
        return fetch


def test_an_async_step_after_sync_ones_runs_in_a_task(monkeypatch: pytest.MonkeyPatch) -> None:
    iterations = _loop_iterations(monkeypatch)
    ex = Timed.run()
    assert ex.completed, ex.error
    assert ex.result is True
    assert iterations == [1]  # the rest of the run, from the async step on
    assert _seen.get() == "caller"


class Approval(Reactor):
    @interrupt(schema={"type": "object"})
    def approve(self) -> dict[str, Any]:
        return {}

    @step
    def done(self, approve: dict[str, Any]) -> bool:
        return bool(approve["ok"])


def test_an_async_interrupt_handler_runs_in_a_task() -> None:
    async def handler(pending: PendingInterrupt) -> dict[str, Any]:
        async with asyncio.timeout(5):
            await asyncio.sleep(0)
        return {"ok": asyncio.current_task() is not None}

    ex = Approval.run(interrupt_handler=handler)
    assert ex.completed, ex.error
    assert ex.result is True


class Retried(Reactor):
    @step(retries=2, base_delay=0.001)
    def flaky(self) -> int:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("again")
        return len(calls)


calls: list[int] = []


def test_a_retry_delay_suspends_and_the_run_goes_on() -> None:
    calls.clear()
    ex = Retried.run()
    assert ex.completed, ex.error
    assert ex.result == 3


class Outer(Reactor):
    @step
    def nested(self) -> int:
        # The sync API called from a step running inline: the loop is busy, so the inner
        # call runs on a thread of its own (as without the eager start).
        return Chain.run(x=4).result  # type: ignore[no-any-return]


def test_the_sync_api_called_from_a_step() -> None:
    assert Outer.run().result == 50


def test_an_error_before_anything_runs_is_raised_as_it_is() -> None:
    with pytest.raises(InputInvalid):
        Chain.run(x=1, y=2)
