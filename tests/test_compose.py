"""compose and map_: results, rollback order and interrupts at every depth."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from reactor import Status

import composition_app as app

pytestmark = pytest.mark.usefixtures("memory_storage")
TESTS = Path(__file__).parent


@pytest.fixture(autouse=True)
def _calls() -> None:
    app.CALLS.clear()


def test_parent_failure_undoes_child_steps_newest_first_then_parent() -> None:
    ex = app.Parent.run(fail_in="b")
    assert app.CALLS == [
        "run a",
        "run c1",
        "run c2",
        "run b",
        "compensate b",
        "undo c2",
        "undo c1",
        "undo a",
    ]
    assert ex.failed and ex.error is not None and ex.error.step == "b"


def test_compose_result_is_the_childs_result() -> None:
    ex = app.Parent.run()
    assert ex.completed and ex.result == 20
    assert ex.results["child"] == 20 and ex.results["child.c1"] == 2


def test_child_failure_rolls_back_child_then_parent_and_names_the_path() -> None:
    ex = app.ParentOfFailing.run()
    assert app.CALLS == [
        "run a",
        "run c1",
        "run c2",
        "run c2",
        "compensate c2",
        "undo c1",
        "undo a",
    ]
    assert ex.error is not None and ex.error.step == "child.c2"
    assert ex.error.message == "c2 broke"


def test_map_fail_fast_stops_new_elements_and_undoes_highest_index_first() -> None:
    ex = app.Order.run(lines=[1, 2, 3, 4, 5])
    assert ex.failed and ex.error is not None and ex.error.step == "fulfil[2].pick"
    assert app.CALLS == [
        "open order",
        "pick 1",
        "pack 1",
        "pick 2",
        "pack 2",
        "pick 3",
        # no element starts after the failure: 4 and 5 never run
        "unpack 2",
        "unpick 2",
        "unpack 1",
        "unpick 1",
        "close order",
    ]


def test_map_concurrent_elements_are_undone_by_index_not_completion_order() -> None:
    ex = app.Order.run(lines=[5, 4, 3], max_concurrency=None)
    assert ex.failed
    undos = [c for c in app.CALLS if c.startswith(("un", "close"))]
    assert undos == ["unpack 4", "unpick 4", "unpack 5", "unpick 5", "close order"]


def test_map_result_is_in_item_order() -> None:
    ex = app.LenientOrder.run(lines=[2, 1])
    assert ex.completed
    assert ex.results["fulfil"].successes == {0: "box-2", 1: "box-1"}


def test_map_without_fail_fast_returns_successes_and_failures() -> None:
    ex = app.LenientOrder.run(lines=[1, 3, 2])
    assert ex.completed
    assert ex.result == {"ok": [0, 2], "failed": [1]}
    failure = ex.results["fulfil"].failures[0]
    assert failure.index == 1 and failure.error.message == "out of stock"
    assert "unpick 3" not in app.CALLS  # the failed element had nothing completed to undo
    assert app.LenientOrder.find(ex.id).result == ex.result


def test_map_in_compose_in_map_rolls_back_in_order() -> None:
    ex = app.Outer.run(items=[1, 2])
    assert ex.failed and ex.error is not None
    assert ex.error.step == "groups[1].inner.leaves[1].touch"
    assert app.CALLS == [
        "begin",
        "prepare 1",
        "touch x1",
        "touch x2",
        "prepare 2",
        "touch y1",
        "touch y2",
        "untouch y1",
        "unprepare 2",
        "untouch x2",
        "untouch x1",
        "unprepare 1",
        "unbegin",
    ]


def test_undo_of_a_completed_root_reaches_every_child_step_newest_first() -> None:
    ex = app.Parent.run()
    app.CALLS.clear()
    undone = app.Parent.undo(ex.id)
    assert undone.status is Status.CANCELLED
    assert app.CALLS == ["undo c2", "undo c1", "undo a"]


def test_paused_elements_resume_independently_by_path_and_correlation_id() -> None:
    ex = app.ApproveOrder.run(lines=[10, 20, 30])
    assert ex.paused
    assert sorted(i.step for i in ex.interrupts) == [
        "each[0].approval",
        "each[1].approval",
        "each[2].approval",
    ]
    assert app.ApproveOrder.resume(ex.id, {"approved": True}, step="each[2].approval").paused
    assert app.ApproveOrder.resume_by_correlation_id("line-10", {"approved": False}).paused
    done = app.ApproveOrder.resume_by_correlation_id("line-20", {"approved": True})
    assert done.completed
    assert done.result == ["10:False", "20:True", "30:True"]
    assert app.CALLS.count("after") == 1


def test_cancel_of_the_root_releases_child_correlation_ids() -> None:
    ex = app.ApproveOrder.run(lines=[7])
    app.ApproveOrder.cancel(ex.id)
    assert app.ApproveOrder.run(lines=[7]).paused


def resume_in_subprocess(redis_url: str, correlation_id: str, approved: bool) -> str:
    code = (
        "import composition_app as app\n"
        f"payload = {{'approved': {approved}}}\n"
        f"ex = app.ApproveOrder.resume_by_correlation_id({correlation_id!r}, payload)\n"
        "print(ex.status.value)\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(TESTS),
        "REACTOR_REDIS_URL": redis_url,
        "CALLS_KEY": "calls",
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def test_three_paused_elements_resumed_out_of_order_from_other_processes(
    redis_url: str,
    redis_reactor: object,
) -> None:
    ex = app.ApproveOrder.run(lines=[1, 2, 3])
    assert ex.paused and len(ex.interrupts) == 3
    assert resume_in_subprocess(redis_url, "line-3", True) == "paused"
    assert resume_in_subprocess(redis_url, "line-1", True) == "paused"
    assert resume_in_subprocess(redis_url, "line-2", False) == "completed"
    final = app.ApproveOrder.find(ex.id)
    assert final.completed
    assert final.result == ["1:True", "2:False", "3:True"]
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        remote = client.lrange("calls", 0, -1)
    assert remote.count("after") == 1
    assert sorted(c for c in remote if c.startswith("ship")) == ["ship 1", "ship 2", "ship 3"]


def test_mermaid_shows_children_as_subgraphs() -> None:
    text = app.Outer.mermaid()
    assert 'subgraph groups_child["groups: MiddleWrap (each item)"]' in text
    assert 'subgraph groups__inner_child["inner: Middle"]' in text
