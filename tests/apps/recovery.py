"""Reactors with slow steps, for crash recovery and graceful worker shutdown."""

from __future__ import annotations

import asyncio
import time

from reactor import Context, Reactor, step

from . import record


class Slow(Reactor):
    """``c`` hangs on its first attempt (the test kills the process meanwhile)."""

    @step
    def a(self, context: Context) -> str:
        record(context.execution_id, "a")
        return "a"

    @step
    def b(self, a: str, context: Context) -> str:
        record(context.execution_id, "b")
        return a + "b"

    @step
    def c(self, b: str, context: Context) -> str:
        if record(context.execution_id, "c") == 1:
            time.sleep(30)
        return b + "c"

    @step
    def d(self, c: str, context: Context) -> str:
        record(context.execution_id, "d")
        return c + "d"


class Naps(Reactor):
    """Steps slow enough to interrupt: ``first`` 0.2 s, ``nap`` 1 s."""

    @step
    def first(self, context: Context) -> str:
        record(context.execution_id, "first")
        time.sleep(0.2)
        return "first"

    @step
    def nap(self, first: str, context: Context) -> str:
        record(context.execution_id, "nap")
        time.sleep(1)
        return "rested"

    @step
    def last(self, nap: str, context: Context) -> str:
        record(context.execution_id, "last")
        return nap + "!"


class Gauged(Reactor):
    """Async steps; ``second`` keeps a gauge of how many run at once in this process."""

    running = 0
    peak = 0

    @step
    async def first(self, context: Context) -> None:
        record(context.execution_id, "first")
        await asyncio.sleep(0.1)

    @step
    async def second(self, first: None, context: Context) -> None:
        record(context.execution_id, "second")
        cls = type(self)
        cls.running += 1
        cls.peak = max(cls.peak, cls.running)
        try:
            await asyncio.sleep(0.1)
        finally:
            cls.running -= 1
