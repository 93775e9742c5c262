"""Serving the interrupt inbox with 10,000 pending interrupts in Redis.

10,000 executions of an expense-approval reactor pause at their approval interrupt (run
concurrently, in batches). Then, in rounds, the first page of the inbox (``GET /``, HTML,
25 executions) and of ``GET /api/interrupts`` (JSON, 50 executions) is served by the ASGI
app in-process (``httpx.ASGITransport``: no network, so the time is the server's: listing,
loading each execution, authorizing, rendering). The median and the spread over rounds are
printed.

Target: first page under 100 ms. Listing reads one index page, never the whole keyspace.

    python benchmarks/inbox.py [--executions N] [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import httpx

from reactor import Input, Reactor, RedisStorage, configure, interrupt, schemas, step
from reactor.web import create_app

from _redis import throwaway_redis


class Expense(Reactor):
    name = "bench.expense"

    employee = Input(schema={"type": "string"})
    amount = Input(schema={"type": "number"})

    @step
    def hold_budget(self, employee: str, amount: float) -> str:
        return f"hold-{employee}-{amount}"

    @interrupt(schema=schemas.confirmation(), timeout=7 * 24 * 3600)
    def manager_approval(self, employee: str, amount: float) -> dict[str, Any]:
        return {"title": f"{employee}: {amount:.2f} EUR", "employee": employee, "amount": amount}

    @step
    def book(self, manager_approval: dict[str, Any], hold_budget: str) -> str:
        return hold_budget


async def fill(count: int, batch: int = 50) -> float:
    started = time.perf_counter()
    for first in range(0, count, batch):
        await asyncio.gather(
            *(
                Expense.arun(employee=f"e{n}", amount=float(n))
                for n in range(first, min(first + batch, count))
            )
        )
    return time.perf_counter() - started


async def measure(client: httpx.AsyncClient, url: str, rounds: int) -> list[float]:
    await client.get(url)  # warm-up: templates compiled, connections open
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = await client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return timings


def report(label: str, timings: list[float]) -> None:
    ordered = sorted(timings)
    p10, p90 = ordered[len(ordered) // 10], ordered[(len(ordered) * 9) // 10]
    print(
        f"{label:<28} median {statistics.median(timings):6.1f} ms   "
        f"p10 {p10:6.1f}   p90 {p90:6.1f}   min {ordered[0]:6.1f}   max {ordered[-1]:6.1f}"
    )


async def main(executions: int, rounds: int) -> None:
    with throwaway_redis() as url:
        storage = RedisStorage.from_url(url)
        configure(storage=storage)
        seconds = await fill(executions)
        print(f"{executions} paused executions created in {seconds:.1f} s")
        app = create_app(authorize=lambda request, action, execution: "bench", reactors=[Expense])
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            page = (await client.get("/api/interrupts")).json()
            assert len(page["interrupts"]) == 50 and page["next_cursor"]
            report("GET / (inbox, 25)", await measure(client, "/", rounds))
            report("GET /api/interrupts (50)", await measure(client, "/api/interrupts", rounds))
        await storage.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    options = parser.parse_args()
    asyncio.run(main(options.executions, options.rounds))
