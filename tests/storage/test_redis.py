"""What only RedisStorage promises: races across processes and loops, faults, key layout."""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from typing import Any, TypeVar

import pytest
import redis
import redis.asyncio
from redis.crc import key_slot

from reactor._status import Status
from reactor.errors import StorageError
from reactor.storage import RedisStorage
from reactor.storage._base import CorrelationTaken, WriteConflict

from .declared import PRELUDE
from .test_contract import OTHER, START, R, create, ids, make

T = TypeVar("T")

THREADS = 8
ROUNDS = 50


@pytest.fixture
def storage(redis_url: str) -> RedisStorage:
    return RedisStorage.from_url(redis_url, prefix="test")


@pytest.fixture
def brief(redis_url: str) -> RedisStorage:
    """A storage keeping finished executions for 50 ms."""
    return RedisStorage.from_url(redis_url, prefix="test", retention=0.05)


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        yield client


def race(
    storage: RedisStorage, attempt: Callable[[int, int], Awaitable[str]], rounds: int
) -> list[list[str]]:
    """Run ``attempt(round, thread)`` in THREADS threads at once, ``rounds`` times.

    Each thread drives its own event loop (so its own client of ``storage``), as
    separate processes would.

    Returns:
        For each round, the outcomes of the threads.
    """
    barrier = threading.Barrier(THREADS, timeout=30)
    outcomes: list[list[str]] = [[] for _ in range(rounds)]
    errors: list[BaseException] = []

    def thread(n: int) -> None:
        loop = asyncio.new_event_loop()
        try:
            for r in range(rounds):
                barrier.wait()
                outcomes[r].append(loop.run_until_complete(attempt(r, n)))
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            loop.run_until_complete(storage.aclose())
            loop.close()

    threads = [threading.Thread(target=thread, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return outcomes


def test_concurrent_compare_and_set_has_exactly_one_winner(storage: RedisStorage) -> None:
    async def attempt(r: int, n: int) -> str:
        # Even rounds race to create execution r // 2, odd rounds to update it.
        expected = r % 2
        try:
            record = make(f"race-{r // 2}", body=f'{{"thread": {n}}}')
            await storage.write(record, expected_version=expected)
        except WriteConflict as conflict:
            assert conflict.current is not None
            assert conflict.current.version == expected + 1
            return "lost"
        return f'{{"thread": {n}}}'

    outcomes = race(storage, attempt, ROUNDS * 2)

    async def check() -> None:
        for r, round_outcomes in enumerate(outcomes):
            winners = [o for o in round_outcomes if o != "lost"]
            assert len(winners) == 1, f"round {r}: {round_outcomes}"
            if r % 2:
                stored = await storage.load(f"race-{r // 2}")
                assert stored is not None
                assert (stored.version, stored.body) == (2, winners[0])
        await storage.aclose()

    asyncio.run(check())


def test_concurrent_claims_of_a_correlation_id_have_one_holder(storage: RedisStorage) -> None:
    async def attempt(r: int, n: int) -> str:
        try:
            await create(storage, f"claim-{r}-{n}", correlation_ids=(f"order-{r}",))
        except CorrelationTaken as taken:
            return f"taken by {taken.holder}"
        return f"claim-{r}-{n}"

    for r, round_outcomes in enumerate(race(storage, attempt, ROUNDS)):
        holders = [o for o in round_outcomes if not o.startswith("taken")]
        assert len(holders) == 1, f"round {r}: {round_outcomes}"
        assert round_outcomes.count(f"taken by {holders[0]}") == THREADS - 1


class LoopThread:
    """An event loop running in its own thread, like the sync facade's private loops."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def test_one_instance_serves_two_event_loops_at_once(storage: RedisStorage) -> None:
    a, b = LoopThread(), LoopThread()
    try:
        a.run(create(storage, "e1"))
        b.run(storage.write(make("e1", status=Status.PAUSED), expected_version=1))
        loaded = a.run(storage.load("e1"))
        assert loaded is not None
        assert loaded.version == 2

        async def burst(prefix: str) -> None:
            await asyncio.gather(*(create(storage, f"{prefix}-{i}") for i in range(20)))

        bursts = [
            asyncio.run_coroutine_threadsafe(burst(name), t.loop)
            for name, t in [("a", a), ("b", b)]
        ]
        for done in bursts:
            done.result(timeout=10)

        a.run(storage.aclose())  # closes a's client only
        assert len(b.run(storage.list(limit=100))) == 41
        assert len(a.run(storage.list(limit=100))) == 41  # a new client for a
    finally:
        for thread in (a, b):
            thread.run(storage.aclose())
            thread.close()


async def test_a_lost_connection_raises_storage_error_until_redis_is_back(
    storage: RedisStorage, redis_server: Any
) -> None:
    await create(storage, "e1")

    redis_server.kill()
    try:
        with pytest.raises(StorageError) as error:
            await storage.load("e1")
        assert isinstance(error.value.__cause__, redis.ConnectionError)
        assert error.value.execution_id == "e1"
        with pytest.raises(StorageError):
            await create(storage, "e2")
    finally:
        redis_server.restart()

    assert await storage.load("e1") is None  # nothing was persisted
    assert (await create(storage, "e1")).version == 1  # scripts are loaded again


async def test_scripts_the_server_forgot_are_loaded_again(
    storage: RedisStorage, raw: redis.Redis
) -> None:
    await create(storage, "e1", correlation_ids=("c1",))

    raw.script_flush()

    stored = await storage.load_by_correlation(R, "c1")
    assert stored is not None
    assert stored.id == "e1"
    assert (await storage.write(make("e1"), expected_version=1)).version == 2
    await storage.aclose()


async def test_a_call_cancelled_before_its_reply_leaves_nothing_for_the_next(
    storage: RedisStorage, raw: redis.Redis
) -> None:
    await create(storage, "e1", correlation_ids=("c1",))
    await storage.put_early(R, "waiting", "payload", ttl=60)

    raw.execute_command("CLIENT", "PAUSE", 300, "WRITE")  # holds the write script's reply
    cancelled = asyncio.ensure_future(storage.write(make("e1"), expected_version=1))
    await asyncio.sleep(0.1)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled

    # Each call gets its own reply, not the one the cancelled call left unread.
    assert await storage.take_early(R, "waiting") == "payload"
    stored = await storage.load_by_correlation(R, "c1")
    assert stored is not None
    assert stored.id == "e1"
    await storage.aclose()


async def test_an_execution_has_one_key_tagged_by_its_id(
    storage: RedisStorage, raw: redis.Redis
) -> None:
    await create(storage, "e1", correlation_ids=("order-1",), deadline=START, lease_seconds=30)
    await storage.reserve_idempotency_key(R, "key-1", "e1")

    key = storage.keys.execution("e1")

    assert key == "test:{exec:e1}"
    assert [k for k in raw.keys("test:*") if "e1" in k] == [key]
    assert key_slot(key.encode()) == key_slot(b"exec:e1")


async def test_indexes_follow_every_write(storage: RedisStorage, raw: redis.Redis) -> None:
    keys = storage.keys
    created = await create(
        storage, "e1", correlation_ids=("order-1",), deadline=START, lease_seconds=30
    )
    assert raw.zscore(keys.status("running"), "e1") == created.created_at
    assert raw.zscore(keys.status("running", R), "e1") == created.created_at
    assert raw.hget(keys.correlations(R), "order-1") == "e1"
    assert raw.zscore(keys.deadlines, "e1") == START
    assert raw.zscore(keys.leases, "e1") == created.lease_expires

    await storage.write(
        make("e1", status=Status.PAUSED, deadline=START + 1), expected_version=1, lease_seconds=30
    )
    assert raw.zscore(keys.status("running"), "e1") is None
    assert raw.zscore(keys.status("running", R), "e1") is None
    assert raw.zscore(keys.status("paused"), "e1") == created.created_at
    assert raw.zscore(keys.status("paused", R), "e1") == created.created_at
    assert raw.zscore(keys.deadlines, "e1") == START + 1
    assert raw.zscore(keys.leases, "e1") is None
    assert raw.hgetall(keys.correlations(R)) == {}

    await storage.write(make("e1", status=Status.COMPLETED, deadline=START), expected_version=2)
    assert raw.zscore(keys.status("paused"), "e1") is None
    assert raw.zscore(keys.status("completed", R), "e1") == created.created_at
    assert raw.zscore(keys.deadlines, "e1") is None


async def test_a_nan_time_is_refused_before_anything_is_written(storage: RedisStorage) -> None:
    # Redis would refuse it as a score halfway through the script, which does not roll back.
    with pytest.raises(ValueError, match="NaN"):
        await create(storage, deadline=math.nan)

    assert await storage.load("e1") is None
    with pytest.raises(ValueError, match="NaN"):
        await create(storage, lease_seconds=math.nan)
    assert await storage.load("e1") is None
    await create(storage, "e1", lease_seconds=30)
    with pytest.raises(ValueError, match="NaN"):
        await storage.touch("e1", version=1, lease_seconds=math.nan)


async def test_reactor_names_cannot_make_keys_collide(storage: RedisStorage) -> None:
    await storage.reserve_idempotency_key("a:b", "c", "e1")

    assert await storage.reserve_idempotency_key("a", "b:c", "e2") == "e2"
    assert storage.keys.idempotency("a:b", "c") == "test:idem:a%3Ab:c"


async def test_expired_executions_leave_listings_and_indexes(
    brief: RedisStorage, raw: redis.Redis
) -> None:
    await create(brief, "done", status=Status.COMPLETED)
    await create(brief, "live", status=Status.PAUSED)
    await asyncio.sleep(0.1)

    assert await brief.load("done") is None
    assert await ids(brief) == ["live"]
    assert await ids(brief, status=Status.COMPLETED, reactor=R) == []
    assert raw.zcard(brief.keys.status("completed")) == 0
    assert raw.zcard(brief.keys.status("completed", R)) == 0


async def test_finished_writes_sweep_expired_index_entries(
    brief: RedisStorage, storage: RedisStorage, raw: redis.Redis
) -> None:
    for i in range(3):
        await create(brief, f"old-{i}", status=Status.FAILED, created_at=START + i)
    await asyncio.sleep(0.1)
    assert raw.zcard(brief.keys.status("failed")) == 3

    # Each finished write sweeps the two oldest entries: the indexes stay bounded. (The
    # new ones are kept long, so that a slow machine cannot see them expire too.)
    await create(storage, "new", status=Status.FAILED, created_at=START + 10)
    assert raw.zrange(brief.keys.status("failed"), 0, -1) == ["old-2", "new"]
    await create(storage, "newer", status=Status.FAILED, created_at=START + 11)

    assert raw.zrange(brief.keys.status("failed"), 0, -1) == ["new", "newer"]
    assert raw.zrange(brief.keys.status("failed", R), 0, -1) == ["new", "newer"]
    assert raw.zrange(brief.keys.expiry("failed"), 0, -1) == ["new", "newer"]
    assert raw.zrange(brief.keys.expiry("failed", R), 0, -1) == ["new", "newer"]


async def test_an_id_reused_after_expiry_is_listed_once_as_it_is_now(
    brief: RedisStorage,
) -> None:
    await create(brief, "e1", status=Status.COMPLETED)
    await asyncio.sleep(0.1)

    now = await create(brief, "e1", reactor=OTHER, status=Status.PAUSED)

    assert await brief.list() == [now]
    assert await brief.list(status=Status.COMPLETED) == []
    assert await brief.list(reactor=R) == []


async def test_a_lookup_by_correlation_id_follows_a_holder_it_did_not_know(
    storage: RedisStorage, redis_url: str
) -> None:
    await create(storage, "e1", correlation_ids=("c1",))
    other = RedisStorage.from_url(redis_url, prefix="test")
    try:
        found = await other.load_by_correlation(R, "c1")  # expects no holder: two calls
        assert found is not None and found.id == "e1"

        await storage.write(make("e1"), expected_version=1)
        await create(storage, "e2", correlation_ids=("c1",))

        found = await other.load_by_correlation(R, "c1")  # expects e1: two calls
        assert found is not None and found.id == "e2"
        await storage.write(make("e2"), expected_version=1)
        await create(storage, "e3", correlation_ids=("c1",))
        assert await other.put_early(R, "c1", "p", ttl=60) == "e3"
        await storage.write(make("e3"), expected_version=1)
        assert await other.load_by_correlation(R, "c1") is None
        assert await other.put_early(R, "c1", "p", ttl=60) is None
    finally:
        await other.aclose()


async def test_scripts_touching_an_undeclared_key_fail_in_this_suite(
    raw: redis.Redis,
) -> None:
    # Redis does not check it (see declared.py), so the suite would not notice otherwise.
    assert raw.eval(PRELUDE + "return redis.call('SET', KEYS[1], 'v')", 1, "declared") == "OK"
    assert len(raw.eval(PRELUDE + "return redis.call('TIME')", 0)) == 2
    with pytest.raises(redis.ResponseError, match="undeclared key other"):
        raw.eval(PRELUDE + "return redis.call('GET', 'other')", 1, "declared")
    with pytest.raises(redis.ResponseError, match="undeclared key other"):
        raw.eval(PRELUDE + "return redis.pcall('EXISTS', KEYS[1], 'other')", 1, "declared")


async def test_every_operation_is_one_round_trip_but_listings(redis_url: str) -> None:
    sent: list[object] = []

    class Counting(redis.asyncio.Connection):
        async def send_packed_command(
            self, command: bytes | str | Iterable[bytes], check_health: bool = True
        ) -> None:
            sent.append(command)
            await super().send_packed_command(command, check_health)

    storage = RedisStorage(
        lambda: redis.asyncio.Redis.from_url(
            redis_url, decode_responses=True, connection_class=Counting
        ),
        prefix="test",
    )

    async def operations(tag: str) -> None:
        """Every operation once; raising ones too (their reply is part of the trip)."""
        e1, e2 = f"{tag}-1", f"{tag}-2"
        # A listing reads index entries, then the executions they name.
        listings: list[Callable[[], Awaitable[object]]] = [
            lambda: storage.list(),
            lambda: storage.list_page(status=Status.RUNNING, limit=1),
        ]
        steps: list[Callable[[], Awaitable[object]]] = [
            lambda: create(storage, e1, correlation_ids=(tag,)),
            lambda: storage.write(make(e1, correlation_ids=(tag,)), expected_version=1),
            lambda: create(storage, e1),
            lambda: create(storage, e2, correlation_ids=(tag,)),
            lambda: storage.load(e1),
            lambda: storage.load_by_correlation(R, tag),
            lambda: storage.touch(e1, version=2, lease_seconds=30),
            lambda: storage.reserve_idempotency_key(R, tag, e1),
            lambda: storage.put_early(R, f"{tag}-early", "p", ttl=60),
            lambda: storage.take_early(R, f"{tag}-early"),
            lambda: storage.due(START),
            lambda: storage.expired_leases(),
            *listings,
        ]
        for step in steps:
            before = len(sent)
            with contextlib.suppress(WriteConflict, CorrelationTaken):
                await step()
            if tag == "measured":
                assert len(sent) - before == (2 if step in listings else 1), step

    try:
        await operations("warm-up")  # connects and loads the scripts
        await operations("measured")
    finally:
        await storage.aclose()


async def test_a_client_factory_must_decode_responses(redis_url: str) -> None:
    storage = RedisStorage(lambda: redis.asyncio.Redis.from_url(redis_url), prefix="test")

    with pytest.raises(ValueError, match="decode_responses"):
        await storage.load("e1")


def test_invalid_configuration_is_refused_at_once() -> None:
    with pytest.raises(ValueError):
        RedisStorage.from_url("http://localhost")
    with pytest.raises(ValueError):
        RedisStorage.from_url("redis://localhost", retention=0)


def test_repr_shows_url_without_password_and_prefix() -> None:
    storage = RedisStorage.from_url(
        "redis://app:s3cret@cache:6380/2?password=s3cret&socket_timeout=5", prefix="shop"
    )

    assert repr(storage) == (
        "RedisStorage(url='redis://app@cache:6380/2?socket_timeout=5', prefix='shop')"
    )
    assert "s3cret" not in repr(RedisStorage.from_url("redis://:s3cret@cache"))


def test_redis_storage_is_durable(storage: RedisStorage) -> None:
    assert storage.durable is True
