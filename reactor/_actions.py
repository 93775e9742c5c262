"""The entry points: start, resume, find, cancel and undo executions, fire timeouts and
recover crashed runs.

Each acts on a stored execution the same way: load it, decide, and write against the
version read; on a conflict it reloads and decides again. The running itself is
:class:`reactor._executor.Run`'s. Each is handed the reactor's plan and its storage.
"""

from __future__ import annotations

import asyncio
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from . import _codec, _dispatch
from ._body import ParentLink
from ._config import get_config
from ._dsl import NOTHING
from ._executor import SUSPENDED, Run, Stop, live_run, validate_inputs
from ._fanout import bar_element, element_finished, element_id
from ._graph import breakpoint_error
from ._interrupts import overdue, schema_errors
from ._log import emitter
from ._paths import split
from ._plan import InterruptKind, Plan
from ._records import Execution, PendingInterrupt
from ._retry import cas_retry
from ._status import Status
from .errors import (
    AlreadyResumed,
    AmbiguousStep,
    ExecutionNotFound,
    InputInvalid,
    InterruptTimeout,
    NotPaused,
    NotPending,
    PayloadInvalid,
    ReactorWarning,
    SerializationError,
    StorageError,
)
from .storage import Storage, StoredExecution, WriteConflict

__all__ = [
    "cancel",
    "expire_overdue",
    "find",
    "recover",
    "resume",
    "start",
    "suspend",
    "take_over",
    "undo",
]

# How long a start waits for the execution another start bound the same idempotency
# key to (it is stored right after the binding).
_FIRST_RUN_WAIT = 5.0


async def start(
    plan: Plan,
    storage: Storage,
    inputs: Mapping[str, Any],
    *,
    execution_id: str | None = None,
    idempotency_key: str | None = None,
    interrupt_handler: Callable[[PendingInterrupt], Any] | None = None,
    max_concurrency: int | None = None,
    breakpoints: Iterable[str] = (),
) -> Execution:
    """Validate ``inputs`` and run a new execution until it completes, fails or pauses."""
    values = validate_inputs(plan, inputs, execution_id=execution_id)
    breakpoints = [breakpoints] if isinstance(breakpoints, str) else list(breakpoints)
    problems = {bp: breakpoint_error(plan, bp) for bp in breakpoints}
    if any(problems.values()):
        listing = "; ".join(p for p in problems.values() if p)
        raise InputInvalid(
            f"invalid breakpoints: {listing}",
            errors={"breakpoints": listing},
            reactor=plan.name,
            execution_id=execution_id,
        )
    if storage.durable and plan.name.startswith("__main__."):
        # Other processes import the script under its module name, never "__main__".
        warnings.warn(
            f"reactor {plan.name!r} is defined in a script run as __main__ and stores its "
            "executions durably under that name, which no worker or CLI can import: set "
            'name = "..." on the class',
            ReactorWarning,
            stacklevel=2,
        )
    new_id = execution_id or uuid.uuid4().hex
    if idempotency_key is not None:
        holder = await storage.reserve_idempotency_key(plan.name, idempotency_key, new_id)
        if holder != new_id:
            return await first_run(plan, storage, holder, idempotency_key)
    run = Run(
        plan,
        new_id,
        storage,
        values,
        max_concurrency=max_concurrency,
        interrupt_handler=interrupt_handler,
        idempotency_key=idempotency_key,
        breakpoints=breakpoints,
    )
    encode_inputs(run, values)
    if execution_id is not None or idempotency_key is not None:
        # Written up front so a caller-chosen id is refused at once when taken, and so a
        # second run with the same idempotency key finds this one. Other runs are first
        # stored when they pause or end (or checkpoint); until then find and cancel reach
        # them through this process's registry of live runs.
        await store_new(run)
    run.log("reactor.execution.started")
    return await run.drive()


async def store_new(run: Run) -> None:
    """Store a new execution (under a full lease, while running).

    Raises:
        StorageError: an execution with this id exists already.
    """
    try:
        await run.write()
    except WriteConflict as exc:
        raise StorageError(
            "an execution with this id exists already", reactor=run.plan.name, execution_id=run.id
        ) from exc


