"""Background execution on Celery (extra ``reactor[celery]``).

:func:`install` registers reactor's task on a Celery app and makes it the place where
continuations go: ``Reactor.submit``, ``resume(..., background=True)``,
``resume_by_correlation_id(..., background=True)`` and the worker's lease recovery
claim the execution in the calling process and enqueue one job carrying only
``(reactor, execution_id, owner)``; a Celery worker runs the execution until it pauses
or ends. State stays in reactor's store.

Celery delivers at least once; the claim makes that safe. The task is ``acks_late``
with ``reject_on_worker_lost``, so a job whose worker process died is delivered again,
and a job continues an execution only while the owner token it carries is still the
stored one (:func:`reactor._background.advance`): a duplicate or redelivered job finds
the execution claimed by its first delivery and does nothing. An execution whose
Celery worker died is continued, from its last checkpoint, once its lease runs out:
``reactor worker`` (with this app installed in its ``--app`` module) claims it and
enqueues it again.

Celery's ``task_always_eager`` is not supported: the task would run inside the event
loop of the call that enqueues it. Enqueuing (``apply_async``) blocks the caller for the
broker's round trip, also in the async twins.

Example::

    app = Celery("shop", broker="redis://localhost:6379/1")
    reactor.celery.install(app)          # in the module both sides import

    ex = Checkout.submit(order_id="A-1")  # returns at once, RUNNING
"""

from __future__ import annotations

from typing import Any

import celery
import structlog

from ._background import advance
from ._config import storage_for
from ._dispatch import install_dispatcher
from ._reactor import registered
from ._sync import run_sync
from .errors import ExecutionNotFound

__all__ = ["TASK_NAME", "install", "uninstall"]

TASK_NAME = "reactor.advance"
"""Name of the Celery task that advances one execution."""

_log = structlog.get_logger("reactor.celery")


def install(celery_app: celery.Celery, queue: str | None = None) -> celery.Task:
    """Register reactor's task on ``celery_app`` and send continuations to it.

    Call it where both the enqueuing processes and the Celery workers run it (the
    module that creates the Celery app, or one its workers import), after
    ``reactor.configure(storage=...)`` if the storage is not given by
    ``$REACTOR_REDIS_URL``. The workers must import the modules that define the
    reactors (stored data never chooses code).

    Args:
        celery_app: The application whose workers run the executions.
        queue: Queue the jobs go to; ``None``: Celery's default queue, which a plain
            ``celery -A app worker`` consumes.

    Returns:
        The registered task (named :data:`TASK_NAME`).
    """

    def advance_execution(reactor: str, execution_id: str, owner: str) -> str | None:
        try:
            cls = registered(reactor)
            outcome = run_sync(advance(cls.__reactor_plan__, storage_for(cls), execution_id, owner))
        except ExecutionNotFound as exc:
            # Unknown reactor here, or the execution expired: nothing this job can do;
            # a reactor worker that imports the reactor recovers it after its lease.
            _log.error("reactor.celery.not_found", execution_id=execution_id, error=str(exc))
            return None
        return None if outcome is None else outcome.status.value

    task: celery.Task = celery_app.task(
        name=TASK_NAME,
        acks_late=True,
        reject_on_worker_lost=True,
        ignore_result=True,
    )(advance_execution)

    def dispatch(reactor: str, execution_id: str, owner: str) -> None:
        options: dict[str, Any] = {} if queue is None else {"queue": queue}
        task.apply_async((reactor, execution_id, owner), **options)

    install_dispatcher(dispatch)
    return task


def uninstall() -> None:
    """Run continuations in-process again (``submit`` and ``background=True`` refuse)."""
    install_dispatcher(None)
