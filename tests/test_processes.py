"""Pause in one process, resume from another: nothing but Redis is shared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from reactor import Status

TESTS = Path(__file__).parent


def python(code: str, redis_url: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(TESTS), "REACTOR_REDIS_URL": redis_url}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_pause_exit_then_resume_by_correlation_id_in_a_new_process(
    redis_url: str, redis_reactor: object
) -> None:
    started = python(
        "from webhook_app import Report\n"
        "ex = Report.run(company_id=7)\n"
        "print(ex.id, ex.status.value, ex.interrupts[0].correlation_id)\n",
        redis_url,
    )
    execution_id, status, correlation_id = started.split()
    assert (status, correlation_id) == ("paused", "report-70")

    resumed = python(
        "from webhook_app import Report\n"
        "payload = {'status': 'done', 'url': 'https://r/70', 'ready_at': '2026-11-22T10:00:00'}\n"
        f"ex = Report.resume_by_correlation_id({correlation_id!r}, payload)\n"
        "print(ex.id, ex.status.value)\n"
        "print(ex.result)\n",
        redis_url,
    )
    assert resumed.splitlines() == [f"{execution_id} completed", "ReportReady https://r/70 2026"]

    from webhook_app import Report

    final = Report.find(execution_id)
    assert final.status is Status.COMPLETED
    assert final.results["wait_for_report"]["url"] == "https://r/70"