def encode_inputs(run: Run, values: Mapping[str, Any]) -> None:
    """Encode a new run's validated inputs for storage.

    Raises:
        InputInvalid: they cannot be encoded, or exceed ``max_payload_bytes``.
    """
    plan = run.plan
    try:
        run.inputs_tree = _codec.encode(values, reactor=plan.name, execution_id=run.id)
        _codec.check_size(
            _codec.dump_tree(run.inputs_tree),
            what="the inputs",
            limit=get_config().max_payload_bytes,
        )
    except SerializationError as exc:
        raise InputInvalid(
            exc.detail, errors={"*": exc.detail}, reactor=plan.name, execution_id=run.id
        ) from exc


async def first_run(plan: Plan, storage: Storage, holder: str, idempotency_key: str) -> Execution:
    """The execution ``idempotency_key`` is bound to.

    Its starter binds the key, then stores the execution at once: a concurrent start can
    see the key a moment before the execution, so it waits (briefly) rather than run the
    transaction a second time.

    Raises:
        StorageError: the execution never appeared (its starter died in between).
    """
    delay = 0.001
    deadline = time.monotonic() + _FIRST_RUN_WAIT
    while True:
        stored = await storage.load(holder)
        if stored is not None:
            return Run.from_stored(plan, storage, stored).snapshot()
        if time.monotonic() > deadline:
            raise StorageError(
                f"idempotency key {idempotency_key!r} is bound to an execution that was "
                "never stored (its process died while starting it)",
                reactor=plan.name,
                execution_id=holder,
            )
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


async def _load(plan: Plan, storage: Storage, execution_id: str) -> StoredExecution:
    stored = await storage.load(execution_id)
    if stored is None:
        raise ExecutionNotFound("no such execution", reactor=plan.name, execution_id=execution_id)
    if stored.reactor != plan.name:
        raise ExecutionNotFound(
            f"the execution belongs to reactor {stored.reactor!r}",
            reactor=plan.name,
            execution_id=execution_id,
        )
    return stored


async def load_run(
    plan: Plan, storage: Storage, execution_id: str, *, check: bool = True
) -> tuple[StoredExecution, Run]:
    stored = await _load(plan, storage, execution_id)
    return stored, Run.from_stored(plan, storage, stored, check=check)


def _not_paused(run: Run, step: str | None = None) -> NotPaused:
    why = f" ({run.reason})" if run.reason else ""
    return NotPaused(
        f"the execution is {run.status.value}{why}",
        status=run.status.value,
        reason=run.reason,
        reactor=run.plan.name,
        execution_id=run.id,
        step=step,
    )


async def _expire(run: Run, path: str) -> Execution:
    """Fire the timeout of the pending interrupt at ``path`` on a claimed run."""
    node = run.node_at(path)
    run.log("reactor.interrupt.timed_out", step=path, waited=_waited(run, path))
    if node.decl.on_timeout is not NOTHING:
        run.accept_payload(path, node.decl.on_timeout)
    else:
        del run.pending[path]
        prefix, _ = split(path)
        exc = InterruptTimeout(
            "the interrupt was not resumed before its deadline",
            reactor=run.plan.name,
            execution_id=run.id,
            step=path,
        )
        run.fail(run.frame_at(prefix), node, path, exc, compensate=False)
    return await run.drive()


async def expire_overdue(
    plan: Plan,
    storage: Storage,
    execution_id: str,
    *,
    strategies: Iterable[str] = ("lazy", "active"),
    background: bool = False,
) -> Execution | None:
    """Fire the first overdue interrupt timeout of a paused execution, once across all
    callers; ``None`` if there was nothing to fire (or someone else fired it).

    With ``background``, an ``on_timeout`` payload is accepted in the claim and the run
    it resumes is enqueued (:mod:`reactor._dispatch`) instead of run here.
    """
    for _ in cas_retry(reactor=plan.name, execution_id=execution_id):
        stored, run = await load_run(plan, storage, execution_id)
        if stored.status is not Status.PAUSED:
            return None
        path = overdue(run.pending, get_config().clock(), strategies=strategies)
        if path is None:
            return None
        on_timeout = run.node_at(path).decl.on_timeout
        if background and on_timeout is not NOTHING:
            run.log("reactor.interrupt.timed_out", step=path)
            run.accept_payload(path, on_timeout)
            try:
                await run.claim()
            except WriteConflict:
                continue
            _dispatch.send(plan.name, run.id, run.owner, run.log)
            return run.snapshot()
        try:
            await run.claim()
        except WriteConflict:
            continue
        return await _expire(run, path)
    raise AssertionError("unreachable: cas_retry raises when exhausted")


