"""A reactor for the exactly-once test, importable by spawned processes.

Its downstream steps count their runs in Redis (``ran:<execution>:<step>``), so runs in
every process are counted.
"""

from __future__ import annotations

from typing import Any

import redis

from reactor import Context, Reactor, get_config, interrupt, step
from reactor.storage import RedisStorage


def count(context: Context) -> None:
    storage = get_config().storage
    assert isinstance(storage, RedisStorage) and isinstance(storage._url, str)
    client_class = redis.RedisCluster if storage.cluster else redis.Redis
    with client_class.from_url(storage._url) as client:
        client.incr(f"ran:{context.execution_id}:{context.step}")


class Once(Reactor):
    name = "tests.exactly_once.Once"

    @step
    def prepare(self) -> int:
        return 1

    approval = interrupt(wait_for="prepare", schema={"type": "object"})

    @step
    def downstream(self, approval: dict[str, Any], context: Context) -> str:
        count(context)
        return "charged"

    @step
    def after(self, downstream: str, context: Context) -> str:
        count(context)
        return downstream
