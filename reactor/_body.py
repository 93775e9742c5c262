"""The stored body of an execution: an attrs record converted to and from JSON by cattrs.

Storage keeps the body as opaque text; only the engine reads it. Results, inputs and
requests inside it are codec trees (JSON with type tags), decoded by the engine.
"""

from __future__ import annotations

from typing import Any, NewType

import attrs
import cattrs
from cattrs.fns import identity
from cattrs.gen import make_dict_unstructure_fn, override

from . import _codec
from .errors import FailureInfo, RollbackFailure

__all__ = [
    "Body",
    "FanOut",
    "ParentLink",
    "RollbackState",
    "StoredPending",
    "TraceText",
    "Tree",
    "Trees",
    "dump_body",
    "load_body",
    "stored_tree",
]

Tree = NewType("Tree", object)
"""A codec tree (JSON with type tags): stored and read back as it is, never walked."""

Trees = NewType("Trees", dict[str, Tree])
"""Codec trees by step path or frame prefix, stored and read back as they are."""

TraceText = NewType("TraceText", str)
"""Trace rows (see :mod:`reactor._trace`) as JSON arrays separated by commas, stored and
read back as text."""


@attrs.define
class StoredPending:
    """A pending interrupt as the body keeps it.

    Attributes:
        cid: The correlation id it registered, if any.
        request: What its body returned.
        deadline: Unix time it times out at, if any.
        strategy: ``"lazy"`` or ``"active"``.
        attempts_left: Invalid strict resumes still allowed (``None``: unlimited).
        kind: ``"interrupt"``, ``"breakpoint"`` or ``"suspended"``.
        since: Unix time the execution reached it.
    """

    cid: str | None
    request: Tree
    deadline: float | None
    strategy: str
    attempts_left: int | None
    kind: str = "interrupt"
    since: float | None = None


@attrs.define
class FanOut:
    """The batch a fanned-out map (``map_(..., fan_out=N)``) waits for.

    Attributes:
        start: Index of the batch's first element.
        end: Index after its last element.
        done: Indexes of its elements that have ended, in the order they reported.
    """

    start: int
    end: int
    done: list[int] = attrs.Factory(list)


@attrs.define
class ParentLink:
    """Where an element execution of a fanned-out map reports when it ends.

    Attributes:
        reactor: The parent execution's reactor name.
        id: The parent execution's id.
        path: The map's path in the parent.
        index: The element's index.
    """

    reactor: str
    id: str
    path: str
    index: int


@attrs.define
class RollbackState:
    """A rollback in progress, recorded before its first hook runs so that a process that
    takes the execution over after a crash finishes it instead of running steps again.

    Attributes:
        cause: The failure being rolled back (``None`` for an undo or a cancel).
        status: The status the execution ends with (``"failed"`` or ``"cancelled"``).
        reason: The reason it ends with.
        compensate: Paths of the failed steps whose ``compensate`` still has to run.
        problems: Hooks that failed so far.
    """

    cause: FailureInfo | None
    status: str
    reason: str | None = None
    compensate: list[str] = attrs.Factory(list)
    problems: list[RollbackFailure] = attrs.Factory(list)


