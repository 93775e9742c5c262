"""The errors reactor raises.

Every public error derives from :class:`ReactorError` and carries the context it
happened in as attributes (``reactor``, ``execution_id``, ``step``), which also
appear in its message::

    ReactorError
    ├── DefinitionError          a reactor class is wrongly declared, or another class has its
    │                            name (raised at class creation)
    ├── DefinitionChanged        a stored execution no longer matches its reactor class
    ├── InputInvalid             run() inputs missing, unknown or failing their schema, or a
    │                            bad execution_id / idempotency_key
    ├── PayloadInvalid           a resume payload fails the interrupt's schema
    ├── OutputInvalid            a step's result (or an edit of it) fails its output_schema
    ├── ArgumentInvalid          a step's argument or an interrupt's correlation id cannot be
    │                            resolved (recorded as the failure)
    ├── ExecutionNotFound        unknown execution id or correlation id, or one that is no
    │                            string of valid Unicode (None, 123, "\\ud800")
    ├── NotPaused                resume of an execution that is not paused
    ├── NotPending               resume of a step that is not a pending interrupt
    ├── AmbiguousStep            resume without step= while several interrupts are pending
    ├── AlreadyResumed           the interrupt was resumed by someone else first
    ├── CorrelationConflict      a correlation id is already held by a live execution
    ├── InterruptTimeout         an interrupt's deadline passed (recorded as the failure)
    ├── ExecutionFailed          raise_for_status() of an execution that failed
    ├── SerializationError       a value cannot be encoded as JSON, or is too large
    └── StorageError             the storage backend failed or refused a write

    UserWarning
    └── ReactorWarning           a setup that works now but will hurt later (see its doc)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

__all__ = [
    "AlreadyResumed",
    "AmbiguousStep",
    "ArgumentInvalid",
    "CorrelationConflict",
    "DefinitionChanged",
    "DefinitionError",
    "ExecutionFailed",
    "ExecutionNotFound",
    "FailureInfo",
    "InputInvalid",
    "InterruptTimeout",
    "NotPaused",
    "NotPending",
    "OutputInvalid",
    "PayloadInvalid",
    "ReactorError",
    "ReactorWarning",
    "RollbackFailure",
    "SerializationError",
    "StorageError",
]


@attrs.frozen
class RollbackFailure:
    """A ``compensate`` or ``undo`` that raised during rollback (the rollback went on).

    Attributes:
        step: Path of the step whose hook failed.
        kind: ``"compensate"`` or ``"undo"``.
        message: ``"ExceptionType: message"`` of what it raised.
    """

    step: str
    kind: str
    message: str


@attrs.frozen
class FailureInfo:
    """Why an execution failed.

    Attributes:
        step: Path of the step that failed (``"payment.charge"`` inside a child), or
            ``None`` when the failure is not a step's (e.g. an undo request's rollback).
        message: The exception's message.
        type: The exception's class name, e.g. ``"ValueError"`` or ``"InterruptTimeout"``.
        traceback: The formatted traceback, when there is one.
        rollback_failures: Hooks that failed while rolling back.
    """

    step: str | None
    message: str
    type: str
    traceback: str | None = None
    rollback_failures: list[RollbackFailure] = attrs.Factory(list)


class ReactorError(Exception):
    """Base of every error reactor raises.

    Attributes:
        reactor: Name of the reactor class involved, if any.
        execution_id: Id of the execution involved, if any.
        step: Step (or interrupt path such as ``"payment.approval"``) involved, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        reactor: str | None = None,
        execution_id: str | None = None,
        step: str | None = None,
    ) -> None:
        self.reactor = reactor
        self.execution_id = execution_id
        self.step = step
        self.detail = message
        where = [
            f"{label}={value!r}"
            for label, value in (
                ("reactor", reactor),
                ("execution", execution_id),
                ("step", step),
            )
            if value is not None
        ]
        super().__init__(f"{message} [{', '.join(where)}]" if where else message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps errors picklable across multiprocessing boundaries (tests, user code);
        # reactor itself never pickles anything.
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls: type[ReactorError], state: dict[str, Any]) -> ReactorError:
    error = cls.__new__(cls)
    Exception.__init__(error, str(state.get("detail", "")))
    error.__dict__.update(state)
    return error


class DefinitionError(ReactorError):
    """A reactor class is declared wrongly, or its name is registered by another class;
    raised when the class is created."""


class DefinitionChanged(ReactorError):
    """A stored execution refers to steps its reactor class no longer has."""


class InputInvalid(ReactorError):
    """Inputs given to ``run`` are missing, unknown or fail their JSON Schema, or its
    ``execution_id`` or ``idempotency_key`` is not a string of valid Unicode.

    Attributes:
        errors: ``{name: message}`` for each offending input or option; an input that
            breaks several rules of its schema has them all, joined by ``"; "``.
    """

    def __init__(self, message: str, *, errors: Mapping[str, str], **context: Any) -> None:
        super().__init__(message, **context)
        self.errors = dict(errors)


