"""Reactors for the durability fault tests (DESIGN §9). Each step and hook counts its
calls in Redis (``faults.Calls`` on ``$REACTOR_REDIS_URL``), bracketing itself so that a
test also sees whether one ever ran twice at the same time; ``$DURABLE_SLEEP`` makes the
slow ones slow in the process that should be killed or stalled."""

from __future__ import annotations

import asyncio
import functools
import os
import time

from reactor import Context, Reactor, interrupt, step

from faults import Calls


@functools.cache
def calls() -> Calls:
    # Counted straight on the suite's server even when the reactor talks to it through
    # a proxy that a test stalls ($FAULTS_REDIS_URL).
    return Calls(os.environ.get("FAULTS_REDIS_URL") or os.environ["REACTOR_REDIS_URL"])


def _sleep() -> float:
    return float(os.environ.get("DURABLE_SLEEP", "0"))


class Chain(Reactor):
    """a -> b -> c; ``c`` announces itself, then sleeps ``$DURABLE_SLEEP``."""

    name = "durable.chain"

    @step
    def a(self) -> int:
        with calls().during("a"):
            return 1

    @step
    def b(self, a: int) -> int:
        with calls().during("b"):
            return a + 1

    @step
    def c(self, b: int) -> int:
        with calls().during("c"):
            print("c started", flush=True)
            time.sleep(_sleep())
            return b + 1


class LongAsync(Reactor):
    """One async step that outlasts the lease (``$DURABLE_SLEEP`` seconds)."""

    name = "durable.long_async"

    @step
    async def first(self) -> str:
        with calls().during("first"):
            return "first"

    @step
    async def long(self, first: str, context: Context) -> str:
        with calls().during("long"):
            calls().note("fence", str(context.fence))
            print("long started", flush=True)
            await asyncio.sleep(_sleep())
            return first + " then long"

    @step
    async def after(self, long: str) -> str:
        with calls().during("after"):
            return long


class Unwinding(Reactor):
    """a, b (async undo hooks that announce themselves and take ``$DURABLE_SLEEP``), then
    ``boom`` fails and is compensated."""

    name = "durable.unwinding"

    @step
    def a(self) -> str:
        with calls().during("a"):
            return "a"

    @a.undo
    async def undo_a(self) -> None:
        with calls().during("undo_a"):
            print("undoing a", flush=True)
            await asyncio.sleep(_sleep())

    @step
    def b(self, a: str) -> str:
        with calls().during("b"):
            return "b"

    @b.undo
    async def undo_b(self) -> None:
        with calls().during("undo_b"):
            print("undoing b", flush=True)
            await asyncio.sleep(_sleep())

    @step
    def boom(self, b: str) -> str:
        with calls().during("boom"):
            raise RuntimeError("boom")

    @boom.compensate
    def compensate_boom(self, error: Exception) -> None:
        with calls().during("compensate_boom"):
            calls().note("compensate_error", str(error))


class Approval(Reactor):
    """reserve (undone on cancel) -> approval (max_attempts=3, correlation id) -> ship;
    ``release`` (the undo) and ``ship`` take ``$DURABLE_SLEEP`` seconds."""

    name = "durable.approval"

    @step
    def reserve(self) -> str:
        with calls().during("reserve"):
            return "held"

    @reserve.undo
    def release(self) -> None:
        with calls().during("release"):
            time.sleep(_sleep())

    approval = interrupt(
        correlation_id=lambda reserve: "order-1",
        schema={"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}},
        max_attempts=3,
    )

    @step
    def ship(self, approval: dict[str, bool]) -> str:
        with calls().during("ship"):
            time.sleep(_sleep())
            return "shipped"
