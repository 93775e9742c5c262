"""The Storage contract (reactor/storage/_base.py), run against every store.

Each test states one clause of a :class:`Storage` docstring. Stores get a fake clock,
so ``created_at``/``updated_at`` are exact; expiry that Redis does on its own clock
(payload ttl, retention) is checked with short real waits or with the key's TTL.
Leases run on the store's clock: the fake one for MemoryStorage, the server's for
Redis (compared with this machine's, which the server shares, within a second).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from reactor._status import Status
from reactor.storage import MemoryStorage, RedisStorage, Storage, StoredExecution
from reactor.storage._base import (
    DEFAULT_RETENTION,
    TAKEN_TTL,
    CorrelationTaken,
    EarlyPayloadWaiting,
    WriteConflict,
)

R = "shop.Checkout"
OTHER = "shop.Refund"
START = 1_700_000_000.0


class FakeClock:
    """Unix time that only moves when told to."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def storage_options(clock: FakeClock) -> dict[str, Any]:
    return {"clock": clock}


@pytest.fixture
def raw(request: pytest.FixtureRequest, storage: Storage) -> Iterator[redis.Redis | None]:
    """A plain client on the Redis behind ``storage``; ``None`` for other stores."""
    if not isinstance(storage, RedisStorage):
        yield None
        return
    if storage.cluster:
        with redis.RedisCluster.from_url(
            request.getfixturevalue("cluster_url"), decode_responses=True
        ) as cluster:
            yield cluster
        return
    url = request.getfixturevalue("redis_url")
    with redis.Redis.from_url(url, decode_responses=True) as client:
        yield client


def make(
    execution_id: str = "e1",
    *,
    reactor: str = R,
    status: Status = Status.RUNNING,
    body: str = '{"n": 1}',
    **fields: Any,
) -> StoredExecution:
    return StoredExecution(
        id=execution_id, reactor=reactor, status=status, version=0, body=body, **fields
    )


async def create(
    storage: Storage, execution_id: str = "e1", *, lease_seconds: float | None = None, **fields: Any
) -> StoredExecution:
    return await storage.write(
        make(execution_id, **fields), expected_version=0, lease_seconds=lease_seconds
    )


def store_now(storage: Storage, clock: FakeClock) -> float:
    """What the store's clock reads now (the server's is this machine's, to a second)."""
    return time.time() if isinstance(storage, RedisStorage) else clock.now


def lease_ends(storage: Storage, clock: FakeClock, seconds: float) -> Any:
    """A value equal to a lease stamped ``seconds`` long now, in the store's clock."""
    tolerance = 1.0 if isinstance(storage, RedisStorage) else 0.0
    return pytest.approx(store_now(storage, clock) + seconds, abs=tolerance)


async def elapse(storage: Storage, clock: FakeClock, seconds: float) -> None:
    """Let ``seconds`` pass for the store: on its fake clock, or really for Redis."""
    clock.advance(seconds)
    if isinstance(storage, RedisStorage):
        await asyncio.sleep(seconds)


# -- load, write: create and compare-and-set ----------------------------------------


async def test_load_of_unknown_execution_is_none(storage: Storage) -> None:
    assert await storage.load("nope") is None


async def test_create_stores_the_whole_envelope_at_version_1(
    storage: Storage, clock: FakeClock
) -> None:
    record = make(
        body='{"text": "h\\u00e9llo", "raw": "é\\n✓"}',
        correlation_ids=("order-1", "ünïcode"),
        deadline=START + 0.1 + 0.2,  # floats must come back bit for bit
        lease_expires=START,  # ignored: the store stamps the lease
        reason="why ✓",
    )

    stored = await storage.write(record, expected_version=0, lease_seconds=1 / 3)

    assert stored.lease_expires == lease_ends(storage, clock, 1 / 3)
    assert stored == record.evolve(
        version=1, created_at=clock.now, updated_at=clock.now, lease_expires=stored.lease_expires
    )
    assert await storage.load("e1") == stored


async def test_create_keeps_a_given_created_at(storage: Storage) -> None:
    stored = await create(storage, created_at=12.5)

    assert stored.created_at == 12.5
    assert (await storage.load("e1")) == stored


