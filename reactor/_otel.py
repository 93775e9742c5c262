"""OpenTelemetry spans and metrics, when ``opentelemetry-api`` is importable (extra
``reactor[otel]``).

Spans go to the global tracer provider (``opentelemetry.trace.get_tracer("reactor")``) and
metrics to the global meter provider; nothing to call. One :class:`ExecutionTelemetry`
follows one run of an execution in one process: it is a middleware hook on the run's
event emitter (:mod:`reactor._log`), so without OpenTelemetry, or while the application
configured no provider (the API's defaults record nothing; checked at most once a
second), nothing is hooked and the engine pays one check per run.

Spans: ``reactor.execution`` (one per run in a process: the first run, and each resume,
recovery or background job), a child ``reactor.step`` per step attempt, ``reactor.undo``
and ``reactor.compensate`` per rollback hook, and ``reactor.interrupt.wait`` from reaching
an interrupt to its resume. The first execution span's context is stored with the
execution: later runs, in any process, are its children and link to it, so an execution
is one trace. Attributes: ``reactor.name``, ``reactor.execution_id``, ``reactor.step``,
``reactor.attempt``.

Metrics: ``reactor.executions`` (counter, by final ``reactor.status``),
``reactor.step.duration`` (histogram, seconds), ``reactor.interrupts.pending``
(up-down counter: +1 when an interrupt is reached, -1 when it is resumed, times out or
its execution is cancelled), ``reactor.interrupt.age`` (histogram: seconds an interrupt
waited, recorded at its resume) and ``reactor.rollbacks`` (counter).

A hook that raises never breaks a run: the error is reported once on the ``reactor``
logger and the event is dropped.
"""

from __future__ import annotations

import logging
import time
from typing import Any

try:
    from opentelemetry import metrics, propagate, trace
except ImportError:  # the extra is not installed: nothing is hooked
    AVAILABLE = False
else:
    AVAILABLE = True

__all__ = ["AVAILABLE", "ExecutionTelemetry", "telemetry"]

_FINAL = frozenset({"completed", "failed", "halted", "cancelled"})
_HOOK_ENDS = {
    "reactor.step.undone": ("undo", True),
    "reactor.step.undo_failed": ("undo", False),
    "reactor.step.compensated": ("compensate", True),
    "reactor.step.compensate_failed": ("compensate", False),
}
_reported = False


class _Instruments:
    """The metric instruments, made once (the global meter is a proxy until an
    application sets a provider, so making them early loses nothing)."""

    def __init__(self) -> None:
        meter = metrics.get_meter("reactor")
        self.executions = meter.create_counter(
            "reactor.executions", description="Executions that ended, by final status"
        )
        self.step_duration = meter.create_histogram(
            "reactor.step.duration", unit="s", description="Duration of one step attempt"
        )
        self.pending = meter.create_up_down_counter(
            "reactor.interrupts.pending", description="Interrupts waiting for a payload"
        )
        self.interrupt_age = meter.create_histogram(
            "reactor.interrupt.age", unit="s", description="How long an interrupt waited"
        )
        self.rollbacks = meter.create_counter(
            "reactor.rollbacks", description="Rollbacks of failed executions"
        )


_instruments: _Instruments | None = None


def _get_instruments() -> _Instruments:
    global _instruments
    if _instruments is None:
        _instruments = _Instruments()
    return _instruments


