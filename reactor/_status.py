"""The lifecycle states of an execution."""

from __future__ import annotations

import enum

__all__ = ["FINISHED", "Status"]


class Status(enum.Enum):
    """Where an execution is in its life.

    ``RUNNING`` and ``PAUSED`` are live; the others are final.
    """

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    HALTED = "halted"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        """Whether the execution has ended (it can no longer resume or run)."""
        return self in FINISHED


FINISHED = frozenset({Status.COMPLETED, Status.FAILED, Status.HALTED, Status.CANCELLED})
