"""``Execution.raise_for_status()`` and ``ExecutionFailed``."""

from __future__ import annotations

import pickle
import traceback
from collections.abc import Callable

import pytest

import reactor
from reactor import (
    Execution,
    ExecutionFailed,
    Halt,
    Reactor,
    ReactorError,
    Status,
    errors,
    interrupt,
    step,
)

pytestmark = pytest.mark.usefixtures("memory_storage")


class Shipping(Reactor):
    @step
    def book(self) -> str:
        return "slot-1"

    @book.undo
    def unbook(self, result: str) -> None:
        raise RuntimeError(f"cannot unbook {result}")

    @step
    def label(self, book: str) -> str:
        raise ValueError(f"no label for {book}")


class Outcomes(Reactor):
    @step
    def decide(self) -> object:
        return Halt("nothing to do")


class Waits(Reactor):
    @interrupt()
    def approval(self) -> None:
        return None


def test_a_failed_execution_raises_with_its_failure() -> None:
    ex = Shipping.run()
    assert ex.failed

    with pytest.raises(ExecutionFailed) as info:
        ex.raise_for_status()
    error = info.value
    assert isinstance(error, ReactorError)
    assert error.failure == ex.error
    assert (error.reactor, error.execution_id, error.step) == (Shipping.name, ex.id, "label")
    assert str(error) == (
        "the execution failed: ValueError: no label for slot-1 (1 rollback hook(s) failed too)"
        f" [reactor={Shipping.name!r}, execution={ex.id!r}, step='label']"
    )
    # The step's stored traceback is printed with the error, as its cause.
    printed = "".join(traceback.format_exception(error))
    assert 'raise ValueError(f"no label for {book}")' in printed
    assert "direct cause of the following exception" in printed
    # Errors stay picklable, failure included.
    assert pickle.loads(pickle.dumps(error)).failure == ex.error


@pytest.mark.parametrize(
    ("run", "status"),
    [
        (lambda: Outcomes.run(), Status.HALTED),
        (lambda: Waits.run(), Status.PAUSED),
        (lambda: Waits.cancel(Waits.run().id), Status.CANCELLED),
    ],
)
def test_other_statuses_return_the_execution_itself(
    run: Callable[[], Execution], status: Status
) -> None:
    ex = run()
    assert ex.status is status
    assert ex.raise_for_status() is ex


def test_a_completed_run_chains() -> None:
    ex = Waits.run(interrupt_handler=lambda pending: {"ok": True}).raise_for_status()
    assert ex.completed and ex.result == {"ok": True}


def test_exported_from_the_package_and_the_errors_module() -> None:
    assert reactor.ExecutionFailed is errors.ExecutionFailed
    assert reactor.ReactorWarning is errors.ReactorWarning
    assert {"ExecutionFailed", "ReactorWarning"} <= set(reactor.__all__) & set(errors.__all__)
    assert "ExecutionFailed" in (errors.__doc__ or "")
    assert "ReactorWarning" in (errors.__doc__ or "")
