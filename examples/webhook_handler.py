"""A tiny webhook handler: resume a paused ``ReportReactor`` by its correlation id.

This is what the reporting provider's webhook would reach (in real life, a Flask,
Django or FastAPI view with the same three lines in it). It runs in its own process,
finds the paused execution in Redis through ``REACTOR_REDIS_URL``, resumes it with the
webhook body and runs the rest of the reactor here::

    export REACTOR_REDIS_URL=redis://127.0.0.1:6390/0
    python examples/report_webhook.py start 7      # prints e.g. "correlation id: report-4821"
    python examples/webhook_handler.py report-4821 '{"status": "done", "url": "https://reports.example.com/4821.pdf"}'

Exit status: 0 when the webhook was accepted, 1 with a one-line error when reactor
refused it (unknown or already used correlation id, invalid body, ...), 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

# Importing the module registers ReportReactor (and its fake reporting API) here.
from report_webhook import ReportReactor

from reactor import Execution, PayloadInvalid, ReactorError


def handle(correlation_id: str, body: Any) -> Execution:
    """Resume the execution waiting on ``correlation_id`` with the webhook ``body``.

    Strict resume: a body that fails the interrupt's schema raises ``PayloadInvalid``;
    a duplicate delivery raises ``AlreadyResumed`` (or ``ExecutionNotFound`` once the
    execution has ended), so the report is never processed twice.
    """
    return ReportReactor.resume_by_correlation_id(correlation_id, body)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Deliver a report webhook.")
    parser.add_argument("correlation_id", help='e.g. "report-4821", as printed by start')
    parser.add_argument("body", help="the webhook's JSON body")
    args = parser.parse_args(argv)
    try:
        body = json.loads(args.body)
    except json.JSONDecodeError as exc:
        parser.error(f"body is not JSON: {exc}")

    print(f"webhook {args.correlation_id}: {json.dumps(body)}")
    try:
        ex = handle(args.correlation_id, body)
    except PayloadInvalid as exc:
        problems = "; ".join(f"{e['path']}: {e['message']}" for e in exc.errors)
        left = exc.attempts_left
        after = "execution cancelled and undone" if left == 0 else f"{left} attempt(s) left"
        print(f"error: PayloadInvalid: {problems} ({after})", file=sys.stderr)
        return 1
    except ReactorError as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1

    print(f"execution id: {ex.id}")
    print(f"status:       {ex.status.value}")
    if ex.completed:
        print(f"result:       {ex.result}")
    elif ex.error is not None:
        print(f"failed at:    {ex.error.step}: {ex.error.type}: {ex.error.message}")
        failures = ex.error.rollback_failures
        print(f"rolled back:  {'with problems: ' + repr(failures) if failures else 'cleanly'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
