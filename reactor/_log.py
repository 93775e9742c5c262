"""Transition events: structlog lines and middleware hooks.

Quiet by default: events reach structlog only when the application configured
structlog, or configured stdlib logging for the ``"reactor"`` logger; middleware
always gets them. When nobody listens, emitting costs one attribute check.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from .errors import ReactorWarning

__all__ = ["Emitter", "Middleware", "emitter"]

Middleware = Callable[[str, dict[str, Any]], None]
"""A hook called as ``middleware(event, fields)`` for every transition event."""

_stdlib = logging.getLogger("reactor")
_stdlib.addHandler(logging.NullHandler())


class Emitter:
    """Sends events bound with the reactor and execution id to the listeners."""

    __slots__ = ("_bound", "_logger", "_middleware", "enabled")

    def __init__(self, logger: Any, middleware: Sequence[Middleware], bound: dict[str, Any]):
        self._logger = logger
        self._middleware = tuple(middleware)
        self._bound = bound
        self.enabled = logger is not None or bool(self._middleware)

    def __call__(self, event: str, **fields: Any) -> None:
        if not self.enabled:
            return
        fields = {**self._bound, **fields}
        if self._logger is not None:
            level = "warning" if event.endswith(("failed", "timed_out")) else "info"
            try:
                getattr(self._logger, level)(event, **fields)
            except Exception as exc:
                _report(self._logger, exc)
        for hook in self._middleware:
            try:
                hook(event, fields)
            except Exception as exc:
                _report(hook, exc)


_reported: set[int] = set()
_reported_lock = threading.Lock()


def _report(listener: object, exc: Exception) -> None:
    """Say once per listener that it raised; the run goes on (observability never breaks
    a run)."""
    with _reported_lock:
        if id(listener) in _reported:
            return
        _reported.add(id(listener))
    warnings.warn(
        f"reactor: event listener {listener!r} raised {type(exc).__name__}: {exc}; "
        "it is ignored (reported once)",
        ReactorWarning,
        stacklevel=3,
    )


def emitter(middleware: Sequence[Middleware], **bound: Any) -> Emitter:
    """An :class:`Emitter` for one execution, choosing the logger for the current config."""
    logger: Any = None
    if structlog.is_configured():
        logger = structlog.get_logger("reactor")
    elif _stdlib.isEnabledFor(logging.INFO):
        logger = structlog.wrap_logger(
            _stdlib, processors=[structlog.processors.KeyValueRenderer(key_order=["event"])]
        )
    return Emitter(logger, middleware, bound)