async def find(
    plan: Plan,
    storage: Storage,
    execution_id: str | None = None,
    *,
    correlation_id: str | None = None,
) -> Execution:
    """Load an execution, firing an overdue interrupt timeout first."""
    if correlation_id is not None:
        stored = await storage.load_by_correlation(plan.name, correlation_id)
        if stored is None:
            raise ExecutionNotFound(
                f"no live execution holds correlation id {correlation_id!r}", reactor=plan.name
            )
        execution_id = stored.id
    assert execution_id is not None
    live = live_run(plan, execution_id)
    if live is not None and live.version == 0:
        return live.snapshot()
    expired = await expire_overdue(plan, storage, execution_id)
    if expired is not None:
        return expired
    return (await load_run(plan, storage, execution_id))[1].snapshot()


def _pick(run: Run, step: str | None, correlation_id: str | None) -> str:
    if correlation_id is not None and step is None:
        for path, pending in run.pending.items():
            if pending.correlation_id == correlation_id:
                return path
        raise AlreadyResumed(
            f"no pending interrupt holds correlation id {correlation_id!r} any more",
            reactor=run.plan.name,
            execution_id=run.id,
        )
    if step is not None:
        if step in run.pending:
            return step
        if step in run.retired:
            raise AlreadyResumed(
                "the interrupt is no longer pending",
                reactor=run.plan.name,
                execution_id=run.id,
                step=step,
            )
        raise NotPending(
            f"{step!r} is not a pending interrupt; pending: {sorted(run.pending) or 'none'}",
            pending=sorted(run.pending),
            reactor=run.plan.name,
            execution_id=run.id,
            step=step,
        )
    if len(run.pending) == 1:
        return next(iter(run.pending))
    if not run.pending:
        if run.status is Status.RUNNING and run.retired:
            # The winner of a concurrent resume runs the execution right now (or an
            # invalid payload used the last attempt and it is being cancelled).
            raise AlreadyResumed(
                "the execution was resumed and is running",
                reactor=run.plan.name,
                execution_id=run.id,
            )
        raise _not_paused(run)
    raise AmbiguousStep(
        f"several interrupts are pending, pass step= one of {sorted(run.pending)}",
        pending=sorted(run.pending),
        reactor=run.plan.name,
        execution_id=run.id,
    )