async def test_update_increments_version_and_keeps_created_at(
    storage: Storage, clock: FakeClock
) -> None:
    first = await create(storage)
    clock.advance(5)

    second = await storage.write(
        first.evolve(status=Status.PAUSED, body="{}", created_at=99.0), expected_version=1
    )

    assert (second.version, second.created_at, second.updated_at) == (2, START, START + 5)
    assert second.status is Status.PAUSED
    assert await storage.load("e1") == second
    third = await storage.write(second, expected_version=2)
    assert third.version == 3


async def test_a_write_without_optional_fields_clears_them(storage: Storage) -> None:
    await create(storage, deadline=START + 10, lease_seconds=5, reason="r")

    stored = await storage.write(make(lease_expires=START + 5), expected_version=1)

    assert (stored.deadline, stored.lease_expires, stored.reason) == (None, None, None)
    assert await storage.load("e1") == stored


async def test_stale_version_raises_write_conflict_with_current_and_writes_nothing(
    storage: Storage,
) -> None:
    await create(storage)
    current = await storage.write(make(body='{"n": 2}'), expected_version=1)

    with pytest.raises(WriteConflict) as conflict:
        await storage.write(make(body='{"n": 3}', status=Status.FAILED), expected_version=1)

    assert conflict.value.current == current
    assert await storage.load("e1") == current


async def test_create_of_existing_execution_raises_write_conflict_with_current(
    storage: Storage,
) -> None:
    current = await create(storage)

    with pytest.raises(WriteConflict) as conflict:
        await create(storage, status=Status.PAUSED)

    assert conflict.value.current == current


async def test_update_of_missing_execution_raises_write_conflict_without_current(
    storage: Storage,
) -> None:
    with pytest.raises(WriteConflict) as conflict:
        await storage.write(make(), expected_version=3)

    assert conflict.value.current is None
    assert await storage.load("e1") is None


# -- resending a write ---------------------------------------------------------------


async def test_a_write_sent_again_with_its_token_succeeds_and_changes_nothing(
    storage: Storage, clock: FakeClock
) -> None:
    await create(storage)
    first = await storage.write(
        make(status=Status.PAUSED, correlation_ids=("order-1",)), expected_version=1, token="t1"
    )
    clock.advance(5)

    again = await storage.write(
        make(status=Status.PAUSED, correlation_ids=("order-1",)), expected_version=1, token="t1"
    )

    assert again == first
    assert await storage.load("e1") == first
    assert await storage.load_by_correlation(R, "order-1") == first


async def test_a_create_sent_again_with_its_token_succeeds(storage: Storage) -> None:
    first = await storage.write(make(), expected_version=0, lease_seconds=30, token="t1")

    assert await storage.write(make(), expected_version=0, lease_seconds=30, token="t1") == first


async def test_another_token_or_a_later_version_is_a_conflict(storage: Storage) -> None:
    await storage.write(make(), expected_version=0, token="t1")

    with pytest.raises(WriteConflict):
        await storage.write(make(), expected_version=0, token="t2")
    with pytest.raises(WriteConflict):
        await storage.write(make(), expected_version=0)  # a fresh token
    current = await storage.write(make(body="{}"), expected_version=1, token="t3")
    with pytest.raises(WriteConflict) as conflict:
        # Applied, but overwritten since: the writer must learn what is stored now.
        await storage.write(make(), expected_version=0, token="t1")
    assert conflict.value.current == current


# -- correlation ids ------------------------------------------------------------------


async def test_correlation_ids_are_registered_per_reactor(storage: Storage) -> None:
    mine = await create(storage, "e1", correlation_ids=("order-1", "order-2"))
    theirs = await create(storage, "e2", reactor=OTHER, correlation_ids=("order-1",))

    assert await storage.load_by_correlation(R, "order-1") == mine
    assert await storage.load_by_correlation(R, "order-2") == mine
    assert await storage.load_by_correlation(OTHER, "order-1") == theirs
    assert await storage.load_by_correlation(OTHER, "order-2") is None


async def test_load_by_correlation_of_unknown_id_is_none(storage: Storage) -> None:
    assert await storage.load_by_correlation(R, "nope") is None


