"""A stored execution whose reactor class changed incompatibly is refused untouched."""

from __future__ import annotations

import pytest
import redis

from reactor import DefinitionChanged, Reactor, interrupt, step
from reactor.testing import unregister


def snapshot(url: str) -> dict[bytes, dict[bytes, bytes]]:
    with redis.Redis.from_url(url) as client:
        return {key: client.hgetall(key) for key in client.keys("*exec:*")}


def versions() -> tuple[type[Reactor], type[Reactor], type[Reactor]]:
    # Versions of one reactor in one process: each takes the name over (another class
    # under a registered name is otherwise a DefinitionError).
    unregister("drift.Shipping")

    class V1(Reactor):
        name = "drift.Shipping"
        version = 1

        @step
        def pack(self) -> int:
            return 1

        approval = interrupt(wait_for="pack")

        @step
        def ship(self, approval: object) -> str:
            return "shipped"

    unregister("drift.Shipping")

    class WithoutCompletedStep(Reactor):
        name = "drift.Shipping"
        version = 2

        @step
        def wrap(self) -> int:
            return 1

        approval = interrupt(wait_for="wrap")

    unregister("drift.Shipping")

    class WithoutInterrupt(Reactor):
        name = "drift.Shipping"
        version = 3

        @step
        def pack(self) -> int:
            return 1

    return V1, WithoutCompletedStep, WithoutInterrupt


@pytest.mark.parametrize("changed", [1, 2], ids=["completed-step-gone", "interrupt-gone"])
def test_resume_after_a_breaking_change_raises_and_changes_nothing(
    redis_url: str, redis_reactor: object, changed: int
) -> None:
    classes = versions()
    v1, new = classes[0], classes[changed]
    ex = v1.run()
    assert ex.paused
    before = snapshot(redis_url)
    with pytest.raises(DefinitionChanged) as info:
        new.resume(ex.id, {"ok": True})
    assert info.value.execution_id == ex.id
    assert info.value.step in {"pack", "approval"}
    assert snapshot(redis_url) == before
    with pytest.raises(DefinitionChanged):
        new.undo(ex.id)
    assert snapshot(redis_url) == before
    assert v1.resume(ex.id, {"ok": True}).completed  # the old code can still finish it


def test_cancel_works_after_a_breaking_change(redis_url: str, redis_reactor: object) -> None:
    v1, new, _ = versions()
    ex = v1.run()
    cancelled = new.cancel(ex.id, reason="retired with v2")
    assert cancelled.cancelled and cancelled.reason == "retired with v2"
