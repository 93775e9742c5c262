"""The async core: run a plan, roll it back, pause it, store it.

One :class:`Run` holds the state of one execution in this process: it schedules the
steps (concurrently where the graph allows), retries, rolls back, pauses at interrupts
and stores each outcome. Its body (inputs, results, undo stack, pending interrupts,
child frames) is opaque JSON in a :class:`~reactor.storage.StoredExecution`, written
with compare-and-set; :mod:`reactor._actions` builds the entry points on top of it.

Steps never run twice because of concurrent callers: whoever moves an execution from
``PAUSED`` to ``RUNNING`` owns it (a random ``owner`` token in the body), and a writer
that finds another owner's token stops.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import inspect
import json
import operator
import os
import random
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from . import _codec
from ._config import settings, storage_for
from ._dsl import NOTHING, Halt, MapFailure, MapResult, Skip
from ._execution import Context, Execution, FailureInfo, PendingInterrupt, RollbackFailure
from ._graph import Binding, Call, Node, Plan
from ._log import emitter
from ._status import Status
from ._sync import owns_running_loop, run_sync
from .errors import (
    CorrelationConflict,
    DefinitionChanged,
    ExecutionNotFound,
    InputInvalid,
    PayloadInvalid,
    ReactorError,
    SerializationError,
    StorageError,
)
from .storage._base import (
    CorrelationTaken,
    EarlyPayloadWaiting,
    Storage,
    StoredExecution,
    WriteConflict,
)

if TYPE_CHECKING:
    from ._reactor import Reactor

__all__ = ["Frame", "Run", "live_run", "suspend_all", "validate_inputs"]

# Sync steps leave the event loop on their own pool so a map of blocking elements is not
# throttled by the loop's small default executor.
_step_threads = concurrent.futures.ThreadPoolExecutor(32, thread_name_prefix="reactor-step")
# Runs alive in this process, so a cancel from the same process stops them before
# their next step without waiting for a storage round trip.
_live_runs: weakref.WeakValueDictionary[str, Run] = weakref.WeakValueDictionary()
_CAS_ATTEMPTS = 50
K = TypeVar("K")


class _Watchdog:
    """Keeps checkpoints and leases of durable runs while their loop's thread is blocked
    in a sync step called inline.

    Inline calls save a thread hop (~50-150 µs) per step, but a blocked loop cannot run
    the heartbeat task; this one daemon thread does it instead. The run's state does not
    change while its thread is inside the step, and :attr:`Run.state_lock` makes the step's
    return wait for a beat in progress.
    """

    def __init__(self) -> None:
        self._armed: dict[Run, float] = {}
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def arm(self, run: Run) -> None:
        self._armed[run] = time.monotonic()
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._watch, name="reactor-watchdog", daemon=True
                    )
                    self._thread.start()

    def disarm(self, run: Run) -> None:
        del self._armed[run]
        with run.state_lock:
            pass

    def _watch(self) -> None:
        while True:
            time.sleep(min(settings.checkpoint_after, 0.05) / 2)
            now = time.monotonic()
            for run, since in list(self._armed.items()):
                if now - since < settings.checkpoint_after or now < run.next_beat:
                    continue
                with run.state_lock:
                    if run not in self._armed:
                        continue
                    try:
                        run_sync(run.beat(locked=False))
                    except Exception as exc:  # a failed beat is retried next time
                        run.log("reactor.execution.heartbeat_failed", error=repr(exc))
                run.next_beat = now + min(settings.lease_seconds / 3, 1.0)


_watchdog = _Watchdog()


class _Tasks(Generic[K]):
    """Tasks a scheduling loop started, handed back as they finish.

    Unlike ``asyncio.wait(FIRST_COMPLETED)``, which re-registers a callback on every
    pending task at each call (quadratic over a map of thousands of elements), each
    completion costs O(1).
    """

    def __init__(self, run: Run) -> None:
        self._run = run
        self._running: dict[asyncio.Future[Any], K] = {}
        self._finished: deque[asyncio.Future[Any]] = deque()
        self._wakeup: asyncio.Future[None] | None = None

    def __len__(self) -> int:
        return len(self._running)

    def start(self, coro: Coroutine[Any, Any, Any], key: K) -> None:
        task = asyncio.ensure_future(coro)
        self._run.active_tasks += 1
        self._running[task] = key
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._run.active_tasks -= 1
        self._finished.append(task)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def finished(self) -> list[tuple[K, Any]]:
        """Wait for at least one task to finish; return (key, result) of all finished."""
        while not self._finished:
            self._wakeup = asyncio.get_running_loop().create_future()
            await self._wakeup
        done = []
        while self._finished:
            task = self._finished.popleft()
            done.append((self._running.pop(task), task.result()))
        return done

    def cancel(self) -> None:
        for task in self._running:
            task.cancel()


class _Heartbeat:
    """Starts :meth:`Run.heartbeats` once a pass over the graph has lasted
    ``checkpoint_after``; most passes end sooner and cost only a timer handle."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._task: asyncio.Task[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(settings.checkpoint_after, self._start)

    def _start(self) -> None:
        self._task = asyncio.ensure_future(self._run.heartbeats())

    def stop(self) -> None:
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()