async def test_id_held_by_another_live_execution_is_taken_and_nothing_is_written(
    storage: Storage,
) -> None:
    await create(storage, "e1", status=Status.PAUSED, correlation_ids=("order-1",))

    with pytest.raises(CorrelationTaken) as taken:
        await create(storage, "e2", correlation_ids=("fresh", "order-1"))

    assert (taken.value.correlation_id, taken.value.holder) == ("order-1", "e1")
    assert await storage.load("e2") is None
    assert await storage.load_by_correlation(R, "fresh") is None

    e3 = await create(storage, "e3")
    with pytest.raises(CorrelationTaken):
        await storage.write(make("e3", correlation_ids=("fresh", "order-1")), expected_version=1)
    assert await storage.load("e3") == e3
    assert await storage.load_by_correlation(R, "fresh") is None


async def test_ids_an_execution_already_holds_can_be_written_again(storage: Storage) -> None:
    await create(storage, correlation_ids=("order-1",))

    stored = await storage.write(make(correlation_ids=("order-1", "order-2")), expected_version=1)

    assert await storage.load_by_correlation(R, "order-1") == stored
    assert await storage.load_by_correlation(R, "order-2") == stored


async def test_ids_no_longer_listed_are_released(storage: Storage) -> None:
    await create(storage, "e1", correlation_ids=("order-1", "order-2"))

    stored = await storage.write(make("e1", correlation_ids=("order-2",)), expected_version=1)

    assert await storage.load_by_correlation(R, "order-1") is None
    assert await storage.load_by_correlation(R, "order-2") == stored
    other = await create(storage, "e2", correlation_ids=("order-1",))
    assert await storage.load_by_correlation(R, "order-1") == other


@pytest.mark.parametrize("end", [Status.COMPLETED, Status.FAILED, Status.HALTED, Status.CANCELLED])
async def test_ids_are_released_when_the_execution_finishes(storage: Storage, end: Status) -> None:
    await create(storage, "e1", correlation_ids=("order-1",))

    finished = await storage.write(
        make("e1", status=end, correlation_ids=("order-1",)), expected_version=1
    )

    assert finished.correlation_ids == ("order-1",)
    assert await storage.load_by_correlation(R, "order-1") is None
    second = await create(storage, "e2", correlation_ids=("order-1",))
    assert await storage.load_by_correlation(R, "order-1") == second


async def test_a_finished_write_registers_no_id(storage: Storage) -> None:
    await create(storage, "e1", status=Status.COMPLETED, correlation_ids=("order-1",))

    assert await storage.load_by_correlation(R, "order-1") is None
    await create(storage, "e2", correlation_ids=("order-1",))


# -- early payloads -------------------------------------------------------------------


async def test_listing_an_id_with_an_early_payload_raises_and_writes_nothing(
    storage: Storage,
) -> None:
    assert await storage.put_early(R, "order-1", '{"ok": true}', ttl=60) is None

    with pytest.raises(EarlyPayloadWaiting) as waiting:
        await create(storage, "e1", correlation_ids=("order-1",))

    assert waiting.value.correlation_id == "order-1"
    assert await storage.load("e1") is None
    e2 = await create(storage, "e2")
    with pytest.raises(EarlyPayloadWaiting):
        await storage.write(make("e2", correlation_ids=("order-1",)), expected_version=1)
    assert await storage.load("e2") == e2

    assert await storage.take_early(R, "order-1") == '{"ok": true}'
    stored = await create(storage, "e1", correlation_ids=("order-1",))
    assert await storage.load_by_correlation(R, "order-1") == stored


async def test_a_finished_write_ignores_early_payloads(storage: Storage) -> None:
    await storage.put_early(R, "order-1", "p", ttl=60)

    await create(storage, status=Status.CANCELLED, correlation_ids=("order-1",))

    assert await storage.take_early(R, "order-1") == "p"


async def test_early_payloads_are_per_reactor(storage: Storage) -> None:
    await storage.put_early(OTHER, "order-1", "p", ttl=60)

    await create(storage, correlation_ids=("order-1",))

    assert await storage.take_early(R, "order-1") is None
    assert await storage.take_early(OTHER, "order-1") == "p"


async def test_put_early_returns_the_live_holder_and_stores_nothing(storage: Storage) -> None:
    await create(storage, "e1", status=Status.PAUSED, correlation_ids=("order-1",))

    assert await storage.put_early(R, "order-1", "p", ttl=60) == "e1"

    assert await storage.take_early(R, "order-1") is None


async def test_put_early_stores_once_the_holder_finished(storage: Storage) -> None:
    await create(storage, "e1", correlation_ids=("order-1",))
    await storage.write(make("e1", status=Status.COMPLETED), expected_version=1)

    assert await storage.put_early(R, "order-1", "p", ttl=60) is None

    assert await storage.take_early(R, "order-1") == "p"


