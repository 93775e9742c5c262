"""Durable pause/resume cycle: a 10-step reactor with one interrupt, run -> paused ->
resumed by correlation id -> completed, on MemoryStorage and on RedisStorage with eager
durability (each step's completion recorded before the next step starts).

Next to it, in the same process, measured in interleaved rounds:

- the Redis round trips per cycle, counted;
- the floor: as many round trips done by hand with plain sync redis-py commands (HSET of
  a body of the same size, HGETALL, alternately) -- the least work that moves the same
  bytes the same number of times, though it could not make a state change atomic;
- for context, the library's own Lua scripts for the pause, lookup, claim and final
  writes called through bare redis-py.

A virtual machine's timings drift between processes and over seconds, so the whole
measurement runs in several fresh processes; the ratio reported is the median of the
ratios of every round, each round timing the library and the floor back to back.

Targets: memory cycle under 300 µs; Redis cycle at most 3x the floor.

    python benchmarks/interrupts.py [--processes N] [--rounds N] [--cycles N]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio

from reactor import MemoryStorage, Reactor, RedisStorage, configure, interrupt, step
from reactor.storage import _lua

from _redis import throwaway_redis

_ids = itertools.count()


class Approval(Reactor):
    @step
    def s0(self) -> int:
        return next(_ids)

    @step
    def s1(self, s0: int) -> int:
        return s0

    @step
    def s2(self, s1: int) -> int:
        return s1

    @step
    def s3(self, s2: int) -> int:
        return s2

    @step
    def s4(self, s3: int) -> int:
        return s3

    @interrupt(correlation_id=lambda s4: f"approve-{s4}", schema={"type": "object"})
    def wait(self, s4: int) -> dict[str, int]:
        return {"order": s4}

    @step
    def s5(self, wait: dict[str, Any], s4: int) -> int:
        return s4

    @step
    def s6(self, s5: int) -> int:
        return s5

    @step
    def s7(self, s6: int) -> int:
        return s6

    @step
    def s8(self, s7: int) -> int:
        return s7

    @step
    def s9(self, s8: int) -> int:
        return s8


def cycle() -> None:
    ex = Approval.run()
    done = Approval.resume_by_correlation_id(f"approve-{ex.results['s4']}", {"approved": True})
    assert done.completed, done


async def acycle() -> None:
    ex = await Approval.arun()
    done = await Approval.aresume_by_correlation_id(f"approve-{ex.results['s4']}", {"ok": 1})
    assert done.completed, done


def interleaved(
    candidates: dict[str, tuple[Callable[[], None], Callable[[], Any]]], runs: int, rounds: int
) -> list[dict[str, float]]:
    """µs per call of each candidate in every round. Within a round the candidates run
    back to back, in an order rotated from round to round, so that a noisy machine slows
    them alike. Each candidate is (setup, call)."""
    timings = []
    names = list(candidates)
    for turn in range(rounds):
        timing = {}
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            setup, fn = candidates[name]
            setup()
            start = time.perf_counter()
            for _ in range(runs):
                fn()
            timing[name] = (time.perf_counter() - start) / runs * 1e6
        timings.append(timing)
    return timings


class RoundTrips:
    """Counts commands sent on redis.asyncio connections (one round trip each: no pipelines)."""

    def __init__(self) -> None:
        self.count = 0
        self._original = redis.asyncio.Connection.send_packed_command

    def __enter__(self) -> RoundTrips:
        original = self._original

        async def counted(connection: redis.asyncio.Connection, *args: Any, **options: Any) -> Any:
            self.count += 1
            return await original(connection, *args, **options)

        redis.asyncio.Connection.send_packed_command = counted  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        redis.asyncio.Connection.send_packed_command = self._original  # type: ignore[method-assign]


def scripted_cycle(
    client: redis.asyncio.Redis, storage: RedisStorage, body: str
) -> Callable[[], Awaitable[None]]:
    """The same four atomic operations by hand: the library's Lua scripts called through
    bare redis-py (pause write, lookup by correlation id, claim, final write), so the
    difference to the library is the library's own work."""
    write = client.register_script(_lua.WRITE)
    lookup = client.register_script(_lua.LOAD_BY_CORRELATION)
    keys = storage.keys
    reactor = Approval.name
    common, constants = storage._written_by(reactor)
    counter = itertools.count()

    def values(execution_id: str, version: int, status: str, cids: list[str]) -> str:
        finished = status == "completed"
        lease = "" if finished or status == "paused" else "30"
        now = repr(time.time())
        fields = ["reactor", reactor, "status", status, "correlation_ids", json.dumps(cids)]
        token = f"{execution_id}-{version}"
        return json.dumps(
            [execution_id, version, now, now, finished, "", lease, token, False, *fields]
        )

    async def run() -> None:
        execution_id = f"hand-{next(counter)}"
        cid = f"hand-approve-{execution_id}"
        execution_key = keys.execution(execution_id)
        paused = await write(
            keys=[execution_key, *common.args, keys.early(reactor, cid)],
            args=[values(execution_id, 0, "paused", [cid]), body, *constants.args],
        )
        found = await lookup(
            keys=[keys.correlations(reactor), execution_key], args=[cid, execution_id]
        )
        claimed = await write(
            keys=[execution_key, *common.args],
            args=[values(execution_id, 1, "running", []), body, *constants.args],
        )
        done = await write(
            keys=[execution_key, *common.args],
            args=[values(execution_id, 2, "completed", []), body, *constants.args],
        )
        assert (paused[0], found[0], claimed[0], done[0]) == ("ok", "found", "ok", "ok")

    return run