async def resume(
    plan: Plan,
    storage: Storage,
    execution_id: str | None,
    payload: Any,
    *,
    step: str | None = None,
    correlation_id: str | None = None,
    strict: bool,
    background: bool = False,
    update: Mapping[str, Any] | None = None,
    principal: str | None = None,
) -> Execution:
    """Resume a pending interrupt with ``payload`` (see ``Reactor.resume``).

    With ``background``, the claim is made here and the rest of the run is enqueued
    (:mod:`reactor._dispatch`): the execution comes back ``RUNNING``.
    """
    if background:
        _dispatch.require(plan.name, execution_id)
    path: str | None = step
    for _ in cas_retry(reactor=plan.name, execution_id=execution_id):
        if execution_id is None:
            assert correlation_id is not None
            found = await storage.load_by_correlation(plan.name, correlation_id)
            if found is None:
                return await _store_early(
                    plan, storage, correlation_id, payload, background=background
                )
            # Retries after a lost race reload by id: the winner may have finished the
            # execution and released the correlation id meanwhile.
            execution_id = found.id
            stored, run = found, Run.from_stored(plan, storage, found)
        else:
            stored, run = await load_run(plan, storage, execution_id)
        if path is not None and path in run.resolved:
            raise AlreadyResumed(
                "the interrupt was already resumed",
                reactor=plan.name,
                execution_id=run.id,
                step=path,
            )
        if stored.status.finished:
            raise _not_paused(run, path)
        path = _pick(run, path, correlation_id)
        pending = run.pending[path]
        if pending.is_hold:
            # A breakpoint or operator pause: the payload is ignored.
            if stored.status is not Status.PAUSED:
                raise _not_paused(run, path)
            if update:
                run.edit(update, principal)
            waited = _waited(run, path)
            run.release(path)
            run.note("resumed", path, None, principal)
            try:
                await run.claim()
            except WriteConflict:
                continue
            run.log("reactor.execution.released", step=path, waited=waited)
            if background:
                _dispatch.send(plan.name, run.id, run.owner, run.log)
                return run.snapshot()
            return await run.drive()
        node = run.node_at(path)
        if pending.attempts_left is not None and pending.attempts_left <= 0:
            # Its last attempt went to an invalid payload: the execution is being
            # cancelled, and this payload must not be answered and then dropped.
            raise AlreadyResumed(
                "the interrupt's attempts are used up; the execution is being cancelled",
                reactor=plan.name,
                execution_id=run.id,
                step=path,
            )
        if (
            pending.deadline is not None
            and pending.deadline <= get_config().clock()
            and stored.status is Status.PAUSED
        ):
            try:
                await run.claim()
            except WriteConflict:
                continue
            expired = await _expire(run, path)
            if not strict:
                return expired
            if node.decl.on_timeout is not NOTHING:
                raise AlreadyResumed(
                    "the deadline passed; the interrupt was resumed with its on_timeout payload",
                    reactor=plan.name,
                    execution_id=run.id,
                    step=path,
                )
            raise InterruptTimeout(
                "the deadline passed before this resume; the execution failed",
                reactor=plan.name,
                execution_id=run.id,
                step=path,
            )
        # Encoded before the schema check: a payload no store could hold (a lone
        # surrogate, nesting past MAX_DEPTH) is refused without using an attempt, and a
        # recursive schema never walks a payload deeper than the codec allows. The tree
        # is both what the size is checked on and what is stored.
        tree = _codec.encode(payload, reactor=plan.name, execution_id=run.id, step=path)
        _codec.check_size(
            _codec.dump_tree(tree),
            what=f"the payload of {path!r}",
            limit=get_config().max_payload_bytes,
            reactor=plan.name,
            execution_id=run.id,
            step=path,
        )
        errors = schema_errors(node, payload)
        if errors:
            if not strict:
                return run.snapshot(validation_errors=errors)
            left = pending.attempts_left
            if left is not None:
                left = pending.attempts_left = left - 1
                try:
                    if left > 0:
                        await run.write()
                    else:
                        # Later resumes of it are losers from now on (AlreadyResumed).
                        run.retire(path)
                        if stored.status is Status.PAUSED:
                            await _cancel_with_undo(run, "max_attempts")
                        else:
                            await _request_undo(run, "max_attempts")
                except WriteConflict:
                    continue
            raise PayloadInvalid(
                "the payload fails the interrupt's schema: "
                f"{errors[0]['path']}: {errors[0]['message']}",
                errors=errors,
                attempts_left=left,
                reactor=plan.name,
                execution_id=run.id,
                step=path,
            )
        if update:
            if stored.status is not Status.PAUSED:
                raise _not_paused(run, path)
            run.edit(update, principal)
        waited = _waited(run, path)
        run.accept_payload(path, payload, tree)
        run.note("resumed", path, None, principal)
        try:
            if stored.status is Status.PAUSED:
                await run.claim()
            else:
                # Another process runs the execution: hand it the payload; its next write
                # merges it in.
                await run.write()
        except WriteConflict:
            continue
        run.log("reactor.interrupt.resumed", step=path, waited=waited)
        if stored.status is Status.PAUSED and background:
            _dispatch.send(plan.name, run.id, run.owner, run.log)
            return run.snapshot()
        if stored.status is Status.PAUSED:
            return await run.drive()
        return run.snapshot()
    raise AssertionError("unreachable: cas_retry raises when exhausted")


def _waited(run: Run, path: str) -> float | None:
    """Seconds the pending item at ``path`` has waited (``None``: unknown)."""
    since = run.pending[path].since
    return max(get_config().clock() - since, 0.0) if since is not None else None


async def _store_early(
    plan: Plan, storage: Storage, correlation_id: str, payload: Any, *, background: bool = False
) -> Execution:
    accepting = [
        n for n in plan.nodes.values() if isinstance(n.kind, InterruptKind) and n.decl.accept_early
    ]
    if not accepting:
        raise ExecutionNotFound(
            f"no live execution holds correlation id {correlation_id!r}", reactor=plan.name
        )
    # Encoded first, as in resume: what no store could hold is refused before any schema
    # walks it.
    config = get_config()
    text = _codec.dumps(payload, reactor=plan.name)
    _codec.check_size(
        text, what="the early payload", limit=config.max_payload_bytes, reactor=plan.name
    )
    errors = [schema_errors(n, payload) for n in accepting]
    if all(errors):
        raise PayloadInvalid(
            "the early payload fails the schema of every interrupt that accepts early payloads",
            errors=errors[0],
            attempts_left=None,
            reactor=plan.name,
        )
    try:
        holder = await storage.put_early(
            plan.name, correlation_id, text, ttl=config.early_payload_ttl
        )
    except WriteConflict as exc:
        raise AlreadyResumed(
            f"an early payload for correlation id {correlation_id!r} is already waiting",
            reactor=plan.name,
        ) from exc
    if holder is not None:
        # An execution reached the interrupt meanwhile: resume it normally.
        return await resume(
            plan,
            storage,
            None,
            payload,
            correlation_id=correlation_id,
            strict=True,
            background=background,
        )
    log = emitter(config.middleware, reactor=plan.name)
    log("reactor.interrupt.early_payload_stored", correlation_id=correlation_id)
    return Execution(
        id="", reactor=plan.reactor, status=Status.PAUSED, reason="early payload stored"
    )