async def test_put_early_when_one_is_stored_raises_write_conflict(storage: Storage) -> None:
    await storage.put_early(R, "order-1", "first", ttl=60)

    with pytest.raises(WriteConflict) as conflict:
        await storage.put_early(R, "order-1", "second", ttl=60)

    assert conflict.value.current is None
    assert await storage.take_early(R, "order-1") == "first"


async def test_put_early_sent_again_with_its_token_reports_it_stored(storage: Storage) -> None:
    assert await storage.put_early(R, "order-1", "p", ttl=60, token="t1") is None

    assert await storage.put_early(R, "order-1", "p", ttl=60, token="t1") is None
    with pytest.raises(WriteConflict):
        await storage.put_early(R, "order-1", "p", ttl=60, token="t2")
    assert await storage.take_early(R, "order-1") == "p"


async def test_take_early_sent_again_with_its_token_returns_the_payload_again(
    storage: Storage,
) -> None:
    await storage.put_early(R, "order-1", "p", ttl=60)

    assert await storage.take_early(R, "order-1", token="t1") == "p"

    assert await storage.take_early(R, "order-1", token="t1") == "p"
    assert await storage.take_early(R, "order-1", token="t2") is None
    assert await storage.take_early(R, "order-1") is None


async def test_what_a_token_took_is_forgotten_after_a_while(
    storage: Storage, clock: FakeClock, raw: redis.Redis | None
) -> None:
    await storage.put_early(R, "order-1", "p", ttl=60)
    await storage.take_early(R, "order-1", token="t1")

    if raw is None:
        clock.advance(TAKEN_TTL)
        assert await storage.take_early(R, "order-1", token="t1") is None
    else:
        assert isinstance(storage, RedisStorage)
        ttl = raw.pttl(storage.keys.taken(R, "order-1", "t1"))
        assert TAKEN_TTL * 1000 - 60_000 < ttl <= TAKEN_TTL * 1000


async def test_take_early_is_one_shot(storage: Storage) -> None:
    await storage.put_early(R, "order-1", "p", ttl=60)

    assert await storage.take_early(R, "order-1") == "p"
    assert await storage.take_early(R, "order-1") is None
    assert await storage.take_early(R, "never") is None


async def test_an_early_payload_expires_after_its_ttl(storage: Storage, clock: FakeClock) -> None:
    await storage.put_early(R, "order-1", "stale", ttl=0.05)
    await elapse(storage, clock, 0.1)

    stored = await create(storage, correlation_ids=("order-1",))  # no EarlyPayloadWaiting

    assert await storage.take_early(R, "order-1") is None
    await storage.write(stored.evolve(status=Status.COMPLETED), expected_version=1)
    assert await storage.put_early(R, "order-1", "fresh", ttl=60) is None


# -- touch ----------------------------------------------------------------------------


async def test_touch_at_the_current_version_extends_the_lease_only(
    storage: Storage, clock: FakeClock
) -> None:
    stored = await create(storage, lease_seconds=10)

    assert await storage.touch("e1", version=1, lease_seconds=40) is True

    loaded = await storage.load("e1")
    assert loaded is not None
    assert loaded.lease_expires == lease_ends(storage, clock, 40)
    assert loaded == stored.evolve(lease_expires=loaded.lease_expires)
    assert await storage.expired_leases() == []


async def test_touch_stamps_the_lease_afresh_each_time(storage: Storage) -> None:
    await create(storage, lease_seconds=-5)
    assert await storage.expired_leases() == ["e1"]

    assert await storage.touch("e1", version=1, lease_seconds=30) is True
    assert await storage.touch("e1", version=1, lease_seconds=30) is True  # a resend

    assert await storage.expired_leases() == []
    assert await storage.touch("e1", version=1, lease_seconds=0) is True
    assert await storage.expired_leases() == ["e1"]


async def test_touch_at_a_stale_version_changes_nothing(storage: Storage) -> None:
    await create(storage, lease_seconds=0)
    current = await storage.write(make(), expected_version=1, lease_seconds=0)

    assert await storage.touch("e1", version=1, lease_seconds=40) is False

    assert await storage.load("e1") == current
    assert await storage.expired_leases() == ["e1"]


