"""The stored body of an execution: an attrs record converted to and from JSON by cattrs.

Storage keeps the body as opaque text; only the engine reads it. Results, inputs and
requests inside it are codec trees (JSON with type tags), decoded by the engine.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import cattrs

from . import _codec
from ._interrupts import StoredPending
from ._records import FailureInfo

__all__ = ["Body", "dump_body", "load_body"]


@attrs.define
class Body:
    """Everything about an execution that storage does not index.

    Attributes:
        owner: Token of the process that runs (or last ran) the execution.
        inputs: The root inputs (codec tree).
        results: ``{step_path: codec tree}`` of completed steps.
        done: Paths of completed steps, in completion order.
        undo: Paths of completed steps with an undo hook not yet undone, oldest first.
        pending: Pending interrupts by path.
        resolved: Interrupt paths a payload was accepted for.
        frames: Inputs of child frames by prefix (codec trees).
        element_failures: Rolled-back elements of ``map_(fail_fast=False)`` by path.
        error: Why the execution failed.
        halt_reason: Why a step halted it.
        undo_request: Reason of a requested cancel-with-undo the owner must carry out.
        idempotency_key: The key the execution was started with.
        version: The reactor class's ``version`` when the execution started.
    """

    owner: str
    inputs: Any = None
    results: dict[str, Any] = attrs.Factory(dict)
    done: list[str] = attrs.Factory(list)
    undo: list[str] = attrs.Factory(list)
    pending: dict[str, StoredPending] = attrs.Factory(dict)
    resolved: list[str] = attrs.Factory(list)
    frames: dict[str, Any] = attrs.Factory(dict)
    element_failures: dict[str, FailureInfo] = attrs.Factory(dict)
    error: FailureInfo | None = None
    halt_reason: str | None = None
    undo_request: str | None = None
    idempotency_key: str | None = None
    version: Any = None


_converter = cattrs.Converter()
_unstructure = _converter.get_unstructure_hook(Body)
_structure = _converter.get_structure_hook(Body)


def dump_body(body: Body) -> str:
    """The body as stored JSON text."""
    return _codec.dump_tree(_unstructure(body))


def load_body(text: str) -> Body:
    """A stored body back as a :class:`Body`.

    Raises:
        ValueError: the text is not a body (not JSON, or fields missing or mistyped).
    """
    try:
        body: Body = _structure(json.loads(text), Body)
    except (cattrs.BaseValidationError, KeyError, TypeError) as exc:
        raise ValueError(f"not an execution body: {exc}") from exc
    return body
