"""JSON documents of executions, interrupts and reactors, as the API answers them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import attrs

from reactor import Execution, FailureInfo, PendingInterrupt, Reactor

__all__ = [
    "TRACE_FIELDS",
    "declared_steps",
    "execution_document",
    "interrupt_document",
    "iso",
    "jsonable",
    "reactor_document",
    "trace_entries",
]

TRACE_FIELDS = ("event", "step", "time", "attempt", "principal")
"""The members of an ``Execution.trace`` entry, in the order pages show them."""

_STEP_KINDS = frozenset({"step", "interrupt", "compose", "map"})


def iso(value: dt.datetime | float | None) -> str | None:
    """ISO 8601 text of a datetime or unix time (UTC), or ``None``."""
    if value is None:
        return None
    if not isinstance(value, dt.datetime):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    return value.isoformat(timespec="seconds")


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: results keep their Python types (dataclasses,
    Decimal, datetime...), which a JSON client receives in their natural JSON form."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, decimal.Decimal | uuid.UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if attrs.has(type(value)):
        return jsonable(attrs.asdict(value, recurse=False))
    return repr(value)


def _failure_document(error: FailureInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "step": error.step,
        "type": error.type,
        "message": error.message,
        "rollback_failures": [
            {"step": f.step, "kind": f.kind, "message": f.message} for f in error.rollback_failures
        ],
    }


def trace_entries(execution: Execution) -> list[dict[str, Any]]:
    """The execution's persisted trace as dicts, or ``[]`` when the engine keeps none.

    ``Execution.trace`` is read only if the engine provides it; nothing is made up here.
    """
    entries: list[dict[str, Any]] = []
    for entry in getattr(execution, "trace", ()) or ():
        if isinstance(entry, Mapping):
            fields = {name: entry.get(name) for name in TRACE_FIELDS}
        else:
            fields = {name: getattr(entry, name, None) for name in TRACE_FIELDS}
        if isinstance(fields["time"], dt.datetime | float | int) and not isinstance(
            fields["time"], bool
        ):
            fields["time"] = iso(fields["time"])
        entries.append(jsonable(fields))
    return entries


def interrupt_document(pending: PendingInterrupt) -> dict[str, Any]:
    """One pending interrupt as JSON."""
    return {
        "step": pending.step,
        "kind": pending.kind,
        "correlation_id": pending.correlation_id,
        "request": jsonable(pending.request),
        "schema": jsonable(pending.schema),
        "deadline": iso(pending.deadline),
        "attempts_left": pending.attempts_left,
    }


def execution_document(execution: Execution) -> dict[str, Any]:
    """The whole execution as JSON: status, results, interrupts, error and trace."""
    return {
        "id": execution.id,
        "reactor": execution.reactor.name,
        "status": execution.status.value,
        "reason": execution.reason,
        "created_at": iso(execution.created_at),
        "updated_at": iso(execution.updated_at),
        "result": jsonable(execution.result),
        "results": {path: jsonable(value) for path, value in execution.results.items()},
        "error": _failure_document(execution.error),
        "interrupts": [interrupt_document(pending) for pending in execution.interrupts],
        "validation_errors": list(execution.validation_errors),
        "trace": trace_entries(execution),
    }


def declared_steps(cls: type[Reactor], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(path, declaration)`` of every step the class declares, in declaration order,
    children of ``compose`` included (``"payment.charge"``); ``map_`` elements are
    listed once, as ``"lines[].approve"``."""
    seen: set[str] = set()
    for klass in reversed(cls.__mro__):
        for name, member in vars(klass).items():
            if getattr(member, "kind", None) not in _STEP_KINDS or name in seen:
                continue
            seen.add(name)
            yield prefix + name, member
            child = getattr(member, "child", None)
            if isinstance(child, type) and issubclass(child, Reactor):
                inner = f"{prefix}{name}." if member.kind == "compose" else f"{prefix}{name}[]."
                yield from declared_steps(child, inner)


def reactor_document(cls: type[Reactor]) -> dict[str, Any]:
    """A reactor class as JSON: its name, Mermaid graph and interrupts with their schemas."""
    return {
        "name": cls.name,
        "graph": cls.mermaid(),
        "interrupts": [
            {
                "step": path,
                "schema": jsonable(decl.schema),
                "timeout": decl.timeout,
                "strategy": decl.strategy,
                "max_attempts": decl.max_attempts,
                "accept_early": decl.accept_early,
            }
            for path, decl in declared_steps(cls)
            if decl.kind == "interrupt"
        ],
    }
