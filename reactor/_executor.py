"""The run of one execution: its state, and driving it until it pauses or ends.

One :class:`Run` holds the state of one execution in this process: results, the undo
stack, pending interrupts, child frames. :meth:`Run.drive` runs passes over the graph
(:mod:`reactor._scheduler`), each node by its kind (:mod:`reactor._plan`), and stores
each outcome -- completed, failed after a rollback (:mod:`reactor._saga`), halted,
cancelled or paused (:mod:`reactor._interrupts`). The state is stored as a typed body
(:mod:`reactor._body`) with compare-and-set; :mod:`reactor._actions` builds the entry
points on top of it.

Steps never run twice because of concurrent callers: whoever moves an execution from
``PAUSED`` to ``RUNNING`` owns it (a random ``owner`` token in the body), and a writer
that finds another owner's token stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import inspect
import re
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from functools import partial
from typing import Any

import attrs

from . import _codec, _otel
from ._body import FanOut, ParentLink, RollbackState, load_body, stored_tree
from ._config import get_config
from ._dispatch import installed
from ._dsl import NOTHING, Halt, MapFailure, MapResult, Skip
from ._fanout import element_failure, element_finished, element_id, start_element
from ._frame import Failed, Frame, Scope
from ._interrupts import Pending, schema_errors
from ._invoke import INLINE_ALLOWED, Binder, call_now, call_off_loop, in_task
from ._lease import Heartbeat, Lease, watchdog
from ._log import emitter
from ._paths import plan_at, split
from ._plan import Call, Node, Plan
from ._records import TRACE_LIMIT, Execution, PendingInterrupt
from ._retry import cas_retry
from ._saga import Recorded, Rollback, compensations, failure, outcome
from ._scheduler import schedule
from ._status import Status
from ._trace import Trace, parse_rows
from .errors import (
    ArgumentInvalid,
    CorrelationConflict,
    DefinitionChanged,
    ExecutionNotFound,
    FailureInfo,
    InputInvalid,
    OutputInvalid,
    PayloadInvalid,
    ReactorError,
    RollbackFailure,
    SerializationError,
    StorageError,
)
from .storage import CorrelationTaken, EarlyPayloadWaiting, Storage, StoredExecution, WriteConflict
from .storage._base import new_token

__all__ = ["Run", "Stop", "live_run", "suspend_all", "validate_inputs"]

# Encoded results of these types are a few bytes, whatever the limit: no size check.
_SURELY_SMALL = frozenset({int, float, bool, type(None)})


# Runs alive in this process, so a cancel from the same process stops them before
# their next step without waiting for a storage round trip.
_live_runs: weakref.WeakValueDictionary[str, Run] = weakref.WeakValueDictionary()


class Stop(enum.Enum):
    """Why a run stops starting steps, when it does (besides a failure in a scope).

    Ordered by precedence: a run that lost its ownership writes nothing more, whatever
    else was asked of it.
    """

    LOST = "lost"
    """Another process owns the execution now."""
    CANCELLED = "cancelled"
    """Cancelled by someone else: store it cancelled (``undo``: undo first)."""
    HALTED = "halted"
    """A step returned or raised ``Halt``."""
    SUSPENDED = "suspended"
    """Its process shuts down: checkpoint and leave the rest to a worker."""
    PAUSE = "pause"
    """An operator asked for a pause (``Reactor.suspend``): store it paused with a
    pending ``"suspended"`` item."""


#: The pending item of an operator pause.
SUSPENDED = "suspended"


class Run:
    """The in-process state of one execution, and driving it until it pauses or ends."""

    # Attributes most runs never change: class defaults, set per instance when they do
    # (a run on the memory store is created for every call: each assignment counts).
    #: The rollback in progress (its undone steps leave the stored undo list at once).
    rolling: Rollback | None = None
    #: For an element of a fanned-out map: its parent.
    parent: ParentLink | None = None
    reason: str | None = None
    error: FailureInfo | None = None
    #: A rollback in progress (recorded before its first hook on durable storage).
    rollback_state: RollbackState | None = None
    #: Why the run stops starting steps, if it does.
    stop: Stop | None = None
    #: The reason given with a ``HALTED``/``CANCELLED`` stop.
    stop_reason: str | None = None
    #: The reason of a requested operator pause not carried out yet (stored).
    pause_request: str | None = None
    span_context: dict[str, str] | None = None
    _flush: asyncio.Future[None] | None = None
    #: With ``Stop.CANCELLED``: undo the completed steps first (exhausted attempts
    #: while another process ran the execution: that owner does the undo).
    undo_on_cancel: bool = False
    inline_sync: bool = False

    def __init__(
        self,
        plan: Plan,
        execution_id: str,
        storage: Storage,
        inputs: dict[str, Any],
        *,
        max_concurrency: int | None = None,
        interrupt_handler: Callable[[PendingInterrupt], Any] | None = None,
        idempotency_key: str | None = None,
        owner: str | None = None,
        breakpoints: Iterable[str] = (),
    ) -> None:
        config = get_config()
        #: ``max_payload_bytes`` as configured when the run started (read once: per step
        #: it would be a call on the hot path).
        self.max_result_bytes = config.max_payload_bytes
        self.plan = plan
        self.id = execution_id
        self.storage = storage
        self.handler = interrupt_handler
        self.idempotency_key = idempotency_key
        self.root = Frame(
            plan,
            "",
            inputs,
            object.__new__(plan.reactor),
            Scope(),
            max_concurrency if max_concurrency is not None else plan.max_concurrency,
        )
        self.frames: dict[str, Frame] = {"": self.root}
        self.frame_trees: dict[str, Any] = {}
        self.inputs_tree: Any = None
        self.results: dict[str, Any] = {}
        self.binder = Binder(execution_id, plan.name, self.results)
        self.trees: dict[str, Any] = {}
        self.undo_stack: list[str] = []
        self.pending: dict[str, Pending] = {}
        self.resolved: set[str] = set()
        #: Interrupts no longer pending, by path, with their correlation ids.
        self.retired: dict[str, str | None] = {}
        #: Correlation ids the store holds for this execution (as last written or read).
        self.held_cids: frozenset[str] = frozenset()
        self.element_failures: dict[str, FailureInfo] = {}
        #: Fanned-out maps: the batch each waits for (see :mod:`reactor._fanout`).
        self.fan_out: dict[str, FanOut] = {}
        self.status = Status.RUNNING
        self.version = 0
        self.created_at = config.clock()
        self.updated_at = self.created_at
        self.owner = owner if owner is not None else new_token()
        self.fence = 1
        #: Whether each completion is recorded before dependents start (DESIGN §9).
        self.eager = storage.durable and (plan.durability or config.durability) == "eager"
        self.lease = Lease()
        self.dirty = True
        self.active_tasks = 0
        self.clock = config.clock
        #: The rows of :attr:`Execution.trace`.
        self.trace = Trace(self.created_at)
        #: Breakpoints given to ``run`` (stored), and all that apply at the root.
        self.run_breakpoints = sorted(breakpoints)
        self.breakpoints = frozenset(self.run_breakpoints) | plan.breakpoints
        self.breaking = bool(self.breakpoints) or plan.breaking
        #: Attempts used by retried compose children, by path.
        self.child_attempts: dict[str, int] = {}
        #: Strings of redacted inputs, masked in error messages and log lines.
        self.secrets: set[str] = set()
        self.add_secrets(plan, inputs)
        self.otel = _otel.telemetry(plan.name, execution_id)
        middleware = config.middleware
        if self.otel is not None:
            middleware = (*middleware, self.otel)
        self.log = emitter(middleware, reactor=plan.name, execution_id=execution_id)
        # Only durable runs write from more than one place at once (heartbeats, background
        # records): a run on the memory store needs no locks.
        self._write_lock = asyncio.Lock() if storage.durable else None
        self._checkpoint_lock = asyncio.Lock() if self.eager else None
        self.state_lock = threading.Lock()

    # ------------------------------------------------------------------ stops

    def request_stop(self, stop: Stop, reason: str | None = None) -> None:
        """Ask the run to stop before its next step; a stronger stop wins, and of two
        stops of one kind the later one's reason."""
        if stop is Stop.PAUSE:
            # Kept apart from the stop, which a stronger one may replace: a shutdown's
            # checkpoint must still carry the request to the worker that continues.
            self.pause_request = reason
        order = list(Stop)
        if self.stop is None or order.index(stop) <= order.index(self.stop):
            self.stop = stop
            if reason is not None or stop is not Stop.LOST:
                self.stop_reason = reason

    def request_cancel(self, reason: str, *, undo: bool = False) -> None:
        """Stop before the next step and end ``CANCELLED`` (``undo``: undo first)."""
        self.request_stop(Stop.CANCELLED, reason)
        self.undo_on_cancel = self.undo_on_cancel or undo

    def note(
        self,
        event: str,
        step: str | None = None,
        attempt: int | None = None,
        principal: str | None = None,
    ) -> None:
        """Add an entry to the trace (the newest ``TRACE_LIMIT`` are kept)."""
        rows = self.trace.rows
        rows.append((event, step, self.trace.offset(self.clock()), attempt, principal))
        if len(rows) > 2 * TRACE_LIMIT:
            self.trace.trim()

    # -------------------------------------------------------------- redaction

    def add_secrets(self, plan: Plan, inputs: Mapping[str, Any]) -> None:
        """Remember the redacted inputs of a frame, to mask them in messages."""
        for name in plan.redacted:
            if name in inputs:
                _collect_secrets(inputs[name], self.secrets)

    def scrub(self, text: str) -> str:
        """``text`` with every redacted input value masked as ``"***"``."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def scrub_failure(self, info: FailureInfo | None) -> FailureInfo | None:
        if info is None or not self.secrets:
            return info
        return FailureInfo(
            step=info.step,
            message=self.scrub(info.message),
            type=info.type,
            traceback=self.scrub(info.traceback) if info.traceback else info.traceback,
            rollback_failures=[
                RollbackFailure(f.step, f.kind, self.scrub(f.message))
                for f in info.rollback_failures
            ],
        )

    @property
    def lost(self) -> bool:
        """Whether another process owns the execution now (this one writes nothing)."""
        return self.stop is Stop.LOST

    def stopping(self, scope: Scope) -> bool:
        """Whether no further step may start in ``scope``."""
        if self.stop is not None:
            return True
        lease = self.lease
        if lease.deadline is not None and lease.lapsed():
            self.lease_lost()
            return True
        if scope.parent is None:
            # The common case, checked twice per step: settled in two attribute reads.
            return scope.failure is not None
        return scope.stopped()

    # ------------------------------------------------------------------ storage

    def body(self) -> str:
        """The stored body: the text :func:`dump_body` makes of this state's :class:`Body`,
        built directly (made at every write, the record and its conversion would cost a
        tenth of the write; the test suite holds the two to the same text)."""
        trace, trace_length = self.trace.stored()
        rolling = self.rolling
        pending = self.pending
        tree: dict[str, Any] = {
            "owner": self.owner,
            "fence": self.fence,
            "inputs": self.inputs_tree,
            "results": self.trees,
            "undo": rolling.left(self.undo_stack) if rolling else self.undo_stack,
            "pending": {p: stored_tree(v.stored()) for p, v in pending.items()} if pending else {},
            "returns": self.plan.returns,
            "trace": trace,
            "trace_length": trace_length,
        }
        # Fields most executions leave at their default are left out, as dump_body does.
        if self.resolved:
            tree["resolved"] = sorted(self.resolved)
        if self.retired:
            tree["retired"] = self.retired
        if self.frame_trees:
            tree["frames"] = self.frame_trees
        if self.element_failures:
            tree["element_failures"] = stored_tree(self.element_failures)
        if self.error is not None:
            tree["error"] = stored_tree(self.error)
        stop = self.stop
        if stop is Stop.HALTED and self.stop_reason is not None:
            tree["halt_reason"] = self.stop_reason
        if self.rollback_state is not None:
            tree["rollback"] = stored_tree(self.rollback_state)
        if stop is Stop.CANCELLED and self.undo_on_cancel and self.stop_reason is not None:
            tree["undo_request"] = self.stop_reason
        if self.idempotency_key is not None:
            tree["idempotency_key"] = self.idempotency_key
        if self.plan.version is not None:
            tree["version"] = self.plan.version
        if self.fan_out:
            tree["fan_out"] = stored_tree(self.fan_out)
        if self.parent is not None:
            tree["parent"] = stored_tree(self.parent)
        if self.pause_request is not None:
            tree["suspend_request"] = self.pause_request
        if self.run_breakpoints:
            tree["breakpoints"] = self.run_breakpoints
        if self.child_attempts:
            tree["child_attempts"] = self.child_attempts
        if self.span_context is not None:
            tree["span_context"] = self.span_context
        if len(self.trees) > _codec.SLICE or len(self.frame_trees) > _codec.SLICE:
            return _codec.dump_sliced(tree)  # a large map's
        return _codec.dump_tree(tree)

    def envelope(self, *, register: bool = False) -> StoredExecution:
        """The execution as storage keeps it.

        Args:
            register: List the correlation ids of interrupts reached since the last write
                (only a pause registers them, and deals with an id held elsewhere or an
                early payload waiting for it); other writes keep those already held.
        """
        paused = self.status is Status.PAUSED
        deadlines = [
            p.deadline
            for p in self.pending.values()
            if p.deadline is not None and p.strategy == "active"
        ]
        return StoredExecution(
            id=self.id,
            reactor=self.plan.name,
            status=self.status,
            version=self.version,
            body=self.body(),
            correlation_ids=(
                *(
                    cid
                    for p in self.pending.values()
                    if (cid := p.correlation_id) is not None and (register or cid in self.held_cids)
                ),
                *(cid for cid in self.retired.values() if cid is not None),
            ),
            deadline=min(deadlines) if paused and deadlines else None,
            reason=self.reason,
            created_at=self.created_at,
        )

    async def write(
        self,
        *,
        lease_seconds: float | None = None,
        locked: bool = True,
        takeover: bool = False,
        register: bool = False,
    ) -> None:
        """One compare-and-set write of the current state.

        Args:
            lease_seconds: The lease to hold while running, from now in the store's clock
                (default: a full lease; ``0``: expired at once).
            locked: Serialize with the heartbeat task; the watchdog thread, which runs
                only while the loop is blocked, passes ``False``.
            takeover: Refused while another owner's lease holds (see ``Storage.write``).
            register: Register newly reached correlation ids (see :meth:`envelope`).

        Raises:
            WriteConflict, CorrelationTaken, EarlyPayloadWaiting: from the storage.
        """
        if lease_seconds is None:
            lease_seconds = get_config().lease_seconds
        leased = self.status is Status.RUNNING and self.storage.durable
        async with self._serialized(locked):
            sent = time.monotonic()
            stored = await self.storage.write(
                self.envelope(register=register),
                expected_version=self.version,
                lease_seconds=lease_seconds if self.status is Status.RUNNING else None,
                takeover=takeover,
            )
        self.lease.granted(sent, lease_seconds if leased else None)
        self.held_cids = frozenset(stored.correlation_ids)
        self.version = stored.version
        self.updated_at = stored.updated_at
        self.dirty = False

    def _serialized(self, locked: bool) -> contextlib.AbstractAsyncContextManager[Any]:
        """The heartbeat task's write lock, or nothing for the watchdog thread (and for a
        run that has no heartbeat)."""
        lock = self._write_lock
        return lock if locked and lock is not None else contextlib.nullcontext()

    @classmethod
    def from_stored(
        cls, plan: Plan, storage: Storage, stored: StoredExecution, *, check: bool = True
    ) -> Run:
        """Rebuild a run from storage.

        Args:
            plan: The reactor's plan.
            storage: Where the execution is stored.
            stored: What storage holds.
            check: Refuse an execution naming steps the class no longer has; ``False``
                for actions that run no step (cancel).

        Raises:
            DefinitionChanged: the stored execution names steps the class no longer has.
            StorageError: the stored body cannot be read.
        """
        try:
            body = load_body(stored.body)
        except ValueError as exc:
            raise StorageError(
                f"the stored body cannot be read: {exc}", reactor=plan.name, execution_id=stored.id
            ) from exc
        run = cls(
            plan,
            stored.id,
            storage,
            {},
            idempotency_key=body.idempotency_key,
            owner=body.owner,
            breakpoints=body.breakpoints,
        )
        run.inputs_tree = body.inputs
        run.root.inputs = _codec.decode(body.inputs)
        run.add_secrets(plan, run.root.inputs)
        run.trace = Trace(stored.created_at, body.trace, body.trace_length)
        run.child_attempts = body.child_attempts
        run.span_context = body.span_context
        if run.otel is not None:
            run.otel.stored = body.span_context
        run.status = stored.status
        run.reason = stored.reason
        run.version = stored.version
        run.created_at = stored.created_at
        run.updated_at = stored.updated_at
        run.error = body.error
        run.fence = run.binder.fence = body.fence
        run.retired = body.retired
        run.held_cids = frozenset(stored.correlation_ids)
        run.rollback_state = body.rollback
        if body.halt_reason is not None:
            run.stop, run.stop_reason = Stop.HALTED, body.halt_reason
        if body.undo_request and not stored.status.finished:
            run.request_cancel(body.undo_request, undo=True)
        if body.suspend_request is not None and stored.status is Status.RUNNING:
            run.request_stop(Stop.PAUSE, body.suspend_request)
        run.frame_trees = body.frames
        run.element_failures = body.element_failures
        run.fan_out = body.fan_out
        run.parent = body.parent
        if check:
            for prefix in run.frame_trees:
                if plan_at(plan, prefix) is None:
                    raise DefinitionChanged(
                        f"the stored execution has a child at {prefix[:-1]!r}, "
                        f"which {plan.name} no longer declares",
                        reactor=plan.name,
                        execution_id=stored.id,
                        step=prefix[:-1],
                    )
            for path, held in body.pending.items():
                if held.kind == "interrupt":
                    run.node_at(path)
        run.trees = body.results
        results = run.results
        for path, tree in body.results.items():
            results[path] = run.restore(path, tree, check=check)
        run.undo_stack = body.undo
        run.pending = {p: Pending.from_stored(p, v) for p, v in body.pending.items()}
        run.resolved = set(body.resolved)
        return run

    def restore(self, path: str, tree: Any, *, check: bool = True) -> Any:
        """The stored result ``tree`` of the step at ``path``, decoded to its annotation.

        Raises:
            DefinitionChanged: ``check`` and the class no longer declares the step.
        """
        node = self.node_at(path) if check else self.declared(path)
        return _codec.decode(tree, node.kind.result_hint(node) if node is not None else None)

    def declared(self, path: str) -> Node | None:
        """The node a step path names, or ``None`` if the class no longer declares it."""
        if "." not in path:  # a root step, the common case: no path to walk
            return self.plan.nodes.get(path)
        prefix, name = split(path)
        plan = plan_at(self.plan, prefix)
        return plan.nodes.get(name) if plan is not None else None

    def node_at(self, path: str) -> Node:
        """The node a step path names.

        Raises:
            DefinitionChanged: the class no longer declares it.
        """
        node = self.declared(path)
        if node is None:
            raise DefinitionChanged(
                f"the stored execution refers to step {path!r}, "
                f"which {self.plan.name} no longer declares",
                reactor=self.plan.name,
                execution_id=self.id,
                step=path,
            )
        return node

    def frame_at(self, prefix: str) -> Frame:
        frame = self.frames.get(prefix)
        if frame is None:
            plan = plan_at(self.plan, prefix)
            assert plan is not None  # checked when loaded
            frame = Frame(
                plan,
                prefix,
                _codec.decode(self.frame_trees[prefix]),
                object.__new__(plan.reactor),
                self.root.scope,
                plan.max_concurrency,
            )
            self.frames[prefix] = frame
        return frame

    async def store(self, *, lease_seconds: float | None = None, locked: bool = True) -> None:
        """Write the state, absorbing what other writers did in between.

        On a conflict, payloads delivered to pending interrupts are merged in, a
        cancellation becomes a stop request, and a foreign owner makes the run lost;
        the write is then retried unless the run was lost.
        """
        for _ in cas_retry(reactor=self.plan.name, execution_id=self.id):
            if self.lost:
                # The execution may be another process's now: write nothing.
                return
            try:
                await self.write(lease_seconds=lease_seconds, locked=locked)
                return
            except WriteConflict as conflict:
                self.merge(conflict.current)
                if self.lost:
                    return

    def merge(self, current: StoredExecution | None) -> bool:
        """Adopt what another writer stored; return whether new payloads arrived."""
        if current is None:
            self.request_stop(Stop.LOST)
            return False
        body = load_body(current.body)
        self.version = current.version
        if body.owner != self.owner:
            self.request_stop(Stop.LOST)
            return False
        if current.status.finished and self.status is not current.status:
            self.request_cancel(current.reason or current.status.value)
        if body.undo_request and not self.undo_on_cancel:
            self.request_cancel(body.undo_request, undo=True)
        if body.suspend_request is not None and self.pause_request is None:
            self.request_stop(Stop.PAUSE, body.suspend_request)
        # Keep what others recorded (who cancelled, suspended, resumed) in the trace.
        # (Rows are stored as written: whole milliseconds read back the same.)
        known = set(self.trace.all()[-TRACE_LIMIT:])
        for row in parse_rows(body.trace)[-_FOREIGN_WINDOW:]:
            if row[0] in _FOREIGN_EVENTS and row not in known:
                self.trace.rows.append(row)
        arrived = False
        for path in body.resolved:
            if path not in self.resolved and path in body.results:
                tree = body.results[path]
                self.accept_payload(path, self.restore(path, tree), tree)
                arrived = True
            elif path not in self.resolved and path in self.pending:
                self.release(path)
                arrived = True
        for path, data in body.pending.items():
            if path in self.pending:
                self.pending[path].attempts_left = data.attempts_left
        for path in body.retired:
            if path in self.pending and path not in body.resolved:
                # Out of attempts (a resumer is cancelling it through this owner).
                self.retire(path)
        if body.fan_out != self.fan_out:
            # Elements of a fanned-out map reported meanwhile: look at the batch again.
            self.fan_out = body.fan_out
            arrived = True
        return arrived

    # --------------------------------------------------------------- recording

    def record(self, path: str, value: Any, *, undoable: bool, sized: bool = False) -> None:
        """Make ``value`` the result of the step at ``path``.

        Args:
            path: The step's path.
            value: Its result.
            undoable: Whether its ``undo`` hook runs on rollback.
            sized: Refuse a result over ``max_payload_bytes`` (a step's own result; a
                child's or a map's is made of results already checked).

        Raises:
            SerializationError: the result cannot be encoded, or is too large.
        """
        try:
            if type(value) in _codec.PLAIN:  # their own tree: the most common results, no call
                tree = value
            else:
                tree = _codec.encode(value, reactor=self.plan.name, execution_id=self.id, step=path)
            if (
                sized
                and type(tree) not in _SURELY_SMALL
                and not _codec.surely_within(tree, self.max_result_bytes)
            ):
                _codec.check_size(
                    _codec.dump_tree(tree),
                    what=f"the result of {path!r}",
                    limit=self.max_result_bytes,
                    reactor=self.plan.name,
                    execution_id=self.id,
                    step=path,
                )
        except SerializationError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"cannot encode the result ({type(value).__name__}): {exc}",
                reactor=self.plan.name,
                execution_id=self.id,
                step=path,
            ) from exc
        self.results[path] = value
        self.trees[path] = tree
        if undoable:
            self.undo_stack.append(path)
        self.dirty = True

    def accept_payload(self, path: str, payload: Any, tree: Any = NOTHING) -> None:
        """Make ``payload`` the result of the pending interrupt at ``path``."""
        if tree is NOTHING:
            tree = _codec.encode(payload, reactor=self.plan.name, execution_id=self.id, step=path)
        self.retire(path)
        self.resolved.add(path)
        self.results[path] = payload
        self.trees[path] = tree
        self.dirty = True

    def release(self, path: str) -> None:
        """Let the run go on past the hold (breakpoint or operator pause) at ``path``."""
        self.pending.pop(path, None)
        self.resolved.add(path)
        self.dirty = True

    def edit(self, update: Mapping[str, Any], principal: str | None) -> None:
        """Replace the recorded results of completed steps (``resume(..., update=)``).

        Every edit is checked and encoded before any is applied, so a refused edit
        changes nothing.

        Raises:
            OutputInvalid: a new result fails its step's output schema.
            ReactorError: a path names no completed step, or a value cannot be encoded.
        """
        trees = {}
        for path, value in update.items():
            if path not in self.results:
                raise ReactorError(
                    f"update= names {path!r}, which is not a completed step",
                    reactor=self.plan.name,
                    execution_id=self.id,
                    step=path,
                )
            node = self.node_at(path)
            self.check_output(node, path, value)
            trees[path] = _codec.encode(
                value, reactor=self.plan.name, execution_id=self.id, step=path
            )
        for path, value in update.items():
            self.results[path] = value
            self.trees[path] = trees[path]
            self.note("step.edited", path, None, principal)
            self.log("reactor.step.edited", step=path)
        self.dirty = True

    def check_output(self, node: Node | None, path: str, value: Any) -> None:
        """Check ``value`` against the step's ``output_schema``, if it declares one.

        Raises:
            OutputInvalid: it fails the schema.
        """
        validator = node.output_validator if node is not None else None
        if validator is None:
            return
        errors = [
            {"path": "/" + "/".join(str(p) for p in e.absolute_path), "message": e.message}
            for e in validator.iter_errors(value)
        ]
        if errors:
            raise OutputInvalid(
                f"the result fails the output schema: {errors[0]['path']}: {errors[0]['message']}",
                errors=errors,
                reactor=self.plan.name,
                execution_id=self.id,
                step=path,
            )

    def retire(self, path: str) -> None:
        """The interrupt at ``path`` is pending no more (resumed, or out of attempts)."""
        pending = self.pending.pop(path, None)
        if pending is not None:
            self.retired[path] = pending.correlation_id

    def fail(
        self, frame: Frame, node: Node, path: str, exc: BaseException, *, compensate: bool
    ) -> None:
        frame.scope.failed.append(Failed(node, path, exc, compensate))
        if frame.scope.failure is None:
            frame.scope.failure = (path, exc)
        self.note("step.failed", path)
        # (A stand-in names the type of the exception it stands for itself.)
        error = str(exc) if isinstance(exc, Recorded) else f"{type(exc).__name__}: {exc}"
        self.log("reactor.step.failed", step=path, error=self.scrub(error))

    # ----------------------------------------------------------------- calling

    async def invoke(
        self, call: Call, frame: Frame, kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        if self.inline(call, timeout):
            return self.call_inline(call, frame, kwargs)
        return await call_off_loop(call, frame.instance, kwargs, timeout)

    def inline(self, call: Call, timeout: float | None) -> bool:
        """Whether ``call`` runs inline: a sync function, with nothing else able to run on
        the facade's private loop meanwhile (calling inline saves a thread hop)."""
        return self.inline_sync and timeout is None and not call.is_async and self.active_tasks == 0

    def call_inline(self, call: Call, frame: Frame, kwargs: dict[str, Any]) -> Any:
        if not self.storage.durable:
            # call_now() inlined: steps are the hot path.
            fn = call.fn
            return fn(frame.instance, **kwargs) if call.method else fn(**kwargs)
        watchdog.arm(self)
        try:
            return call_now(call, frame.instance, kwargs)
        finally:
            watchdog.disarm(self)

    # --------------------------------------------------------------- scheduling

    async def run_frame(self, frame: Frame) -> tuple[bool, Any]:
        """Run what can run in ``frame``; return (complete, its result)."""
        nodes = frame.plan.nodes
        prefix = frame.prefix
        results = self.results
        waiting: dict[str, int] = {}
        ready: deque[str] = deque()
        done = {n for n in nodes if prefix + n in results} if prefix else results.keys() & nodes
        for name, node in nodes.items():
            if name in done:
                continue
            count = 0
            for dep in node.deps:
                if dep not in done:
                    count += 1
            waiting[name] = count
            if count == 0:
                ready.append(name)
        remaining = len(waiting)

        def settle(name: str, complete: bool | None) -> None:
            nonlocal remaining
            if not complete:
                return
            remaining -= 1
            for dependent in nodes[name].dependents:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    ready.append(dependent)

        if waiting:
            await schedule(
                ready,
                partial(self.run_node, frame),
                settle,
                limit=frame.max_concurrency,
                stopping=partial(self.stopping, frame.scope),
                counter=self,
                checkpoint=self.checkpoint if self.eager else None,
            )
        if remaining == 0 and not self.stopping(frame.scope):
            returns = frame.plan.returns
            return True, (results[prefix + returns] if returns else None)
        return False, None

    def run_node(self, frame: Frame, name: str) -> Coroutine[Any, Any, bool | None]:
        """Run the node ``name`` of ``frame`` as its kind says."""
        node = frame.plan.nodes[name]
        if self.breaking:
            return self.run_between_breakpoints(frame, node)
        return node.kind.run(self, frame, node)

    def breakpoint_at(self, when: str, frame: Frame, name: str) -> str | None:
        """The pending item of the ``when`` breakpoint (``"before"``/``"after"``) of a
        node, if one applies and has not been passed yet."""
        path = frame.prefix + name
        key = f"{when}:{path}"
        if key in self.resolved:
            return None
        if (
            key in self.breakpoints
            or (frame.prefix and f"{when}:{name}" in frame.plan.breakpoints)
            or ("[" in key and _ELEMENT_INDEX.sub("", key) in self.breakpoints)
        ):
            return key
        return None

    async def run_between_breakpoints(self, frame: Frame, node: Node) -> bool | None:
        """Run a node, holding the run at its ``before:``/``after:`` breakpoints."""
        held = self.breakpoint_at("before", frame, node.name)
        if held is not None and not self.stopping(frame.scope):
            return self.hold(held, "breakpoint", {"breakpoint": held})
        done = await node.kind.run(self, frame, node)
        held = self.breakpoint_at("after", frame, node.name) if done else None
        if held is not None:
            # Completed and recorded: its dependents wait until the breakpoint is resumed.
            return self.hold(held, "breakpoint", {"breakpoint": held})
        return done

    def hold(self, path: str, kind: str, request: dict[str, Any]) -> bool:
        """Add a pending breakpoint or operator pause; the run pauses at the end of the
        pass (``False``: the node waits)."""
        if path not in self.pending:
            self.pending[path] = Pending.hold(path, kind, request, self.clock())
            self.log("reactor.execution.held", step=path, kind=kind)
            self.dirty = True
        return False

    async def run_guarded(
        self,
        frame: Frame,
        node: Node,
        body: Callable[[Frame, Node, str], Coroutine[Any, Any, bool | None]],
    ) -> bool | None:
        """Run an interrupt, compose or map node; a bad argument fails it uncompensated."""
        path = frame.prefix + node.name
        if self.stopping(frame.scope):
            return None
        try:
            return await body(frame, node, path)
        except (ArgumentInvalid, InputInvalid) as exc:
            self.fail(frame, node, path, exc, compensate=False)
        return None

    async def run_step(self, frame: Frame, node: Node) -> bool | None:
        path = frame.prefix + node.name
        if self.stopping(frame.scope):
            return None
        call = node.call
        assert call is not None
        if node.guard is not None:
            skipped = await self.skipped(frame, node, path)
            if skipped is not False:
                return skipped
        timeout = node.decl.timeout
        retry = node.decl.retry
        attempt = 0
        log = self.log
        note = self.note
        clock = self.clock
        trace = self.trace.rows
        base = self.trace.base
        value: Any = None
        while True:
            attempt += 1
            try:
                kwargs = self.binder.bind(frame, call, path, attempt=attempt)
            except ArgumentInvalid as exc:
                self.fail(frame, node, path, exc, compensate=False)
                return None
            # note() and Trace.offset() inlined: steps are the hot path.
            started = ("step.started", path, int(clock() * 1000) - base, attempt, None)
            trace.append(started)
            if log.enabled:
                log("reactor.step.started", step=path, attempt=attempt)
            try:
                # invoke() inlined: steps are the hot path.
                if self.inline(call, timeout):
                    value = self.call_inline(call, frame, kwargs)
                else:
                    value = await call_off_loop(call, frame.instance, kwargs, timeout)
            except Halt as halt:
                value = halt
            except Exception as exc:
                if retry.retries_after(attempt, exc):
                    delay = retry.delay(attempt)
                    note("step.retried", path, attempt)
                    log(
                        "reactor.step.retrying",
                        step=path,
                        attempt=attempt,
                        delay=delay,
                        error=self.scrub(repr(exc)),
                    )
                    if delay:
                        await asyncio.sleep(delay)
                    if self.stopping(frame.scope):
                        return None
                    continue
                self.fail(frame, node, path, exc, compensate=True)
                return None
            break
        if isinstance(value, Halt):
            problem = _codec.text_problem(value.reason)
            if problem is not None:
                # Stored as the execution's reason, a text field: refused like a result
                # that cannot be encoded.
                error = SerializationError(
                    f"the Halt reason {value.reason!r} cannot be stored: {problem}",
                    reactor=self.plan.name,
                    execution_id=self.id,
                    step=path,
                )
                self.fail(frame, node, path, error, compensate=True)
                return None
            self.request_stop(Stop.HALTED, value.reason or path)
            log("reactor.step.halted", step=path, reason=value.reason)
            return None
        skipped = isinstance(value, Skip)
        if skipped:
            value = value.value
        try:
            if node.output_validator is not None:
                self.check_output(node, path, value)
            self.record(path, value, undoable=node.undo is not None and not skipped, sized=True)
        except (SerializationError, OutputInvalid) as exc:
            self.fail(frame, node, path, exc, compensate=True)
            return None
        completed = int(clock() * 1000) - base
        if trace and trace[-1] is started:
            # One short row for both (see reactor._trace): rows are stored at every write.
            began = started[2]
            took = completed - began
            trace[-1] = (path, began, took, attempt) if attempt > 1 else (path, began, took)
        else:
            trace.append(("step.completed", path, completed, attempt, None))
        if len(trace) > 2 * TRACE_LIMIT:
            self.trace.trim()
        if log.enabled:
            log("reactor.step.completed", step=path, attempt=attempt)
        return True

    async def skipped(self, frame: Frame, node: Node, path: str) -> bool | None:
        """Evaluate the step's ``when`` predicate: ``False`` if the step is to run, else
        the step's outcome (``True``: skipped and recorded; ``None``: failed)."""
        guard = node.guard
        assert guard is not None
        try:
            run = await self.invoke(guard, frame, self.binder.bind(frame, guard, path), None)
        except Exception as exc:
            # An argument that cannot be resolved, or a predicate that raises, fails the
            # step before its body ran: nothing to compensate.
            self.fail(frame, node, path, exc, compensate=False)
            return None
        if run:
            return False
        try:
            self.record(path, node.decl.default, undoable=False)
        except SerializationError as exc:
            self.fail(frame, node, path, exc, compensate=False)
            return None
        self.note("step.skipped", path)
        self.log("reactor.step.skipped", step=path)
        return True

    async def reach_interrupt(self, frame: Frame, node: Node, path: str) -> bool | None:
        if path in self.pending:
            return False
        decl = node.decl
        request = None
        correlation_id = None
        try:
            if node.call is not None:
                request = await self.invoke(
                    node.call, frame, self.binder.bind(frame, node.call, path), None
                )
            if node.correlation is not None:
                correlation_id = node.correlation.fn(
                    **self.binder.bind(frame, node.correlation, path)
                )
        except Exception as exc:
            # User code, like a step body: what it raises fails the interrupt (escaping,
            # it would leave the execution RUNNING with no one to finish it).
            self.fail(frame, node, path, exc, compensate=False)
            return None
        if node.correlation is not None:
            # Stored as a key: None would register "None" for every run, and a lone
            # surrogate cannot be written at all.
            problem = _codec.text_problem(correlation_id)
            if problem is not None:
                raise ArgumentInvalid(
                    f"the correlation_id callable returned {correlation_id!r}: {problem}",
                    reactor=self.plan.name,
                    execution_id=self.id,
                    step=path,
                )
        try:
            tree = _codec.encode(request, reactor=self.plan.name, execution_id=self.id, step=path)
        except SerializationError as exc:
            self.fail(frame, node, path, exc, compensate=False)
            return None
        pending = Pending(
            path,
            correlation_id,
            request,
            tree,
            get_config().clock() + decl.timeout if decl.timeout is not None else None,
            decl.strategy,
            decl.max_attempts,
            since=self.clock(),
        )
        self.log("reactor.interrupt.reached", step=path, correlation_id=correlation_id)
        if self.handler is not None:
            payload = self.handler(pending.public(node))
            if inspect.isawaitable(payload):
                await in_task()
                payload = await payload
            if payload is not None:
                errors = schema_errors(node, payload)
                if errors:
                    invalid = PayloadInvalid(
                        "the interrupt_handler returned an invalid payload",
                        errors=errors,
                        attempts_left=None,
                        reactor=self.plan.name,
                        execution_id=self.id,
                        step=path,
                    )
                    self.fail(frame, node, path, invalid, compensate=False)
                    return None
                try:
                    self.accept_payload(path, payload)
                except SerializationError as exc:
                    self.fail(frame, node, path, exc, compensate=False)
                    return None
                self.note("resumed", path)
                self.log("reactor.interrupt.resumed", step=path, by="interrupt_handler")
                return True
        self.pending[path] = pending
        self.dirty = True
        return False

    def child_frame(
        self, parent: Frame, node: Node, prefix: str, extra: Mapping[str, Any], scope: Scope
    ) -> Frame:
        frame = self.frames.get(prefix)
        if frame is not None:
            return frame
        assert node.child is not None
        if prefix in self.frame_trees:
            inputs = _codec.decode(self.frame_trees[prefix])
        else:
            given = {
                b.param: self.binder.argument(parent, b, prefix[:-1]) for b in node.child_inputs
            }
            given.update(extra)
            inputs = validate_inputs(node.child, given, execution_id=self.id, step=prefix[:-1])
            self.frame_trees[prefix] = _codec.encode(
                inputs, reactor=self.plan.name, execution_id=self.id, step=prefix[:-1]
            )
        self.add_secrets(node.child, inputs)
        frame = Frame(
            node.child,
            prefix,
            inputs,
            object.__new__(node.child.reactor),
            scope,
            node.child.max_concurrency,
        )
        self.frames[prefix] = frame
        return frame

    async def run_compose(self, frame: Frame, node: Node, path: str) -> bool | None:
        retries = node.decl.retries
        child = self.child_frame(frame, node, path + ".", {}, frame.scope)
        if retries:
            # A scope of its own, so that a failed attempt stops only the child.
            child.scope = Scope(parent=frame.scope)
        while True:
            complete, value = await self.run_frame(child)
            failure = child.scope.failure
            if not retries or failure is None:
                break
            used = self.child_attempts.get(path, 0)
            if used >= retries or self.stopping(frame.scope):
                # Out of attempts: the failure is the parent's (its rollback undoes the
                # child's last attempt with everything else).
                frame.scope.failed.extend(child.scope.failed)
                if frame.scope.failure is None:
                    frame.scope.failure = failure
                return None
            self.child_attempts[path] = used + 1
            await self.rollback(child.scope, path + ".")
            self.forget(path + ".")
            self.note("step.retried", path, used + 1)
            self.log("reactor.step.retrying", step=path, attempt=used + 1, error=failure[0])
            child.scope = Scope(parent=frame.scope)
        if not complete:
            return None if self.stopping(frame.scope) else False
        self.record(path, value, undoable=False)
        self.log("reactor.step.completed", step=path)
        return True

    def forget(self, prefix: str) -> None:
        """Drop what a failed child attempt left under ``prefix`` (it runs again)."""
        for path in [p for p in self.results if p.startswith(prefix)]:
            del self.results[path]
            self.trees.pop(path, None)
        self.undo_stack = [p for p in self.undo_stack if not p.startswith(prefix)]
        self.resolved = {p for p in self.resolved if not p.startswith(prefix)}
        for path in [p for p in self.pending if p.startswith(prefix)]:
            del self.pending[path]
        for key in [k for k in self.frame_trees if k.startswith(prefix) and k != prefix]:
            del self.frame_trees[key]
            self.frames.pop(key, None)
        for key in [k for k in self.element_failures if k.startswith(prefix)]:
            del self.element_failures[key]
        self.dirty = True

    async def run_map(self, frame: Frame, node: Node, path: str) -> bool | None:
        assert node.over is not None
        items = self.binder.argument(frame, node.over, path)
        if not isinstance(items, list | tuple):
            raise ArgumentInvalid(
                f"map_ over= must give a list, got {type(items).__name__}",
                reactor=self.plan.name,
                execution_id=self.id,
                step=path,
            )
        decl = node.decl
        if decl.fan_out is not None and self.storage.durable and installed() is not None:
            return await self.run_map_fanned(frame, node, path, items)
        results: dict[int, Any] = {}
        failures: list[MapFailure] = []
        todo: deque[int] = deque()
        for index in range(len(items)):
            failed = self.element_failures.get(f"{path}[{index}]")
            if failed is not None:
                failures.append(MapFailure(index, failed))
            else:
                todo.append(index)
        element_frames: dict[int, Frame] = {}
        blocked = False

        def launch(index: int) -> Coroutine[Any, Any, tuple[bool, Any]]:
            scope = frame.scope if decl.fail_fast else Scope(parent=frame.scope)
            element = self.child_frame(
                frame, node, f"{path}[{index}].", {decl.item: items[index]}, scope
            )
            element_frames[index] = element
            return self.run_frame(element)

        async def settle(index: int, outcome: tuple[bool, Any]) -> None:
            nonlocal blocked
            complete, value = outcome
            element = element_frames[index]
            if complete:
                results[index] = value
            elif (
                not decl.fail_fast
                and element.scope.failure is not None
                and not self.stopping(frame.scope)
            ):
                info = await self.rollback(element.scope, f"{path}[{index}].")
                assert info is not None  # the element failed
                self.element_failures[f"{path}[{index}]"] = info
                failures.append(MapFailure(index, info))
                self.dirty = True
            else:
                blocked = True

        await schedule(
            todo,
            launch,
            settle,
            # Bounded by default: each element in flight holds a frame (and a thread for a
            # def step), so an unbounded map of 100,000 items would hold them all at once.
            limit=decl.max_concurrency
            if decl.max_concurrency is not None
            else get_config().map_concurrency,
            stopping=partial(self.stopping, frame.scope),
            counter=self,
            checkpoint=self.checkpoint_soon if self.eager else None,
        )
        if self.stopping(frame.scope) or todo:
            return None if self.stopping(frame.scope) else False
        if blocked:
            return False
        value: Any
        if decl.fail_fast:
            value = [results[i] for i in range(len(items))]
        else:
            value = MapResult(
                successes=dict(sorted(results.items())),
                failures=sorted(failures, key=lambda f: f.index),
            )
        self.record(path, value, undoable=False)
        self.log("reactor.step.completed", step=path, elements=len(items))
        return True

    async def run_map_fanned(
        self, frame: Frame, node: Node, path: str, items: list[Any] | tuple[Any, ...]
    ) -> bool | None:
        """A map whose elements run as executions of their own on the task queue, in
        batches of ``fan_out``: start the next batch when the last one is done; ``False``
        (pause) while one runs."""
        decl = node.decl
        assert node.child is not None and decl.fan_out is not None
        count = len(items)
        batch = self.fan_out.get(path)
        if batch is None:
            batch = await self.start_batch(frame, node, path, items, 0)
        while len(batch.done) == batch.end - batch.start:
            if decl.fail_fast:
                finals = await self.elements(node, path, range(batch.start, batch.end))
                failed = [(i, r) for i, r in finals.items() if r.status is not Status.COMPLETED]
                if failed:
                    index, element = failed[0]
                    await self.undo_elements(node, path, range(batch.end))
                    where, error = element_failure(node.child, path, index, element)
                    self.fail(frame, node, where, error, compensate=False)
                    return None
            if batch.end == count:
                break
            batch = await self.start_batch(frame, node, path, items, batch.end)
        else:
            return False
        finals = await self.elements(node, path, range(count))
        value: Any
        if decl.fail_fast:
            value = [finals[i].result for i in range(count)]
        else:
            value = MapResult(
                successes={i: e.result for i, e in finals.items() if e.completed},
                failures=[
                    MapFailure(i, e.error or FailureInfo(None, e.status.value, "Ended"))
                    for i, e in finals.items()
                    if not e.completed
                ],
            )
        del self.fan_out[path]
        # Undoable: undoing the map undoes its completed elements (call_hook).
        self.record(path, value, undoable=True)
        self.log("reactor.step.completed", step=path, elements=count)
        return True

    async def start_batch(
        self,
        frame: Frame,
        node: Node,
        path: str,
        items: list[Any] | tuple[Any, ...],
        start: int,
    ) -> FanOut:
        """Store and enqueue the elements of the batch starting at ``start``."""
        assert node.child is not None and node.decl.fan_out is not None
        batch = FanOut(start, min(start + node.decl.fan_out, len(items)))
        # Recorded first: an element may end before the last one is enqueued.
        self.fan_out[path] = batch
        self.dirty = True
        await self.store()
        if self.stop is Stop.CANCELLED:
            # Cancelled before this batch was stored: the cancel ended the batches it
            # saw, not this one, so none of it may start.
            return batch
        starts = []
        for index in range(batch.start, batch.end):
            element = f"{path}[{index}]"
            given = {b.param: self.binder.argument(frame, b, element) for b in node.child_inputs}
            given[node.decl.item] = items[index]
            inputs = validate_inputs(node.child, given, execution_id=self.id, step=element)
            tree = _codec.encode(inputs, reactor=self.plan.name, execution_id=self.id, step=element)
            link = ParentLink(self.plan.name, self.id, path, index)
            execution_id = element_id(self.id, path, index)
            starts.append(start_element(self.storage, node.child, execution_id, tree, link))
            if len(starts) == 64:
                await asyncio.gather(*starts)
                starts.clear()
        await asyncio.gather(*starts)
        self.log("reactor.map.batch_started", step=path, start=batch.start, end=batch.end)
        return batch

    async def elements(self, node: Node, path: str, indexes: range) -> dict[int, Execution]:
        """The stored element executions at ``indexes`` of a fanned-out map."""
        assert node.child is not None
        child = node.child
        found: dict[int, Execution] = {}
        for chunk in range(indexes.start, indexes.stop, 100):
            stop = min(chunk + 100, indexes.stop)
            ids = [element_id(self.id, path, i) for i in range(chunk, stop)]
            loaded = await asyncio.gather(*(self.storage.load(i) for i in ids))
            for offset, stored in enumerate(loaded):
                if stored is None:
                    raise ExecutionNotFound(
                        "an element of the fanned-out map disappeared",
                        reactor=child.name,
                        execution_id=ids[offset],
                    )
                found[chunk + offset] = Run.from_stored(child, self.storage, stored).snapshot()
        return found

    async def undo_elements(self, node: Node, path: str, indexes: range) -> list[str]:
        """Undo the completed elements at ``indexes`` of a fanned-out map, highest index
        first; what went wrong, as ``"path[i]: message"``."""
        assert node.child is not None
        problems: list[str] = []
        for index in reversed(indexes):
            stored = await self.storage.load(element_id(self.id, path, index))
            if stored is None or stored.status is not Status.COMPLETED:
                continue
            element = Run.from_stored(node.child, self.storage, stored)
            try:
                await element.claim()
            except WriteConflict:
                continue  # undone by another process meanwhile
            await element.roll_back_and_finish(Status.CANCELLED, reason="undo")
            if element.error is not None:
                problems += [
                    f"{path}[{index}].{p.step}: {p.message}"
                    for p in element.error.rollback_failures
                ]
        return problems

    # ---------------------------------------------------------------- rollback

    async def call_hook(
        self, path: str, kind: str, error: BaseException | None
    ) -> RollbackFailure | None:
        """Run the ``kind`` hook (undo or compensate) of the step at ``path``."""
        prefix, _ = split(path)
        frame = self.frame_at(prefix)
        node = self.node_at(path)
        if kind == "undo" and node.decl.fan_out is not None:
            # Only a map that ran fanned out is on the undo stack itself.
            value = self.results[path]
            count = (
                len(value.successes) + len(value.failures)
                if isinstance(value, MapResult)
                else len(value)
            )
            problems = await self.undo_elements(node, path, range(count))
            self.log("reactor.step.undone", step=path)
            return RollbackFailure(path, "undo", "; ".join(problems)) if problems else None
        call = node.undo if kind == "undo" else node.compensate
        if call is None:
            return None
        started = time.perf_counter()
        try:
            kwargs = self.binder.bind(frame, call, path, own=self.results.get(path), error=error)
            await self.invoke(call, frame, kwargs, None)
        except Exception as exc:
            self.log(
                f"reactor.step.{kind}_failed",
                step=path,
                error=self.scrub(repr(exc)),
                duration=time.perf_counter() - started,
            )
            return RollbackFailure(path, kind, self.scrub(f"{type(exc).__name__}: {exc}"))
        if kind == "undo":
            self.note("step.undone", path)
        self.log(
            "reactor.step.undone" if kind == "undo" else "reactor.step.compensated",
            step=path,
            duration=time.perf_counter() - started,
        )
        return None

    async def rollback(self, scope: Scope, prefix: str) -> FailureInfo | None:
        """Roll back one element of a ``map_(fail_fast=False)``: compensate its failed
        steps, undo its completed ones (paths under ``prefix``) newest first; return its
        failure with what went wrong."""
        targets = [p for p in self.undo_stack if p.startswith(prefix)]
        problems = await self._roll_back(
            Rollback(None, targets, self.call_hook, self._record), compensations(scope.failed)
        )
        return self.scrub_failure(outcome(scope.failure, problems))

    async def _roll_back(
        self, rollback: Rollback, compensate: list[tuple[str, BaseException]] | None = None
    ) -> list[RollbackFailure]:
        self.rolling = rollback
        try:
            return await rollback.run(compensate or [])
        finally:
            self.undo_stack = rollback.left(self.undo_stack)
            self.rolling = None
            self.dirty = True

    async def _record(self) -> None:
        self.dirty = True
        await self.checkpoint()

    async def roll_back_and_finish(
        self, status: Status, *, scope: Scope | None = None, reason: str | None = None
    ) -> None:
        """Roll back what the execution did and end it ``status`` (``FAILED`` for a failed
        step in ``scope``, ``CANCELLED`` for an undo).

        On durable storage the rollback is recorded before its first hook and after each
        one, under the lease, so that a process taking over after a crash finishes it
        (:meth:`continue_rollback`) and only the hook in flight may run again.
        """
        self.pending.clear()
        cause = self.scrub_failure(
            failure(*scope.failure) if scope is not None and scope.failure else None
        )
        compensate = compensations(scope.failed) if scope is not None else []
        self.rollback_state = RollbackState(
            cause, status.value, reason, [path for path, _ in compensate]
        )
        await self._record()
        await self._finish_rollback(compensate)

    async def continue_rollback(self) -> None:
        """Finish a rollback another process recorded and did not finish."""
        state = self.rollback_state
        assert state is not None
        cause = state.cause
        # The failed step's exception died with its process: its compensate hook gets one
        # that says the same.
        error = Recorded(cause) if cause else Exception("rolled back")
        self.log("reactor.execution.rollback_resumed", undo=len(self.undo_stack))
        await self._finish_rollback([(path, error) for path in state.compensate])

    async def _finish_rollback(self, compensate: list[tuple[str, BaseException]]) -> None:
        state = self.rollback_state
        assert state is not None
        rollback = Rollback(state, list(self.undo_stack), self.call_hook, self._record)
        heartbeat = Heartbeat(self.keep_lease) if self.storage.durable else None
        try:
            problems = await self._roll_back(rollback, compensate)
        finally:
            if heartbeat is not None:
                heartbeat.stop()
        if self.lost:
            return
        if state.cause is not None:
            self.error = attrs.evolve(state.cause, rollback_failures=problems)
            self.log("reactor.execution.rolled_back", step=state.cause.step)
        elif problems:
            # An undo keeps the error of an execution that had failed, unless hooks fail.
            self.error = outcome(None, problems)
        self.rollback_state = None
        await self.finish(Status(state.status), state.reason)

    # -------------------------------------------------------------------- drive

    async def drive(self) -> Execution:
        """Advance the execution until it completes, fails, halts, pauses or is cancelled,
        storing the outcome."""
        _live_runs[self.id] = self
        self.inline_sync = INLINE_ALLOWED.get()
        try:
            if self.otel is None:
                # No span: spares the common case a generator context manager (~2 µs).
                await self._advance()
            else:
                with self.observed():
                    await self._advance()
            if self.parent is not None and self.status.finished and not self.lost:
                await element_finished(self.storage, self.parent)
        finally:
            _live_runs.pop(self.id, None)
        return await self.snapshot_or_stored()

    @contextlib.contextmanager
    def observed(self) -> Iterator[None]:
        """An OpenTelemetry execution span around the block, when a provider is set (its
        context is stored with the execution; later spans in any process link to it)."""
        if self.otel is None:
            yield
            return
        self.span_context = self.otel.begin()
        try:
            yield
        finally:
            self.otel.end(self.status.value)

    async def _advance(self) -> None:
        if self.rollback_state is not None:
            await self.continue_rollback()
        else:
            await self._passes()

    async def _passes(self) -> None:
        while True:
            heartbeat = Heartbeat(self.keep_lease) if self.storage.durable else None
            try:
                complete, _ = await self.run_frame(self.root)
                await self.flushed()
            finally:
                if heartbeat is not None:
                    heartbeat.stop()
            if self.lost or await self.conclude(complete):
                return

    async def conclude(self, complete: bool) -> bool:
        """Store the outcome of a pass over the graph; ``False`` means run another pass
        (payloads arrived while storing)."""
        stop = self.stop
        if stop is Stop.CANCELLED:
            if self.undo_on_cancel:
                await self.roll_back_and_finish(Status.CANCELLED, reason=self.stop_reason)
            else:
                await self.finish(Status.CANCELLED, self.stop_reason)
        elif stop is Stop.HALTED:
            await self.finish(Status.HALTED, self.stop_reason)
        elif self.root.scope.failure is not None:
            await self.roll_back_and_finish(Status.FAILED, scope=self.root.scope)
        elif stop is Stop.SUSPENDED and not complete:
            # Work remains: checkpoint with an expired lease so any worker picks it up at once.
            self.status = Status.RUNNING
            await self.store(lease_seconds=0)
            self.log("reactor.execution.suspended")
        elif stop is Stop.PAUSE and not complete:
            reason = self.stop_reason
            self.stop = self.stop_reason = self.pause_request = None
            self.resolved.discard(SUSPENDED)
            self.hold(SUSPENDED, "suspended", {"reason": reason})
            self.note("suspended", SUSPENDED)
            return await self.pause()
        elif complete:
            await self.finish(Status.COMPLETED)
        else:
            return await self.pause()
        return True

    async def finish(self, status: Status, reason: str | None = None) -> None:
        self.status = status
        self.reason = reason
        if status is not Status.PAUSED:
            self.pending.clear()
        await self.store()
        if self.stop is Stop.CANCELLED and status is not Status.CANCELLED and not self.lost:
            if self.undo_on_cancel and status is not Status.FAILED:
                # Asked to undo while finishing (the request came with the conflict the
                # write above merged): undo, as if it had come a step earlier (a failed
                # run is rolled back already).
                self.status = Status.RUNNING
                await self.roll_back_and_finish(Status.CANCELLED, reason=self.stop_reason)
                return
            # Cancelled by someone else while finishing: keep the results, record the cancel.
            self.status, self.reason = Status.CANCELLED, self.stop_reason
            await self.store()
        self.log(f"reactor.execution.{self.status.value}", reason=self.reason)

    async def pause(self) -> bool:
        """Store the paused state; return ``False`` if payloads arrived meanwhile."""
        self.status = Status.PAUSED
        self.note("paused")
        for _ in cas_retry(reactor=self.plan.name, execution_id=self.id):
            if any(len(b.done) == b.end - b.start for b in self.fan_out.values()):
                # A fanned-out map's batch ended meanwhile (merged by a checkpoint): its
                # last element saw this run running and left the next batch to it.
                self.status = Status.RUNNING
                return False
            try:
                await self.write(register=True)
                self.log("reactor.execution.paused", interrupts=sorted(self.pending))
                return True
            except WriteConflict as conflict:
                self.status = Status.RUNNING
                arrived = self.merge(conflict.current)
                if self.lost or arrived or self.stop is Stop.CANCELLED:
                    return self.lost
                self.status = Status.PAUSED
            except EarlyPayloadWaiting as early:
                self.status = Status.RUNNING
                if await self.take_early(early.correlation_id):
                    return False
                self.status = Status.PAUSED
            except CorrelationTaken as taken:
                self.status = Status.RUNNING
                self.correlation_taken(taken)
                return False
        raise AssertionError("unreachable: cas_retry raises when exhausted")

    def correlation_taken(self, taken: CorrelationTaken) -> None:
        """Fail the interrupts that registered a correlation id another execution holds."""
        for path, pending in list(self.pending.items()):
            if pending.correlation_id == taken.correlation_id:
                del self.pending[path]
                prefix, _ = split(path)
                self.fail(
                    self.frame_at(prefix),
                    self.node_at(path),
                    path,
                    CorrelationConflict(
                        f"correlation id {taken.correlation_id!r} is held by "
                        f"execution {taken.holder}",
                        correlation_id=taken.correlation_id,
                        holder=taken.holder,
                        reactor=self.plan.name,
                        execution_id=self.id,
                        step=path,
                    ),
                    compensate=False,
                )

    async def take_early(self, correlation_id: str) -> bool:
        text = await self.storage.take_early(self.plan.name, correlation_id)
        if text is None:
            return False
        for path, pending in list(self.pending.items()):
            if pending.correlation_id != correlation_id:
                continue
            payload = _codec.loads(text)
            node = self.node_at(path)
            if not node.decl.accept_early or schema_errors(node, payload):
                self.log(
                    "reactor.interrupt.early_payload_refused",
                    step=path,
                    correlation_id=correlation_id,
                )
                return False
            self.accept_payload(path, payload)
            self.note("resumed", path)
            self.log("reactor.interrupt.resumed", step=path, by="early_payload")
            return True
        return False

    # ------------------------------------------------------------------- leases

    async def checkpoint(self) -> None:
        """Record what changed since the last write (eager durability: before any step
        that depends on it starts). Concurrent callers share a write."""
        lock = self._checkpoint_lock
        if not self.dirty or lock is None:
            return
        async with lock:
            if self.dirty:
                await self.store()

    async def checkpoint_soon(self) -> None:
        """Have what changed recorded by a write in the background, one at a time.

        For the elements of a map: they do not depend on each other, so the next one need
        not wait for the write; completions arriving during a write share the next one,
        which keeps the writes of a large map linear in its size, not quadratic.
        """
        if self.dirty and (self._flush is None or self._flush.done()):
            self._flush = asyncio.ensure_future(self.checkpoint())

    async def flushed(self) -> None:
        """Wait for a background write :meth:`checkpoint_soon` started."""
        if self._flush is not None:
            flush, self._flush = self._flush, None
            await flush

    def lease_lost(self) -> None:
        """Stop: the lease may have run out, so another process may own the execution."""
        if not self.lost:
            self.request_stop(Stop.LOST)
            self.log("reactor.execution.lease_lost")

    def keep_lease(self) -> Coroutine[Any, Any, None]:
        """Checkpoint, then keep the lease alive and notice other writers, until cancelled
        (see :meth:`Lease.keep`)."""
        return self.lease.keep(
            self.beat, stopped=lambda: self.lost, failed=self.beat_failed, lost=self.lease_lost
        )

    async def beat(self, *, locked: bool = True) -> None:
        """Checkpoint new results, or just extend the lease; notice other writers."""
        if self.lost:
            return
        if self.dirty or self.version == 0:
            await self.store(locked=locked)
            return
        lease = get_config().lease_seconds
        async with self._serialized(locked):
            sent = time.monotonic()
            touched = await self.storage.touch(self.id, version=self.version, lease_seconds=lease)
        if touched:
            self.lease.granted(sent, lease)
        else:
            self.merge(await self.storage.load(self.id))

    def beat_failed(self, exc: Exception) -> None:
        self.log("reactor.execution.heartbeat_failed", error=repr(exc))

    async def claim(self, *, takeover: bool = False) -> None:
        """Take ownership of a stored execution (one CAS write): a new owner token and a
        greater fence.

        Args:
            takeover: The execution is running and its owner went silent: refused while
                the owner's lease holds by the store's clock.

        Raises:
            WriteConflict: someone else changed it first (or the lease holds).
        """
        self.owner = new_token()
        self.fence = self.binder.fence = self.fence + 1
        self.status = Status.RUNNING
        await self.write(takeover=takeover)

    # ------------------------------------------------------------------- views

    def snapshot(self, validation_errors: Iterable[dict[str, str]] = ()) -> Execution:
        returns = self.plan.returns
        return Execution(
            id=self.id,
            reactor=self.plan.reactor,
            status=self.status,
            result=self.results.get(returns)
            if returns and self.status is Status.COMPLETED
            else None,
            results=dict(self.results),
            error=self.error,
            interrupts=[
                p.public(None if p.is_hold else self.node_at(p.path)) for p in self.pending.values()
            ],
            reason=self.reason,
            validation_errors=list(validation_errors),
            created_at=dt.datetime.fromtimestamp(self.created_at, dt.UTC),
            updated_at=dt.datetime.fromtimestamp(self.updated_at, dt.UTC),
            trace_rows=self.trace.view(),
        )

    async def snapshot_or_stored(self) -> Execution:
        if not self.lost:
            return self.snapshot()
        stored = await self.storage.load(self.id)
        if stored is None:
            raise ExecutionNotFound(
                "the execution disappeared", reactor=self.plan.name, execution_id=self.id
            )
        return Run.from_stored(self.plan, self.storage, stored).snapshot()


