"""Interrupts: pause, strict and flexible resume, correlation ids, cancel, undo,
timeouts and early payloads -- against MemoryStorage and the real redis-server."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest

from reactor import (
    AlreadyResumed,
    AmbiguousStep,
    CorrelationConflict,
    ExecutionNotFound,
    Halt,
    Input,
    InputInvalid,
    InterruptTimeout,
    NotPaused,
    NotPending,
    PayloadInvalid,
    Reactor,
    SerializationError,
    Skip,
    Status,
    StorageError,
    configure,
    get_config,
    interrupt,
    schemas,
    step,
)
from reactor._sync import run_sync
from reactor.testing import FakeClock

pytestmark = pytest.mark.usefixtures("reactor_backend")
CALLS: list[str] = []


@pytest.fixture(autouse=True)
def _clear_calls() -> None:
    CALLS.clear()


@dataclasses.dataclass
class Report:
    status: str
    url: str
    ready_at: dt.datetime


class ReportFlow(Reactor):
    company_id = Input(schema={"type": "integer"})

    @step
    def request_report(self, company_id: int) -> int:
        CALLS.append("request_report")
        return company_id * 100

    @request_report.undo
    def cancel_report(self, result: int) -> None:
        CALLS.append(f"undo request_report {result}")

    @step
    def notify(self, request_report: int) -> str:
        CALLS.append("notify")
        return f"sent {request_report}"

    @notify.undo
    def unnotify(self) -> None:
        CALLS.append("undo notify")

    @interrupt(
        correlation_id=lambda request_report: f"report-{request_report}",
        schema={
            "type": "object",
            "required": ["status", "url", "ready_at"],
            "properties": {"status": {"type": "string"}, "url": {"type": "string"}},
        },
        max_attempts=3,
        wait_for="notify",
    )
    def wait_for_report(self, request_report: int) -> dict[str, Any]:
        return {"title": "Report requested", "report_id": request_report}

    @step
    def process(self, wait_for_report: Report) -> str:
        CALLS.append("process")
        assert isinstance(wait_for_report, Report)
        assert isinstance(wait_for_report.ready_at, dt.datetime)
        return wait_for_report.url.upper()


GOOD = {"status": "done", "url": "https://r/1", "ready_at": "2026-01-02T03:04:05+00:00"}


def test_pause_lists_the_pending_interrupt() -> None:
    ex = ReportFlow.run(company_id=7)
    assert ex.status is Status.PAUSED and ex.paused
    [pending] = ex.interrupts
    assert pending.step == "wait_for_report"
    assert pending.correlation_id == "report-700"
    assert pending.request == {"title": "Report requested", "report_id": 700}
    assert pending.schema is not None and pending.schema["required"] == [
        "status",
        "url",
        "ready_at",
    ]
    assert pending.deadline is None and pending.attempts_left == 3
    assert ReportFlow.find(ex.id) == ex
    assert ReportFlow.find_by_correlation_id("report-700").id == ex.id


def test_resume_by_correlation_id_completes_with_typed_payload() -> None:
    ex = ReportFlow.run(company_id=7)
    done = ReportFlow.resume_by_correlation_id("report-700", GOOD)
    assert done.id == ex.id and done.completed
    assert done.result == "HTTPS://R/1"
    assert CALLS == ["request_report", "notify", "process"]
    with pytest.raises(ExecutionNotFound):
        ReportFlow.find_by_correlation_id("report-700")  # released when it ended


def test_strict_invalid_payload_counts_attempts_then_cancels_with_undo() -> None:
    ex = ReportFlow.run(company_id=1)
    with pytest.raises(PayloadInvalid) as info:
        ReportFlow.resume(ex.id, {"status": 1})
    assert info.value.attempts_left == 2
    assert {e["path"] for e in info.value.errors} == {"/", "/status"}
    assert ReportFlow.find(ex.id).paused
    with pytest.raises(PayloadInvalid) as info:
        ReportFlow.resume(ex.id, {})
    assert info.value.attempts_left == 1
    assert ReportFlow.find(ex.id).interrupts[0].attempts_left == 1
    with pytest.raises(PayloadInvalid) as info:
        ReportFlow.resume(ex.id, {})
    assert info.value.attempts_left == 0
    ended = ReportFlow.find(ex.id)
    assert ended.status is Status.CANCELLED and ended.reason == "max_attempts"
    assert CALLS == ["request_report", "notify", "undo notify", "undo request_report 100"]
    with pytest.raises(NotPaused, match="max_attempts") as not_paused:
        ReportFlow.resume(ex.id, GOOD)
    assert not_paused.value.reason == "max_attempts"


def test_strict_valid_payload_after_invalid_ones_completes() -> None:
    ex = ReportFlow.run(company_id=1)
    with pytest.raises(PayloadInvalid):
        ReportFlow.resume(ex.id, {"url": "x"}, step="wait_for_report")
    assert ReportFlow.resume(ex.id, GOOD, step="wait_for_report").completed


class Approval(Reactor):
    order_id = Input()

    @step
    def reserve(self, order_id: str) -> str:
        CALLS.append("reserve")
        return f"r-{order_id}"

    @reserve.undo
    def release(self) -> None:
        CALLS.append("undo reserve")

    @interrupt(schema=schemas.confirmation(), correlation_id=lambda order_id: f"approve-{order_id}")
    def approval(self, reserve: str) -> dict[str, str]:
        return {"question": f"ship {reserve}?"}

    @step
    def ship(self, approval: dict[str, Any]) -> bool:
        CALLS.append("ship")
        return bool(approval["approved"])


def test_default_max_attempts_first_invalid_payload_cancels() -> None:
    ex = Approval.run(order_id="o1")
    with pytest.raises(PayloadInvalid) as info:
        Approval.resume(ex.id, {"approved": "yes"})
    assert info.value.attempts_left == 0
    assert Approval.find(ex.id).reason == "max_attempts"
    assert CALLS == ["reserve", "undo reserve"]


def test_flexible_resume_reports_errors_counts_nothing_never_cancels() -> None:
    ex = Approval.run(order_id="o1")
    handle = Approval.find(ex.id)
    for _ in range(3):
        again = handle.resume({"approved": "maybe"})
        assert again.paused
        assert again.validation_errors == [
            {"path": "/approved", "message": "'maybe' is not of type 'boolean'"}
        ]
    assert Approval.find(ex.id).interrupts[0].attempts_left == 1
    done = handle.resume({"approved": True, "responded_by": "ana"})
    assert done.completed and done.result is True
    assert done.validation_errors == []


def test_duplicate_resume_is_already_resumed() -> None:
    ex = Approval.run(order_id="o1")
    assert Approval.resume(ex.id, {"approved": True}, step="approval").completed
    with pytest.raises(AlreadyResumed):
        Approval.resume(ex.id, {"approved": True}, step="approval")
    with pytest.raises(NotPaused, match="completed"):
        Approval.resume(ex.id, {"approved": True})


def test_cancel_then_resume_names_the_reason_and_keeps_context() -> None:
    ex = Approval.run(order_id="o1")
    cancelled = Approval.cancel(ex.id, reason="customer changed their mind")
    assert cancelled.cancelled and cancelled.interrupts == []
    assert CALLS == ["reserve"]  # no compensation
    with pytest.raises(NotPaused, match="customer changed their mind") as info:
        Approval.resume(ex.id, {"approved": True})
    assert info.value.status == "cancelled"
    assert Approval.find(ex.id).results == {"reserve": "r-o1"}
    with pytest.raises(ExecutionNotFound):
        Approval.resume_by_correlation_id("approve-o1", {"approved": True})
    assert Approval.run(order_id="o1").paused  # the correlation id was released


def test_undo_of_a_paused_execution() -> None:
    class Two(Reactor):
        @step
        def a(self) -> int:
            return 1

        @a.undo
        def undo_a(self) -> None:
            CALLS.append("undo a")

        @step
        def b(self, a: int) -> int:
            return 2

        @b.undo
        def undo_b(self) -> None:
            CALLS.append("undo b")

        wait = interrupt(wait_for="b")

    ex = Two.run()
    assert ex.paused
    undone = Two.undo(ex.id)
    assert undone.status is Status.CANCELLED and undone.reason == "undo"
    assert CALLS == ["undo b", "undo a"]
    with pytest.raises(NotPaused):
        Two.resume(ex.id, {})


def test_unknown_ids() -> None:
    with pytest.raises(ExecutionNotFound):
        Approval.resume("0" * 32, {"approved": True})
    with pytest.raises(ExecutionNotFound):
        Approval.resume_by_correlation_id("approve-nobody", {"approved": True})
    with pytest.raises(ExecutionNotFound):
        Approval.cancel("nope")


def test_correlation_conflict_fails_the_second_execution_and_rolls_back() -> None:
    first = Approval.run(order_id="same")
    second = Approval.run(order_id="same")
    assert first.paused
    assert second.failed
    assert second.error is not None and second.error.type == "CorrelationConflict"
    assert second.error.step == "approval"
    assert CALLS == ["reserve", "reserve", "undo reserve"]
    assert Approval.find_by_correlation_id("approve-same").id == first.id
    assert issubclass(CorrelationConflict, Exception)


def in_thread(fn: Any, *args: Any) -> Any:
    """Call ``fn`` then close the storage clients of this thread's loop (the last of
    ``args`` is passed as ``step=`` when ``fn`` is a strict resume with three)."""
    try:
        if len(args) == 3:
            return fn(args[0], args[1], step=args[2])
        return fn(*args)
    finally:
        storage = get_config().storage
        assert storage is not None
        run_sync(storage.aclose())


class Parallel(Reactor):
    @step
    def start(self) -> int:
        return 1

    @interrupt(correlation_id=lambda start: f"left-{start}")
    def left(self, start: int) -> None:
        return None

    @interrupt(correlation_id=lambda start: f"right-{start}")
    def right(self, start: int) -> None:
        return None

    @step
    def join(self, left: Any, right: Any) -> list[Any]:
        CALLS.append("join")
        return [left, right]


def test_two_pending_interrupts_need_a_step_and_resume_in_either_order() -> None:
    ex = Parallel.run()
    assert sorted(i.step for i in ex.interrupts) == ["left", "right"]
    with pytest.raises(AmbiguousStep) as info:
        Parallel.resume(ex.id, 1)
    assert info.value.pending == ["left", "right"]
    with pytest.raises(NotPending, match="pending"):
        Parallel.resume(ex.id, 1, step="join")
    half = Parallel.resume_by_correlation_id("right-1", "R")
    assert half.paused and [i.step for i in half.interrupts] == ["left"]
    done = Parallel.resume_by_correlation_id("left-1", "L")
    assert done.completed and done.result == ["L", "R"]
    assert CALLS == ["join"]


def test_two_pending_interrupts_resumed_concurrently_join_runs_once() -> None:
    for _ in range(10):
        CALLS.clear()
        ex = Parallel.run()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(in_thread, Parallel.resume_by_correlation_id, "left-1", "L"),
                pool.submit(in_thread, Parallel.resume_by_correlation_id, "right-1", "R"),
            ]
            [f.result() for f in futures]
        final = Parallel.find(ex.id)
        assert final.completed, final
        assert final.result == ["L", "R"]
        assert CALLS == ["join"]


class Timed(Reactor):
    @step
    def a(self) -> int:
        return 1

    @a.undo
    def undo_a(self) -> None:
        CALLS.append("undo a")

    wait = interrupt(timeout=60, wait_for="a")

    @step
    def after(self, wait: Any) -> Any:
        CALLS.append(f"after {wait}")
        return wait


class TimedWithDefault(Timed):
    wait = interrupt(timeout=60, wait_for="a", on_timeout="default")  # type: ignore[assignment]


def test_lazy_timeout_on_resume_undoes_and_fails(reactor_clock: FakeClock) -> None:
    ex = Timed.run()
    deadline = ex.interrupts[0].deadline
    assert deadline == dt.datetime.fromtimestamp(reactor_clock.now + 60, dt.UTC)
    reactor_clock.advance(59)
    assert Timed.find(ex.id).paused
    reactor_clock.advance(2)
    with pytest.raises(InterruptTimeout):
        Timed.resume(ex.id, "late")
    failed = Timed.find(ex.id)
    assert failed.failed and failed.error is not None
    assert (failed.error.type, failed.error.step) == ("InterruptTimeout", "wait")
    assert CALLS == ["undo a"]


def test_lazy_timeout_fires_on_find(reactor_clock: FakeClock) -> None:
    ex = Timed.run()
    reactor_clock.advance(61)
    assert Timed.find(ex.id).failed
    assert CALLS == ["undo a"]


def test_on_timeout_resumes_with_that_payload(reactor_clock: FakeClock) -> None:
    ex = TimedWithDefault.run()
    reactor_clock.advance(61)
    with pytest.raises(AlreadyResumed, match="on_timeout"):
        TimedWithDefault.resume(ex.id, "late")
    done = TimedWithDefault.find(ex.id)
    assert done.completed and done.result == "default"
    assert CALLS == ["after default"]


class Webhook(Reactor):
    job = Input()

    @step
    def send_job(self, job: str) -> str:
        CALLS.append("send_job")
        return job

    @interrupt(
        correlation_id=lambda send_job: f"job-{send_job}",
        accept_early=True,
        schema={"type": "object"},
    )
    def done(self, send_job: str) -> None:
        return None

    @step
    def finish(self, done: dict[str, Any]) -> Any:
        CALLS.append("finish")
        return done["ok"]


def test_early_payload_is_consumed_without_pausing() -> None:
    stored = Webhook.resume_by_correlation_id("job-42", {"ok": "early"})
    assert stored.id == ""
    with pytest.raises(AlreadyResumed):
        Webhook.resume_by_correlation_id("job-42", {"ok": "again"})
    with pytest.raises(PayloadInvalid):
        Webhook.resume_by_correlation_id("job-43", ["not", "an", "object"])
    ex = Webhook.run(job="42")
    assert ex.completed and ex.result == "early"
    assert CALLS == ["send_job", "finish"]
    assert Webhook.run(job="42").paused  # consumed: a second run waits


def test_interrupt_handler_resolves_programmatically() -> None:
    seen: list[str] = []

    def approve(pending: Any) -> dict[str, Any] | None:
        seen.append(pending.step)
        return {"approved": True}

    ex = Approval.run(order_id="h", interrupt_handler=approve)
    assert ex.completed and ex.result is True and seen == ["approval"]
    assert Approval.run(order_id="h2", interrupt_handler=lambda p: None).paused


def test_unencodable_result_fails_its_step_naming_step_and_type() -> None:
    class Bad(Reactor):
        @step
        def a(self) -> int:
            return 1

        @a.undo
        def undo_a(self) -> None:
            CALLS.append("undo a")

        @step
        def leak(self, a: int) -> object:
            return object()

    ex = Bad.run()
    assert ex.failed and ex.error is not None
    assert ex.error.type == "SerializationError" and ex.error.step == "leak"
    assert "object" in ex.error.message
    assert CALLS == ["undo a"]


def test_configured_max_payload_bytes_applies(request: pytest.FixtureRequest) -> None:
    saved = get_config().max_payload_bytes
    configure(max_payload_bytes=64)
    request.addfinalizer(lambda: configure(max_payload_bytes=saved))
    ex = Webhook.run(job="small")
    with pytest.raises(SerializationError, match="limit of 64 bytes"):
        Webhook.resume(ex.id, {"ok": "x" * 100})
    assert Webhook.resume(ex.id, {"ok": "fits"}).completed
    with pytest.raises(InputInvalid):
        Webhook.run(job="y" * 100)


def test_oversized_payload_is_refused_before_any_change() -> None:
    ex = Webhook.run(job="big")
    with pytest.raises(SerializationError, match=r"too large|exceeds|bytes"):
        Webhook.resume(ex.id, {"ok": "x" * (get_config().max_payload_bytes + 1)})
    assert Webhook.find(ex.id).paused


SLOW_STARTED = threading.Event()
SLOW_PROCEED = threading.Event()


class Branches(Reactor):
    @step
    def a(self) -> int:
        return 1

    @a.undo
    def undo_a(self) -> None:
        CALLS.append("undo a")

    left = interrupt(wait_for="a")
    right = interrupt(wait_for="a", schema={"type": "object"})

    @step
    def slow(self, left: Any) -> str:
        SLOW_STARTED.set()
        assert SLOW_PROCEED.wait(10)
        return "done"

    @slow.undo
    def undo_slow(self) -> None:
        CALLS.append("undo slow")

    @step
    def join(self, slow: str, right: Any) -> str:
        CALLS.append("join")
        return slow


def test_attempts_exhausted_while_another_resumer_runs_undoes_everything() -> None:
    SLOW_STARTED.clear()
    SLOW_PROCEED.clear()
    ex = Branches.run()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(in_thread, Branches.resume, ex.id, "go", "left")
        assert SLOW_STARTED.wait(10)
        with pytest.raises(PayloadInvalid) as info:
            Branches.resume(ex.id, ["not an object"], step="right")
        assert info.value.attempts_left == 0
        SLOW_PROCEED.set()
        running.result(timeout=10)
    final = Branches.find(ex.id)
    assert final.status is Status.CANCELLED and final.reason == "max_attempts"
    assert CALLS == ["undo slow", "undo a"]


class Annotated(Reactor):
    @step
    def maybe(self) -> int | Skip[int] | Halt:
        return Skip(5)

    @step
    def when(self) -> dt.datetime | None:
        return dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)

    @step
    def price(self) -> Decimal:
        return Decimal("1.10")

    wait = interrupt(wait_for=("maybe", "when", "price"))

    @step
    def after(self, wait: Any, maybe: int, when: dt.datetime | None, price: Decimal) -> str:
        assert when is not None
        return f"{maybe} {when.isoformat()} {price!r}"


def test_results_keep_their_types_across_a_pause_whatever_the_annotation() -> None:
    ex = Annotated.run()
    done = Annotated.resume(ex.id, "go")
    assert done.result == "5 2026-01-02T03:04:00+00:00 Decimal('1.10')"


def test_idempotency_key_and_chosen_ids_on_every_store() -> None:
    first = Approval.run(order_id="i1", idempotency_key="order-i1")
    again = Approval.run(order_id="i1", idempotency_key="order-i1")
    assert again.id == first.id and again.paused
    assert CALLS == ["reserve"]
    chosen = Approval.run(order_id="i2", execution_id="chosen-1")
    assert chosen.id == "chosen-1" and Approval.find("chosen-1").paused
    with pytest.raises(StorageError, match="exists already"):
        Approval.run(order_id="i3", execution_id="chosen-1")


def test_concurrent_starts_with_one_idempotency_key_run_once() -> None:
    for round_ in range(10):
        CALLS.clear()

        def start(key: str = f"k-{round_}") -> str:
            return str(Approval.run(order_id=key, idempotency_key=key).id)

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            ids = [f.result() for f in [pool.submit(in_thread, start) for _ in range(6)]]
        assert len(set(ids)) == 1
        assert CALLS == ["reserve"]
