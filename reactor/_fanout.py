"""Fanned-out maps (``map_(..., fan_out=N)``): elements as executions of their own.

Each element of a batch is stored as an execution of the element reactor (id
``<parent id>:<path>[<index>]``, so starting it again after a crash finds it) that
carries a :class:`~reactor._body.ParentLink`, and is enqueued on the installed task
queue (:mod:`reactor._dispatch`). The parent records the batch it waits for
(:class:`~reactor._body.FanOut`) and pauses. An element that ends adds its index to that
batch with a compare-and-set write of the parent; the write that completes the batch of
a paused parent also claims it and enqueues its continuation, so exactly one element
wakes it. (A parent still running when the batch completes sees that write as a
conflict and looks again before pausing.)

Cancelling the parent ends the elements of its batch too, as an in-process map's
elements end with their execution (:func:`reactor._actions.cancel`): each live one is
cancelled, and one its parent has not stored yet is stored cancelled
(:func:`bar_element`), so the parent's start of it finds it taken and enqueues nothing.
"""

from __future__ import annotations

from typing import Any

from . import _codec, _dispatch
from ._body import Body, ParentLink, dump_body, load_body
from ._config import get_config
from ._plan import Plan
from ._records import Execution
from ._retry import cas_retry
from ._saga import Recorded
from ._status import Status
from .errors import ExecutionFailed, FailureInfo
from .storage import Storage, StoredExecution, WriteConflict
from .storage._base import new_token

__all__ = ["bar_element", "element_failure", "element_finished", "element_id", "start_element"]


def element_id(parent_id: str, path: str, index: int) -> str:
    """The id of element ``index`` of the fanned-out map at ``path``."""
    return f"{parent_id}:{path}[{index}]"


async def start_element(
    storage: Storage, plan: Plan, execution_id: str, inputs: Any, link: ParentLink
) -> None:
    """Store element ``execution_id`` (running, no step run) and enqueue it, unless it
    exists already (started before the parent's process died, or barred by a cancel)."""
    owner = new_token()
    record = _new_element(plan, execution_id, inputs, link, owner, Status.RUNNING)
    try:
        # Under a full lease: a lost job is recovered by the worker once it runs out.
        await storage.write(record, expected_version=0, lease_seconds=get_config().lease_seconds)
    except WriteConflict:
        return
    _dispatch.send(plan.name, execution_id, owner)


async def bar_element(
    storage: Storage, plan: Plan, execution_id: str, link: ParentLink, reason: str
) -> bool:
    """Store element ``execution_id`` cancelled before its parent stores it; ``False`` if
    it exists already. (Its inputs are the parent's to compute: it is stored without.)"""
    inputs = _codec.encode({}, reactor=plan.name, execution_id=execution_id)
    record = _new_element(plan, execution_id, inputs, link, new_token(), Status.CANCELLED)
    try:
        await storage.write(record.evolve(reason=reason), expected_version=0)
    except WriteConflict:
        return False
    return True


def _new_element(
    plan: Plan, execution_id: str, inputs: Any, link: ParentLink, owner: str, status: Status
) -> StoredExecution:
    body = Body(owner=owner, inputs=inputs, version=plan.version, returns=plan.returns)
    body.parent = link
    return StoredExecution(
        id=execution_id,
        reactor=plan.name,
        status=status,
        version=0,
        body=dump_body(body),
        created_at=get_config().clock(),
    )


def element_failure(
    child: Plan, path: str, index: int, element: Execution
) -> tuple[str, Exception]:
    """The failure a failed element gives its fail-fast map at ``path``: where, and what.

    As the map run in process reports it: at the path of the element's failed step under
    the map, as its exception (which died in the element's process: its record stands in
    for it). An element that ended without a failed step fails the map itself.
    """
    info = element.error
    if info is None or info.step is None:
        return path, ExecutionFailed(
            f"element {index} ended {element.status.value}"
            + (f": {info.type}: {info.message}" if info else ""),
            failure=info or FailureInfo(None, element.status.value, "Ended"),
            reactor=child.name,
            execution_id=element.id,
        )
    return f"{path}[{index}].{info.step}", Recorded(info)


async def element_finished(storage: Storage, link: ParentLink) -> None:
    """Report an ended element to its parent (once: a report sent again changes nothing)."""
    for _ in cas_retry(reactor=link.reactor, execution_id=link.id):
        stored = await storage.load(link.id)
        if stored is None or stored.status.finished:
            return
        body = load_body(stored.body)
        batch = body.fan_out.get(link.path)
        if batch is None or not batch.start <= link.index < batch.end:
            return
        if link.index in batch.done:
            return
        batch.done.append(link.index)
        wake = stored.status is Status.PAUSED and len(batch.done) == batch.end - batch.start
        if wake:
            # A claim, as Run.claim makes one: a new owner and a greater fence.
            body.owner = new_token()
            body.fence += 1
        try:
            await storage.write(
                stored.evolve(
                    status=Status.RUNNING if wake else stored.status,
                    deadline=None if wake else stored.deadline,
                    body=dump_body(body),
                ),
                expected_version=stored.version,
                lease_seconds=get_config().lease_seconds
                if wake or stored.status is Status.RUNNING
                else None,
            )
        except WriteConflict:
            continue
        if wake:
            _dispatch.send(link.reactor, link.id, body.owner)
        return