def suspend_all(execution_ids: Iterable[str] | None = None) -> int:
    """Ask runs alive in this process to stop after the steps in flight and checkpoint
    with an expired lease, so another worker continues them (graceful shutdown).

    Args:
        execution_ids: Only these runs (a worker's own); ``None``: every live run.

    Returns:
        How many runs were asked.
    """
    runs = (
        list(_live_runs.values())
        if execution_ids is None
        else [run for i in execution_ids if (run := _live_runs.get(i)) is not None]
    )
    for run in runs:
        run.request_stop(Stop.SUSPENDED)
    return len(runs)


def validate_inputs(
    plan: Plan,
    given: Mapping[str, Any],
    *,
    execution_id: str | None = None,
    step: str | None = None,
) -> dict[str, Any]:
    """Check ``given`` against the plan's inputs and fill in defaults.

    Raises:
        InputInvalid: an input is missing, unknown or fails its schema.
    """
    errors: dict[str, list[str]] = {}
    inputs: dict[str, Any] = {}
    for name in given:
        if name not in plan.inputs:
            errors[name] = ["unknown input"]
    for name, declared in plan.inputs.items():
        if name in given:
            value = given[name]
            validator = plan.validators.get(name)
            if validator is not None:
                problems = _input_errors(validator, value)
                if problems:
                    # A schema message quotes the value: a redacted one only names the rule.
                    errors[name] = (
                        _redacted_errors(validator, value) if declared.redact else problems
                    )
                    continue
            inputs[name] = value
        elif declared.required:
            errors[name] = ["missing"]
        else:
            inputs[name] = declared.default
    if errors:
        listing = "; ".join(f"{k}: {m}" for k, ms in sorted(errors.items()) for m in ms)
        raise InputInvalid(
            f"invalid inputs for {plan.reactor.__qualname__}: {listing}",
            errors={k: "; ".join(ms) for k, ms in errors.items()},
            reactor=plan.name,
            execution_id=execution_id,
            step=step,
        )
    return inputs


