"""run()/arun(): inputs, ids, idempotency, events, cancel while running, graph."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import reactor
from reactor import (
    ExecutionNotFound,
    Input,
    InputInvalid,
    NotPaused,
    Reactor,
    Status,
    StorageError,
    step,
)

pytestmark = pytest.mark.usefixtures("memory_storage")


class Charge(Reactor):
    amount = Input(schema={"type": "integer", "minimum": 1})
    currency = Input(default="EUR")

    @step
    def charge(self, amount: int, currency: str) -> str:
        return f"{amount} {currency}"


def test_inputs_are_checked_before_anything_runs() -> None:
    with pytest.raises(InputInvalid) as info:
        Charge.run(amount=0, colour="red")
    assert info.value.errors == {
        "amount": "0 is less than the minimum of 1",
        "colour": "unknown input",
    }
    assert "Charge" in str(info.value)
    with pytest.raises(InputInvalid, match="amount: missing"):
        Charge.run()
    assert Charge.run(amount=5).result == "5 EUR"


def test_execution_fields() -> None:
    ex = Charge.run(amount=5, currency="USD")
    assert len(ex.id) == 32 and int(ex.id, 16) >= 0
    assert ex.status is Status.COMPLETED and ex.completed and not ex.paused
    assert ex.results == {"charge": "5 USD"}
    assert ex.error is None and ex.interrupts == []
    assert ex.created_at is not None and ex.updated_at is not None
    assert Charge.find(ex.id) == ex


def test_caller_chosen_execution_id_is_refused_when_taken() -> None:
    ex = Charge.run(amount=5, execution_id="order-1")
    assert ex.id == "order-1"
    with pytest.raises(StorageError, match="exists already"):
        Charge.run(amount=5, execution_id="order-1")


def test_idempotency_key_returns_the_first_execution() -> None:
    runs: list[int] = []

    class Once(Reactor):
        amount = Input()

        @step
        def charge(self, amount: int) -> int:
            runs.append(amount)
            return amount

    first = Once.run(amount=1, idempotency_key="k1")
    second = Once.run(amount=2, idempotency_key="k1")
    assert second.id == first.id and second.result == 1
    assert runs == [1]
    assert Once.run(amount=3, idempotency_key="k2").result == 3


def test_find_unknown_and_of_another_reactor() -> None:
    with pytest.raises(ExecutionNotFound):
        Charge.find("nope")

    class Other(Reactor):
        @step
        def a(self) -> int:
            return 1

    ex = Other.run()
    with pytest.raises(ExecutionNotFound, match=r"another|belongs"):
        Charge.find(ex.id)


def test_cancel_of_a_running_execution_stops_it_before_its_next_step() -> None:
    ran: list[str] = []

    class Long(Reactor):
        @step
        def first(self, context: Any) -> int:
            ran.append("first")
            Long.cancel(context.execution_id, reason="user cancelled")
            return 1

        @first.undo
        def undo_first(self) -> None:
            ran.append("undo first")

        @step
        def second(self, first: int) -> int:
            ran.append("second")
            return 2

    ex = Long.run()
    assert ran == ["first"]
    assert ex.status is Status.CANCELLED and ex.reason == "user cancelled"
    stored = Long.find(ex.id)
    assert stored.cancelled and stored.results == {"first": 1}
    with pytest.raises(NotPaused, match="cancelled"):
        Long.cancel(ex.id)


def test_events_for_every_transition(reactor_events: list[tuple[str, dict[str, Any]]]) -> None:
    class Saga(Reactor):
        @step
        def a(self) -> int:
            return 1

        @a.undo
        def undo_a(self) -> None:
            pass

        @step
        def b(self, a: int) -> int:
            raise RuntimeError("x")

    ex = Saga.run()
    names = [(event, fields.get("step")) for event, fields in reactor_events]
    assert names == [
        ("reactor.execution.started", None),
        ("reactor.step.started", "a"),
        ("reactor.step.completed", "a"),
        ("reactor.step.started", "b"),
        ("reactor.step.failed", "b"),
        ("reactor.step.undone", "a"),
        ("reactor.execution.rolled_back", "b"),
        ("reactor.execution.failed", None),
    ]
    assert all(f["execution_id"] == ex.id and f["reactor"] == Saga.name for _, f in reactor_events)


def test_quiet_by_default_and_logs_through_stdlib_when_enabled(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    Charge.run(amount=1)
    assert capsys.readouterr() == ("", "")
    with caplog.at_level(logging.INFO, logger="reactor"):
        ex = Charge.run(amount=1)
    assert any(
        "reactor.step.completed" in r.getMessage() and ex.id in r.getMessage()
        for r in caplog.records
    )


def test_mermaid_graph() -> None:
    text = Charge.mermaid()
    assert text.startswith("flowchart TD\n")
    assert 'in_amount(["input: amount"])' in text
    assert "in_amount --> charge" in text


def test_public_api_is_exactly_all() -> None:
    # "@..." names are pytest's assertion-rewriting helpers (reactor.testing is a plugin).
    public = {name for name in dir(reactor) if not name.startswith(("_", "@"))}
    modules = {"errors", "storage", "schemas", "testing", "cli", "worker", "web", "celery"}
    assert public - modules == set(reactor.__all__) - {"schemas"}
    assert reactor.__all__ == sorted(reactor.__all__, key=lambda n: (n != "NOTHING", n))
