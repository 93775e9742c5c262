"""Reactor modules for the worker and CLI tests.

Importable by subprocesses (``PYTHONPATH`` including ``tests``), so stored executions name
them (``apps.timeouts.Expiring``) and any process can continue them. Steps count their
runs in Redis -- the suite's private server, ``$REACTOR_REDIS_URL`` -- so a test sees what
ran in every process.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import redis

__all__ = [
    "counters",
    "record",
    "record_undo",
    "runs",
    "subprocess_env",
    "undone",
]

TESTS = Path(__file__).resolve().parent.parent


def subprocess_env(url: str) -> dict[str, str]:
    """The environment of a subprocess that can import ``apps`` and uses Redis at ``url``."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "REACTOR_REDIS_URL": url}


@functools.cache
def _client(url: str, cluster: bool) -> redis.Redis | redis.RedisCluster:
    if cluster:
        return redis.RedisCluster.from_url(url, decode_responses=True)
    return redis.Redis.from_url(url, decode_responses=True)


def counters() -> redis.Redis | redis.RedisCluster:
    """A client of the Redis in ``$REACTOR_REDIS_URL`` (read when called: tests set it),
    a cluster client when ``$REACTOR_REDIS_CLUSTER`` is set."""
    return _client(os.environ["REACTOR_REDIS_URL"], bool(os.environ.get("REACTOR_REDIS_CLUSTER")))


def record(execution_id: str, step: str) -> int:
    """Count one start of ``step``; return how many starts it has had."""
    return int(counters().incr(f"runs:{execution_id}:{step}"))


def runs(execution_id: str, step: str) -> int:
    """How many times ``step`` of the execution started, in any process."""
    return int(counters().get(f"runs:{execution_id}:{step}") or 0)


def record_undo(execution_id: str, step: str) -> None:
    """Note that ``step`` was undone (in order)."""
    counters().rpush(f"undone:{execution_id}", step)


def undone(execution_id: str) -> list[str]:
    """The steps of the execution undone so far, in the order they were undone."""
    # Text already (decode_responses): str() only tells the type checker.
    return [str(step) for step in counters().lrange(f"undone:{execution_id}", 0, -1)]
