"""Reactors that Celery workers run in the background tests (``tests/celery_app.py``).

Steps count their starts in Redis (:func:`apps.record`), so a test sees what ran in
every worker process.
"""

from __future__ import annotations

import os
import time
from typing import Any

from reactor import Context, Input, Reactor, interrupt, schemas, step

from . import counters, record


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
