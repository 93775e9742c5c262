"""The cluster key layout on a local three-master Redis Cluster: every key of one reactor
in one slot, lookups by id alone and listings walking the reactors, the CLI's
``--cluster``. (The storage contract, exactly-once and worker suites run on the cluster
too, through their ``cluster`` parameters.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from storage.declared import declared_keys_only

from reactor import Reactor, Status, interrupt, schemas, step
from reactor._sync import run_sync
from reactor.cli import main
from reactor.storage import RedisStorage

from cluster import LocalCluster
from conftest import reactor_using


@pytest.fixture(autouse=True)
def _declared_keys_only(monkeypatch: pytest.MonkeyPatch) -> None:
    declared_keys_only(monkeypatch)


class Order(Reactor):
    name = "shop.Order"

    @step
    def reserve(self) -> str:
        return "A-1"

    @interrupt(
        schema=schemas.confirmation(),
        correlation_id=lambda reserve: f"approve-{reserve}",
        timeout=3600,
        strategy="active",
        accept_early=True,
    )
    def approval(self, reserve: str) -> dict[str, Any]:
        return {"question": f"ship {reserve}?"}

    @step
    def ship(self, approval: dict[str, Any]) -> str:
        return "shipped"


class Refund(Reactor):
    name = "shop.Refund"

    @step
    def pay_back(self) -> int:
        return 1


@pytest.fixture
def on_cluster(cluster_url: str) -> Iterator[RedisStorage]:
    with reactor_using(RedisStorage.from_url(cluster_url, cluster=True)) as storage:
        assert isinstance(storage, RedisStorage)
        yield storage


def every_key(cluster: LocalCluster) -> list[str]:
    found: list[str] = []
    for port in cluster.ports:
        with redis.Redis(port=port, decode_responses=True) as node:
            found += node.scan_iter(count=1000)
    return found


def test_every_key_of_one_reactor_hashes_to_one_slot(
    on_cluster: RedisStorage, redis_cluster: LocalCluster
) -> None:
    paused = Order.run(idempotency_key="order-1")
    assert paused.paused
    Order.resume_by_correlation_id("approve-A-2", {"approved": True})  # an early payload
    Order.run()  # A-1 again: its correlation id is taken, this one fails
    assert Refund.run().completed

    keys = every_key(redis_cluster)
    with redis_cluster.client() as client:
        slots: dict[str, set[int]] = {}
        for key in keys:
            if key == on_cluster.keys.reactors:
                continue
            tag = key[key.index("{") + 1 : key.index("}")]
            slots.setdefault(tag, set()).add(client.cluster_keyslot(key))
    assert set(slots) == {"reactor:shop.Order", "reactor:shop.Refund"}
    assert all(len(found) == 1 for found in slots.values()), slots
    # Several kinds of keys of Order share that one slot.
    order_keys = [k for k in keys if "{reactor:shop.Order}" in k]
    kinds = {k.split("}:")[1].split(":")[0] for k in order_keys}
    assert {"exec", "corr", "status", "expiry", "deadlines", "idem", "early"} <= kinds, kinds


def test_lookups_by_id_and_listings_walk_the_reactors(
    on_cluster: RedisStorage, cluster_url: str
) -> None:
    paused = Order.run()
    done = Refund.run()
    # A storage that has seen neither id finds them by walking the reactors.
    fresh = RedisStorage.from_url(cluster_url, cluster=True)
    with reactor_using(fresh):
        assert Order.find(paused.id).paused
        assert Refund.find(done.id).completed
    with reactor_using(RedisStorage.from_url(cluster_url, cluster=True)) as other:
        assert [e.id for e in run_sync(other.list())] == [done.id, paused.id]
        assert [e.id for e in run_sync(other.list(status=Status.PAUSED))] == [paused.id]


def test_the_cli_talks_to_a_cluster(
    on_cluster: RedisStorage, cluster_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paused = Order.run()
    assert main(["--redis", cluster_url, "--cluster", "--json", "show", paused.id]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["id"] == paused.id and shown["status"] == "paused"
    assert main(["--redis", cluster_url, "--cluster", "list"]) == 0
    assert paused.id in capsys.readouterr().out


def test_a_cluster_prefix_cannot_hold_braces() -> None:
    with pytest.raises(ValueError, match="braces"):
        RedisStorage.from_url("redis://localhost", prefix="a{b}", cluster=True)
