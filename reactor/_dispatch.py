"""Handing an execution's continuation to other processes (a task queue).

The engine never imports a task queue. An integration -- :func:`reactor.celery.install`
-- installs one :class:`Dispatcher`; the entry points that continue elsewhere
(``submit``, ``resume(..., background=True)``, the worker's lease recovery) first claim
the execution with a compare-and-set write, which stamps a fresh owner token in its body,
and then give the dispatcher only ``(reactor, execution_id, owner)``. Whoever picks the
job up continues the execution only while that token is still the stored owner (see
:func:`reactor._background.advance`), so a job delivered twice, or late, does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from .errors import ReactorError

__all__ = ["Dispatcher", "install_dispatcher", "installed", "require", "send"]


class Dispatcher(Protocol):
    """Enqueues one job that continues an execution claimed by ``owner``."""

    def __call__(self, reactor: str, execution_id: str, owner: str) -> None: ...


_installed: Dispatcher | None = None


def install_dispatcher(dispatcher: Dispatcher | None) -> None:
    """Send continuations to ``dispatcher`` from now on (``None``: run them in-process)."""
    global _installed
    _installed = dispatcher


def installed() -> Dispatcher | None:
    """The dispatcher in force, if any."""
    return _installed


def require(reactor: str, execution_id: str | None = None) -> Dispatcher:
    """The dispatcher in force, checked before an entry point changes anything.

    Raises:
        ReactorError: none is installed.
    """
    if _installed is None:
        raise ReactorError(
            "background execution needs a task queue: call reactor.celery.install(app) first",
            reactor=reactor,
            execution_id=execution_id,
        )
    return _installed


def send(
    reactor: str, execution_id: str, owner: str, log: Callable[..., None] | None = None
) -> None:
    """Enqueue the continuation of a claimed execution.

    A failure to enqueue (the broker is down) is logged, not raised: the execution is
    stored as running under a lease, so once that lease runs out ``reactor worker``
    recovers it and enqueues it again. The caller's state change already happened and
    must not be reported as failed.
    """
    dispatcher = require(reactor, execution_id)
    try:
        dispatcher(reactor, execution_id, owner)
    except Exception as exc:
        if log is not None:
            log("reactor.execution.enqueue_failed", error=repr(exc))
        else:
            logging.getLogger("reactor").warning(
                "reactor.execution.enqueue_failed reactor=%r execution_id=%r error=%r",
                reactor,
                execution_id,
                exc,
            )