def _redacted_errors(validator: Any, value: Any) -> list[str]:
    """The violations of a redacted input's schema, naming the rules only (a schema
    message quotes the value)."""
    try:
        found = list(validator.iter_errors(value))
    except RecursionError:
        return ["nested too deeply to be checked against the schema"]
    return [f"*** fails the schema's {e.validator!r} rule" for e in found]


def _input_errors(validator: Any, value: Any) -> list[str]:
    """Every violation of an input's schema by ``value`` (``[]``: valid), each prefixed
    with where it is inside the value when not at its top."""
    try:
        found = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    except RecursionError:
        # A recursive schema ({"$ref": "#"}) follows the value down as deep as it goes.
        return ["nested too deeply to be checked against the schema"]
    return [
        f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" if e.absolute_path else e.message
        for e in found
    ]


_FOREIGN_EVENTS = frozenset({"resumed", "cancelled", "suspended", "step.edited"})
"""Trace events another process may record while this one runs the execution."""
_FOREIGN_WINDOW = 20
"""How many of the stored trace's newest entries a merge looks through for them."""

_ELEMENT_INDEX = re.compile(r"\[\d+\]")
"""Map element indexes in a path: ``before:lines.pick`` applies to every element."""


def _collect_secrets(value: Any, into: set[str]) -> None:
    """The strings a redacted value shows in messages: its text and its leaves' (short
    texts, such as ``1``, would mask unrelated text and are left out)."""
    if isinstance(value, Mapping):
        for item in value.values():
            _collect_secrets(item, into)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _collect_secrets(item, into)
    elif value is not None and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 3:
            into.add(text)
            into.add(repr(value))


def live_run(plan: Plan, execution_id: str) -> Run | None:
    """The run of ``execution_id`` alive in this process, if it belongs to ``plan``."""
    run = _live_runs.get(execution_id)
    return run if run is not None and run.plan.name == plan.name else None
