"""Redaction in the CLI and operator pauses across processes, on the suite's Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dsl_app as app
import pytest

from reactor import ReactorError, Status, Storage
from reactor.cli import main as cli_main

TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def _calls() -> None:
    app.CALLS.clear()


def test_a_redacted_input_is_absent_from_cli_output(
    shared: Storage, capsys: pytest.CaptureFixture[str]
) -> None:
    ex = app.Secretive.run(token=app.SECRET)
    assert ex.failed
    for argv in (["show", ex.id], ["show", ex.id, "--json"], ["list"]):
        assert cli_main(argv) == 0
    out = capsys.readouterr()
    assert ex.id in out.out and "cannot log out with ***" in out.out
    assert app.SECRET not in out.out + out.err


def test_suspend_of_an_execution_running_in_another_process(
    shared: Storage, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    code = (
        "from dsl_app import Slow\n"
        "ex = Slow.run(execution_id='slow-1')\n"
        "print(ex.status.value, [p.step for p in ex.interrupts])\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                app.Slow.find("slow-1")  # stored at once (a chosen id)
                break
            except ReactorError:
                pass  # not stored yet
            assert time.monotonic() < deadline, "the child never stored its execution"
            time.sleep(0.05)
        asked = app.Slow.suspend("slow-1", "maintenance", principal="ops")
        assert asked.status is Status.RUNNING
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    assert child.returncode == 0, err
    assert out.strip() == "paused ['suspended']"
    paused = app.Slow.find("slow-1")
    assert [(p.step, p.kind, p.request) for p in paused.interrupts] == [
        ("suspended", "suspended", {"reason": "maintenance"})
    ]
    assert 0 < len(paused.results) < 10
    events = [(e.event, e.step, e.principal) for e in paused.trace]
    assert ("suspended", "suspended", "ops") in events and ("paused", None, None) in events
    assert cli_main(["show", "slow-1"]) == 0
    shown = capsys.readouterr().out
    assert "suspended:" in shown and "kind: suspended" in shown
    assert cli_main(["list", "--status", "paused"]) == 0
    assert "suspended" in capsys.readouterr().out.split()
    done = app.Slow.resume("slow-1", None, step="suspended")
    assert done.completed and len(done.results) == 10


def test_cli_suspend_asks_a_running_execution_from_stored_data(
    shared: Storage, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    code = "from dsl_app import Slow\nprint(Slow.run(execution_id='slow-2').status.value)\n"
    child = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                app.Slow.find("slow-2")
                break
            except ReactorError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert cli_main(["suspend", "slow-2", "--reason", "cli"]) == 0
        out, _ = child.communicate(timeout=30)
    finally:
        child.kill()
    assert out.strip() == "paused"
    assert app.Slow.find("slow-2").interrupts[0].request == {"reason": "cli"}
