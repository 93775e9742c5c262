"""OpenTelemetry: spans and metrics caught by the SDK's in-memory exporter and reader, in
child processes (each with its own providers) sharing the suite's Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reactor import Reactor, Storage, _otel, step

TESTS = Path(__file__).parent


def child(*argv: str) -> dict[str, Any]:
    """What ``otel_child.py`` printed last (its spans and metrics)."""
    return json.loads(output(*argv)[-1])  # type: ignore[no-any-return]


def output(*argv: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    done = subprocess.run(
        [sys.executable, str(TESTS / "otel_child.py"), *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def _named(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [s for s in spans if s["name"] == name]


def test_a_paused_run_resumed_in_another_process_is_one_linked_trace(shared: Storage) -> None:
    first = child("start")
    assert first["status"] == "paused"
    second = child("resume", first["id"])
    assert second["status"] == "completed"

    [run1] = _named(first["spans"], "reactor.execution")
    assert run1["parent"] is None
    assert run1["attributes"]["reactor.name"] == "dsl.Approval"
    assert run1["attributes"]["reactor.execution_id"] == first["id"]
    steps1 = _named(first["spans"], "reactor.step")
    assert [
        (s["attributes"]["reactor.step"], s["attributes"]["reactor.attempt"]) for s in steps1
    ] == [
        ("prepare", 1),
        ("prepare", 2),
    ]
    assert [s["status"] for s in steps1] == ["ERROR", "UNSET"]
    assert all(s["parent"] == run1["span_id"] for s in steps1)

    [run2] = _named(second["spans"], "reactor.execution")
    assert run2["parent"] == run1["span_id"] and run2["links"] == [run1["span_id"]]
    [wait] = _named(second["spans"], "reactor.interrupt.wait")
    assert wait["attributes"]["reactor.step"] == "approve"
    [finish] = _named(second["spans"], "reactor.step")
    assert finish["attributes"]["reactor.step"] == "finish"
    assert finish["parent"] == run2["span_id"]
    traces = {s["trace_id"] for s in first["spans"] + second["spans"]}
    assert traces == {run1["trace_id"]}

    assert first["metrics"]["reactor.interrupts.pending"][0]["value"] == 1
    assert second["metrics"]["reactor.interrupts.pending"][0]["value"] == -1
    assert second["metrics"]["reactor.interrupt.age"][0]["count"] == 1
    assert second["metrics"]["reactor.executions"] == [
        {
            "attributes": {"reactor.name": "dsl.Approval", "reactor.status": "completed"},
            "value": 1,
            "count": None,
        }
    ]
    durations = first["metrics"]["reactor.step.duration"]
    assert [(d["attributes"]["reactor.step"], d["count"]) for d in durations] == [("prepare", 2)]


def test_a_background_job_continues_the_executions_trace(shared: Storage) -> None:
    first = child("start")
    enqueued = output("enqueue", first["id"])
    reactor, execution_id, owner = json.loads(enqueued[0])["job"]
    assert (reactor, execution_id) == ("dsl.Approval", first["id"])
    job = child("advance", execution_id, owner)
    assert job["status"] == "completed"
    [run1] = _named(first["spans"], "reactor.execution")
    [run2] = _named(job["spans"], "reactor.execution")
    assert run2["parent"] == run1["span_id"] and run2["links"] == [run1["span_id"]]
    [finish] = _named(job["spans"], "reactor.step")
    assert finish["attributes"]["reactor.step"] == "finish"
    assert finish["parent"] == run2["span_id"] and finish["trace_id"] == run1["trace_id"]


def test_an_undo_in_another_process_joins_the_executions_trace(shared: Storage) -> None:
    first = child("start")
    undone = child("undo", first["id"])
    assert undone["status"] == "cancelled"
    [run1] = _named(first["spans"], "reactor.execution")
    [run2] = _named(undone["spans"], "reactor.execution")
    assert run2["parent"] == run1["span_id"] and run2["trace_id"] == run1["trace_id"]
    [undo] = _named(undone["spans"], "reactor.undo")
    assert undo["attributes"]["reactor.step"] == "prepare"
    assert undo["parent"] == run2["span_id"]
    assert undone["metrics"]["reactor.interrupts.pending"][0]["value"] == -1
    assert undone["metrics"]["reactor.executions"][0]["attributes"]["reactor.status"] == (
        "cancelled"
    )


def test_a_failed_run_has_undo_spans_and_counts_a_rollback(shared: Storage) -> None:
    failed = child("fail")
    assert failed["status"] == "failed"
    [run] = _named(failed["spans"], "reactor.execution")
    assert run["status"] == "ERROR" and run["attributes"]["reactor.status"] == "failed"
    [undo] = _named(failed["spans"], "reactor.undo")
    assert undo["attributes"]["reactor.step"] == "reserve"
    assert undo["parent"] == run["span_id"]
    charge = [
        s
        for s in _named(failed["spans"], "reactor.step")
        if s["attributes"]["reactor.step"] == "charge"
    ]
    assert [s["status"] for s in charge] == ["ERROR"]
    assert failed["metrics"]["reactor.rollbacks"][0]["value"] == 1
    assert failed["metrics"]["reactor.executions"][0]["attributes"]["reactor.status"] == "failed"


def test_a_hook_that_raises_never_breaks_a_run(
    memory_storage: Storage, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Any, event: str, fields: dict[str, Any]) -> None:
        raise RuntimeError("exporter down")

    monkeypatch.setattr(_otel.ExecutionTelemetry, "_event", broken)
    monkeypatch.setattr(_otel, "_reported", False)
    monkeypatch.setattr(_otel, "_checked", (True, 0.0))

    class Plain(Reactor):
        name = "otel.Plain"

        @step
        def a(self) -> int:
            return 1

        @step
        def b(self, a: int) -> int:
            return a + 1

    assert Plain.run().result == 2
    assert Plain.run().result == 2
    assert caplog.text.count("exporter down") == 1


def test_without_a_configured_provider_a_run_is_not_hooked(memory_storage: Storage) -> None:
    # This process configures no provider: the API's defaults record nothing.
    from reactor._executor import Run

    class Quiet(Reactor):
        name = "otel.Quiet"

        @step
        def a(self) -> int:
            return 1

    run = Run(Quiet.__reactor_plan__, "x", memory_storage, {})
    assert _otel.AVAILABLE and run.otel is None and not _otel._configured()
