"""The ``reactor`` command: a round trip in subprocesses against the suite's
redis-server, and the rest of its surface through ``main()`` in this process. (The
first-hour points of issue 11 have their subprocess tests in ``test_cli_operations.py``.)"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reactor import Status, Storage, configure, get_config
from reactor.cli import main

from apps import subprocess_env, undone
from apps.approval import Approval
from apps.timeouts import Expiring


@pytest.fixture(autouse=True)
def _restore_storage() -> Iterator[None]:
    """``main()`` configures the storage it is given, as a command should."""
    saved = get_config().storage
    yield
    configure(storage=saved)


def reactor(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    """``python -m reactor ARGS`` with ``$REACTOR_REDIS_URL`` set and ``apps`` importable."""
    return subprocess.run(
        [sys.executable, "-m", "reactor", *args],
        env=subprocess_env(url),
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.slow
def test_pause_list_resume_show_in_subprocesses(shared: Storage, redis_url: str) -> None:
    ex = Approval.run(order_id=7)
    assert ex.paused

    listed = reactor("list", "--status", "paused", url=redis_url)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["ID", "REACTOR", "STATUS", "UPDATED", "DEADLINE", "REASON"]
    assert row.split()[:3] == [ex.id, "apps.approval.Approval", "paused"]

    # Resuming runs steps: the class comes from --app, never from the stored name.
    resumed = reactor(
        "--app", "apps.approval", "resume", ex.id, "--payload", '{"approved": true}', url=redis_url
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "status: completed" in resumed.stdout.splitlines()
    assert 'result: "order 7 placed"' in resumed.stdout.splitlines()

    shown = reactor("--app", "apps.approval", "show", ex.id, "--json", url=redis_url)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["id"] == ex.id and document["status"] == "completed"
    assert document["result"] == "order 7 placed"
    assert document["results"]["confirm"] == {"approved": True}
    # Values JSON has no type for print tagged, as they are stored.
    assert document["results"]["quote"]["at"] == {
        "$t": "datetime",
        "v": "2026-01-02T00:00:00+00:00",
    }
    assert Approval.find(ex.id).completed


def test_an_invalid_payload_is_refused_with_its_errors(shared: Storage, redis_url: str) -> None:
    ex = Approval.run(order_id=8)

    refused = reactor(
        "resume", ex.id, "--payload", '{"approved": "yes"}', "--app", "apps.approval", url=redis_url
    )
    assert refused.returncode == 1
    assert refused.stdout == ""
    first, *details = refused.stderr.splitlines()
    assert first.startswith("error: PayloadInvalid: the payload fails the interrupt's schema")
    assert details == ["  /approved: 'yes' is not of type 'boolean'", "  attempts left: 2"]
    assert Approval.find(ex.id).paused


def test_unknown_id_is_one_line_and_status_1(redis_url: str) -> None:
    result = reactor("show", "no-such-id", url=redis_url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: ExecutionNotFound: no such execution [execution='no-such-id']"
    ]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["show"],
        ["list", "--status", "sleeping"],
        ["list", "--limit", "0"],
        ["resume", "some-id"],
        ["resume", "some-id", "--payload", "{not json"],
        ["resume", "--payload", "{}"],
        ["resume", "--correlation-id", "c", "--payload", "{}"],
        ["resume", "some-id", "--reactor", "x.Y", "--payload", "{}"],
        ["resume", "some-id", "--payload", "@/no/such/file.json"],
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--redis", redis_url, *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "error:" in err and "Traceback" not in err


def test_redis_is_required_except_for_graph(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("REACTOR_REDIS_URL", raising=False)
    assert main(["list"]) == 2
    assert "REACTOR_REDIS_URL" in capsys.readouterr().err

    assert main(["graph", "apps.timeouts:Expiring"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart TD") and 'approval{{"interrupt: approval"}}' in out


def test_graph_refuses_what_is_not_a_reactor(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "apps.timeouts:Nothing"]) == 1
    assert capsys.readouterr().err == (
        "error: TypeError: apps.timeouts:Nothing is not a Reactor class\n"
    )
    assert main(["graph", "apps.nowhere:Thing"]) == 1
    assert capsys.readouterr().err.startswith(
        "error: ModuleNotFoundError: graph: cannot import 'apps.nowhere'"
    )


def test_resume_by_correlation_id_with_a_payload_file(
    shared: Storage, redis_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ex = Approval.run(order_id=9)
    payload = tmp_path / "payload.json"
    payload.write_text('{"approved": false, "comment": "too dear"}')
    argv = ["--redis", redis_url, "resume", "--correlation-id", "order-9"]
    argv += ["--reactor", "apps.approval.Approval", "--payload", f"@{payload}", "--json"]
    assert main(argv) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["id"], document["result"]) == (ex.id, "order 9 dropped")


def test_show_cancel_undo_and_list_as_json(
    shared: Storage, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    waiting = Approval.run(order_id=10)
    expiring = Expiring.run()

    assert main(["--redis", redis_url, "show", waiting.id]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:3] == [f"id: {waiting.id}", "reactor: apps.approval.Approval", "status: paused"]
    assert "results:" in lines and '  quote: {"order": 10, "total": 42, "at": ' in "\n".join(lines)
    at = lines.index("interrupts:")
    assert lines[at + 1 : at + 2] == ["  confirm:"]
    assert "    correlation_id: order-10" in lines and "    attempts_left: 3" in lines
    assert '    request: {"question": "place order 10?"}' in lines

    assert main(["--redis", redis_url, "cancel", waiting.id, "--reason", "changed mind"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "status: cancelled" in out and "reason: changed mind" in out

    assert main(["--redis", redis_url, "--json", "undo", expiring.id]) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "cancelled"
    assert undone(expiring.id) == ["c", "b", "a"]

    assert main(["--redis", redis_url, "undo", expiring.id]) == 1
    assert capsys.readouterr().err.startswith("error: NotPaused: the execution is cancelled (undo)")

    assert main(["--redis", redis_url, "list", "--json", "--reactor", Expiring.name]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["id"], listed["status"], listed["reason"]) == (expiring.id, "cancelled", "undo")
    assert main(["--redis", redis_url, "list", "--status", Status.FAILED.value]) == 0
    assert capsys.readouterr().out == "no executions found\n"
