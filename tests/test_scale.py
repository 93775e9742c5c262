"""Bounded resources in one process: how many map elements run at once, the size of the
``def``-step thread pool, the connections a burst of runs opens, and hiredis."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import redis

from reactor import Input, Reactor, configure, get_config, map_, step
from reactor.storage import MemoryStorage, RedisStorage
from reactor.storage.redis import _Client

from conftest import reactor_using


class Gauge:
    """The most callers inside :meth:`hold` at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now = 0
        self.most = 0

    def hold(self, seconds: float) -> None:
        with self._lock:
            self._now += 1
            self.most = max(self.most, self._now)
        time.sleep(seconds)
        with self._lock:
            self._now -= 1


GAUGE = Gauge()


class Element(Reactor):
    name = "tests.scale.Element"
    item = Input()

    @step
    def work(self, item: int) -> int:
        GAUGE.hold(0.002)
        return item * 2


class Batch(Reactor):
    name = "tests.scale.Batch"
    items = Input()

    each = map_(Element, over="items", item="item")


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    global GAUGE
    GAUGE = Gauge()
    saved = get_config()
    with reactor_using(MemoryStorage()):
        yield
    configure(map_concurrency=saved.map_concurrency, step_threads=saved.step_threads)


def test_a_map_of_def_steps_runs_a_bounded_number_of_elements_at_once() -> None:
    configure(map_concurrency=5)
    ex = Batch.run(items=list(range(60)))
    assert ex.result == [2 * n for n in range(60)]
    assert GAUGE.most <= 5


def test_the_default_bound_is_64() -> None:
    assert get_config().map_concurrency == 64
    ex = Batch.run(items=list(range(300)))
    assert ex.result == [2 * n for n in range(300)]
    assert 1 < GAUGE.most <= 64


def test_the_step_thread_pool_size_is_configurable() -> None:
    configure(step_threads=3)
    ex = Batch.run(items=list(range(40)))
    assert ex.completed and 2 <= GAUGE.most <= 3


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="map_concurrency"):
        configure(map_concurrency=0)
    with pytest.raises(ValueError, match="step_threads"):
        configure(step_threads=0)
    with pytest.raises(ValueError, match="max_connections"):
        RedisStorage("redis://localhost", max_connections=0)


class Quick(Reactor):
    name = "tests.scale.Quick"

    @step
    async def one(self) -> int:
        await asyncio.sleep(0.01)
        return 1


def _connections(url: str) -> int:
    with redis.Redis.from_url(url) as probe:
        return len(probe.client_list()) - 1


async def test_a_burst_of_runs_shares_a_bounded_pool(redis_url: str) -> None:
    storage = RedisStorage.from_url(redis_url, max_connections=4)
    Quick.storage = storage
    before = _connections(redis_url)  # other clients of the suite's server
    try:
        runs = [Quick.arun(idempotency_key=f"k{n}") for n in range(200)]
        done = await asyncio.gather(*runs)
        assert all(ex.completed for ex in done)
        assert 1 <= _connections(redis_url) - before <= 4
    finally:
        Quick.storage = None
        await storage.aclose()


async def test_hiredis_parses_replies_when_installed(redis_url: str) -> None:
    hiredis = pytest.importorskip("hiredis")
    storage = RedisStorage.from_url(redis_url)
    try:
        await storage.load("nothing")
        client = storage._client()
        assert isinstance(client, _Client)
        [connection] = client.idle  # the one the load used
        assert type(connection._parser).__name__ == "_AsyncHiredisParser", hiredis
    finally:
        await storage.aclose()


async def test_closing_the_storage_disconnects_its_idle_connections(redis_url: str) -> None:
    storage = RedisStorage.from_url(redis_url)
    before = _connections(redis_url)
    await asyncio.gather(*(storage.load(f"nothing-{n}") for n in range(5)))
    assert _connections(redis_url) - before >= 1
    await storage.aclose()
    deadline = time.monotonic() + 5
    while _connections(redis_url) > before and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert _connections(redis_url) == before