@attrs.define
class Body:
    """Everything about an execution that storage does not index.

    Attributes:
        owner: Token of the process that runs (or last ran) the execution.
        fence: Grows by one with each new owner (:attr:`reactor.Context.fence`).
        inputs: The root inputs (codec tree).
        results: ``{step_path: codec tree}`` of completed steps, in completion order.
        undo: Paths of completed steps with an undo hook not yet undone, oldest first.
        pending: Pending interrupts by path.
        resolved: Interrupt paths a payload was accepted for.
        retired: Interrupts no longer pending (resumed, or out of attempts), with their
            correlation ids: those stay held until the execution ends, so that a late
            resume, by id or by correlation id, is told it lost.
        frames: Inputs of child frames by prefix (codec trees).
        element_failures: Rolled-back elements of ``map_(fail_fast=False)`` by path.
        error: Why the execution failed.
        halt_reason: Why a step halted it.
        rollback: A rollback in progress.
        undo_request: Reason of a requested cancel-with-undo the owner must carry out.
        idempotency_key: The key the execution was started with.
        version: The reactor class's ``version`` when the execution started.
        returns: The step whose result is the execution's result (so that tools without
            the class, such as the CLI's ``show``, can tell it).
        fan_out: The batch each fanned-out map of the execution waits for, by path.
        parent: For an element of a fanned-out map: its parent.
        trace: The timeline: its newest entries as rows in JSON text
            (:mod:`reactor._trace`).
        trace_length: How many rows ``trace`` holds.
        suspend_request: Reason of a requested operator pause the owner must carry out.
        breakpoints: The breakpoints given to ``run`` (class-level ones come from the class).
        child_attempts: Attempts used by ``compose(..., retries=N)`` children, by path.
        span_context: The W3C trace context of the execution's first OpenTelemetry span,
            which later spans (after a resume, in any process) link to.
    """

    owner: str
    fence: int = 1
    inputs: Tree = Tree(None)
    results: Trees = attrs.Factory(lambda: Trees({}))
    undo: list[str] = attrs.Factory(list)
    pending: dict[str, StoredPending] = attrs.Factory(dict)
    resolved: list[str] = attrs.Factory(list)
    retired: dict[str, str | None] = attrs.Factory(dict)
    frames: Trees = attrs.Factory(lambda: Trees({}))
    element_failures: dict[str, FailureInfo] = attrs.Factory(dict)
    error: FailureInfo | None = None
    halt_reason: str | None = None
    rollback: RollbackState | None = None
    undo_request: str | None = None
    idempotency_key: str | None = None
    version: Tree = Tree(None)
    returns: str | None = None
    fan_out: dict[str, FanOut] = attrs.Factory(dict)
    parent: ParentLink | None = None
    trace: TraceText = TraceText("")
    trace_length: int = 0
    suspend_request: str | None = None
    breakpoints: list[str] = attrs.Factory(list)
    child_attempts: dict[str, int] = attrs.Factory(dict)
    span_context: dict[str, str] | None = None


_converter = cattrs.Converter(detailed_validation=False)
# Trees are plain JSON already (walking them would cost ~20 µs per body for nothing), and
# so are optional strings and numbers and the lists and maps of them: these are stored and
# read back as they are (a body is only read from what a body wrote).
_AS_IS = (
    Tree,
    Trees,
    TraceText,
    str,
    int,
    str | None,
    int | None,
    float | None,
    list[str],
    dict[str, str | None],
    dict[str, int],
    dict[str, str] | None,
)
# (cattrs writes no call at all for the ``identity`` hook in the code it generates.)
_converter.register_unstructure_hook_func(lambda kind: kind in _AS_IS, identity)
_converter.register_structure_hook_func(lambda kind: kind in _AS_IS, lambda value, _: value)
# Fields most executions leave at their default are left out of the stored text (and
# read back as the default): each costs the encoder a key and a value at every write.
_RARE = (
    "suspend_request",
    "breakpoints",
    "child_attempts",
    "span_context",
    "frames",
    "element_failures",
    "rollback",
    "undo_request",
    "halt_reason",
    "fan_out",
    "parent",
    "idempotency_key",
    "version",
    "retired",
    "resolved",
    "error",
)
_converter.register_unstructure_hook(
    StoredPending,
    make_dict_unstructure_fn(StoredPending, _converter, kind=override(omit_if_default=True)),
)
_rare: dict[str, Any] = {name: override(omit_if_default=True) for name in _RARE}
_converter.register_unstructure_hook(Body, make_dict_unstructure_fn(Body, _converter, **_rare))
_unstructure = _converter.get_unstructure_hook(Body)
_structure = _converter.get_structure_hook(Body)


def stored_tree(record: Any) -> Any:
    """A record the body holds (pending interrupt, failure, rollback...) as stored JSON
    data, as :func:`dump_body` writes it."""
    return _converter.unstructure(record)


def dump_body(body: Body) -> str:
    """The body as stored JSON text."""
    return _codec.dump_tree(_unstructure(body))


def load_body(text: str) -> Body:
    """A stored body back as a :class:`Body`.

    Raises:
        ValueError: the text is not a body (not JSON, or fields missing or mistyped).
    """
    try:
        body: Body = _structure(_codec.parse_tree(text), Body)
    except (cattrs.BaseValidationError, KeyError, TypeError) as exc:
        raise ValueError(f"not an execution body: {exc}") from exc
    return body
