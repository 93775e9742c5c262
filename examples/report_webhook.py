"""Report webhook: request a report, pause until the provider's webhook, then process it.

``ReportReactor`` asks a (fake, in-file) reporting API for a report, then pauses at the
``wait_for_report`` interrupt. Its whole context goes to Redis, keyed by the business
correlation id ``report-<report id>``. Later, a *different process* -- the webhook
handler the provider calls -- resumes it by that id with the webhook's JSON body
(``examples/webhook_handler.py``). The body is checked against the interrupt's JSON
Schema, then handed to ``process`` as a typed ``ReportReady`` dataclass. If processing
fails, ``cancel_report`` (the request's ``undo``) withdraws the report at the provider.

Both processes find the execution through ``REACTOR_REDIS_URL``::

    export REACTOR_REDIS_URL=redis://127.0.0.1:6390/0   # any Redis >= 6
    python examples/report_webhook.py start 7            # prints the correlation id
    python examples/webhook_handler.py report-4821 '{"status": "done", "url": "https://reports.example.com/4821.pdf"}'

``python examples/demo.py`` does all of this for you, with a throwaway redis-server.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import secrets
import sys
from typing import Any

from reactor import Context, Input, Reactor, interrupt, step


class FakeReportingApi:
    """Stands in for a third-party reporting service that calls a webhook when done."""

    def post_report(self, company_id: int, fmt: str) -> dict[str, Any]:
        report_id = 1000 + secrets.randbelow(9000)
        print(f"  [reporting API] POST /reports company={company_id} format={fmt} -> #{report_id}")
        return {"id": report_id, "state": "queued"}

    def delete_report(self, report_id: int) -> None:
        print(f"  [reporting API] DELETE /reports/{report_id} (request withdrawn)")

    def download(self, url: str) -> bytes:
        print(f"  [reporting API] GET {url}")
        return b"%PDF-1.7 fake report " + url.encode()


api = FakeReportingApi()


class ReportFailed(Exception):
    """The provider's webhook said the report could not be produced."""


@dataclasses.dataclass(frozen=True)
class ReportReady:
    """The provider's webhook body, as ``process`` receives it."""

    status: str
    url: str
    error: str | None = None


WEBHOOK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["status", "url"],
    "properties": {
        "status": {"enum": ["done", "failed"]},
        "url": {"type": "string"},
        "error": {"type": "string"},
    },
    "additionalProperties": False,
}


class ReportReactor(Reactor):
    """Request a report, wait for the provider's webhook, process the report."""

    # Executions record their reactor's name. The default is "module.QualName", which
    # would be "__main__.ReportReactor" when this file runs as a script but
    # "report_webhook.ReportReactor" in the handler that imports it: pin one name.
    name = "report_webhook.ReportReactor"

    company_id = Input(schema={"type": "integer", "minimum": 1})
    format = Input(default="pdf", schema={"enum": ["pdf", "csv"]})

    @step
    def request_report(self, company_id: int, format: str) -> int:
        report_id: int = api.post_report(company_id, format)["id"]
        return report_id

    @request_report.undo
    def cancel_report(self, result: int) -> None:
        api.delete_report(result)

    @interrupt(
        correlation_id=lambda request_report: f"report-{request_report}",
        schema=WEBHOOK_SCHEMA,
        timeout=3600,  # lazy: an hour later, the next find/resume fails it and undoes
        max_attempts=3,  # a malformed webhook is refused twice before the run is cancelled
    )
    def wait_for_report(self, request_report: int) -> dict[str, Any]:
        return {"title": "Waiting for the report webhook", "report_id": request_report}

    @step
    def process(self, wait_for_report: ReportReady, company_id: int, context: Context) -> str:
        if wait_for_report.status != "done":
            raise ReportFailed(wait_for_report.error or "the provider gave no reason")
        size = len(api.download(wait_for_report.url))
        print(
            f"  [process] stored {size} bytes for company {company_id} (attempt {context.attempt})"
        )
        return f"company {company_id}: {size} bytes from {wait_for_report.url}"

    @process.compensate
    def process_failed(self, error: Exception, request_report: int) -> None:
        print(f"  [process] report #{request_report} unusable: {error}")


def start(company_id: int, fmt: str) -> None:
    """Start a run; it pauses at the webhook interrupt."""
    ex = ReportReactor.run(company_id=company_id, format=fmt)
    print(f"execution id:   {ex.id}")
    print(f"status:         {ex.status.value}")
    for pending in ex.interrupts:
        print(f"waiting at:     {pending.step} (request: {pending.request})")
        if pending.deadline is not None:
            print(f"deadline:       {pending.deadline:%Y-%m-%d %H:%M:%S} UTC")
        print(f"correlation id: {pending.correlation_id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    start_cmd = commands.add_parser("start", help="start a run that pauses for the webhook")
    start_cmd.add_argument("company_id", type=int, nargs="?", default=7)
    start_cmd.add_argument("--format", default="pdf", choices=["pdf", "csv"])
    args = parser.parse_args(argv)
    if not os.environ.get("REACTOR_REDIS_URL"):
        print(
            "REACTOR_REDIS_URL is not set: the execution would live in this process's memory "
            "and the webhook handler (another process) could not resume it.\n"
            "Set it, e.g. REACTOR_REDIS_URL=redis://127.0.0.1:6390/0, or run examples/demo.py.",
            file=sys.stderr,
        )
        return 2
    start(args.company_id, args.format)
    return 0


if __name__ == "__main__":
    sys.exit(main())
