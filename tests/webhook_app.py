"""A report-webhook reactor for the cross-process test (importable by subprocesses)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from reactor import Input, Reactor, interrupt, step


@dataclasses.dataclass
class ReportReady:
    status: str
    url: str
    ready_at: dt.datetime


class Report(Reactor):
    name = "tests.webhook.Report"
    company_id = Input(schema={"type": "integer"})

    @step
    def request_report(self, company_id: int) -> int:
        return company_id * 10

    @interrupt(
        correlation_id=lambda request_report: f"report-{request_report}",
        schema={"type": "object", "required": ["status", "url", "ready_at"]},
    )
    def wait_for_report(self, request_report: int) -> dict[str, int]:
        return {"report_id": request_report}

    @step
    def process(self, wait_for_report: ReportReady) -> str:
        # The payload arrives as JSON; the annotation turns it into the dataclass.
        assert isinstance(wait_for_report, ReportReady)
        assert isinstance(wait_for_report.ready_at, dt.datetime)
        return (
            f"{type(wait_for_report).__name__} {wait_for_report.url} {wait_for_report.ready_at:%Y}"
        )