async def test_touch_of_an_unknown_execution_is_false(storage: Storage) -> None:
    assert await storage.touch("nope", version=1, lease_seconds=30) is False
    assert await storage.load("nope") is None


async def test_an_idempotency_key_sent_again_reports_it_bound_by_this_call(
    storage: Storage,
) -> None:
    assert await storage.reserve_idempotency_key(R, "key-1", "e1") == "e1"

    assert await storage.reserve_idempotency_key(R, "key-1", "e1") == "e1"


# -- idempotency keys -----------------------------------------------------------------


async def test_an_idempotency_key_returns_its_first_binder(storage: Storage) -> None:
    assert await storage.reserve_idempotency_key(R, "key-1", "e1") == "e1"
    assert await storage.reserve_idempotency_key(R, "key-1", "e2") == "e1"
    assert await storage.reserve_idempotency_key(OTHER, "key-1", "e3") == "e3"
    assert await storage.reserve_idempotency_key(R, "key-2", "e4") == "e4"


async def test_an_idempotency_key_is_kept_for_retention(
    storage: Storage, clock: FakeClock, raw: redis.Redis | None
) -> None:
    await storage.reserve_idempotency_key(R, "key-1", "e1")

    if raw is None:
        clock.advance(DEFAULT_RETENTION - 1)
        assert await storage.reserve_idempotency_key(R, "key-1", "e2") == "e1"
        clock.advance(1)
        assert await storage.reserve_idempotency_key(R, "key-1", "e2") == "e2"
    else:
        assert isinstance(storage, RedisStorage)
        ttl = raw.pttl(storage.keys.idempotency(R, "key-1"))
        assert DEFAULT_RETENTION * 1000 - 60_000 < ttl <= DEFAULT_RETENTION * 1000


# -- schedules: due and expired_leases ------------------------------------------------


async def test_due_lists_live_deadlines_at_or_before_now_soonest_first(storage: Storage) -> None:
    await create(storage, "e1", deadline=START + 30)
    await create(storage, "e2", status=Status.PAUSED, deadline=START + 10)
    await create(storage, "e3", deadline=START + 20)
    await create(storage, "e4", deadline=START + 50)
    await create(storage, "e5")

    assert await storage.due(START + 30) == ["e2", "e3", "e1"]
    assert await storage.due(START + 30, limit=2) == ["e2", "e3"]
    assert await storage.due(START + 9.999) == []
    assert await storage.due(START + 100) == ["e2", "e3", "e1", "e4"]


async def test_due_excludes_finished_executions_and_cleared_deadlines(storage: Storage) -> None:
    await create(storage, "e1", status=Status.COMPLETED, deadline=START)
    await create(storage, "e2", deadline=START)
    await create(storage, "e3", deadline=START)

    await storage.write(make("e2"), expected_version=1)

    assert await storage.due(START + 1) == ["e3"]


async def test_expired_leases_lists_running_executions_soonest_first(storage: Storage) -> None:
    await create(storage, "e1", lease_seconds=-10)
    await create(storage, "e2", lease_seconds=-30)
    await create(storage, "e3", lease_seconds=-20)
    await create(storage, "e4", lease_seconds=0)
    await create(storage, "e5", lease_seconds=30)
    await create(storage, "e6", status=Status.PAUSED, lease_seconds=-60)
    await create(storage, "e7", status=Status.FAILED, lease_seconds=-60)
    await create(storage, "e8")

    assert await storage.expired_leases() == ["e2", "e3", "e1", "e4"]
    assert await storage.expired_leases(limit=1) == ["e2"]


async def test_a_lease_runs_out_by_the_store_clock(storage: Storage, clock: FakeClock) -> None:
    await create(storage, lease_seconds=0.3)
    assert await storage.expired_leases() == []

    await elapse(storage, clock, 0.35)

    assert await storage.expired_leases() == ["e1"]


async def test_a_lease_is_stamped_only_for_a_running_execution(storage: Storage) -> None:
    paused = await create(storage, status=Status.PAUSED, lease_seconds=-1)

    assert paused.lease_expires is None
    assert await storage.expired_leases() == []
    running = await storage.write(make(), expected_version=1, lease_seconds=-1)
    assert running.lease_expires is not None
    assert await storage.expired_leases() == ["e1"]
    await storage.write(make(lease_expires=START), expected_version=2)  # no lease_seconds
    assert await storage.expired_leases() == []
    assert (await storage.load("e1")) == running.evolve(version=3, lease_expires=None)