# Owner tokens come from a private generator: one seeded by the application
# (random.seed) could repeat tokens across processes. Reseeded in a forked child, which
# would otherwise repeat its parent's tokens.
_token_source = random.Random()
os.register_at_fork(after_in_child=_token_source.seed)


def _token() -> str:
    """A random 128-bit owner token (without a system call each, unlike a uuid4)."""
    return f"{_token_source.getrandbits(128):032x}"


class _ArgumentError(Exception):
    """An argument could not be resolved: not retried, not compensated."""


def _plan(cls: type) -> Plan:
    plan: Plan = cls.__reactor_plan__  # type: ignore[attr-defined]
    return plan


def _dig(value: Any, path: Sequence[str | int]) -> Any:
    for key in path:
        try:
            if isinstance(value, Mapping):
                value = value[key]
            elif isinstance(key, int) and isinstance(value, Sequence):
                value = operator.getitem(value, key)
            else:
                value = getattr(value, str(key))
        except (KeyError, IndexError, AttributeError, TypeError) as exc:
            raise _ArgumentError(f"cannot follow {key!r} in {type(value).__name__}") from exc
    return value


def _failure(step: str | None, exc: BaseException) -> FailureInfo:
    detail = exc.detail if isinstance(exc, ReactorError) else str(exc)
    return FailureInfo(
        step=step,
        message=detail,
        type=type(exc).__name__,
        traceback="".join(traceback.format_exception(exc)) if exc.__traceback__ else None,
    )


def _failure_json(info: FailureInfo | None) -> dict[str, Any] | None:
    if info is None:
        return None
    return {
        **attrs.asdict(info, recurse=False),
        "rollback_failures": [attrs.asdict(f) for f in info.rollback_failures],
    }


def _failure_from_json(data: dict[str, Any] | None) -> FailureInfo | None:
    if data is None:
        return None
    return FailureInfo(
        **{**data, "rollback_failures": [RollbackFailure(**f) for f in data["rollback_failures"]]}
    )


def _schema_errors(node: Node, payload: Any) -> list[dict[str, str]]:
    if node.validator is None:
        return []
    return [
        {"path": "/" + "/".join(str(p) for p in e.absolute_path), "message": e.message}
        for e in sorted(
            node.validator.iter_errors(payload), key=lambda e: list(map(str, e.absolute_path))
        )
    ]


def _split(path: str) -> tuple[str, str]:
    """``"lines[3].approve"`` -> ``("lines[3].", "approve")``."""
    prefix, _, name = path.rpartition(".")
    return (prefix + "." if prefix else ""), name


def _plan_at(root: Plan, prefix: str) -> Plan | None:
    """The plan of the frame at ``prefix`` (``""``, ``"payment."``, ``"lines[3].x."``)."""
    plan: Plan | None = root
    for part in prefix.split(".")[:-1]:
        node = plan.nodes.get(part.partition("[")[0]) if plan else None
        if node is None or node.child is None or (("[" in part) != (node.kind == "map")):
            return None
        plan = node.child
    return plan


def _map_group(path: str, start: int) -> tuple[str, int] | None:
    """The first map element at or after ``start`` in ``path``: (map path, index)."""
    bracket = path.find("[", start)
    if bracket < 0:
        return None
    close = path.index("]", bracket)
    return path[:bracket], int(path[bracket + 1 : close])


def _undo_order(paths: Sequence[str], start: int = 0) -> list[str]:
    """Newest first, except that the steps of a map are undone element by element,
    highest index first (newest first within an element), where the map's newest
    step stands."""
    ordered: list[str] = []
    seen: set[str] = set()
    for path in reversed(paths):
        group = _map_group(path, start)
        if group is None:
            ordered.append(path)
            continue
        map_path = group[0]
        if map_path in seen:
            continue
        seen.add(map_path)
        by_index: dict[int, list[str]] = {}
        for p in paths:
            g = _map_group(p, start)
            if g is not None and g[0] == map_path:
                by_index.setdefault(g[1], []).append(p)
        for index in sorted(by_index, reverse=True):
            inner_start = len(f"{map_path}[{index}].")
            ordered.extend(_undo_order(by_index[index], inner_start))
    return ordered


@attrs.define(eq=False)
class _Scope:
    """Where a failure stops work: the whole run, or one element of a
    ``map_(fail_fast=False)``."""

    parent: _Scope | None = None
    failure: tuple[str, BaseException] | None = None
    failed: list[tuple[Frame, Node, str, BaseException, bool]] = attrs.Factory(list)

    def stopped(self) -> bool:
        scope: _Scope | None = self
        while scope is not None:
            if scope.failure is not None:
                return True
            scope = scope.parent
        return False


@attrs.define(eq=False)
class Frame:
    """One reactor being run inside an execution: the root, or a compose/map child."""

    plan: Plan
    prefix: str
    inputs: dict[str, Any]
    instance: Any
    scope: _Scope
    max_concurrency: int | None


