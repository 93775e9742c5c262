"""Engine overhead: a linear 10-step reactor run to completion on the memory store.

Prints microseconds per run and per step for the reactor and, measured in the same
run, for a plain Python function calling the same 10 functions (the floor). The
target is under 15 µs of overhead per step.

OpenTelemetry changes the engine's cost when it is importable, so by default the
benchmark runs three times, each in a process of its own: with ``opentelemetry`` made
unimportable (``--no-otel``: an installation without the ``otel`` extra), with it
importable and no provider configured (``--otel``: the API's no-op default), and with the
SDK's tracer and meter providers configured but nothing exporting (``--otel-sdk``: spans
and metrics recorded, then dropped); it prints what each adds per step.

    python benchmarks/engine.py [--runs N] [--no-otel | --otel | --otel-sdk]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.abc
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any


class _NoOpenTelemetry(importlib.abc.MetaPathFinder):
    """Makes ``opentelemetry`` unimportable, as on an installation without the extra."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: Any = None) -> None:
        if fullname == "opentelemetry" or fullname.startswith("opentelemetry."):
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked: --no-otel)")


if "--no-otel" in sys.argv:
    sys.meta_path.insert(0, _NoOpenTelemetry())
elif "--otel-sdk" in sys.argv:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    trace.set_tracer_provider(TracerProvider())
    metrics.set_meter_provider(MeterProvider())

from reactor import MemoryStorage, Reactor, _otel, configure, step  # noqa: E402

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


def compare(runs: int) -> None:
    """Run the benchmark without and with OpenTelemetry, each in a process of its own."""
    overheads: dict[str, list[float]] = {}
    for flag in ("--no-otel", "--otel", "--otel-sdk"):
        out = subprocess.run(
            [sys.executable, __file__, "--runs", str(runs), flag],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        print(out)
        overheads[flag] = [
            float(m.group(1))
            for m in re.finditer(r"^(?:Reactor|await).*?([\d.]+)\s+[\d.]+$", out, re.M)
        ]
    for flag, label in (
        ("--otel", "OpenTelemetry importable, no provider configured"),
        ("--otel-sdk", "OpenTelemetry SDK providers, nothing exporting"),
    ):
        added = [b - a for a, b in zip(overheads["--no-otel"], overheads[flag], strict=True)]
        print(
            f"{label}: "
            + ", ".join(
                f"{face} {x:+.2f} µs/step" for face, x in zip(("sync", "async"), added, strict=True)
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--no-otel", action="store_true", help="opentelemetry made unimportable")
    mode.add_argument("--otel", action="store_true", help="opentelemetry importable (no-op)")
    mode.add_argument("--otel-sdk", action="store_true", help="SDK providers, no exporter")
    args = parser.parse_args()
    if not (args.no_otel or args.otel or args.otel_sdk):
        compare(args.runs)
        return
    configure(storage=MemoryStorage(retention=1.0))
    assert Linear.run().result == STEPS
    loop = asyncio.new_event_loop()

    floor = per_call(plain, args.runs * 10)
    sync = per_call(Linear.run, args.runs)
    run_async = per_call(lambda: loop.run_until_complete(LinearAsync.arun()), args.runs)
    otel = (
        ("SDK providers, nothing exporting" if args.otel_sdk else "importable, no provider")
        if _otel.AVAILABLE
        else "not importable"
    )
    print(f"linear {STEPS}-step reactor, memory store, best of 5 x {args.runs} runs")
    print(f"OpenTelemetry: {otel}")
    print(f"{'':24}{'µs/run':>10}{'µs/step':>10}{'overhead µs/step':>18}{'x floor':>10}")
    print(f"{'plain function (floor)':24}{floor:10.1f}{floor / STEPS:10.2f}{'':>18}{1.0:10.1f}")
    for label, value in (("Reactor.run (sync)", sync), ("await Reactor.arun", run_async)):
        overhead = (value - floor) / STEPS
        print(f"{label:24}{value:10.1f}{value / STEPS:10.2f}{overhead:18.2f}{value / floor:10.1f}")
    print("target: overhead under 15 µs per step")


if __name__ == "__main__":
    main()
