"""RedisStorage under faults: cut and stalled links, lost replies, a Redis restart, skewed
clocks, and a backlog of stale index entries (the storage half of DESIGN §9)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest
import redis

import reactor.storage.redis
from reactor._status import Status
from reactor.errors import StorageError
from reactor.storage import RedisStorage
from reactor.storage._base import StoredExecution

from .test_contract import START, R, create, make
from faults import Child, Proxy, RedisServer

pytestmark = pytest.mark.redis


TIMEOUT = 0.5
"""The default socket timeout during these tests (5 s would make them slow)."""


@pytest.fixture
def through_proxy(proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> RedisStorage:
    """A storage whose every connection goes through ``proxy``, with default timeouts."""
    monkeypatch.setattr(reactor.storage.redis, "DEFAULT_TIMEOUT", TIMEOUT)
    return RedisStorage.from_url(proxy.url, prefix="test")


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    """A client straight to the server, around the proxy."""
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        yield client


async def test_a_cut_connection_is_invisible_to_the_next_call(
    through_proxy: RedisStorage, proxy: Proxy
) -> None:
    storage = through_proxy
    await create(storage, "e1", correlation_ids=("c1",))
    operations: list[Callable[[], Awaitable[object]]] = [
        lambda: storage.write(make("e1", correlation_ids=("c1",)), expected_version=1),
        lambda: storage.load("e1"),
        lambda: storage.load_by_correlation(R, "c1"),
        lambda: storage.touch("e1", version=2, lease_seconds=30),
        lambda: storage.reserve_idempotency_key(R, "k1", "e1"),
        lambda: storage.put_early(R, "c2", "payload", ttl=60),
        lambda: storage.take_early(R, "c2"),
        lambda: storage.due(START),
        lambda: storage.expired_leases(),
        lambda: storage.list_page(limit=1),
    ]
    outcomes = []
    for operation in operations:
        proxy.cut()
        outcomes.append(await operation())

    assert outcomes[1] is not None and outcomes[1].version == 2  # written once
    assert outcomes[3:7] == [True, "e1", None, "payload"]
    assert proxy.accepted == 1 + len(operations)  # each call on a fresh connection


async def _lose_reply(
    proxy: Proxy, raw: redis.Redis, call: Awaitable[object], applied: Callable[[], bool]
) -> object:
    """Run ``call`` so that the server applies it but its reply is lost: hold the bytes
    to the client, wait until ``applied()``, then cut the connection. (The storage must
    be connected already: a new connection's handshake would be held too.)"""
    proxy.stall(to_client=True, to_server=False)
    sent = asyncio.ensure_future(call)
    try:
        deadline = time.monotonic() + 5
        while not applied():
            assert time.monotonic() < deadline, "the server never applied the call"
            await asyncio.sleep(0.005)
        proxy.cut()
    except BaseException:
        sent.cancel()
        with contextlib.suppress(BaseException):
            await sent
        raise
    finally:
        proxy.resume()
    return await sent


async def test_a_write_whose_reply_was_lost_succeeds_once(
    through_proxy: RedisStorage, proxy: Proxy, raw: redis.Redis
) -> None:
    storage = through_proxy
    await storage.load("e1")  # connected
    key = storage.keys.execution("e1")
    created = await _lose_reply(
        proxy, raw, create(storage, "e1", lease_seconds=30), lambda: raw.exists(key) == 1
    )
    updated = await _lose_reply(
        proxy,
        raw,
        storage.write(make("e1", status=Status.PAUSED, body="{}"), expected_version=1),
        lambda: raw.hget(key, "version") == "2",
    )

    assert isinstance(created, StoredExecution) and isinstance(updated, StoredExecution)
    assert (created.version, updated.version) == (1, 2)  # each applied once, no conflict
    assert await storage.load("e1") == updated
    assert proxy.accepted == 3  # the two lost replies cost one resend each


async def test_an_early_payload_whose_reply_was_lost_is_stored_and_taken_once(
    through_proxy: RedisStorage, proxy: Proxy, raw: redis.Redis
) -> None:
    storage = through_proxy
    await storage.load("e1")  # connected
    early = storage.keys.early(R, "c1")

    stored = await _lose_reply(
        proxy, raw, storage.put_early(R, "c1", "payload", ttl=60), lambda: raw.exists(early) == 1
    )
    taken = await _lose_reply(
        proxy, raw, storage.take_early(R, "c1"), lambda: raw.exists(early) == 0
    )

    assert (stored, taken) == (None, "payload")  # not a conflict, not lost
    assert await storage.take_early(R, "c1") is None


async def test_a_redis_restart_is_invisible_to_the_next_call(aof_redis: RedisServer) -> None:
    storage = RedisStorage.from_url(aof_redis.url, prefix="test")
    try:
        await create(storage, "e1", correlation_ids=("c1",))
        await storage.load("e1")

        aof_redis.kill()
        aof_redis.restart()

        written = await storage.write(make("e1", status=Status.PAUSED), expected_version=1)
        assert written.version == 2
        aof_redis.kill()
        aof_redis.restart()
        assert await storage.load("e1") == written
        assert await storage.load_by_correlation(R, "c1") is None
    finally:
        await storage.aclose()


@pytest.mark.slow
async def test_each_call_on_a_stalled_link_fails_within_its_own_timeout(
    through_proxy: RedisStorage, proxy: Proxy
) -> None:
    storage = through_proxy
    await create(storage, "e1")
    await asyncio.gather(*(storage.load("e1") for _ in range(3)))  # three connections
    calls = [lambda: storage.load("e1"), lambda: create(storage, "e2"), lambda: storage.load("e1")]

    async def failing(turn: int) -> float:
        await asyncio.sleep(turn * TIMEOUT / 3)
        started = time.monotonic()
        with pytest.raises(StorageError):
            # The guard only turns a hang into a failure of this test.
            await asyncio.wait_for(calls[turn](), 10)
        return time.monotonic() - started

    with proxy.stalled():
        # Started apart, so that one timer serves attempts with different deadlines.
        elapsed = await asyncio.gather(*(failing(turn) for turn in range(len(calls))))
    for seconds in elapsed:  # one send and one resend, each failing after the timeout
        assert 2 * TIMEOUT - 0.05 < seconds < 2 * TIMEOUT + 1
    assert (await storage.load("e1")) is not None


async def test_a_call_cancelled_from_outside_is_cancelled_not_timed_out(
    through_proxy: RedisStorage, proxy: Proxy
) -> None:
    storage = through_proxy
    await create(storage, "e1")
    with proxy.stalled():
        call = asyncio.ensure_future(storage.load("e1"))
        await asyncio.sleep(TIMEOUT / 5)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await asyncio.sleep(TIMEOUT * 1.5)  # past the deadline the call had
    assert (await storage.load("e1")) is not None  # nothing left cancelled or unread


async def test_timeouts_are_always_set_and_configurable(redis_url: str, proxy: Proxy) -> None:
    default = RedisStorage.from_url(redis_url)
    from_url = RedisStorage.from_url(f"{redis_url}?socket_timeout=0.25&socket_connect_timeout=0.5")
    given = RedisStorage.from_url(f"{redis_url}?socket_timeout=9", socket_timeout=0.75)
    try:
        for storage, expected in [(default, (5, 5)), (from_url, (0.25, 0.5)), (given, (0.75, 5))]:
            await storage.load("e1")
            client = storage._client()
            connect = client.redis.connection_pool.connection_kwargs["socket_connect_timeout"]
            assert (client.timeout, connect) == expected
    finally:
        for storage in (default, from_url, given):
            await storage.aclose()
    with pytest.raises(ValueError, match="socket_timeout"):
        RedisStorage.from_url(f"{redis_url}?socket_timeout=0")


async def test_leases_are_stamped_and_compared_in_redis_time(
    redis_url: str, raw: redis.Redis
) -> None:
    # Two processes whose clocks are 40 s off either way, with 30 s leases.
    behind = RedisStorage.from_url(redis_url, prefix="test", clock=lambda: time.time() - 40)
    ahead = RedisStorage.from_url(redis_url, prefix="test", clock=lambda: time.time() + 40)
    try:
        written = await behind.write(
            make("e1", lease_expires=time.time() - 10), expected_version=0, lease_seconds=30
        )
        seconds, microseconds = raw.time()
        server_now = seconds + microseconds / 1e6

        assert written.lease_expires == pytest.approx(server_now + 30, abs=1)
        assert await ahead.expired_leases() == []
        assert await ahead.touch("e1", version=1, lease_seconds=30)
        assert await behind.expired_leases() == []
        await ahead.write(make("e1"), expected_version=1, lease_seconds=0)
        assert await behind.expired_leases() == ["e1"]
    finally:
        await behind.aclose()
        await ahead.aclose()


STALE = 100_000
"""Stale entries per index: two indexes, so 200k in all."""


@pytest.mark.slow
async def test_no_script_blocks_redis_whatever_the_stale_backlog(
    redis_url: str, raw: redis.Redis
) -> None:
    storage = RedisStorage.from_url(redis_url, prefix="test")
    keys = storage.keys
    try:
        # Index entries of executions that expired long ago, spread over the same span
        # of creation times as the live ones, as a busy year of expiries leaves them.
        with raw.pipeline(transaction=False) as pipe:
            for start in range(0, STALE, 10_000):
                chunk = range(start, start + 10_000)
                pipe.zadd(keys.status("paused"), {f"gone-p{i}": START + i for i in chunk})
                pipe.zadd(keys.status("paused", R), {f"gone-p{i}": START + i for i in chunk})
                pipe.zadd(keys.status("completed"), {f"gone-c{i}": START + i for i in chunk})
            pipe.execute()
        live = [f"live-{n:03}" for n in range(300)]
        for n, execution_id in enumerate(live):
            created_at = START + n * STALE / len(live) + 0.5
            await create(storage, execution_id, status=Status.PAUSED, created_at=created_at)
        newest_first = live[::-1]

        # Redis times each call itself: the SLOWLOG keeps those over 10 ms.
        raw.config_set("slowlog-log-slower-than", 10_000)  # microseconds
        raw.slowlog_reset()
        try:
            first, cursor = await storage.list_page(status=Status.PAUSED, limit=100)
            assert [e.id for e in first] == newest_first[:100]
            pages = [first]
            while cursor is not None:
                page, cursor = await storage.list_page(
                    status=Status.PAUSED, limit=100, cursor=cursor
                )
                pages.append(page)
            assert [e.id for e in await storage.list(limit=50)] == newest_first[:50]
            await create(storage, "done", status=Status.COMPLETED)
        finally:
            slow = [entry["duration"] / 1e6 for entry in raw.slowlog_get(1024)]

        assert [len(page) for page in pages] == [100, 100, 100]
        assert [e.id for page in pages for e in page] == newest_first
        # A call takes well under a millisecond here; one that read the whole backlog
        # took ~1 s. (A loaded machine may pause redis-server mid-call for a while.)
        assert max(slow, default=0) < 0.1, slow
        # Paging swept what it read: later pages cost less.
        assert raw.zcard(keys.status("paused")) < STALE
    finally:
        await storage.aclose()


_WRITER = """
import asyncio, sys
from reactor._status import Status
from reactor.errors import StorageError
from reactor.storage import RedisStorage, StoredExecution

async def main() -> None:
    storage = RedisStorage.from_url(sys.argv[1], prefix="test", socket_timeout=1)
    for n in range(1_000_000):
        record = StoredExecution(
            id=f"e{n}", reactor="r", status=Status.PAUSED, version=0, body="{}",
            correlation_ids=(f"c{n}",),
        )
        try:
            await storage.write(record, expected_version=0)
        except StorageError:
            print(f"failed {n}")
            await asyncio.sleep(0.01)
        else:
            print(f"ack {n}")  # one write: a kill cannot cut the line short

asyncio.run(main())
"""


@pytest.mark.slow
def test_every_acknowledged_write_survives_a_redis_crash(aof_redis: RedisServer) -> None:
    keys = RedisStorage.from_url(aof_redis.url, prefix="test").keys
    with Child(f"import sys; sys.argv[1:] = [{aof_redis.url!r}]\n{_WRITER}") as writer:
        writer.wait_for("ack 100")
        aof_redis.kill()
        aof_redis.restart()
        with redis.Redis.from_url(aof_redis.url, decode_responses=True) as raw:
            after_restart = raw.dbsize()
            deadline = time.monotonic() + 10
            while raw.dbsize() < after_restart + 100:  # the writer goes on
                assert time.monotonic() < deadline, writer.output
                time.sleep(0.01)
        writer.kill()
        output = writer.output

    acknowledged = [int(line[4:]) for line in output.splitlines() if line.startswith("ack ")]
    assert acknowledged
    with redis.Redis.from_url(aof_redis.url, decode_responses=True) as raw:
        correlations = raw.hgetall(keys.correlations("r"))
        for n in acknowledged:
            assert raw.hget(keys.execution(f"e{n}"), "version") == "1", n
            assert correlations[f"c{n}"] == f"e{n}"
        # Nothing half-written: every correlation names an execution that lists it.
        for cid, holder in correlations.items():
            assert raw.hget(keys.execution(holder), "correlation_ids") == f'["{cid}"]'
