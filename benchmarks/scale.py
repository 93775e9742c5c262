"""Scale: background runs on Celery workers, a map of ``def`` steps at 1k/10k/100k items,
and a burst of 1,000 concurrent runs on one Redis connection pool.

1. Completed 10-step runs per second with 1 and 2 Celery worker processes
   (``celery -A scale_app worker --pool=prefork -c 1`` each; broker and store on one
   throwaway redis-server): ``--runs`` executions are submitted while the workers do not
   consume, then timed from when they start consuming until the last one completed.
   Then a ``map_`` of ``--fanned`` 3-step elements with ``fan_out=500`` on 2 workers,
   against the same map run in-process (no task queue), both on Redis.
2. Time and peak traced memory (tracemalloc) of an in-process ``map_`` of a 3-step
   element reactor with ``def`` steps, memory store, at 1k/10k/100k items (targets: 10x
   items within 12x time and memory; peak < 2 KB per item).
3. 1,000 concurrent runs (``asyncio.gather`` of ``arun`` with idempotency keys, so each
   stores its execution at once) on Redis: wall time and the connections the server
   sees (``CLIENT LIST``), with the default pool bound (64) and with 10,000.

    python benchmarks/scale.py [--runs N] [--fanned N] [--skip-celery] [--largest N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import redis

from reactor import MemoryStorage, Reactor, RedisStorage, configure, step

from _redis import throwaway_redis
from map import SyncBatch, measure

HERE = Path(__file__).resolve().parent


def start_workers(url: str, workers: int) -> list[subprocess.Popen[bytes]]:
    """``workers`` Celery worker processes of ``scale_app`` (one child each)."""
    env = {
        **os.environ,
        "REACTOR_REDIS_URL": url,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
    }
    return [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "scale_app", "worker"),
                *("--pool=prefork", "-c", "1", "-n", f"bench{n}@%h", "-l", "WARNING"),
                *("--without-mingle", "--without-gossip", "--without-heartbeat"),
            ],
            cwd=HERE,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for n in range(workers)
    ]


def stop_workers(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


def celery_throughput(url: str, workers: int, runs: int) -> tuple[float, float]:
    """Submits per second from this process, and completed 10-step runs per second with
    ``workers`` Celery worker processes draining the queue they were submitted to."""
    client = redis.Redis.from_url(url)
    client.flushall()
    os.environ["REACTOR_REDIS_URL"] = url
    import scale_app  # the same app the workers import

    configure(storage=RedisStorage.from_url(url))
    processes = start_workers(url, workers)
    try:
        # Warm up: every worker has forked its child and loaded the scripts.
        for _ in range(4 * workers):
            scale_app.Ten.submit()
        while int(client.get("bench:completed") or 0) < 4 * workers:
            time.sleep(0.05)
        client.set("bench:completed", 0)
        # The workers stop consuming while the runs are submitted, so that the submitting
        # process does not share the two cores with them: the drain is timed alone.
        scale_app.app.control.cancel_consumer("celery", reply=True)
        start = time.perf_counter()
        for _ in range(runs):
            scale_app.Ten.submit()
        submits = runs / (time.perf_counter() - start)
        start = time.perf_counter()
        scale_app.app.control.add_consumer("celery", reply=True)
        while int(client.get("bench:completed") or 0) < runs:
            time.sleep(0.005)
        return submits, runs / (time.perf_counter() - start)
    finally:
        stop_workers(processes)


def fanned_map(url: str, count: int) -> tuple[float, float]:
    """Seconds of a map of ``count`` 3-step elements fanned out (500 at a time) on two
    Celery worker processes, and of the same map in this process; both on Redis."""
    redis.Redis.from_url(url).flushall()
    os.environ["REACTOR_REDIS_URL"] = url
    from reactor._dispatch import install_dispatcher, installed

    import scale_app

    configure(storage=RedisStorage.from_url(url))
    items = list(range(count))
    dispatcher = installed()
    install_dispatcher(None)
    try:
        start = time.perf_counter()
        assert scale_app.Fanned.run(items=items).completed
        here = time.perf_counter() - start
    finally:
        install_dispatcher(dispatcher)
    processes = start_workers(url, 2)
    try:
        scale_app.Fanned.run(items=list(range(10)))  # warm up: the workers are ready
        start = time.perf_counter()
        ex = scale_app.Fanned.run(items=items)
        while not (ex := scale_app.Fanned.find(ex.id)).status.finished:
            time.sleep(0.05)
        fanned = time.perf_counter() - start
        assert ex.completed and ex.result == [f"#{2 * n}" for n in items]
        return fanned, here
    finally:
        stop_workers(processes)


class Quick(Reactor):
    """One async step."""

    name = "benchmarks.scale.Quick"

    @step
    async def one(self) -> int:
        await asyncio.sleep(0.001)
        return 1


def burst(url: str, max_connections: int, count: int = 1_000) -> tuple[float, int]:
    """Seconds for ``count`` concurrent runs, and the connections the server then sees."""
    probe = redis.Redis.from_url(url)
    probe.flushall()
    before = len(probe.client_list())
    storage = RedisStorage.from_url(url, max_connections=max_connections)
    Quick.storage = storage

    async def main() -> tuple[float, int]:
        await Quick.arun(idempotency_key="warm")
        start = time.perf_counter()
        done = await asyncio.gather(*(Quick.arun(idempotency_key=f"k{n}") for n in range(count)))
        seconds = time.perf_counter() - start
        assert all(ex.completed for ex in done)
        opened = len(probe.client_list()) - before
        await storage.aclose()
        return seconds, opened

    try:
        return asyncio.run(main())
    finally:
        Quick.storage = None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=2_000)
    parser.add_argument("--skip-celery", action="store_true")
    parser.add_argument("--largest", type=int, default=100_000)
    parser.add_argument("--fanned", type=int, default=10_000)
    options = parser.parse_args()
    with throwaway_redis() as url:
        if not options.skip_celery:
            print(f"10-step runs submitted to Celery ({options.runs} runs)")
            for workers in (1, 2):
                submits, rate = celery_throughput(url, workers, options.runs)
                print(
                    f"  {workers} worker process(es): {rate:6.0f} completed runs/s "
                    f"(submitted at {submits:.0f}/s from one process)"
                )
            fanned, here = fanned_map(url, options.fanned)
            print(
                f"\nmap_ of {options.fanned:,} 3-step elements on Redis: fanned out "
                f"(fan_out=500) on 2 Celery workers {fanned:.1f} s, in-process {here:.1f} s"
            )
        print("\n1,000 concurrent runs on Redis, one event loop")
        for bound in (64, 10_000):
            seconds, opened = burst(url, bound)
            print(f"  max_connections={bound:<6}: {seconds:.2f} s, {opened} connections")
    configure(storage=MemoryStorage(retention=1.0))
    print("\nmap_ of def steps (3-step elements), memory store")
    print(f"{'items':>8}{'seconds':>10}{'peak MiB':>10}{'B/item':>8}")
    measure(SyncBatch, 100)  # warm up
    previous: tuple[float, float] | None = None
    count = 1_000
    while count <= options.largest:
        # The best of three below 100k: a run of 0.1 s varies by half from run to run.
        seconds, peak = min(measure(SyncBatch, count) for _ in range(3 if count < 100_000 else 1))
        growth = ""
        if previous is not None:
            growth = f"   x{seconds / previous[0]:.1f} time, x{peak / previous[1]:.1f} memory"
        print(f"{count:8d}{seconds:10.2f}{peak:10.1f}{peak * 2**20 / count:8.0f}{growth}")
        previous = (seconds, peak)
        count *= 10


if __name__ == "__main__":
    main()