async def _request_undo(run: Run, reason: str) -> None:
    """Ask the process running ``run`` to stop, undo its completed steps and end
    CANCELLED (one CAS write; a worker that recovers the run honours it too).

    Raises:
        WriteConflict: someone else changed it first.
    """
    run.request_cancel(reason, undo=True)
    await run.write()
    live = live_run(run.plan, run.id)
    if live is not None:
        live.request_cancel(reason, undo=True)
    await _cancel_elements(run, reason, undo=True)


async def _cancel_with_undo(run: Run, reason: str, principal: str | None = None) -> Execution:
    """Claim the run, undo its completed steps newest first, end it CANCELLED."""
    await run.claim()
    await _cancel_elements(run, reason, undo=True, principal=principal)
    dropped = sum(not p.is_hold for p in run.pending.values())
    if dropped:
        run.log("reactor.execution.interrupts_dropped", dropped=dropped)
    if reason == "undo":
        run.note("undone", None, None, principal)
    with run.observed():
        await run.roll_back_and_finish(Status.CANCELLED, reason=reason)
    return await run.snapshot_or_stored()


async def cancel(
    plan: Plan,
    storage: Storage,
    execution_id: str,
    reason: str | None = None,
    *,
    principal: str | None = None,
) -> Execution:
    """Cancel without compensation; a running execution stops before its next step."""
    live = live_run(plan, execution_id)
    if live is not None and live.version == 0:
        # Not stored yet: it will store itself cancelled before its next step.
        live.request_cancel(reason or "cancelled")
        live.note("cancelled", None, None, principal)
        live.log("reactor.execution.cancelled", reason=live.stop_reason)
        return attrs.evolve(live.snapshot(), status=Status.CANCELLED, reason=live.stop_reason)
    for _ in cas_retry(reactor=plan.name, execution_id=execution_id):
        # Cancelling runs no step, so it works even after the class changed.
        stored, run = await load_run(plan, storage, execution_id, check=False)
        if stored.status.finished:
            raise _not_paused(run)
        run.status, run.reason = Status.CANCELLED, reason or "cancelled"
        dropped = sum(not p.is_hold for p in run.pending.values())
        if stored.status is Status.PAUSED:
            run.pending.clear()
        run.note("cancelled", None, None, principal)
        try:
            await run.write()
        except WriteConflict:
            continue
        live = live_run(plan, execution_id)
        if live is not None:
            live.note("cancelled", None, None, principal)
            live.request_cancel(run.reason)
        run.log("reactor.execution.cancelled", reason=run.reason, dropped=dropped)
        run.pending.clear()
        await _cancel_elements(run, run.reason, undo=False, principal=principal)
        if run.parent is not None:
            # An element of a fanned-out map: its parent must not wait for it any more
            # (whoever was running it reports again when it stops; that changes nothing).
            await element_finished(storage, run.parent)
        return run.snapshot()
    raise AssertionError("unreachable: cas_retry raises when exhausted")


async def _cancel_elements(
    run: Run, reason: str, *, undo: bool, principal: str | None = None
) -> None:
    """End the elements of ``run``'s fanned-out maps along with it, as an in-process map's
    elements end with their execution (see :mod:`reactor._fanout`).

    Live elements are cancelled (``undo``: with their completed steps undone);
    ``undo`` also undoes the completed elements, highest index first.
    """
    for path, batch in list(run.fan_out.items()):
        node = run.node_at(path)
        assert node.child is not None
        for index in reversed(range(batch.start, batch.end)):
            if index not in batch.done:
                link = ParentLink(run.plan.name, run.id, path, index)
                await _cancel_element(
                    node.child, run.storage, link, reason, undo=undo, principal=principal
                )
        if undo:
            await run.undo_elements(node, path, range(batch.end))


