"""Type-checked by ``make lint`` (mypy --strict): the public API as users write it.

Not collected as a test; it only has to type-check.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reactor import (
    Context,
    Execution,
    Halt,
    Input,
    MapResult,
    PendingInterrupt,
    Reactor,
    Skip,
    Status,
    TraceEntry,
    compose,
    configure,
    input,
    interrupt,
    map_,
    result,
    schemas,
    step,
    value,
)
from reactor.storage import MemoryStorage
from reactor.testing import FakeClock


@dataclasses.dataclass
class Quote:
    total: float


class Payment(Reactor):
    amount = Input(schema={"type": "number"})

    @step(retries=2, backoff="exponential", base_delay=0.1, timeout=5.0)
    async def charge(self, amount: float, context: Context) -> str:
        return f"{context.idempotency_key}:{amount}"

    @charge.undo
    def refund(self, result: str) -> None:
        pass

    @charge.compensate
    def alert(self, error: Exception) -> None:
        pass


class Line(Reactor):
    item = Input()

    @step
    def ship(self, item: int) -> int | Skip[int] | Halt:
        return Skip(item) if item else Halt("nothing")


class Checkout(Reactor):
    order_id = Input(schema={"type": "string"})
    lines = Input(default=[])
    returns = "done"
    max_concurrency = 4

    @step
    def quote(self, order_id: str) -> Quote:
        return Quote(total=1.0)

    payment = compose(Payment, inputs={"amount": result("quote", "total")})
    shipped = map_(Line, over="lines", fail_fast=False, wait_for="payment")

    @interrupt(schema=schemas.confirmation(), correlation_id=lambda order_id: order_id)
    def approval(self, quote: Quote) -> dict[str, Any]:
        return {"total": quote.total}

    @step(args={"who": input("order_id"), "note": value("n")}, wait_for=("approval",))
    def done(self, who: str, note: str, shipped: MapResult) -> str:
        return who + note + str(len(shipped.successes))


def approve(pending: PendingInterrupt) -> dict[str, bool] | None:
    return {"approved": True} if pending.step == "approval" else None


def use() -> None:
    configure(storage=MemoryStorage(), clock=FakeClock())
    ex: Execution = Checkout.run(order_id="o-1", interrupt_handler=approve)
    if ex.status is Status.PAUSED:
        ex = ex.resume({"approved": True})
        ex = Checkout.resume(ex.id, {"approved": True}, step="approval")
        ex = Checkout.resume_by_correlation_id("o-1", {"approved": True})
    found: Execution = Checkout.find(ex.id)
    failure = found.error
    if failure is not None:
        print(failure.step, failure.type, [f.kind for f in failure.rollback_failures])
    print(Checkout.mermaid(), found.results, found.result)
    Checkout.undo(ex.id, principal="ann")
    Checkout.cancel(ex.id, reason="x", principal="ann")
    held = Checkout.run(order_id="o-3", breakpoints=["before:done"])
    held = Checkout.resume(held.id, None, step="before:done", update={}, principal="ops")
    Checkout.suspend(held.id, "maintenance")
    entries: tuple[TraceEntry, ...] = held.trace
    print([(e.event, e.step, e.time, e.attempt, e.principal) for e in entries])
    print([p.kind for p in held.interrupts])


async def use_async() -> None:
    ex = await Checkout.arun(order_id="o-2")
    ex = await ex.aresume({"approved": True})
    ex = await Checkout.afind(ex.id)
    await Checkout.acancel(ex.id)
    await Checkout.asuspend(ex.id, principal="ops")
