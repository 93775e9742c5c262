"""What callers get back: :class:`Execution` and the records it carries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ._status import Status
from .errors import ExecutionFailed, FailureInfo, _StepTraceback

__all__ = ["TRACE_LIMIT", "Context", "Execution", "PendingInterrupt", "TraceEntry"]

TRACE_LIMIT = 500
"""How many trace entries an execution keeps (the newest)."""


@attrs.frozen
class PendingInterrupt:
    """An interrupt the execution waits on.

    Attributes:
        step: Its path: ``"approval"``, or ``"payment.approval"``, ``"lines[3].approval"``
            inside children.
        correlation_id: The business key it can be resumed by, if declared.
        request: What the interrupt's body returned (shown to whoever resumes).
        schema: The JSON Schema a payload must satisfy, if declared.
        deadline: When it times out (UTC), if it has a timeout.
        attempts_left: Strict resumes with an invalid payload still allowed before the
            execution is cancelled (``None``: unlimited).
        kind: ``"interrupt"``; ``"breakpoint"`` for a breakpoint (``step`` is then
            ``"before:<path>"`` or ``"after:<path>"``) and ``"suspended"`` for an
            operator pause (``step`` is ``"suspended"``): both are resumed like an
            interrupt, their payload ignored.
    """

    step: str
    correlation_id: str | None
    request: Any
    schema: Mapping[str, Any] | None
    deadline: dt.datetime | None
    attempts_left: int | None
    kind: str = "interrupt"


@attrs.frozen
class TraceEntry:
    """One entry of :attr:`Execution.trace`.

    Attributes:
        event: ``"step.started"``, ``"step.completed"``, ``"step.failed"``,
            ``"step.retried"``, ``"step.skipped"``, ``"step.undone"``, ``"step.edited"``,
            ``"paused"``, ``"resumed"``, ``"suspended"``, ``"cancelled"`` or ``"undone"``.
        step: The step path (or pending item) it concerns, if any.
        time: Unix time it happened at (to the millisecond).
        attempt: The step's attempt number, for step events.
        principal: Who acted (``resume``/``cancel``/``undo``/``suspend`` given
            ``principal=``).
    """

    event: str
    step: str | None
    time: float
    attempt: int | None = None
    principal: str | None = None


@attrs.frozen
class Context:
    """The run context, injected into any step callable that takes ``context``.

    Attributes:
        execution_id: Id of the (root) execution.
        step: Path of the step being run.
        attempt: 1 for the first attempt, 2 for the first retry, ...
        idempotency_key: ``f"{execution_id}:{step}"``: stable across retries, resumes and
            crash recovery, for the external APIs a step calls.
        reactor: Name of the root reactor.
        fence: A number that grows each time another process takes the execution over
            (after a crash, a lost lease): pass it with external writes a step makes so
            that the external system can refuse those of an owner that lost the lease.
    """

    execution_id: str
    step: str
    attempt: int
    reactor: str
    fence: int = 1

    @property
    def idempotency_key(self) -> str:
        return f"{self.execution_id}:{self.step}"


@attrs.frozen
class Execution:
    """A snapshot of one execution of a reactor, as stored after the last state change.

    Returned by ``run``, ``resume``, ``find``, ``cancel`` and ``undo``; it does not
    change by itself: call ``find`` again for news.

    Attributes:
        id: The execution id (uuid4 hex unless chosen by the caller).
        reactor: The reactor class.
        status: Where the execution is in its life.
        result: The result (the ``returns`` step's, else the last declared step's) once
            completed, else ``None``.
        results: ``{step_path: result}`` of the completed steps.
        error: Why it failed, or ``None``.
        interrupts: The interrupts it waits on.
        reason: Why it was halted or cancelled (``"max_attempts"``, ``"undo"``, yours...).
        validation_errors: Set by a flexible :meth:`resume` whose payload was invalid:
            one ``{"path", "message"}`` dict per violation; otherwise empty.
        created_at: When it started (UTC).
        updated_at: When it was last stored (UTC).
        trace_rows: The ``(event, step, time_ms, attempt, principal)`` entries
            :attr:`trace` is made of.
    """

    id: str
    reactor: type[Any]
    status: Status
    result: Any = None
    results: Mapping[str, Any] = attrs.Factory(dict)
    error: FailureInfo | None = None
    interrupts: list[PendingInterrupt] = attrs.Factory(list)
    reason: str | None = None
    validation_errors: list[dict[str, str]] = attrs.Factory(list)
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    #: ``(event, step, time_ms, attempt, principal)`` entries; :attr:`trace` makes the records
    #: when asked (most callers never look, and a run pays for nothing it does not show).
    #: Left out of comparisons: a snapshot taken while the run goes on and the record
    #: read back later may differ only in entries added in between.
    trace_rows: Sequence[Sequence[Any]] = attrs.field(default=(), repr=False, eq=False)

    @property
    def trace(self) -> tuple[TraceEntry, ...]:
        """Its timeline, oldest first (the newest ``TRACE_LIMIT`` entries)."""
        entries = list(self.trace_rows)[-TRACE_LIMIT:]
        return tuple(
            TraceEntry(event, step, millis / 1000, attempt, principal)
            for event, step, millis, attempt, principal in entries
        )

    @property
    def paused(self) -> bool:
        """Whether it waits on interrupts."""
        return self.status is Status.PAUSED

    @property
    def completed(self) -> bool:
        """Whether every step ran."""
        return self.status is Status.COMPLETED

    @property
    def failed(self) -> bool:
        """Whether a step failed (its completed steps were rolled back)."""
        return self.status is Status.FAILED

    @property
    def cancelled(self) -> bool:
        """Whether it was cancelled (by ``cancel``, ``undo`` or exhausted attempts)."""
        return self.status is Status.CANCELLED

    @property
    def halted(self) -> bool:
        """Whether a step returned ``Halt``."""
        return self.status is Status.HALTED

    def raise_for_status(self) -> Execution:
        """Raise :class:`~reactor.errors.ExecutionFailed` if the execution failed.

        Only ``FAILED`` raises: a paused, running, completed, halted or cancelled
        execution is returned unchanged, so the call chains
        (``ex = Checkout.run(...).raise_for_status()``). Halting and cancelling are
        outcomes someone chose; check :attr:`halted` or :attr:`cancelled` for them.

        Returns:
            This execution.

        Raises:
            ExecutionFailed: the status is ``FAILED``; it carries :attr:`error` as
                ``failure``, and the step's traceback (when stored) as its cause.
        """
        if self.status is not Status.FAILED:
            return self
        failure = self.error or FailureInfo(step=None, message="no failure recorded", type="")
        what = f"{failure.type}: {failure.message}" if failure.type else failure.message
        message = f"the execution failed: {what}"
        if failure.rollback_failures:
            message += f" ({len(failure.rollback_failures)} rollback hook(s) failed too)"
        error = ExecutionFailed(
            message,
            failure=failure,
            reactor=self.reactor.name,
            execution_id=self.id,
            step=failure.step,
        )
        if failure.traceback:
            raise error from _StepTraceback(failure.traceback)
        raise error

    def resume(
        self,
        payload: Any,
        *,
        step: str | None = None,
        update: Mapping[str, Any] | None = None,
        principal: str | None = None,
    ) -> Execution:
        """Flexible resume: an invalid payload returns the still-paused execution with
        :attr:`validation_errors` set, counting no attempt.

        Otherwise as :meth:`Reactor.resume` (``update=``, ``principal=`` included):
        raises ``NotPaused``, ``NotPending``, ``AmbiguousStep``, ``AlreadyResumed``.
        """
        # The record only holds data: the reactor class carries the behaviour.
        result: Execution = self.reactor.resume(
            self.id, payload, step=step, strict=False, update=update, principal=principal
        )
        return result

    async def aresume(
        self,
        payload: Any,
        *,
        step: str | None = None,
        update: Mapping[str, Any] | None = None,
        principal: str | None = None,
    ) -> Execution:
        """Async twin of :meth:`resume`."""
        result: Execution = await self.reactor.aresume(
            self.id, payload, step=step, strict=False, update=update, principal=principal
        )
        return result

    def __repr__(self) -> str:
        return f"<Execution {self.reactor.__qualname__} {self.id} {self.status.value}>"
