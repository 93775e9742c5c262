"""Run one reactor action in a process of its own with OpenTelemetry's in-memory span
exporter and metric reader, and print what they caught as JSON.

    python otel_child.py start|resume ID|undo ID|fail|enqueue ID|advance ID OWNER
"""

from __future__ import annotations

import json
import sys
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

import dsl_app as app  # noqa: E402  (after the providers: nothing is cached early)

from reactor import _background, _dispatch  # noqa: E402
from reactor._config import storage_for  # noqa: E402
from reactor._sync import run_sync  # noqa: E402


def _span(span: Any) -> dict[str, Any]:
    return {
        "name": span.name,
        "trace_id": f"{span.context.trace_id:032x}",
        "span_id": f"{span.context.span_id:016x}",
        "parent": f"{span.parent.span_id:016x}" if span.parent else None,
        "links": [f"{link.context.span_id:016x}" for link in span.links],
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
    }


def _metrics() -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found[metric.name] = [
                    {
                        "attributes": dict(point.attributes or {}),
                        "value": getattr(point, "value", None),
                        "count": getattr(point, "count", None),
                    }
                    for point in metric.data.data_points
                ]
    return found


def main() -> None:
    command = sys.argv[1]
    if command == "start":
        ex = app.Approval.run()
    elif command == "resume":
        ex = app.Approval.resume(sys.argv[2], {"ok": True})
    elif command == "undo":
        ex = app.Approval.undo(sys.argv[2], principal="ops")
    elif command == "enqueue":
        # A resume that hands the rest of the run to a task queue: the job is printed.
        jobs: list[tuple[str, str, str]] = []
        _dispatch.install_dispatcher(lambda *job: jobs.append(job))
        ex = app.Approval.resume(sys.argv[2], {"ok": True}, background=True)
        print(json.dumps({"job": jobs[0]}))
    elif command == "advance":
        # What a task-queue worker does with the job.
        plan = app.Approval.__reactor_plan__
        advanced = run_sync(
            _background.advance(plan, storage_for(app.Approval), sys.argv[2], sys.argv[3])
        )
        assert advanced is not None
        ex = advanced
    else:
        ex = app.Guarded.run(amount=-5)
    print(
        json.dumps(
            {
                "id": ex.id,
                "status": ex.status.value,
                "spans": [_span(s) for s in exporter.get_finished_spans()],
                "metrics": _metrics(),
            }
        )
    )


if __name__ == "__main__":
    main()
