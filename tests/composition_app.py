"""Reactors for the composition tests, importable by subprocesses (PYTHONPATH=tests).

Every step appends to ``CALLS`` so tests can assert the exact order; in subprocesses
the order is also pushed to the Redis list named by ``$CALLS_KEY`` when set.
"""

from __future__ import annotations

import os
from typing import Any

import redis

from reactor import Input, Reactor, compose, interrupt, map_, result, schemas, step

CALLS: list[str] = []


def record(entry: str) -> None:
    CALLS.append(entry)
    url, key = os.environ.get("REACTOR_REDIS_URL"), os.environ.get("CALLS_KEY")
    if url and key:
        with redis.Redis.from_url(url) as client:
            client.rpush(key, entry)


class Child(Reactor):
    amount = Input()

    @step
    def c1(self, amount: int) -> int:
        record("run c1")
        return amount + 1

    @c1.undo
    def undo_c1(self) -> None:
        record("undo c1")

    @step
    def c2(self, c1: int) -> int:
        record("run c2")
        return c1 * 10

    @c2.undo
    def undo_c2(self) -> None:
        record("undo c2")


class Parent(Reactor):
    fail_in = Input(default="")

    @step
    def a(self) -> int:
        record("run a")
        return 1

    @a.undo
    def undo_a(self) -> None:
        record("undo a")

    child = compose(Child, inputs={"amount": result("a")})

    @step
    def b(self, child: int, fail_in: str) -> int:
        record("run b")
        if fail_in == "b":
            raise RuntimeError("b failed")
        return child

    @b.compensate
    def compensate_b(self) -> None:
        record("compensate b")


class FailingChild(Reactor):
    amount = Input()

    @step
    def c1(self, amount: int) -> int:
        record("run c1")
        return amount

    @c1.undo
    def undo_c1(self) -> None:
        record("undo c1")

    @step(retries=1)
    def c2(self, c1: int) -> int:
        record("run c2")
        raise ValueError("c2 broke")

    @c2.compensate
    def compensate_c2(self) -> None:
        record("compensate c2")


class ParentOfFailing(Reactor):
    @step
    def a(self) -> int:
        record("run a")
        return 1

    @a.undo
    def undo_a(self) -> None:
        record("undo a")

    child = compose(FailingChild, inputs={"amount": "a"})


class Line(Reactor):
    line = Input()

    @step
    def pick(self, line: int) -> int:
        record(f"pick {line}")
        if line == 3:
            raise RuntimeError("out of stock")
        return line

    @pick.undo
    def unpick(self, line: int) -> None:
        record(f"unpick {line}")

    @step
    def pack(self, pick: int) -> str:
        record(f"pack {pick}")
        return f"box-{pick}"

    @pack.undo
    def unpack(self, pick: int) -> None:
        record(f"unpack {pick}")


class Order(Reactor):
    lines = Input()
    max_concurrency = 1

    @step
    def open_order(self) -> str:
        record("open order")
        return "o"

    @open_order.undo
    def close_order(self) -> None:
        record("close order")

    fulfil = map_(Line, over="lines", item="line", max_concurrency=1, wait_for="open_order")


class LenientOrder(Reactor):
    lines = Input()

    fulfil = map_(Line, over="lines", item="line", fail_fast=False)

    @step
    def summary(self, fulfil: Any) -> dict[str, Any]:
        return {"ok": sorted(fulfil.successes), "failed": [f.index for f in fulfil.failures]}


class Leaf(Reactor):
    item = Input()
    tag = Input()

    @step
    def touch(self, item: int, tag: str) -> str:
        record(f"touch {tag}{item}")
        if (tag, item) == ("y", 2):
            raise RuntimeError("leaf failed")
        return f"{tag}{item}"

    @touch.undo
    def untouch(self, result: str) -> None:
        record(f"untouch {result}")


class Middle(Reactor):
    item = Input()

    @step
    def prepare(self, item: int) -> list[int]:
        record(f"prepare {item}")
        return [1, 2]

    @prepare.undo
    def unprepare(self, item: int) -> None:
        record(f"unprepare {item}")

    leaves = map_(Leaf, over="prepare", inputs={"tag": "tag"}, max_concurrency=1)
    tag = step(lambda self, item: "x" if item == 1 else "y")  # type: ignore[arg-type]


class MiddleWrap(Reactor):
    item = Input()
    inner = compose(Middle, inputs={"item": "item"})


class Outer(Reactor):
    items = Input()
    max_concurrency = 1

    @step
    def begin(self) -> int:
        record("begin")
        return 0

    @begin.undo
    def unbegin(self) -> None:
        record("unbegin")

    groups = map_(MiddleWrap, over="items", max_concurrency=1, wait_for="begin")


class ApproveLine(Reactor):
    line = Input()

    @step
    def reserve(self, line: int) -> int:
        record(f"reserve {line}")
        return line

    @interrupt(schema=schemas.confirmation(), correlation_id=lambda line: f"line-{line}")
    def approval(self, reserve: int) -> dict[str, Any]:
        return {"question": f"ship line {reserve}?"}

    @step
    def ship(self, approval: dict[str, Any], reserve: int) -> str:
        record(f"ship {reserve}")
        return f"{reserve}:{approval['approved']}"


class ApproveOrder(Reactor):
    lines = Input()

    each = map_(ApproveLine, over="lines", item="line")

    @step
    def after(self, each: list[str]) -> list[str]:
        record("after")
        return each
