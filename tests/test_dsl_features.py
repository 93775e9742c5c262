"""Guards, output schemas, redaction, breakpoints, edits, operator pauses, compose retries,
the trace and mock_step -- on both stores (``reactor_backend``)."""

from __future__ import annotations

import json
import logging
from typing import Any

import dsl_app as app
import pytest

from reactor import (
    AlreadyResumed,
    DefinitionError,
    Input,
    InputInvalid,
    NotPaused,
    OutputInvalid,
    Reactor,
    ReactorError,
    Storage,
    step,
)
from reactor.testing import mock_step

pytestmark = pytest.mark.usefixtures("reactor_backend")


@pytest.fixture(autouse=True)
def _calls() -> None:
    app.CALLS.clear()


def _events(trace: Any) -> list[tuple[str, str | None]]:
    return [(entry.event, entry.step) for entry in trace]


# ------------------------------------------------------------------------ when=


def test_a_guarded_step_is_skipped_its_dependents_run_and_it_is_never_undone() -> None:
    ex = app.Guarded.run(amount=-5)
    assert ex.failed and ex.error is not None and ex.error.step == "charge"
    # review skipped (default recorded), charge ran with it, rollback undid only reserve.
    assert app.CALLS == ["reserve", "charge", "undo reserve"]
    assert ("step.skipped", "review") in _events(ex.trace)
    assert ("step.undone", "review") not in _events(ex.trace)


def test_a_guarded_step_records_its_default_and_runs_when_true() -> None:
    skipped = app.Guarded.run(amount=5).raise_for_status()
    assert skipped.results["review"] == "no review"
    assert skipped.result == "charged 5 (no review)"
    ran = app.Guarded.run(amount=500).raise_for_status()
    assert ran.result == "charged 500 (reviewed)"
    assert app.CALLS.count("review") == 1


def test_mermaid_marks_guarded_steps() -> None:
    text = app.Guarded.mermaid()
    assert 'review["review ↺ (when)"]' in text
    assert "class review guarded" in text and "classDef guarded" in text


def test_a_when_predicate_naming_an_unknown_parameter_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="nope"):

        class Bad(Reactor):
            @step(when=lambda nope: True)
            def a(self) -> int:
                return 1


def test_a_default_without_when_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="needs when="):

        class Bad(Reactor):
            @step(default=0)
            def a(self) -> int:
                return 1


# ---------------------------------------------------------------- output_schema=


def test_a_result_failing_its_output_schema_fails_without_retry_and_rolls_back() -> None:
    ex = app.Validated.run(bad=True)
    assert ex.failed and ex.error is not None
    assert (ex.error.step, ex.error.type) == ("quote", "OutputInvalid")
    assert "total" in ex.error.message
    # One attempt, no retry; the step's own undo runs not (it failed), the first's does.
    assert app.CALLS == ["first", "quote", "undo first"]
    assert app.Validated.run().raise_for_status().result == 20


def test_an_invalid_output_schema_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="output schema is invalid"):

        class Bad(Reactor):
            @step(output_schema={"type": "nonsense"})
            def a(self) -> int:
                return 1


# ----------------------------------------------------------------- redact=True