async def _cancel_element(
    plan: Plan,
    storage: Storage,
    link: ParentLink,
    reason: str,
    *,
    undo: bool,
    principal: str | None,
) -> None:
    """Cancel one element of a fanned-out map whose parent is being cancelled: as
    :func:`cancel` does (``undo``: as :func:`_cancel_with_undo` or, while it runs, as
    :func:`_request_undo` does), or store it cancelled if its parent has not yet."""
    execution_id = element_id(link.id, link.path, link.index)
    for _ in cas_retry(reactor=plan.name, execution_id=execution_id):
        stored = await storage.load(execution_id)
        if stored is None:
            if await bar_element(storage, plan, execution_id, link, reason):
                return
            continue  # its parent started it meanwhile
        if stored.status.finished:
            # Ended by itself first: a completed one is undone with the map, if asked.
            return
        try:
            if not undo:
                await cancel(plan, storage, execution_id, reason, principal=principal)
            elif stored.status is Status.PAUSED:
                await _cancel_with_undo(Run.from_stored(plan, storage, stored), reason, principal)
            else:
                await _request_undo(Run.from_stored(plan, storage, stored), reason)
        except NotPaused:
            return  # it ended meanwhile
        except WriteConflict:
            continue
        return
    raise AssertionError("unreachable: cas_retry raises when exhausted")


async def undo(
    plan: Plan, storage: Storage, execution_id: str, *, principal: str | None = None
) -> Execution:
    """Undo the completed steps newest first, then mark the execution CANCELLED."""
    for _ in cas_retry(reactor=plan.name, execution_id=execution_id):
        stored, run = await load_run(plan, storage, execution_id)
        if stored.status in (Status.RUNNING, Status.CANCELLED):
            raise _not_paused(run)
        try:
            return await _cancel_with_undo(run, "undo", principal)
        except WriteConflict:
            continue
    raise AssertionError("unreachable: cas_retry raises when exhausted")


async def suspend(
    plan: Plan,
    storage: Storage,
    execution_id: str,
    reason: str | None = None,
    *,
    principal: str | None = None,
) -> Execution:
    """Ask a running execution to pause at its next step boundary (see
    ``Reactor.suspend``); a paused one is returned as it is."""
    reason = reason or "suspended"
    live = live_run(plan, execution_id)
    if live is not None and live.version == 0:
        # Not stored yet: only this process can reach it.
        live.request_stop(Stop.PAUSE, reason)
        live.note("suspended", SUSPENDED, None, principal)
        live.log("reactor.execution.suspend_requested", reason=reason)
        return live.snapshot()
    for _ in cas_retry(reactor=plan.name, execution_id=execution_id):
        stored, run = await load_run(plan, storage, execution_id, check=False)
        if stored.status.finished:
            raise _not_paused(run)
        if stored.status is Status.PAUSED:
            return run.snapshot()
        # The owner notices the stored request at its next write or lease renewal.
        run.request_stop(Stop.PAUSE, reason)
        run.note("suspended", SUSPENDED, None, principal)
        try:
            await run.write()
        except WriteConflict:
            continue
        live = live_run(plan, execution_id)
        if live is not None:
            live.request_stop(Stop.PAUSE, reason)
        run.log("reactor.execution.suspend_requested", reason=reason)
        return run.snapshot()
    raise AssertionError("unreachable: cas_retry raises when exhausted")


async def take_over(plan: Plan, storage: Storage, execution_id: str) -> Run | None:
    """Claim a running execution whose lease expired (its process died), once across all
    callers; ``None`` if it needed no recovery or another caller claimed it first."""
    stored, run = await load_run(plan, storage, execution_id)
    if stored.status is not Status.RUNNING:
        return None
    try:
        # Whether the lease ran out is the store's to say, in its own clock: a worker
        # whose clock runs ahead must not take over a healthy run.
        await run.claim(takeover=True)
    except WriteConflict:
        return None
    return run


async def recover(plan: Plan, storage: Storage, execution_id: str) -> Execution | None:
    """Continue a running execution whose lease expired (its process died), once across
    all callers; ``None`` if it needed no recovery."""
    run = await take_over(plan, storage, execution_id)
    if run is None:
        return None
    run.log("reactor.execution.recovered")
    return await run.drive()