async def test_a_takeover_succeeds_only_over_an_expired_lease(
    storage: Storage, clock: FakeClock
) -> None:
    live = await create(storage, lease_seconds=30)
    with pytest.raises(WriteConflict) as conflict:
        await storage.write(make(), expected_version=1, lease_seconds=30, takeover=True)
    assert conflict.value.current == live
    assert await storage.load("e1") == live

    assert await storage.touch("e1", version=1, lease_seconds=0.05)
    await elapse(storage, clock, 0.1)

    taken = await storage.write(make(), expected_version=1, lease_seconds=30, takeover=True)
    assert taken.version == 2
    paused = await storage.write(make(status=Status.PAUSED), expected_version=2)
    resumed = await storage.write(make(), expected_version=3, lease_seconds=30, takeover=True)
    assert (paused.lease_expires, resumed.version) == (None, 4)  # no lease to respect


async def test_a_finished_write_leaves_the_deadline_and_lease_schedules(storage: Storage) -> None:
    await create(storage, deadline=START, lease_seconds=-1)
    assert (await storage.due(START), await storage.expired_leases()) == (["e1"], ["e1"])

    failed = await storage.write(
        make(status=Status.FAILED, deadline=START), expected_version=1, lease_seconds=-1
    )

    assert (failed.deadline, failed.lease_expires) == (START, None)
    assert (await storage.due(START), await storage.expired_leases()) == ([], [])


# -- list -----------------------------------------------------------------------------


async def _populate(storage: Storage, clock: FakeClock) -> None:
    """e1..e6, created one second apart, of both reactors and several statuses."""
    for execution_id, reactor, status in [
        ("e1", R, Status.RUNNING),
        ("e2", OTHER, Status.PAUSED),
        ("e3", R, Status.COMPLETED),
        ("e4", R, Status.PAUSED),
        ("e5", OTHER, Status.RUNNING),
        ("e6", R, Status.PAUSED),
    ]:
        await create(storage, execution_id, reactor=reactor, status=status)
        clock.advance(1)


async def ids(storage: Storage, **filters: Any) -> list[str]:
    return [e.id for e in await storage.list(**filters)]


async def test_list_is_newest_first_up_to_the_limit(storage: Storage, clock: FakeClock) -> None:
    await _populate(storage, clock)

    assert await ids(storage) == ["e6", "e5", "e4", "e3", "e2", "e1"]
    assert await ids(storage, limit=2) == ["e6", "e5"]
    assert await storage.list(limit=1) == [await storage.load("e6")]


async def test_list_filters_by_status_and_reactor(storage: Storage, clock: FakeClock) -> None:
    await _populate(storage, clock)

    assert await ids(storage, status=Status.PAUSED) == ["e6", "e4", "e2"]
    assert await ids(storage, reactor=R) == ["e6", "e4", "e3", "e1"]
    assert await ids(storage, status=Status.PAUSED, reactor=R) == ["e6", "e4"]
    assert await ids(storage, status=Status.PAUSED, reactor=R, limit=1) == ["e6"]
    assert await ids(storage, status=Status.RUNNING, reactor=OTHER) == ["e5"]
    assert await ids(storage, status=Status.FAILED) == []
    assert await ids(storage, reactor="unknown") == []


async def test_list_follows_status_changes(storage: Storage, clock: FakeClock) -> None:
    await _populate(storage, clock)

    paused = await storage.write(make("e1", status=Status.PAUSED), expected_version=1)

    assert await ids(storage, status=Status.RUNNING) == ["e5"]
    assert await ids(storage, status=Status.PAUSED) == ["e6", "e4", "e2", "e1"]
    assert (await storage.list(status=Status.PAUSED))[-1] == paused
    assert await ids(storage) == ["e6", "e5", "e4", "e3", "e2", "e1"]


async def pages(storage: Storage, limit: int, **filters: Any) -> list[list[str]]:
    """The ids of every page of ``list_page``, first to last."""
    found: list[list[str]] = []
    cursor = None
    while True:
        page, cursor = await storage.list_page(limit=limit, cursor=cursor, **filters)
        found.append([e.id for e in page])
        if cursor is None:
            return found


