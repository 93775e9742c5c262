"""The entry points that continue an execution in another process: submit a new one,
advance one a job names, and hand a crashed one over to the task queue.

Each claims the execution with one compare-and-set write before the job is enqueued
(:mod:`reactor._dispatch`), and a job continues it only while the owner token it
carries is still the stored one: redelivered or duplicated jobs do nothing, and a job
never takes an execution from a process that holds it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from . import _dispatch
from ._actions import encode_inputs, first_run, load_run, store_new, take_over
from ._executor import Run, validate_inputs
from ._plan import Plan
from ._records import Execution
from ._status import Status
from .errors import ReactorError
from .storage import Storage, WriteConflict

__all__ = ["advance", "hand_off", "submit"]


async def submit(
    plan: Plan,
    storage: Storage,
    inputs: Mapping[str, Any],
    *,
    execution_id: str | None = None,
    idempotency_key: str | None = None,
) -> Execution:
    """Validate ``inputs``, store a new execution (running, no step run) and enqueue it.

    Raises:
        InputInvalid: an input is missing, unknown or fails its schema.
        ReactorError: no dispatcher is installed, or the storage is not durable (another
            process could not see the execution).
        StorageError: ``execution_id`` is taken.
    """
    _dispatch.require(plan.name, execution_id)
    if not storage.durable:
        raise ReactorError(
            "submit needs a storage other processes share (RedisStorage), not "
            f"{type(storage).__name__}",
            reactor=plan.name,
            execution_id=execution_id,
        )
    values = validate_inputs(plan, inputs, execution_id=execution_id)
    new_id = execution_id or uuid.uuid4().hex
    if idempotency_key is not None:
        holder = await storage.reserve_idempotency_key(plan.name, idempotency_key, new_id)
        if holder != new_id:
            return await first_run(plan, storage, holder, idempotency_key)
    run = Run(plan, new_id, storage, values, idempotency_key=idempotency_key)
    encode_inputs(run, values)
    # Under a full lease: if the job is lost, the worker recovers the execution once the
    # lease runs out.
    await store_new(run)
    run.log("reactor.execution.submitted")
    _dispatch.send(plan.name, new_id, run.owner, run.log)
    return run.snapshot()


async def advance(plan: Plan, storage: Storage, execution_id: str, owner: str) -> Execution | None:
    """Continue the execution a job names until it pauses or ends, if the job still may.

    The job may when the execution is running and ``owner`` -- the token of the claim
    made when the job was enqueued -- is still the stored owner. Otherwise it was
    delivered before (its first delivery claimed the execution), or someone else took
    the execution over, cancelled or finished it: ``None``, nothing done.

    Raises:
        ExecutionNotFound: the execution does not exist (any more).
    """
    stored, run = await load_run(plan, storage, execution_id)
    if stored.status is not Status.RUNNING or run.owner != owner:
        return None
    try:
        await run.claim()
    except WriteConflict:
        return None
    run.log("reactor.execution.advanced")
    return await run.drive()


async def hand_off(plan: Plan, storage: Storage, execution_id: str) -> Execution | None:
    """Claim a running execution whose lease expired and enqueue its continuation
    (the worker's recovery when a dispatcher is installed); ``None`` if it needed none
    or another worker claimed it first."""
    run = await take_over(plan, storage, execution_id)
    if run is None:
        return None
    run.log("reactor.execution.handed_off")
    _dispatch.send(plan.name, execution_id, run.owner, run.log)
    return run.snapshot()