class ExecutionTelemetry:
    """Spans and metrics of one run of an execution in this process.

    Called as a middleware hook ``telemetry(event, fields)``; :meth:`begin` and
    :meth:`end` bracket the run's execution span.
    """

    def __init__(self, reactor: str, execution_id: str) -> None:
        self._tracer = trace.get_tracer("reactor")
        self._metrics = _get_instruments()
        self._attributes = {"reactor.name": reactor, "reactor.execution_id": execution_id}
        #: The stored context of the execution's first span, if it has one.
        self.stored: dict[str, str] | None = None
        self._span: Any = None
        self._context: Any = None
        self._steps: dict[str, tuple[Any, float]] = {}

    def first_run(self) -> Any:
        """The context of the execution's first span, as a parent (``None``: this is it)."""
        return propagate.extract(self.stored) if self.stored else None

    def begin(self) -> dict[str, str] | None:
        """Start the execution span (a child of, and linked to, the execution's first span
        when :attr:`stored` carries its context); return the context to store."""
        try:
            parent = self.first_run()
            links = []
            if parent is not None:
                remote = trace.get_current_span(parent).get_span_context()
                if remote.is_valid:
                    links.append(trace.Link(remote, {"reactor.link": "first run"}))
            self._span = self._tracer.start_span(
                "reactor.execution", context=parent, attributes=self._attributes, links=links
            )
            self._context = trace.set_span_in_context(self._span)
            if not self.stored:
                carrier: dict[str, str] = {}
                propagate.inject(carrier, context=self._context)
                self.stored = carrier
        except Exception as exc:
            _report(exc)
        return self.stored

    def end(self, status: str) -> None:
        """End the execution span with the run's status (spans left open end too)."""
        try:
            for span, _ in self._steps.values():
                span.end()
            self._steps.clear()
            if self._span is not None:
                self._span.set_attribute("reactor.status", status)
                if status == "failed":
                    self._span.set_status(trace.StatusCode.ERROR)
                self._span.end()
                self._span = None
        except Exception as exc:
            _report(exc)

    def __call__(self, event: str, fields: dict[str, Any]) -> None:
        try:
            self._event(event, fields)
        except Exception as exc:
            _report(exc)

    def _event(self, event: str, fields: dict[str, Any]) -> None:
        step = str(fields.get("step"))
        if event == "reactor.step.started":
            attributes = {
                **self._attributes,
                "reactor.step": step,
                "reactor.attempt": fields.get("attempt", 1),
            }
            span = self._tracer.start_span(
                "reactor.step", context=self._context, attributes=attributes
            )
            self._steps[step] = (span, time.perf_counter())
        elif event in ("reactor.step.completed", "reactor.step.halted"):
            self._end_step(step, None)
        elif event in ("reactor.step.retrying", "reactor.step.failed"):
            self._end_step(step, str(fields.get("error", "")))
        elif event in _HOOK_ENDS:
            # A rollback hook: its span is drawn when it has run, from its duration.
            kind, ok = _HOOK_ENDS[event]
            now = time.time_ns()
            span = self._tracer.start_span(
                f"reactor.{kind}",
                context=self._context,
                attributes={**self._attributes, "reactor.step": step},
                start_time=now - int(fields.get("duration", 0.0) * 1e9),
            )
            if not ok:
                span.set_status(trace.StatusCode.ERROR, str(fields.get("error", "")))
            span.end(end_time=now)
        elif event == "reactor.interrupt.reached":
            self._metrics.pending.add(1, {"reactor.name": self._attributes["reactor.name"]})
        elif event in ("reactor.interrupt.resumed", "reactor.interrupt.timed_out"):
            self._interrupt_done(step, fields.get("waited"), event.endswith("timed_out"))
        elif event == "reactor.execution.rolled_back":
            self._metrics.rollbacks.add(1, {"reactor.name": self._attributes["reactor.name"]})
        elif event.startswith("reactor.execution."):
            status = event.rpartition(".")[2]
            name = self._attributes["reactor.name"]
            if fields.get("dropped"):
                self._metrics.pending.add(-fields["dropped"], {"reactor.name": name})
            if status in _FINAL:
                self._metrics.executions.add(1, {"reactor.name": name, "reactor.status": status})

    def _end_step(self, step: str, error: str | None) -> None:
        started = self._steps.pop(step, None)
        if started is None:  # failed before an attempt began (an argument error)
            return
        span, since = started
        if error is not None:
            span.set_status(trace.StatusCode.ERROR, error)
        span.end()
        self._metrics.step_duration.record(
            time.perf_counter() - since,
            {"reactor.name": self._attributes["reactor.name"], "reactor.step": step},
        )

    def _interrupt_done(self, step: str, waited: float | None, timed_out: bool) -> None:
        name = self._attributes["reactor.name"]
        self._metrics.pending.add(-1, {"reactor.name": name})
        if waited is None:  # resumed at once by an interrupt_handler or an early payload
            return
        now = time.time()
        self._metrics.interrupt_age.record(waited, {"reactor.name": name})
        # Before the run's own span exists (a resume logs first): under the first run's.
        span = self._tracer.start_span(
            "reactor.interrupt.wait",
            context=self._context if self._context is not None else self.first_run(),
            attributes={**self._attributes, "reactor.step": step},
            start_time=int((now - waited) * 1e9),
        )
        if timed_out:
            span.set_status(trace.StatusCode.ERROR, "timed out")
        span.end(end_time=int(now * 1e9))


# Asking the API costs ~2.5 µs (environment lookups): an unconfigured answer is trusted
# for a second; a configured one for good (a provider can be set only once).
_RECHECK = 1.0

_checked = (False, float("-inf"))
"""Whether a provider was configured, and when that was last checked (monotonic)."""


def telemetry(reactor: str, execution_id: str) -> ExecutionTelemetry | None:
    """An :class:`ExecutionTelemetry` for one run, or ``None`` without OpenTelemetry or
    while neither a tracer nor a meter provider is configured (the API's defaults
    record nothing, so the run is not hooked and pays nothing per step)."""
    global _checked
    if not AVAILABLE:
        return None
    configured, when = _checked
    if not configured:
        now = time.monotonic()
        if now - when >= _RECHECK:
            configured = _configured()
            _checked = (configured, now)
        if not configured:
            return None
    return ExecutionTelemetry(reactor, execution_id)


def _configured() -> bool:
    """Whether the application set a tracer or meter provider that may record."""
    tracing = not isinstance(
        trace.get_tracer_provider(), trace.ProxyTracerProvider | trace.NoOpTracerProvider
    )
    meter_provider = metrics.get_meter_provider()
    # The API's default meter provider is a private proxy class; its type is that of the
    # provider ``get_meter_provider()`` gives before one is set, which NoOpMeterProvider's
    # subclass check cannot tell, so it is recognised by name.
    metering = not isinstance(meter_provider, metrics.NoOpMeterProvider) and (
        type(meter_provider).__name__ != "_ProxyMeterProvider"
    )
    return tracing or metering


def _report(exc: Exception) -> None:
    """Report the first hook error of the process on the ``reactor`` logger (then stay
    quiet: a broken exporter would otherwise log once per step)."""
    global _reported
    if not _reported:
        _reported = True
        logging.getLogger("reactor").warning(
            "reactor's OpenTelemetry hook failed and is skipped: %r", exc
        )