def floor_cycle(client: redis.Redis, body: str, trips: int) -> Callable[[], None]:
    """The same number of round trips by hand, plain sync redis-py: write, read, ..."""

    def run() -> None:
        for i in range(trips):
            if i % 2:
                client.hgetall("floor:{x}")
            else:
                client.hset("floor:{x}", mapping={"body": body, "version": i})

    return run


def measure(cycles: int, rounds: int) -> dict[str, Any]:
    """Everything one process measures: round trips, body size, timings per round."""
    memory_storage = MemoryStorage(retention=1.0)
    with throwaway_redis() as url:
        redis_storage = RedisStorage.from_url(url, retention=1.0)
        configure(storage=redis_storage)
        cycle()  # loads the scripts
        with RoundTrips() as trips:
            cycle()
        ex = Approval.run()
        stored = asyncio.run(_body_size(url, ex.id))
        loop = asyncio.new_event_loop()
        client = redis.asyncio.Redis.from_url(url, decode_responses=True)
        plain = redis.Redis.from_url(url, decode_responses=True)
        floor_fn = floor_cycle(plain, "x" * stored, trips.count)
        scripted_fn = scripted_cycle(client, redis_storage, "x" * stored)
        loop.run_until_complete(scripted_fn())
        timings = interleaved(
            {
                "memory": (lambda: configure(storage=memory_storage), cycle),
                "floor": (lambda: None, floor_fn),
                "scripted": (lambda: None, lambda: loop.run_until_complete(scripted_fn())),
                "redis": (lambda: configure(storage=redis_storage), cycle),
            },
            cycles,
            rounds,
        )
        loop.run_until_complete(client.aclose())
        plain.close()
        loop.close()
    return {"trips": trips.count, "body": stored, "rounds": timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--cycles", type=int, default=150)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.cycles, args.rounds)))
        return

    command = [sys.executable, __file__, "--worker", f"--rounds={args.rounds}"]
    command.append(f"--cycles={args.cycles}")
    runs = [
        json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        for _ in range(args.processes)
    ]
    per_cycle = max(run["trips"] for run in runs)
    stored = runs[0]["body"]

    def best(name: str) -> float:
        """The median over the processes of each one's best round."""
        return statistics.median(min(r[name] for r in run["rounds"]) for run in runs)

    def ratios(run: dict[str, Any]) -> list[float]:
        return [r["redis"] / r["floor"] for r in run["rounds"]]

    every_round = [ratio for run in runs for ratio in ratios(run)]
    by_process = [statistics.median(ratios(run)) for run in runs]
    memory, floor, scripted, on_redis = (best(n) for n in ("memory", "floor", "scripted", "redis"))

    trips = f"{per_cycle} round trips"
    print("10-step reactor + 1 interrupt: run -> pause -> resume by correlation id -> complete")
    print(
        f"{args.processes} processes x {args.rounds} interleaved rounds x {args.cycles} cycles; "
        f"body {stored} bytes"
    )
    print()
    print(f"{'':44}{'µs/cycle':>10}   (median of the processes' best rounds)")
    print(f"{'MemoryStorage':44}{memory:10.1f}   target < 300 µs")
    print(f"{'RedisStorage (eager durability)':44}{on_redis:10.1f}   {per_cycle} round trips")
    print(f"{'floor: ' + trips + ' of plain sync HSET/HGETALL':44}{floor:10.1f}")
    print(f"{'context: pause/lookup/claim/finish scripts':44}{scripted:10.1f}")
    print(f"{'  (the library Lua scripts via bare redis-py)':44}")
    print()
    print(
        f"RedisStorage / floor: {statistics.median(every_round):.2f}x, the median of "
        f"{len(every_round)} rounds (target <= 3x)"
    )
    print(
        f"  per process: {', '.join(f'{ratio:.2f}x' for ratio in by_process)}; "
        f"middle half of the rounds: {_quartiles(every_round)}"
    )


def _quartiles(values: list[float]) -> str:
    low, _, high = statistics.quantiles(values, n=4)
    return f"{low:.2f}x-{high:.2f}x"


async def _body_size(url: str, execution_id: str) -> int:
    client = redis.asyncio.Redis.from_url(url, decode_responses=True)
    try:
        return len(await client.hget(f"reactor:{{exec:{execution_id}}}", "body") or "")
    finally:
        await client.aclose()


if __name__ == "__main__":
    main()