class PayloadInvalid(ReactorError):
    """A resume payload fails the interrupt's JSON Schema.

    Attributes:
        errors: One ``{"path": "/a/b", "message": "..."}`` dict per schema violation.
        attempts_left: Strict resumes left before the execution is cancelled
            (``None`` when attempts are unlimited, ``0`` when it was just cancelled).
    """

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[Mapping[str, str]],
        attempts_left: int | None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.errors = [dict(e) for e in errors]
        self.attempts_left = attempts_left


class ArgumentInvalid(ReactorError):
    """A value resolved for a step while it runs cannot be used: an argument that cannot
    be dug out of its source or converted to the parameter's annotation, a ``map_``
    ``over=`` that is not a list, or a correlation id callable that returned something
    other than a string of valid Unicode.

    Recorded as the step's failure (``FailureInfo.type`` is ``"ArgumentInvalid"``); the
    step is neither retried nor compensated, and the run rolls back.
    """


class OutputInvalid(ReactorError):
    """A step's result fails the step's ``output_schema``: the step fails (no retry), or
    ``resume(..., update=...)`` refuses the edit and changes nothing.

    Attributes:
        errors: One ``{"path": "/a/b", "message": "..."}`` dict per schema violation.
    """

    def __init__(self, message: str, *, errors: Sequence[Mapping[str, str]], **context: Any):
        super().__init__(message, **context)
        self.errors = [dict(e) for e in errors]


class ExecutionNotFound(ReactorError):
    """No execution has this id, or no live execution holds this correlation id.

    Also raised for an id or correlation id that no execution can have (``None``, a
    number, a string holding a lone surrogate), before any storage is asked.
    """


class NotPaused(ReactorError):
    """The execution is not paused (it completed, failed, was cancelled...).

    Attributes:
        status: The execution's status value, e.g. ``"cancelled"``.
        reason: Why it ended that way, when known (e.g. ``"max_attempts"``).
    """

    def __init__(
        self, message: str, *, status: str, reason: str | None = None, **context: Any
    ) -> None:
        super().__init__(message, **context)
        self.status = status
        self.reason = reason


class NotPending(ReactorError):
    """The step named is not a pending interrupt of the execution.

    Attributes:
        pending: The paths of the interrupts that are pending.
    """

    def __init__(self, message: str, *, pending: Sequence[str], **context: Any) -> None:
        super().__init__(message, **context)
        self.pending = list(pending)


class AmbiguousStep(ReactorError):
    """``step=`` was left out while several interrupts are pending.

    Attributes:
        pending: The paths of the interrupts that are pending.
    """

    def __init__(self, message: str, *, pending: Sequence[str], **context: Any) -> None:
        super().__init__(message, **context)
        self.pending = list(pending)


class AlreadyResumed(ReactorError):
    """Another resume of the same interrupt was accepted first."""


class CorrelationConflict(ReactorError):
    """The correlation id is already held by another live execution of the reactor.

    Attributes:
        correlation_id: The contested correlation id.
        holder: Id of the execution that holds it.
    """

    def __init__(
        self, message: str, *, correlation_id: str, holder: str | None = None, **context: Any
    ) -> None:
        super().__init__(message, **context)
        self.correlation_id = correlation_id
        self.holder = holder


class InterruptTimeout(ReactorError):
    """An interrupt was not resumed before its deadline."""


class ExecutionFailed(ReactorError):
    """Raised by :meth:`Execution.raise_for_status() <reactor.Execution.raise_for_status>`
    for an execution whose status is ``FAILED``.

    The step's exception itself is not kept (the failure may have been stored by another
    process); its formatted traceback, when there is one, is attached as the cause so
    that it is printed with this error.

    Attributes:
        failure: Why the execution failed: the step, the exception's type and message,
            its traceback and the rollback hooks that failed.
    """

    def __init__(self, message: str, *, failure: FailureInfo, **context: Any) -> None:
        super().__init__(message, **context)
        self.failure = failure


class _StepTraceback(Exception):
    """The stored traceback of a failed step, attached as the cause of
    :class:`ExecutionFailed` so that it is printed with it (not raised on its own)."""

    def __init__(self, traceback: str) -> None:
        super().__init__(traceback)
        self.traceback = traceback

    def __str__(self) -> str:
        return "\n" + self.traceback.rstrip()


class SerializationError(ReactorError):
    """A value cannot be encoded as JSON, cannot be decoded, or exceeds the size limit."""


class StorageError(ReactorError):
    """The storage backend failed or refused an operation."""


class ReactorWarning(UserWarning):
    """A setup that works now but will get in the way later.

    Emitted (through :mod:`warnings`) when a reactor defined in a script run as
    ``__main__`` without an explicit ``name`` starts an execution on durable storage:
    the execution records the name ``__main__.X``, which no other process (a worker, the
    CLI's ``resume`` and ``undo``) can import. Silence it by setting ``name = "..."`` on
    the class.
    """
