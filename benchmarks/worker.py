"""Worker throughput: active interrupt timeouts fired per second by 1 and by 2 workers,
and Redis memory per paused execution.

For each run, 10,000 executions of a tiny reactor (one step with an undo, then an
interrupt with an active timeout) pause against a throwaway redis-server. They are
created with a clock an hour behind, so every deadline is already past; worker processes
(``Worker.run_once``, burst mode) are then released together and fire them all: undo the
step, fail the execution. The rate is what they fired over the time from the first
worker's start to the last one's end. Memory is Redis ``used_memory`` after creating the
paused executions minus before, over their number.

    python benchmarks/worker.py [--count N] [--concurrency N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import time
from typing import Any

import redis
import structlog

from reactor import Reactor, RedisStorage, configure, interrupt, step
from reactor.worker import Worker

from _redis import throwaway_redis


class Tiny(Reactor):
    """Hold something, then wait for a reply that never comes."""

    # Both this script and its worker subprocesses run it as __main__: a fixed name lets
    # them find the class in the registry without importing anything.
    name = "benchmarks.worker.Tiny"

    @step
    async def hold(self) -> int:
        return 1

    @hold.undo
    async def release(self) -> None:
        return None

    reply = interrupt(timeout=60, strategy="active", wait_for="hold")


async def _create(url: str, count: int) -> None:
    storage = RedisStorage.from_url(url)
    # An hour behind: every deadline (reached + 60 s) is already past in real time.
    configure(storage=storage, clock=lambda: time.time() - 3600)
    gate = asyncio.Semaphore(50)  # one loop's Redis pool allows 100 connections

    async def one() -> None:
        async with gate:
            execution = await Tiny.arun()
            assert execution.paused

    try:
        await asyncio.gather(*(one() for _ in range(count)))
    finally:
        await storage.aclose()


async def _work(url: str, concurrency: int) -> dict[str, Any]:
    storage = RedisStorage.from_url(url)
    configure(storage=storage)
    worker = Worker(storage=storage, concurrency=concurrency)
    try:
        await storage.due(time.time(), limit=1)  # connect before the clock starts
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        start = time.time()
        fired = await worker.run_once()
        return {"fired": fired, "start": start, "end": time.time()}
    finally:
        await storage.aclose()


def _fire(url: str, workers: int, concurrency: int) -> tuple[int, float]:
    """Release ``workers`` processes on what is due; (fired, seconds)."""
    command = [sys.executable, __file__, "--serve", url, "--concurrency", str(concurrency)]
    processes = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    reports = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        assert process.returncode == 0, out
        reports.append(json.loads(out.splitlines()[-1]))
    fired = sum(report["fired"] for report in reports)
    seconds = max(r["end"] for r in reports) - min(r["start"] for r in reports)
    return fired, seconds


def _used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16, help="actions at once per worker")
    parser.add_argument("--serve", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Per-action log lines (timeouts log warnings) would measure the terminal; errors show.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR))
    if args.serve:
        print(json.dumps(asyncio.run(_work(args.serve, args.concurrency))))
        return

    print(f"{args.count:,} paused executions, {args.concurrency} actions at once per worker")
    with throwaway_redis() as url, redis.Redis.from_url(url) as client:
        for workers in (1, 2):
            client.flushall()
            before = _used_memory(client)
            started = time.perf_counter()
            asyncio.run(_create(url, args.count))
            created = time.perf_counter() - started
            per_execution = (_used_memory(client) - before) / args.count
            fired, seconds = _fire(url, workers, args.concurrency)
            assert fired == args.count, f"fired {fired} of {args.count}"
            assert client.zcard(RedisStorage.from_url(url).keys.deadlines) == 0
            print(
                f"{workers} worker{'s' if workers > 1 else ' '}: "
                f"{fired / seconds:8,.0f} timeouts fired/s  ({fired:,} in {seconds:.2f} s; "
                f"created in {created:.1f} s, {per_execution:,.0f} B of Redis per paused execution)"
            )


if __name__ == "__main__":
    main()
