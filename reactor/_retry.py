"""Retrying: one :class:`RetryPolicy` value for step attempts, and :func:`cas_retry` for
compare-and-set writes that lose to a concurrent writer."""

from __future__ import annotations

import random
from collections.abc import Iterator

import attrs

from .errors import StorageError

__all__ = ["CAS_ATTEMPTS", "RetryPolicy", "cas_retry"]

CAS_ATTEMPTS = 50
"""Compare-and-set rounds an action tries before it gives up on a hot execution."""


@attrs.frozen
class RetryPolicy:
    """How often and how soon a failed attempt is tried again.

    Attributes:
        retries: Extra attempts after the first.
        backoff: ``"fixed"``, ``"linear"`` or ``"exponential"`` growth of the delay.
        base_delay: Seconds before the first retry.
        max_delay: Upper bound of the delay, if any.
        jitter: Up to this fraction of the delay is added at random (0 to 1).
        retry_on: Exception types worth retrying.
    """

    retries: int = 0
    backoff: str = "fixed"
    base_delay: float = 0.0
    max_delay: float | None = None
    jitter: float = 0.0
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def retries_after(self, attempt: int, exc: BaseException) -> bool:
        """Whether attempt number ``attempt`` (1-based), which raised ``exc``, gets another."""
        return attempt <= self.retries and isinstance(exc, self.retry_on)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after attempt number ``attempt`` failed."""
        if self.backoff == "exponential":
            delay = self.base_delay * 2 ** (attempt - 1)
        elif self.backoff == "linear":
            delay = self.base_delay * attempt
        else:
            delay = self.base_delay
        if self.max_delay is not None:
            delay = min(delay, self.max_delay)
        if self.jitter:
            delay += delay * self.jitter * random.random()
        return float(delay)


def cas_retry(*, reactor: str | None, execution_id: str | None) -> Iterator[int]:
    """Rounds of a load-decide-write loop; raises once :data:`CAS_ATTEMPTS` are used up.

    Use as ``for _ in cas_retry(...):`` with ``continue`` on ``WriteConflict``.

    Raises:
        StorageError: every round lost to another writer.
    """
    yield from range(CAS_ATTEMPTS)
    raise StorageError("too many concurrent writers", reactor=reactor, execution_id=execution_id)
