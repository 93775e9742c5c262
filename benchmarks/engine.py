"""Engine overhead: a linear 10-step reactor run to completion on the memory store.

Prints microseconds per run and per step for the reactor and, measured in the same
run, for a plain Python function calling the same 10 functions (the floor). The
target is under 15 µs of overhead per step.

    python benchmarks/engine.py [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable
from typing import Any

from reactor import MemoryStorage, Reactor, configure, step

STEPS = 10


def work(x: int) -> int:
    return x + 1


class Linear(Reactor):
    @step
    def s0(self) -> int:
        return work(0)

    @step
    def s1(self, s0: int) -> int:
        return work(s0)

    @step
    def s2(self, s1: int) -> int:
        return work(s1)

    @step
    def s3(self, s2: int) -> int:
        return work(s2)

    @step
    def s4(self, s3: int) -> int:
        return work(s3)

    @step
    def s5(self, s4: int) -> int:
        return work(s4)

    @step
    def s6(self, s5: int) -> int:
        return work(s5)

    @step
    def s7(self, s6: int) -> int:
        return work(s6)

    @step
    def s8(self, s7: int) -> int:
        return work(s7)

    @step
    def s9(self, s8: int) -> int:
        return work(s8)


class LinearAsync(Reactor):
    @step
    async def s0(self) -> int:
        return work(0)

    @step
    async def s1(self, s0: int) -> int:
        return work(s0)

    @step
    async def s2(self, s1: int) -> int:
        return work(s1)

    @step
    async def s3(self, s2: int) -> int:
        return work(s2)

    @step
    async def s4(self, s3: int) -> int:
        return work(s3)

    @step
    async def s5(self, s4: int) -> int:
        return work(s4)

    @step
    async def s6(self, s5: int) -> int:
        return work(s5)

    @step
    async def s7(self, s6: int) -> int:
        return work(s6)

    @step
    async def s8(self, s7: int) -> int:
        return work(s7)

    @step
    async def s9(self, s8: int) -> int:
        return work(s8)


def plain() -> int:
    x = work(0)
    for _ in range(STEPS - 1):
        x = work(x)
    return x


def per_call(fn: Callable[[], Any], runs: int) -> float:
    """Best of 5 rounds, in microseconds per call."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(runs):
            fn()
        best = min(best, (time.perf_counter() - start) / runs)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args()
    configure(storage=MemoryStorage(retention=1.0))
    assert Linear.run().result == STEPS
    loop = asyncio.new_event_loop()

    floor = per_call(plain, args.runs * 10)
    sync = per_call(Linear.run, args.runs)
    run_async = per_call(lambda: loop.run_until_complete(LinearAsync.arun()), args.runs)
    print(f"linear {STEPS}-step reactor, memory store, best of 5 x {args.runs} runs")
    print(f"{'':24}{'µs/run':>10}{'µs/step':>10}{'overhead µs/step':>18}{'x floor':>10}")
    print(f"{'plain function (floor)':24}{floor:10.1f}{floor / STEPS:10.2f}{'':>18}{1.0:10.1f}")
    for label, value in (("Reactor.run (sync)", sync), ("await Reactor.arun", run_async)):
        overhead = (value - floor) / STEPS
        print(f"{label:24}{value:10.1f}{value / STEPS:10.2f}{overhead:18.2f}{value / floor:10.1f}")
    print("target: overhead under 15 µs per step")


if __name__ == "__main__":
    main()
