"""Process-wide options: :func:`configure`, read back with :func:`get_config`.

The options are one frozen :class:`Config` value replaced as a whole by each
``configure`` call, so readers never see half an update and nobody mutates it in place.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ._dsl import NOTHING, Nothing
from ._log import Middleware
from .storage import MemoryStorage, RedisStorage, Storage

__all__ = ["DURABILITIES", "Config", "configure", "get_config", "reset_config", "storage_for"]


@attrs.frozen
class Config:
    """The options :func:`configure` sets (see there); read with :func:`get_config`."""

    storage: Storage | None = None
    lease_seconds: float = 30.0
    checkpoint_after: float = 0.05
    max_payload_bytes: int = 1 << 20
    early_payload_ttl: float = 24 * 3600.0
    middleware: tuple[Middleware, ...] = ()
    clock: Callable[[], float] = time.time
    map_concurrency: int = 64
    step_threads: int = 32
    durability: str = "eager"


DURABILITIES = ("eager", "lazy")
"""The values of ``durability`` (see :func:`configure`)."""

_config = Config()
_default_lock = threading.Lock()
_default: Storage | None = None


def get_config() -> Config:
    """The options in force."""
    return _config


def reset_config() -> Config:
    """Restore every option to its default (tests use it between cases)."""
    global _config
    _config = Config()
    return _config


def configure(
    *,
    storage: Storage | Nothing | None = NOTHING,
    lease_seconds: float | Nothing = NOTHING,
    checkpoint_after: float | Nothing = NOTHING,
    max_payload_bytes: int | Nothing = NOTHING,
    early_payload_ttl: float | Nothing = NOTHING,
    middleware: Sequence[Middleware] | Nothing = NOTHING,
    clock: Callable[[], float] | Nothing = NOTHING,
    map_concurrency: int | Nothing = NOTHING,
    step_threads: int | Nothing = NOTHING,
    durability: str | Nothing = NOTHING,
) -> Config:
    """Set process-wide options; options left out keep their value.

    Args:
        storage: Where executions live for reactors that set no ``storage`` of their
            own. Default: ``RedisStorage.from_url($REACTOR_REDIS_URL)`` when that variable
            is set (``cluster=True`` when ``$REACTOR_REDIS_CLUSTER`` is ``1``), else one
            shared :class:`MemoryStorage`. ``None`` restores the default.
        lease_seconds: Length of a running execution's lease; a worker recovers an
            execution whose lease ran out (its process died).
        checkpoint_after: On durable storage, a step in flight for this long makes the
            execution checkpoint (and take its lease), so a crash loses at most the
            steps of the last moments.
        max_payload_bytes: Largest encoded size, in bytes of UTF-8 JSON, of a resume or
            early payload, a run's inputs, and a step's result. A payload or input set
            over it is refused before anything changes (``SerializationError``, or
            ``InputInvalid`` for inputs); a result over it fails its step with
            ``SerializationError``, which rolls the run back like any step failure.
            The results of ``compose`` and ``map_`` nodes, made of results already
            checked, are not limited.
        early_payload_ttl: Seconds an early payload waits for its execution.
        middleware: Callables ``hook(event, fields)`` given every transition event.
        clock: Source of unix time for deadlines (tests pass a controllable clock).
            Leases never use it: they are stamped and compared in the store's clock.
        map_concurrency: How many elements of a ``map_`` run at once when the map sets
            no ``max_concurrency`` of its own (default 64): bounds the memory and threads
            a map of thousands of items takes.
        step_threads: Size of the thread pool ``def`` steps run on when they leave the
            event loop (default 32).
        durability: On durable storage, ``"eager"`` (default) records each step's
            completion before any step that depends on it starts (steps completing in
            the same scheduling pass share one write): after a crash only the steps in
            flight run again. ``"lazy"`` checkpoints only once a pass has lasted
            ``checkpoint_after``, then at heartbeats: fewer writes, but a crash may run
            again the steps completed since the last checkpoint. A reactor class may set
            its own ``durability``.

    Returns:
        The options now in force.

    Raises:
        ValueError: ``map_concurrency`` or ``step_threads`` is below 1.
    """
    for name, count in (("map_concurrency", map_concurrency), ("step_threads", step_threads)):
        if isinstance(count, int) and count < 1:
            raise ValueError(f"{name} must be at least 1, not {count!r}")
    global _config
    given: dict[str, Any] = {
        "storage": storage,
        "lease_seconds": lease_seconds,
        "checkpoint_after": checkpoint_after,
        "max_payload_bytes": max_payload_bytes,
        "early_payload_ttl": early_payload_ttl,
        "middleware": tuple(middleware) if not isinstance(middleware, Nothing) else NOTHING,
        "clock": clock,
        "map_concurrency": map_concurrency,
        "step_threads": step_threads,
        "durability": durability,
    }
    if durability is not NOTHING and durability not in DURABILITIES:
        raise ValueError(f"durability must be one of {DURABILITIES}, got {durability!r}")
    _config = attrs.evolve(_config, **{k: v for k, v in given.items() if v is not NOTHING})
    return _config


def storage_for(reactor: type) -> Storage:
    """The storage a reactor class uses: its own, the configured one, or the default."""
    own = getattr(reactor, "storage", None)
    if isinstance(own, Storage):
        return own
    if _config.storage is not None:
        return _config.storage
    global _default
    with _default_lock:
        if _default is None:
            url = os.environ.get("REACTOR_REDIS_URL")
            cluster = os.environ.get("REACTOR_REDIS_CLUSTER", "").lower() in ("1", "true", "yes")
            _default = RedisStorage.from_url(url, cluster=cluster) if url else MemoryStorage()
        return _default