@attrs.define
class _Pending:
    path: str
    correlation_id: str | None
    request: Any
    request_tree: Any
    deadline: float | None
    strategy: str
    attempts_left: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "cid": self.correlation_id,
            "request": self.request_tree,
            "deadline": self.deadline,
            "strategy": self.strategy,
            "attempts_left": self.attempts_left,
        }

    @classmethod
    def from_json(cls, path: str, data: dict[str, Any]) -> _Pending:
        return cls(
            path,
            data["cid"],
            _codec.decode(data["request"]),
            data["request"],
            data["deadline"],
            data["strategy"],
            data["attempts_left"],
        )


class Run:
    """The in-process state of one execution, and the machinery that advances it."""

    def __init__(
        self,
        cls: type[Reactor],
        execution_id: str,
        storage: Storage,
        inputs: dict[str, Any],
        *,
        max_concurrency: int | None = None,
        interrupt_handler: Callable[[PendingInterrupt], Any] | None = None,
        idempotency_key: str | None = None,
        owner: str | None = None,
    ) -> None:
        self.cls = cls
        self.plan = _plan(cls)
        self.id = execution_id
        self.storage = storage
        self.handler = interrupt_handler
        self.idempotency_key = idempotency_key
        self.root = Frame(
            self.plan,
            "",
            inputs,
            object.__new__(cls),
            _Scope(),
            max_concurrency if max_concurrency is not None else self.plan.max_concurrency,
        )
        self.frames: dict[str, Frame] = {"": self.root}
        self.frame_trees: dict[str, Any] = {}
        self.inputs_tree: Any = None
        self.results: dict[str, Any] = {}
        self.trees: dict[str, Any] = {}
        self.done: list[str] = []
        self.undo_stack: list[str] = []
        self.pending: dict[str, _Pending] = {}
        self.resolved: set[str] = set()
        self.element_failures: dict[str, dict[str, Any]] = {}
        self.status = Status.RUNNING
        self.reason: str | None = None
        self.error: FailureInfo | None = None
        self.version = 0
        self.created_at = settings.clock()
        self.updated_at = self.created_at
        self.owner = owner if owner is not None else _token()
        self.halt_reason: str | None = None
        self.cancel_reason: str | None = None
        # Set with cancel_reason when the cancel must undo the completed steps (exhausted
        # attempts while another process ran the execution): that owner does the undo.
        self.cancel_undo = False
        self.suspended = False
        self.lost = False
        self.dirty = True
        self.active_tasks = 0
        self.inline_sync = False
        self.log = emitter(settings.middleware, reactor=self.plan.name, execution_id=execution_id)
        self._write_lock = asyncio.Lock()
        self.state_lock = threading.Lock()
        self.next_beat = 0.0

    # ------------------------------------------------------------------ storage

    def body(self) -> str:
        return _codec.dump_tree(
            {
                "inputs": self.inputs_tree,
                "results": self.trees,
                "done": self.done,
                "undo": self.undo_stack,
                "pending": {p: v.to_json() for p, v in self.pending.items()},
                "resolved": sorted(self.resolved),
                "frames": self.frame_trees,
                "element_failures": self.element_failures,
                "error": _failure_json(self.error),
                "halt_reason": self.halt_reason,
                "undo_request": self.cancel_reason if self.cancel_undo else None,
                "owner": self.owner,
                "idempotency_key": self.idempotency_key,
                "version": getattr(self.cls, "version", None),
            }
        )

    def envelope(self, lease_expires: float | None = None) -> StoredExecution:
        paused = self.status is Status.PAUSED
        deadlines = [
            p.deadline
            for p in self.pending.values()
            if p.deadline is not None and p.strategy == "active"
        ]
        lease = (
            (
                lease_expires
                if lease_expires is not None
                else settings.clock() + settings.lease_seconds
            )
            if self.status is Status.RUNNING and self.storage.durable
            else None
        )
        return StoredExecution(
            id=self.id,
            reactor=self.plan.name,
            status=self.status,
            version=self.version,
            body=self.body(),
            correlation_ids=tuple(
                p.correlation_id for p in self.pending.values() if p.correlation_id is not None
            ),
            deadline=min(deadlines) if paused and deadlines else None,
            lease_expires=lease,
            reason=self.reason,
            created_at=self.created_at,
        )

    async def write(self, *, lease_expires: float | None = None, locked: bool = True) -> None:
        """One compare-and-set write of the current state.

        Args:
            lease_expires: The lease to store while running (default: a full lease).
            locked: Serialize with the heartbeat task; the watchdog thread, which runs
                only while the loop is blocked, passes ``False``.

        Raises:
            WriteConflict, CorrelationTaken, EarlyPayloadWaiting: from the storage.
        """
        async with self._serialized(locked):
            stored = await self.storage.write(
                self.envelope(lease_expires), expected_version=self.version
            )
        self.version = stored.version
        self.updated_at = stored.updated_at
        self.dirty = False

    def _serialized(self, locked: bool) -> contextlib.AbstractAsyncContextManager[Any]:
        """The heartbeat task's write lock, or nothing for the watchdog thread."""
        return self._write_lock if locked else contextlib.nullcontext()

    @classmethod
    def from_stored(
        cls, reactor: type[Reactor], stored: StoredExecution, *, check: bool = True
    ) -> Run:
        """Rebuild a run from storage.

        Args:
            reactor: The reactor class.
            stored: What storage holds.
            check: Refuse an execution naming steps the class no longer has; ``False``
                for actions that run no step (cancel).

        Raises:
            DefinitionChanged: the stored execution names steps the class no longer has.
        """
        plan = _plan(reactor)
        try:
            body = json.loads(stored.body)
        except ValueError as exc:
            raise StorageError(
                "stored body is not JSON", reactor=plan.name, execution_id=stored.id
            ) from exc
        run = cls(
            reactor,
            stored.id,
            storage_for(reactor),
            {},
            idempotency_key=body["idempotency_key"],
            owner=body["owner"],
        )
        run.inputs_tree = body["inputs"]
        run.root.inputs = _codec.decode(body["inputs"])
        run.status = stored.status
        run.reason = stored.reason
        run.version = stored.version
        run.created_at = stored.created_at
        run.updated_at = stored.updated_at
        run.error = _failure_from_json(body["error"])
        run.halt_reason = body.get("halt_reason")
        if body.get("undo_request") and not stored.status.finished:
            run.cancel_reason, run.cancel_undo = body["undo_request"], True
        run.frame_trees = body["frames"]
        run.element_failures = body["element_failures"]
        if check:
            for prefix in run.frame_trees:
                if _plan_at(plan, prefix) is None:
                    raise DefinitionChanged(
                        f"the stored execution has a child at {prefix[:-1]!r}, "
                        f"which {plan.name} no longer declares",
                        reactor=plan.name,
                        execution_id=stored.id,
                        step=prefix[:-1],
                    )
            for path in [*body["done"], *body["pending"]]:
                run.node_at(path)
        run.trees = body["results"]
        run.results = {path: run._decode_result(path, tree) for path, tree in run.trees.items()}
        run.done = body["done"]
        run.undo_stack = body["undo"]
        run.pending = {p: _Pending.from_json(p, v) for p, v in body["pending"].items()}
        run.resolved = set(body["resolved"])
        return run

    def _decode_result(self, path: str, tree: Any) -> Any:
        prefix, name = _split(path)
        plan = _plan_at(self.plan, prefix)
        return _codec.decode(tree, plan.result_hint(name) if plan else None)

    def node_at(self, path: str) -> Node:
        """The node a step path names.

        Raises:
            DefinitionChanged: the class no longer declares it.
        """
        prefix, name = _split(path)
        plan = _plan_at(self.plan, prefix)
        node = plan.nodes.get(name) if plan is not None else None
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
            plan = _plan_at(self.plan, prefix)
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

    async def store(self, *, lease_expires: float | None = None, locked: bool = True) -> None:
        """Write the state, absorbing what other writers did in between.

        On a conflict, payloads delivered to pending interrupts are merged in, a
        cancellation is noted in :attr:`cancel_reason`, and a foreign owner sets
        :attr:`lost`; the write is then retried unless the run was lost.
        """
        for _ in range(_CAS_ATTEMPTS):
            try:
                await self.write(lease_expires=lease_expires, locked=locked)
                return
            except WriteConflict as conflict:
                self.merge(conflict.current)
                if self.lost:
                    return
        raise StorageError(
            "too many concurrent writers", reactor=self.plan.name, execution_id=self.id
        )

    def merge(self, current: StoredExecution | None) -> bool:
        """Adopt what another writer stored; return whether new payloads arrived."""
        if current is None:
            self.lost = True
            return False
        body = json.loads(current.body)
        self.version = current.version
        if body["owner"] != self.owner:
            self.lost = True
            return False
        if current.status.finished and self.status is not current.status:
            self.cancel_reason = current.reason or current.status.value
        if body.get("undo_request") and not self.cancel_undo:
            self.cancel_reason, self.cancel_undo = body["undo_request"], True
        arrived = False
        for path in body["resolved"]:
            if path not in self.resolved and path in body["results"]:
                tree = body["results"][path]
                self.resolve(path, self._decode_result(path, tree), tree)
                arrived = True
        for path, data in body["pending"].items():
            if path in self.pending:
                self.pending[path].attempts_left = data["attempts_left"]
        return arrived

    # --------------------------------------------------------------- recording

    def record(self, path: str, value: Any, *, undoable: bool) -> None:
        try:
            tree = _codec.encode(value, reactor=self.plan.name, execution_id=self.id, step=path)
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
        self.done.append(path)
        if undoable:
            self.undo_stack.append(path)
        self.dirty = True

    def resolve(self, path: str, payload: Any, tree: Any = NOTHING) -> None:
        """Make ``payload`` the result of the pending interrupt at ``path``."""
        if tree is NOTHING:
            tree = _codec.encode(payload, reactor=self.plan.name, execution_id=self.id, step=path)
        self.pending.pop(path, None)
        self.resolved.add(path)
        self.results[path] = payload
        self.trees[path] = tree
        self.done.append(path)
        self.dirty = True

    def fail(
        self, frame: Frame, node: Node, path: str, exc: BaseException, *, compensate: bool
    ) -> None:
        frame.scope.failed.append((frame, node, path, exc, compensate))
        if frame.scope.failure is None:
            frame.scope.failure = (path, exc)
        self.log("reactor.step.failed", step=path, error=f"{type(exc).__name__}: {exc}")

    def stopping(self, scope: _Scope) -> bool:
        if scope.parent is None and scope.failure is None and not self.lost and not self.suspended:
            # The common case, checked twice per step: settled in four attribute reads.
            return self.halt_reason is not None or self.cancel_reason is not None
        return (
            self.lost
            or self.suspended
            or self.halt_reason is not None
            or self.cancel_reason is not None
            or scope.stopped()
        )

    # ----------------------------------------------------------------- calling

    def bind(
        self,
        frame: Frame,
        call: Call,
        path: str,
        *,
        attempt: int = 1,
        own: Any = None,
        error: BaseException | None = None,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        for b in call.bindings:
            kwargs[b.param] = self.value(frame, b, path, attempt=attempt, own=own, error=error)
        return kwargs

    def value(
        self,
        frame: Frame,
        b: Binding,
        path: str,
        *,
        attempt: int = 1,
        own: Any = None,
        error: BaseException | None = None,
    ) -> Any:
        kind = b.kind
        if kind == "result":
            v = self.results[frame.prefix + b.name]
        elif kind == "input":
            v = frame.inputs[b.name]
        elif kind == "value":
            v = b.constant
        elif kind == "context":
            v = Context(self.id, path, attempt, self.plan.name)
        elif kind == "own_result":
            v = own
        else:
            v = error
        if b.path:
            try:
                v = _dig(v, b.path)
            except _ArgumentError as exc:
                raise _ArgumentError(
                    f"argument {b.param!r}: {exc} (from {b.name!r}, path {b.path})"
                ) from exc
        if b.hint is not None:
            try:
                v = _codec.structure(v, b.hint)
            except Exception as exc:
                raise _ArgumentError(
                    f"argument {b.param!r} cannot be converted to {b.hint!r}: {exc}"
                ) from exc
        return v

    async def invoke(
        self, call: Call, frame: Frame, kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        if self.inline(call, timeout):
            return self.call_inline(call, frame, kwargs)
        return await self.call_off_loop(call, frame, kwargs, timeout)

    async def call_off_loop(
        self, call: Call, frame: Frame, kwargs: dict[str, Any], timeout: float | None
    ) -> Any:
        """Await an async ``call``, or run a sync one on a step thread."""
        fn = partial(call.fn, frame.instance) if call.method else call.fn
        if call.is_async:
            if timeout is None:
                return await fn(**kwargs)
            return await asyncio.wait_for(fn(**kwargs), timeout)
        future = asyncio.get_running_loop().run_in_executor(_step_threads, partial(fn, **kwargs))
        if timeout is None:
            return await future
        return await asyncio.wait_for(future, timeout)

    def inline(self, call: Call, timeout: float | None) -> bool:
        """Whether ``call`` runs inline: a sync function, with nothing else able to run on
        the facade's private loop meanwhile (calling inline saves a thread hop)."""
        return self.inline_sync and timeout is None and not call.is_async and self.active_tasks == 0

    def call_inline(self, call: Call, frame: Frame, kwargs: dict[str, Any]) -> Any:
        fn = call.fn
        if not self.storage.durable:
            return fn(frame.instance, **kwargs) if call.method else fn(**kwargs)
        _watchdog.arm(self)
        try:
            return fn(frame.instance, **kwargs) if call.method else fn(**kwargs)
        finally:
            _watchdog.disarm(self)

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
        if not waiting:
            returns = frame.plan.returns
            return True, (results[prefix + returns] if returns else None)
        running: _Tasks[str] = _Tasks(self)
        limit = frame.max_concurrency
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

        try:
            while True:
                while (
                    ready
                    and (limit is None or len(running) < limit)
                    and not self.stopping(frame.scope)
                ):
                    name = ready.popleft()
                    if not running and not ready:
                        # Alone: awaited directly, no task (a task costs ~10 µs).
                        settle(name, await self.run_node(frame, nodes[name]))
                    else:
                        running.start(self.run_node(frame, nodes[name]), name)
                if not running:
                    break
                for name, complete in await running.finished():
                    settle(name, complete)
        finally:
            running.cancel()
        if remaining == 0 and not self.stopping(frame.scope):
            returns = frame.plan.returns
            return True, (results[prefix + returns] if returns else None)
        return False, None

    def run_node(self, frame: Frame, node: Node) -> Coroutine[Any, Any, bool | None]:
        """Run one node; ``True``: completed, ``False``: waits on an interrupt,
        ``None``: failed or stopped."""
        # Steps, by far the most common nodes, skip a coroutine frame.
        if node.kind == "step":
            return self.run_step(frame, node)
        return self.run_other(frame, node)

    async def run_other(self, frame: Frame, node: Node) -> bool | None:
        """:meth:`run_node` for interrupts, compositions and maps."""
        path = frame.prefix + node.name
        if self.stopping(frame.scope):
            return None
        try:
            if node.kind == "interrupt":
                return await self.reach_interrupt(frame, node, path)
            if node.kind == "compose":
                return await self.run_compose(frame, node, path)
            return await self.run_map(frame, node, path)
        except (_ArgumentError, InputInvalid) as exc:
            self.fail(frame, node, path, exc, compensate=False)
        return None

    async def run_step(self, frame: Frame, node: Node) -> bool | None:
        path = frame.prefix + node.name
        if self.stopping(frame.scope):
            return None
        decl = node.decl
        call = node.call
        assert call is not None
        attempt = 0
        log = self.log
        value: Any = None
        while True:
            attempt += 1
            try:
                kwargs = self.bind(frame, call, path, attempt=attempt)
            except _ArgumentError as exc:
                self.fail(frame, node, path, exc, compensate=False)
                return None
            if log.enabled:
                log("reactor.step.started", step=path, attempt=attempt)
            try:
                # invoke() inlined: steps are the hot path.
                if self.inline(call, decl.timeout):
                    value = self.call_inline(call, frame, kwargs)
                else:
                    value = await self.call_off_loop(call, frame, kwargs, decl.timeout)
            except Exception as exc:
                if attempt <= decl.retries and isinstance(exc, decl.retry_on):
                    delay = self._delay(
                        decl.backoff, decl.base_delay, decl.max_delay, decl.jitter, attempt
                    )
                    log(
                        "reactor.step.retrying",
                        step=path,
                        attempt=attempt,
                        delay=delay,
                        error=repr(exc),
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
            self.halt_reason = value.reason or path
            log("reactor.step.halted", step=path, reason=value.reason)
            return None
        skipped = isinstance(value, Skip)
        if skipped:
            value = value.value
        try:
            self.record(path, value, undoable=node.undo is not None and not skipped)
        except SerializationError as exc:
            self.fail(frame, node, path, exc, compensate=True)
            return None
        if log.enabled:
            log("reactor.step.completed", step=path, attempt=attempt)
        return True

    @staticmethod
    def _delay(backoff: str, base: float, cap: float | None, jitter: float, attempt: int) -> float:
        if backoff == "exponential":
            delay = base * 2 ** (attempt - 1)
        elif backoff == "linear":
            delay = base * attempt
        else:
            delay = base
        if cap is not None:
            delay = min(delay, cap)
        if jitter:
            delay += delay * jitter * random.random()
        return float(delay)

    async def reach_interrupt(self, frame: Frame, node: Node, path: str) -> bool | None:
        if path in self.pending:
            return False
        decl = node.decl
        request = None
        if node.call is not None:
            request = await self.invoke(node.call, frame, self.bind(frame, node.call, path), None)
        correlation_id = None
        if node.correlation is not None:
            correlation_id = str(node.correlation.fn(**self.bind(frame, node.correlation, path)))
        try:
            tree = _codec.encode(request, reactor=self.plan.name, execution_id=self.id, step=path)
        except SerializationError as exc:
            self.fail(frame, node, path, exc, compensate=False)
            return None
        pending = _Pending(
            path,
            correlation_id,
            request,
            tree,
            settings.clock() + decl.timeout if decl.timeout is not None else None,
            decl.strategy,
            decl.max_attempts,
        )
        self.log("reactor.interrupt.reached", step=path, correlation_id=correlation_id)
        if self.handler is not None:
            payload = self.handler(self.public_pending(pending))
            if inspect.isawaitable(payload):
                payload = await payload
            if payload is not None:
                errors = _schema_errors(node, payload)
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
                self.resolve(path, payload)
                self.log("reactor.interrupt.resumed", step=path, by="interrupt_handler")
                return True
        self.pending[path] = pending
        self.dirty = True
        return False

    def child_frame(
        self, parent: Frame, node: Node, prefix: str, extra: Mapping[str, Any], scope: _Scope
    ) -> Frame:
        frame = self.frames.get(prefix)
        if frame is not None:
            return frame
        assert node.child is not None
        if prefix in self.frame_trees:
            inputs = _codec.decode(self.frame_trees[prefix])
        else:
            given = {b.param: self.value(parent, b, prefix[:-1]) for b in node.child_inputs}
            given.update(extra)
            inputs = validate_inputs(node.child, given, execution_id=self.id, step=prefix[:-1])
            self.frame_trees[prefix] = _codec.encode(
                inputs, reactor=self.plan.name, execution_id=self.id, step=prefix[:-1]
            )
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
        child = self.child_frame(frame, node, path + ".", {}, frame.scope)
        complete, value = await self.run_frame(child)
        if not complete:
            return None if self.stopping(frame.scope) else False
        self.record(path, value, undoable=False)
        self.log("reactor.step.completed", step=path)
        return True

    async def run_map(self, frame: Frame, node: Node, path: str) -> bool | None:
        assert node.over is not None
        items = self.value(frame, node.over, path)
        if not isinstance(items, list | tuple):
            raise _ArgumentError(f"map_ over= must give a list, got {type(items).__name__}")
        decl = node.decl
        results: dict[int, Any] = {}
        failures: list[MapFailure] = []
        todo: deque[int] = deque()
        for index in range(len(items)):
            failed = self.element_failures.get(f"{path}[{index}]")
            if failed is not None:
                failures.append(MapFailure(index, _failure_from_json(failed)))
            else:
                todo.append(index)
        running: _Tasks[int] = _Tasks(self)
        element_frames: dict[int, Frame] = {}
        blocked = False
        limit = decl.max_concurrency

        async def settle(index: int, complete: bool, value: Any) -> None:
            nonlocal blocked
            element = element_frames[index]
            if complete:
                results[index] = value
            elif (
                not decl.fail_fast
                and element.scope.failure is not None
                and not self.stopping(frame.scope)
            ):
                info = await self.rollback(element.scope, f"{path}[{index}].")
                self.element_failures[f"{path}[{index}]"] = _failure_json(info)  # type: ignore[assignment]
                failures.append(MapFailure(index, info))
                self.dirty = True
            else:
                blocked = True

        try:
            while True:
                while (
                    todo
                    and (limit is None or len(running) < limit)
                    and not self.stopping(frame.scope)
                ):
                    index = todo.popleft()
                    scope = frame.scope if decl.fail_fast else _Scope(parent=frame.scope)
                    element = self.child_frame(
                        frame, node, f"{path}[{index}].", {decl.item: items[index]}, scope
                    )
                    element_frames[index] = element
                    if not running and not todo:
                        await settle(index, *await self.run_frame(element))
                    else:
                        running.start(self.run_frame(element), index)
                if not running:
                    break
                for index, (complete, element_result) in await running.finished():
                    await settle(index, complete, element_result)
        finally:
            running.cancel()
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

    # ---------------------------------------------------------------- rollback

    async def call_hook(
        self, path: str, kind: str, *, error: BaseException | None = None
    ) -> RollbackFailure | None:
        prefix, _ = _split(path)
        frame = self.frame_at(prefix)
        node = self.node_at(path)
        call = node.undo if kind == "undo" else node.compensate
        if call is None:
            return None
        try:
            kwargs = self.bind(frame, call, path, own=self.results.get(path), error=error)
            await self.invoke(call, frame, kwargs, None)
        except Exception as exc:
            self.log(f"reactor.step.{kind}_failed", step=path, error=repr(exc))
            return RollbackFailure(path, kind, f"{type(exc).__name__}: {exc}")
        self.log("reactor.step.undone" if kind == "undo" else "reactor.step.compensated", step=path)
        return None

    async def rollback(self, scope: _Scope | None, prefix: str = "") -> FailureInfo | None:
        """Compensate the failed steps of ``scope``, then undo the completed steps under
        ``prefix`` newest first; return the scope's failure with what went wrong."""
        problems: list[RollbackFailure] = []
        for _, node, path, exc, compensate in scope.failed if scope else ():
            if compensate and node.compensate is not None:
                problem = await self.call_hook(path, "compensate", error=exc)
                if problem:
                    problems.append(problem)
        targets = [p for p in self.undo_stack if p.startswith(prefix)]
        for path in _undo_order(targets):
            problem = await self.call_hook(path, "undo")
            if problem:
                problems.append(problem)
        if targets:
            undone = set(targets)
            self.undo_stack = [p for p in self.undo_stack if p not in undone]
        self.dirty = True
        if scope is None or scope.failure is None:
            return (
                FailureInfo(
                    step=None,
                    message="some undo hooks failed",
                    type="RollbackFailed",
                    rollback_failures=problems,
                )
                if problems
                else None
            )
        path, exc = scope.failure
        return attrs.evolve(_failure(path, exc), rollback_failures=problems)

    # -------------------------------------------------------------------- drive

    async def drive(self) -> Execution:
        """Advance the execution until it completes, fails, halts, pauses or is cancelled,
        storing the outcome."""
        _live_runs[self.id] = self
        # The sync facade owns its loop: sync steps may run inline when the run is alone on
        # it (on a user's loop they would block everything else).
        self.inline_sync = owns_running_loop()
        try:
            while True:
                heartbeat = _Heartbeat(self) if self.storage.durable else None
                try:
                    complete, _ = await self.run_frame(self.root)
                finally:
                    if heartbeat is not None:
                        heartbeat.stop()
                if self.lost or await self._settle(complete):
                    break
        finally:
            _live_runs.pop(self.id, None)
        return await self.snapshot_or_stored()

    async def _settle(self, complete: bool) -> bool:
        """Store the outcome of a pass over the graph; ``False`` means run another pass
        (payloads arrived while storing)."""
        if self.cancel_reason is not None:
            if self.cancel_undo:
                self.pending.clear()
                self.error = await self.rollback(None)
            await self.finish(Status.CANCELLED, self.cancel_reason)
        elif self.halt_reason is not None:
            self.pending.clear()
            await self.finish(Status.HALTED, self.halt_reason)
        elif self.root.scope.failure is not None:
            self.pending.clear()
            self.error = await self.rollback(self.root.scope)
            self.log("reactor.execution.rolled_back", step=self.error.step if self.error else None)
            await self.finish(Status.FAILED)
        elif self.suspended and not complete:
            # Work remains: checkpoint with an expired lease so any worker picks it up at once.
            self.status = Status.RUNNING
            await self.store(lease_expires=settings.clock())
            self.log("reactor.execution.suspended")
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
        if self.cancel_reason is not None and status is not Status.CANCELLED and not self.lost:
            # Cancelled by someone else while finishing: keep the results, record the cancel.
            self.status, self.reason = Status.CANCELLED, self.cancel_reason
            await self.store()
        self.log(f"reactor.execution.{self.status.value}", reason=self.reason)

    async def pause(self) -> bool:
        """Store the paused state; return ``False`` if payloads arrived meanwhile."""
        self.status = Status.PAUSED
        for _ in range(_CAS_ATTEMPTS):
            try:
                await self.write()
                self.log("reactor.execution.paused", interrupts=sorted(self.pending))
                return True
            except WriteConflict as conflict:
                self.status = Status.RUNNING
                arrived = self.merge(conflict.current)
                if self.lost or arrived or self.cancel_reason is not None:
                    return self.lost
                self.status = Status.PAUSED
            except EarlyPayloadWaiting as early:
                self.status = Status.RUNNING
                if await self.take_early(early.correlation_id):
                    return False
                self.status = Status.PAUSED
            except CorrelationTaken as taken:
                self.status = Status.RUNNING
                for path, pending in list(self.pending.items()):
                    if pending.correlation_id == taken.correlation_id:
                        del self.pending[path]
                        prefix, _ = _split(path)
                        frame = self.frame_at(prefix)
                        self.fail(
                            frame,
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
                return False
        raise StorageError(
            "too many concurrent writers", reactor=self.plan.name, execution_id=self.id
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
            if not node.decl.accept_early or _schema_errors(node, payload):
                self.log(
                    "reactor.interrupt.early_payload_refused",
                    step=path,
                    correlation_id=correlation_id,
                )
                return False
            self.resolve(path, payload)
            self.log("reactor.interrupt.resumed", step=path, by="early_payload")
            return True
        return False

    async def heartbeats(self) -> None:
        """Checkpoint, then keep the lease alive and notice other writers, until cancelled."""
        interval = min(settings.lease_seconds / 3, 1.0)
        while not self.lost:
            if time.monotonic() >= self.next_beat:
                await self.beat()
                self.next_beat = time.monotonic() + interval
            await asyncio.sleep(interval)

    async def beat(self, *, locked: bool = True) -> None:
        """Checkpoint new results, or just extend the lease; notice other writers."""
        if self.dirty or self.version == 0:
            await self.store(locked=locked)
            return
        lease = settings.clock() + settings.lease_seconds
        async with self._serialized(locked):
            touched = await self.storage.touch(self.id, version=self.version, lease_expires=lease)
        if not touched:
            self.merge(await self.storage.load(self.id))

    # ------------------------------------------------------------------- views

    def public_pending(self, p: _Pending) -> PendingInterrupt:
        node = self.node_at(p.path)
        return PendingInterrupt(
            step=p.path,
            correlation_id=p.correlation_id,
            request=p.request,
            schema=node.decl.schema,
            deadline=dt.datetime.fromtimestamp(p.deadline, dt.UTC)
            if p.deadline is not None
            else None,
            attempts_left=p.attempts_left,
        )

    def snapshot(self, validation_errors: Iterable[dict[str, str]] = ()) -> Execution:
        returns = self.plan.returns
        return Execution(
            id=self.id,
            reactor=self.cls,
            status=self.status,
            result=self.results.get(returns)
            if returns and self.status is Status.COMPLETED
            else None,
            results=dict(self.results),
            error=self.error,
            interrupts=[self.public_pending(p) for p in self.pending.values()],
            reason=self.reason,
            validation_errors=list(validation_errors),
            created_at=dt.datetime.fromtimestamp(self.created_at, dt.UTC),
            updated_at=dt.datetime.fromtimestamp(self.updated_at, dt.UTC),
        )

    async def snapshot_or_stored(self) -> Execution:
        if not self.lost:
            return self.snapshot()
        stored = await self.storage.load(self.id)
        if stored is None:
            raise ExecutionNotFound(
                "the execution disappeared", reactor=self.plan.name, execution_id=self.id
            )
        return Run.from_stored(self.cls, stored).snapshot()

    async def claim(self) -> None:
        """Take ownership of a stored, not running execution (one CAS write).

        Raises:
            WriteConflict: someone else changed it first.
        """
        self.owner = _token()
        self.status = Status.RUNNING
        await self.write()


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
        run.suspended = True
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
    errors: dict[str, str] = {}
    inputs: dict[str, Any] = {}
    for name in given:
        if name not in plan.inputs:
            errors[name] = "unknown input"
    for name, declared in plan.inputs.items():
        if name in given:
            value = given[name]
            validator = plan.validators.get(name)
            if validator is not None:
                error = next(iter(validator.iter_errors(value)), None)
                if error is not None:
                    errors[name] = error.message
                    continue
            inputs[name] = value
        elif declared.required:
            errors[name] = "missing"
        else:
            inputs[name] = declared.default
    if errors:
        listing = "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        raise InputInvalid(
            f"invalid inputs for {plan.reactor.__qualname__}: {listing}",
            errors=errors,
            reactor=plan.name,
            execution_id=execution_id,
            step=step,
        )
    return inputs


def live_run(cls: type[Reactor], execution_id: str) -> Run | None:
    """The run of ``execution_id`` alive in this process, if it belongs to ``cls``."""
    run = _live_runs.get(execution_id)
    return run if run is not None and run.plan.name == _plan(cls).name else None