async def test_list_page_pages_newest_first_to_the_end(storage: Storage, clock: FakeClock) -> None:
    await _populate(storage, clock)

    assert await pages(storage, 2) == [["e6", "e5"], ["e4", "e3"], ["e2", "e1"]]
    assert await pages(storage, 4) == [["e6", "e5", "e4", "e3"], ["e2", "e1"]]
    assert await pages(storage, 6) == [["e6", "e5", "e4", "e3", "e2", "e1"]]
    assert await pages(storage, 100) == [["e6", "e5", "e4", "e3", "e2", "e1"]]


async def test_list_page_filters_every_page(storage: Storage, clock: FakeClock) -> None:
    await _populate(storage, clock)

    assert await pages(storage, 1, status=Status.PAUSED) == [["e6"], ["e4"], ["e2"]]
    assert await pages(storage, 1, reactor=R) == [["e6"], ["e4"], ["e3"], ["e1"]]
    assert await pages(storage, 1, status=Status.PAUSED, reactor=R) == [["e6"], ["e4"]]
    assert await pages(storage, 1, status=Status.FAILED) == [[]]


async def test_list_page_orders_equal_creation_times_by_id(storage: Storage) -> None:
    for execution_id in ["b", "a", "d", "c"]:
        await create(storage, execution_id, status=Status.PAUSED, created_at=START)
    await create(storage, "z", status=Status.RUNNING, created_at=START)

    assert await pages(storage, 2) == [["z", "d"], ["c", "b"], ["a"]]
    assert await pages(storage, 2, status=Status.PAUSED) == [["d", "c"], ["b", "a"]]


async def test_list_page_goes_on_after_the_last_listed_execution_changed(
    storage: Storage, clock: FakeClock
) -> None:
    await _populate(storage, clock)
    page, cursor = await storage.list_page(status=Status.PAUSED, limit=1)
    assert [e.id for e in page] == ["e6"]

    await storage.write(make("e6", status=Status.COMPLETED), expected_version=1)

    page, cursor = await storage.list_page(status=Status.PAUSED, limit=1, cursor=cursor)
    assert [e.id for e in page] == ["e4"]


async def test_list_page_refuses_a_foreign_cursor_and_an_empty_page(storage: Storage) -> None:
    with pytest.raises(ValueError):
        await storage.list_page(cursor="nonsense")
    with pytest.raises(ValueError):
        await storage.list_page(limit=0)
    assert await storage.list(limit=0) == []


# -- retention ------------------------------------------------------------------------


async def test_a_finished_execution_expires_after_retention(
    storage: Storage, clock: FakeClock, raw: redis.Redis | None
) -> None:
    await create(storage, "done", status=Status.COMPLETED)
    await create(storage, "live", status=Status.PAUSED)

    if raw is None:
        clock.advance(DEFAULT_RETENTION - 1)
        assert await storage.load("done") is not None
        clock.advance(1)
        assert await storage.load("done") is None
        assert await ids(storage) == ["live"]
    else:
        assert isinstance(storage, RedisStorage)
        ttl = raw.pttl(storage.keys.execution("done", R))
        assert DEFAULT_RETENTION * 1000 - 60_000 < ttl <= DEFAULT_RETENTION * 1000
        assert raw.pttl(storage.keys.execution("live", R)) == -1  # no expiry


async def test_an_execution_live_again_does_not_expire(
    storage: Storage, clock: FakeClock, raw: redis.Redis | None
) -> None:
    await create(storage, status=Status.COMPLETED)
    clock.advance(10)

    await storage.write(make(status=Status.RUNNING), expected_version=1)

    if raw is None:
        clock.advance(DEFAULT_RETENTION * 2)
        assert await storage.load("e1") is not None
    else:
        assert isinstance(storage, RedisStorage)
        assert raw.pttl(storage.keys.execution("e1", R)) == -1


async def test_memory_storage_forgets_expired_executions_without_reading_them() -> None:
    clock = [1000.0]
    storage = MemoryStorage(retention=10, clock=lambda: clock[0])
    for i in range(100):
        record = StoredExecution(
            id=f"e{i}", reactor="r", status=Status.COMPLETED, version=0, body="{}"
        )
        await storage.write(record, expected_version=0)
    clock[0] += 11
    await storage.write(
        StoredExecution(id="live", reactor="r", status=Status.PAUSED, version=0, body="{}"),
        expected_version=0,
    )
    assert set(storage._executions) == {"live"}