def test_a_redacted_input_is_absent_from_logs_errors_and_trace(
    reactor_events: list[tuple[str, dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="reactor"):
        ex = app.Secretive.run(token=app.SECRET, execution_id="secretive-1")
    assert app.CALLS == ["login True"]  # the step got it unmasked
    assert ex.failed and ex.error is not None
    texts = [
        ex.error.message,
        ex.error.traceback or "",
        *(f.message for f in ex.error.rollback_failures),
        *(repr(entry) for entry in ex.trace),
        *(json.dumps(fields, default=repr) for _, fields in reactor_events),
        caplog.text,
    ]
    assert "***" in ex.error.message and ex.error.rollback_failures
    assert all(app.SECRET not in text for text in texts)
    stored = app.Secretive.find(ex.id)
    assert stored.error is not None and app.SECRET not in stored.error.message
    with pytest.raises(InputInvalid) as invalid:
        app.Secretive.run(token="no")
    assert invalid.value.errors["token"] == "*** fails the schema's 'minLength' rule"
    assert "'no'" not in str(invalid.value)


# ------------------------------------------------------------------ breakpoints


def test_a_breakpoint_before_a_step_pauses_and_resume_continues() -> None:
    ex = app.Guarded.run(amount=5, breakpoints=["before:charge"])
    assert ex.paused and [p.step for p in ex.interrupts] == ["before:charge"]
    assert ex.interrupts[0].kind == "breakpoint"
    assert app.CALLS == ["reserve"]
    done = app.Guarded.resume(ex.id, None, principal="ops")
    assert done.completed and done.result == "charged 5 (no review)"
    assert ("resumed", "before:charge") in _events(done.trace)
    assert any(e.principal == "ops" for e in done.trace if e.event == "resumed")
    with pytest.raises((AlreadyResumed, NotPaused)):
        app.Guarded.resume(ex.id, None, step="before:charge")


def test_a_breakpoint_naming_no_step_is_refused_before_anything_runs() -> None:
    with pytest.raises(InputInvalid, match="names no step"):
        app.Guarded.run(amount=5, breakpoints=["before:nope"])
    assert app.CALLS == []
    with pytest.raises(InputInvalid, match='takes "before:" only'):
        app.Edited.run(breakpoints=["after:approval"])
    with pytest.raises(DefinitionError, match="names no step"):

        class Bad(Reactor):
            breakpoints = ["after:nope"]

            @step
            def a(self) -> int:
                return 1


def test_a_breakpoint_inside_a_compose_child_and_the_childs_own() -> None:
    ex = app.Order.run(breakpoints=["before:payment.charge"])
    # The child class declares "after:authorize", which comes first.
    assert [p.step for p in ex.interrupts] == ["after:payment.authorize"]
    ex = app.Order.resume(ex.id, None)
    assert [p.step for p in ex.interrupts] == ["before:payment.charge"]
    assert app.CALLS == ["reserve", "authorize"]
    ex = app.Order.resume(ex.id, None, step="before:payment.charge")
    assert ex.completed and ex.result == "shipped after charged 5"
    assert app.CALLS == ["reserve", "authorize", "charge", "ship"]


def test_a_breakpoint_inside_map_elements() -> None:
    ex = app.Lines.run(lines=[1, 2, 3], breakpoints=["before:picked[1].pick"])
    assert [p.step for p in ex.interrupts] == ["before:picked[1].pick"]
    assert sorted(app.CALLS) == ["pick 1", "pick 3"]
    done = app.Lines.resume(ex.id, None)
    assert done.completed and done.result == [10, 20, 30]
    every = app.Lines.run(lines=[1, 2], breakpoints=["before:picked.pick"])
    assert sorted(p.step for p in every.interrupts) == [
        "before:picked[0].pick",
        "before:picked[1].pick",
    ]
    every = app.Lines.resume(every.id, None, step="before:picked[0].pick")
    assert [p.step for p in every.interrupts] == ["before:picked[1].pick"]
    assert app.Lines.resume(every.id, None).result == [10, 20]


# -------------------------------------------------------------------- update=


def test_resume_with_update_replaces_a_result_and_records_it() -> None:
    ex = app.Edited.run()
    done = app.Edited.resume(ex.id, {"ok": 1}, update={"price": 7}, principal="ann")
    assert done.completed and done.result == "invoice 7"
    edited = [e for e in done.trace if e.event == "step.edited"]
    assert [(e.step, e.principal) for e in edited] == [("price", "ann")]


def test_an_edit_failing_its_output_schema_is_refused_and_nothing_changes(
    reactor_backend: Storage,
) -> None:
    from reactor._sync import run_sync

    ex = app.Edited.run()
    before = run_sync(reactor_backend.load(ex.id))
    with pytest.raises(OutputInvalid) as refused:
        app.Edited.resume(ex.id, {"ok": 1}, update={"price": -1})
    assert isinstance(refused.value, ReactorError) and refused.value.step == "price"
    with pytest.raises(ReactorError, match="not a completed step"):
        app.Edited.resume(ex.id, {"ok": 1}, update={"invoice": "x"})
    after = run_sync(reactor_backend.load(ex.id))
    assert before is not None and after is not None
    assert (after.version, after.body, after.status) == (before.version, before.body, before.status)
    assert app.Edited.resume(ex.id, {"ok": 1}).result == "invoice 10"


# ---------------------------------------------------------------- compose retry


def test_compose_retry_undoes_the_first_attempt_before_the_second() -> None:
    ex = app.Trip.run(fail_times=1).raise_for_status()
    assert ex.result == "confirmed on attempt 2"
    assert app.CALLS == [
        "plan",
        "book",
        "confirm",
        "compensate confirm",
        "undo book",
        "book",
        "confirm",
    ]
    assert ("step.retried", "booking") in _events(ex.trace)


def test_compose_retries_exhausted_fail_the_parent() -> None:
    ex = app.Trip.run(fail_times=9)
    assert ex.failed and ex.error is not None and ex.error.step == "booking.confirm"
    assert app.CALLS.count("book") == 3
    assert app.CALLS[-3:] == ["compensate confirm", "undo book", "undo plan"]
    assert app.CALLS.count("undo book") == 3


# ------------------------------------------------------------------- suspend


def test_suspend_in_process_and_of_an_ended_execution() -> None:
    holder: dict[str, Any] = {}

    class Stoppable(Reactor):
        name = "dsl.Stoppable"

        @step
        def a(self, context: Any) -> int:
            holder["ex"] = Stoppable.suspend(context.execution_id, "now")
            return 1

        @step
        def b(self, a: int) -> int:
            return a + 1

    ex = Stoppable.run()
    assert ex.paused and [p.step for p in ex.interrupts] == ["suspended"]
    assert ex.results == {"a": 1}
    done = Stoppable.resume(ex.id, None, step="suspended")
    assert done.completed and done.result == 2
    with pytest.raises(NotPaused):
        Stoppable.suspend(ex.id)


# ------------------------------------------------------------------ cancel/undo


def test_principals_of_cancel_and_undo_are_in_the_trace() -> None:
    ex = app.Edited.run()
    cancelled = app.Edited.cancel(ex.id, "no", principal="bob")
    assert [(e.event, e.principal) for e in cancelled.trace if e.principal] == [
        ("cancelled", "bob")
    ]
    ex = app.Edited.run()
    undone = app.Edited.undo(ex.id, principal="eve")
    assert ("undone", "eve") in [(e.event, e.principal) for e in undone.trace]
    stored = app.Edited.find(ex.id).trace
    # Stored to the millisecond.
    assert [(e.event, e.step, e.principal) for e in stored] == [
        (e.event, e.step, e.principal) for e in undone.trace
    ]
    assert all(abs(a.time - b.time) < 0.001 for a, b in zip(stored, undone.trace, strict=True))


def test_the_trace_lists_step_events_with_attempts() -> None:
    ex = app.Guarded.run(amount=500)
    assert [(e.event, e.step, e.attempt) for e in ex.trace] == [
        ("step.started", "reserve", 1),
        ("step.completed", "reserve", 1),
        ("step.started", "review", 1),
        ("step.completed", "review", 1),
        ("step.started", "charge", 1),
        ("step.completed", "charge", 1),
    ]
    assert all(isinstance(e.time, float) for e in ex.trace)


def test_the_trace_is_bounded() -> None:
    class Many(Reactor):
        name = "dsl.Many"

        @step(retries=400)
        def a(self, context: Any) -> int:
            if context.attempt < 400:
                raise ValueError("again")
            return 1

    ex = Many.run()
    assert ex.completed and len(ex.trace) == 500
    assert ex.trace[-1].event == "step.completed"


# ------------------------------------------------------------------ mock_step


def test_mock_step_replaces_a_body_for_the_block() -> None:
    with mock_step(app.Guarded, "charge", returns="mocked") as charge:
        assert app.Guarded.run(amount=5).result == "mocked"
    assert charge.calls == [{"review": "no review", "amount": 5}]
    with mock_step(app.Guarded, "charge", raises=ConnectionError("down")):
        ex = app.Guarded.run(amount=5)
    assert ex.failed and ex.error is not None and ex.error.type == "ConnectionError"
    assert app.Guarded.run(amount=5).result == "charged 5 (no review)"
    with pytest.raises(ReactorError), mock_step(app.Guarded, "nope", returns=1):
        pass


def test_redact_is_an_input_option() -> None:
    assert Input(redact=True).redact and not Input().redact


async def test_a_worker_recovering_an_execution_carries_out_its_pause_request(
    reactor_backend: Storage,
) -> None:
    storage = reactor_backend
    from reactor import _actions, _codec
    from reactor._body import load_body
    from reactor._executor import Run, Stop

    plan = app.Guarded.__reactor_plan__
    run = Run(plan, "recovered-1", storage, {"amount": 5})
    run.inputs_tree = _codec.encode({"amount": 5})
    run.request_stop(Stop.PAUSE, "ops")
    # A shutdown (a stronger stop) does not lose the request: its checkpoint carries it.
    run.request_stop(Stop.SUSPENDED)
    assert load_body(run.body()).suspend_request == "ops"
    await run.write(lease_seconds=0)  # as a process that died, its lease run out
    ex = await _actions.recover(plan, storage, "recovered-1")
    assert ex is not None and ex.paused and ex.results == {}
    assert [(p.step, p.request) for p in ex.interrupts] == [("suspended", {"reason": "ops"})]
    done = await app.Guarded.aresume("recovered-1", None, step="suspended")
    assert done.completed and done.result == "charged 5 (no review)"
