"""The ``reactor`` command as an operator meets it, each point in a subprocess:
``list``/``show``/``cancel`` from stored data alone (no module named by stored data is
imported), ``resume``/``undo`` naming ``--app``, reactors of ``__main__`` scripts, a
closed pipe, ``--json`` for ``graph`` and errors, ``graph`` usage, and the worker's
``--grace``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from reactor import ExecutionNotFound, Status, Storage
from reactor._sync import run_sync
from reactor.cli import main
from reactor.worker import Worker

from apps import runs, subprocess_env, undone
from apps.approval import Approval
from apps.grace import Lingering
from apps.tripwire import Parked
from conftest import left_running


def reactor(
    *args: str, url: str, tripwire: bool = True, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """``python -m reactor ARGS``; with ``tripwire``, importing ``apps.tripwire`` fails."""
    env = subprocess_env(url)
    if tripwire:
        env["REACTOR_TRIPWIRE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "reactor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def minute(moment: dt.datetime | None) -> str:
    assert moment is not None
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


@pytest.mark.slow
def test_list_show_and_cancel_work_from_stored_data_alone(shared: Storage, redis_url: str) -> None:
    ex = Parked.run(order=1)
    [pending] = ex.interrupts
    assert ex.paused and pending.deadline is not None  # a lazy deadline

    listed = reactor("list", url=redis_url)
    assert listed.returncode == 0, listed.stderr
    _, row = listed.stdout.splitlines()
    # The lazy deadline shows (the envelope's deadline holds only active ones).
    assert row.split()[:5] == [ex.id, Parked.name, "paused", *minute(ex.updated_at).split()]
    assert minute(pending.deadline) in row
    as_json = reactor("list", "--json", url=redis_url)
    [document] = json.loads(as_json.stdout)
    assert document["deadline"] == pending.deadline.isoformat(timespec="milliseconds")

    shown = reactor("show", ex.id, url=redis_url)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:3] == [f"id: {ex.id}", f"reactor: {Parked.name}", "status: paused"]
    assert '  reserve: "slot-1"' in lines and "    correlation_id: parked-1" in lines
    assert '    request: {"question": "keep slot-1?"}' in lines
    document = json.loads(reactor("show", ex.id, "--json", url=redis_url).stdout)
    assert document["interrupts"][0]["step"] == "confirm"
    # The schema is declared by the class, which this command did not import.
    assert document["interrupts"][0]["schema"] is None
    # The trace read from the stored rows alone is the one the engine shows.
    assert [(e["event"], e["step"], e["attempt"]) for e in document["trace"]] == [
        (e.event, e.step, e.attempt) for e in ex.trace
    ]
    assert [e["event"] for e in document["trace"]] == ["step.started", "step.completed", "paused"]
    assert document["trace"][0]["time"][:16] == minute(ex.created_at).replace(" ", "T")[:16]

    cancelled = reactor("cancel", ex.id, "--reason", "ops", url=redis_url)
    assert cancelled.returncode == 0, cancelled.stderr
    assert {"status: cancelled", "reason: ops"} <= set(cancelled.stdout.splitlines())
    assert "interrupts:" not in cancelled.stdout

    # As Reactor.cancel would leave it: no compensation, correlation id released...
    found = Parked.find(ex.id)
    assert (found.status, found.reason, found.interrupts) == (Status.CANCELLED, "ops", [])
    assert found.results == {"reserve": "slot-1"} and undone(ex.id) == []
    with pytest.raises(ExecutionNotFound):
        Parked.find_by_correlation_id("parked-1")
    assert Parked.run(order=1).paused
    # ... and finished, so it expires after the retention period.
    with redis.Redis.from_url(redis_url) as client:
        assert 0 < client.ttl(f"reactor:{{exec:{ex.id}}}") <= 7 * 24 * 3600

    again = reactor("cancel", ex.id, url=redis_url)
    assert again.returncode == 1
    assert again.stderr.startswith("error: NotPaused: the execution is cancelled (ops)")


@pytest.mark.slow
def test_resume_and_undo_need_app_and_the_hint_names_the_command(
    shared: Storage, redis_url: str
) -> None:
    ex = Approval.run(order_id=21)
    parked = Parked.run(order=2)

    for command in (["resume", ex.id, "--payload", "{}"], ["undo", ex.id]):
        refused = reactor(*command, url=redis_url)
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr.startswith(
            f"error: ExecutionNotFound: reactor '{Approval.name}' is not registered; "
            f"import the module that defines it: reactor {command[0]} --app MODULE"
        )
    by_correlation = ["resume", "--correlation-id", "order-21", "--reactor", Approval.name]
    refused = reactor(*by_correlation, "--payload", "{}", url=redis_url)
    assert "reactor resume --app MODULE" in refused.stderr
    # The recorded module is never imported instead (it would raise: tripwire).
    refused = reactor("undo", parked.id, url=redis_url)
    assert refused.returncode == 1 and "not registered" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert Approval.find(ex.id).paused and Parked.find(parked.id).paused

    undone_now = reactor("--app", "apps.approval", "undo", ex.id, url=redis_url)
    assert undone_now.returncode == 0, undone_now.stderr
    assert "reason: undo" in undone_now.stdout.splitlines()


@pytest.mark.slow
def test_a_reactor_of_a_main_script_warns_and_can_still_be_ended(
    shared: Storage, redis_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "checkout.py"
    script.write_text(
        "from reactor import Reactor, interrupt, step\n"
        "\n"
        "class Checkout(Reactor):\n"
        "    @step\n"
        "    def reserve(self):\n"
        "        return 'slot'\n"
        "\n"
        "    approval = interrupt(wait_for='reserve')\n"
        "\n"
        "print(Checkout.run().id)\n"
    )
    started = subprocess.run(
        [sys.executable, str(script)],
        env=subprocess_env(redis_url),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert started.returncode == 0, started.stderr
    execution_id = started.stdout.strip()
    assert "ReactorWarning: reactor '__main__.Checkout' is defined in a script run as " in (
        started.stderr
    )

    shown = reactor("show", execution_id, url=redis_url)
    assert "reactor: __main__.Checkout" in shown.stdout.splitlines()
    assert "status: paused" in shown.stdout.splitlines()
    refused = reactor("resume", execution_id, "--payload", "{}", url=redis_url)
    assert refused.returncode == 1
    assert "defined in a script run as __main__, which no other process can import" in (
        refused.stderr
    )

    cancelled = reactor("cancel", execution_id, url=redis_url)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "status: cancelled" in cancelled.stdout.splitlines()
    with redis.Redis.from_url(redis_url) as client:
        assert client.ttl(f"reactor:{{exec:{execution_id}}}") > 0


def test_a_reader_closing_the_pipe_ends_the_command_quietly(
    shared: Storage, redis_url: str
) -> None:
    for order in range(3):
        Approval.run(order_id=100 + order)
    process = subprocess.Popen(
        [sys.executable, "-m", "reactor", "list"],
        env=subprocess_env(redis_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    # Gone before the command writes anything, as `head -1` is soon after its first line.
    process.stdout.close()
    _, err = process.communicate(timeout=30)
    assert err == ""
    assert process.returncode == 128 + signal.SIGPIPE

    piped = subprocess.run(
        f"{sys.executable} -m reactor list | head -1",
        shell=True,
        env=subprocess_env(redis_url),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert piped.stdout.split() == [
        "ID",
        "REACTOR",
        "STATUS",
        "UPDATED",
        "DEADLINE",
        "PENDING",
        "REASON",
    ]
    assert piped.stderr == ""


@pytest.mark.slow
def test_json_is_honoured_by_graph_and_by_error_lines(shared: Storage, redis_url: str) -> None:
    graph = reactor("--json", "graph", "apps.timeouts:Expiring", url=redis_url)
    assert graph.returncode == 0, graph.stderr
    document = json.loads(graph.stdout)
    assert document["reactor"] == "apps.timeouts.Expiring"
    assert document["mermaid"].startswith("flowchart TD")

    missing = reactor("show", "nope", "--json", url=redis_url)
    assert (missing.returncode, missing.stdout) == (1, "")
    assert json.loads(missing.stderr) == {
        "error": "ExecutionNotFound",
        "message": "no such execution [execution='nope']",
        "reactor": None,
        "execution_id": "nope",
        "step": None,
    }

    ex = Approval.run(order_id=22)
    invalid = reactor(
        "--app", "apps.approval", "--json", "resume", ex.id, "--payload", '{"approved": 1}',
        url=redis_url,
    )  # fmt: skip
    assert invalid.returncode == 1
    refusal = json.loads(invalid.stderr)
    assert (refusal["error"], refusal["step"], refusal["attempts_left"]) == (
        "PayloadInvalid",
        "confirm",
        2,
    )
    assert refusal["errors"] == [{"path": "/approved", "message": "1 is not of type 'boolean'"}]

    usage = reactor("--json", "list", url="")
    assert usage.returncode == 2
    assert json.loads(usage.stderr)["error"] == "UsageError"


def test_graph_without_a_class_is_a_usage_error(redis_url: str) -> None:
    result = reactor("graph", "apps.timeouts", url=redis_url)
    assert result.returncode == 2 and result.stdout == ""
    assert "expected module:Class (e.g. shop.reactors:Checkout), not 'apps.timeouts'" in (
        result.stderr
    )
    assert "not registered" not in result.stderr
    # A reactor name works once --app has imported it.
    named = reactor("--app", "apps.timeouts", "graph", "apps.timeouts.Expiring", url=redis_url)
    assert named.returncode == 0 and named.stdout.startswith("flowchart TD")


# ------------------------------------------------------------------ worker --grace


@pytest.mark.slow
def test_the_worker_leaves_a_step_to_recovery_after_its_grace_period(
    shared: Storage, redis_url: str
) -> None:
    execution_id = uuid.uuid4().hex
    asyncio.run(left_running(Lingering, execution_id, shared))
    worker = subprocess.Popen(
        [sys.executable, "-m", "reactor", "--app", "apps.grace", "worker", "--grace", "0.5"],
        env=subprocess_env(redis_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 15
        while not runs(execution_id, "long"):
            assert time.monotonic() < deadline, "the worker never recovered the execution"
            time.sleep(0.02)
        worker.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        _, err = worker.communicate(timeout=10)
        # `long` sleeps 20 s; the worker waited half a second for it.
        assert time.monotonic() - sent < 5
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, err
    assert "reactor.worker.abandoned" in err and execution_id in err

    # Left running under the lease the worker last took; recovered once that runs out.
    record = run_sync(shared.load(execution_id))
    assert record is not None and record.status is Status.RUNNING
    assert record.lease_expires is not None and record.lease_expires > time.time()
    assert run_sync(Worker(storage=shared).run_once()) == 0
    # The lease runs out in the store's clock: the same record written with none left
    # stands for the 30 s a worker would otherwise wait.
    run_sync(shared.write(record, expected_version=record.version, lease_seconds=0))
    assert run_sync(Worker(storage=shared).run_once()) == 1
    done = Lingering.find(execution_id)
    assert done.completed and done.result == "first then long"
    assert runs(execution_id, "long") == 2


def test_grace_cannot_be_negative(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="grace cannot be negative"):
        Worker(grace=-1)
    assert Worker(grace=0).grace == 0
    assert main(["--redis", "redis://127.0.0.1:1", "worker", "--grace", "-1"]) == 2
    assert "must be at least 0" in capsys.readouterr().err


def test_cancel_of_a_running_execution_leaves_the_lease_schedule(
    shared: Storage, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    execution_id = uuid.uuid4().hex
    asyncio.run(left_running(Lingering, execution_id, shared))
    record = run_sync(shared.load(execution_id))
    assert record is not None and record.status is Status.RUNNING

    assert main(["--redis", redis_url, "--json", "cancel", execution_id]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["status"], document["reason"]) == ("cancelled", "cancelled")
    # Finished: no lease to recover, so no worker runs `long`.
    assert run_sync(Worker(storage=shared).run_once()) == 0
    assert runs(execution_id, "long") == 0
    assert Lingering.find(execution_id).results == {"first": "first"}
