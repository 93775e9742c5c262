"""Reactors that Celery workers run in the background tests (``tests/celery_app.py``).

Steps count their starts in Redis (:func:`apps.record`), so a test sees what ran in
every worker process.
"""

from __future__ import annotations

import os
import time
from typing import Any

from reactor import Context, Input, Reactor, input, interrupt, map_, schemas, step

from . import counters, record, record_undo


class Chain(Reactor):
    """Three steps in a row."""

    name = "tests.background.Chain"
    n = Input(schema={"type": "integer"})

    @step
    def a(self, n: int, context: Context) -> int:
        record(context.execution_id, "a")
        return n + 1

    @step
    def b(self, a: int, context: Context) -> int:
        record(context.execution_id, "b")
        return a * 2

    @step
    def c(self, b: int, context: Context) -> int:
        record(context.execution_id, "c")
        return b - 1


class Approval(Reactor):
    """Pauses for an approval; ``ship`` takes a moment, so a test sees the resume return
    before it ends."""

    name = "tests.background.Approval"

    @step
    def prepare(self, context: Context) -> str:
        record(context.execution_id, "prepare")
        return "order-1"

    @interrupt(schema=schemas.confirmation(), correlation_id=lambda prepare: f"approve-{prepare}")
    def approval(self, prepare: str) -> dict[str, Any]:
        return {"question": f"ship {prepare}?"}

    @step
    def ship(self, approval: dict[str, Any], context: Context) -> str:
        record(context.execution_id, "ship")
        time.sleep(0.3)
        return "shipped" if approval["approved"] else "kept"


class Crashy(Reactor):
    """``b`` notes its process id and hangs on its first attempt (the test kills that
    process meanwhile)."""

    name = "tests.background.Crashy"

    @step
    def a(self, context: Context) -> str:
        record(context.execution_id, "a")
        return "a"

    @step
    def b(self, a: str, context: Context) -> str:
        if record(context.execution_id, "b") == 1:
            counters().set(f"pid:{context.execution_id}", os.getpid())
            time.sleep(60)
        return a + "b"

    @step
    def c(self, b: str, context: Context) -> str:
        record(context.execution_id, "c")
        return b + "c"


class Line(Reactor):
    """An element: prices one item; undoing it notes the item (in order, per ``tag``)."""

    name = "tests.background.Line"
    item = Input()
    tag = Input()
    fail_at = Input(default=None)

    @step
    def price(self, item: int, tag: str, fail_at: int | None) -> int:
        counters().incr(f"priced:{tag}")
        counters().sadd(f"pids:{tag}", os.getpid())
        if item == fail_at:
            raise ValueError(f"cannot price {item}")
        return item * 2

    @price.undo
    def unprice(self, item: int, tag: str) -> None:
        record_undo(tag, str(item))


class Fanned(Reactor):
    """A map of :class:`Line` fanned out 100 at a time; ``total`` may fail after it."""

    name = "tests.background.Fanned"
    items = Input()
    tag = Input()
    fail_at = Input(default=None)
    fail_after = Input(default=False)

    lines = map_(
        Line,
        over="items",
        item="item",
        inputs={"tag": input("tag"), "fail_at": input("fail_at")},
        fan_out=100,
    )

    @step
    def total(self, lines: list[int], fail_after: bool) -> int:
        if fail_after:
            raise RuntimeError("failed after the map")
        return sum(lines)
