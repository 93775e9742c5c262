"""map_ scaling: a map over 1,000 and 10,000 items of a 3-step element reactor, on the
memory store. Time and peak memory should grow linearly: the ratios printed for 10x
the items should be close to 10.

Two element reactors: one with ``async def`` steps (the engine alone) and one with
``def`` steps, which run on worker threads when elements run concurrently (so the
thread pool's cost is included).

    python benchmarks/map.py
"""

from __future__ import annotations

import gc
import time
import tracemalloc

from reactor import Input, MemoryStorage, Reactor, configure, map_, step


class AsyncElement(Reactor):
    item = Input()

    @step
    async def reserve(self, item: int) -> int:
        return item

    @step
    async def price(self, reserve: int) -> int:
        return reserve * 2

    @step
    async def label(self, price: int) -> str:
        return f"#{price}"


class SyncElement(Reactor):
    item = Input()

    @step
    def reserve(self, item: int) -> int:
        return item

    @step
    def price(self, reserve: int) -> int:
        return reserve * 2

    @step
    def label(self, price: int) -> str:
        return f"#{price}"


class AsyncBatch(Reactor):
    items = Input()

    each = map_(AsyncElement, over="items", item="item")


class SyncBatch(Reactor):
    items = Input()

    each = map_(SyncElement, over="items", item="item")


def measure(batch: type[Reactor], count: int, *, collect: bool = True) -> tuple[float, float]:
    """Seconds and peak MiB of one run over ``count`` items (time measured untraced).

    With ``collect=False`` the cyclic garbage collector is paused during the timed run, to
    tell the engine's own growth from the collector's full passes over a bigger heap.
    """
    items = list(range(count))
    gc.collect()
    if not collect:
        gc.disable()
    start = time.perf_counter()
    ex = batch.run(items=items)
    seconds = time.perf_counter() - start
    gc.enable()
    assert ex.completed and len(ex.result) == count and ex.result[-1] == f"#{2 * (count - 1)}"
    gc.collect()
    tracemalloc.start()
    batch.run(items=items)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak / 2**20


def main() -> None:
    configure(storage=MemoryStorage(retention=1.0))
    print("map_ over N items of a 3-step element reactor, memory store")
    for label, batch in (("async def steps", AsyncBatch), ("def steps (threads)", SyncBatch)):
        measure(batch, 100)  # warm up
        small_t, small_m = measure(batch, 1_000)
        large_t, large_m = measure(batch, 10_000)
        print(f"\n{label}")
        print(f"{'items':>8}{'seconds':>10}{'µs/item':>10}{'peak MiB':>10}")
        print(f"{1_000:8d}{small_t:10.3f}{small_t / 1_000 * 1e6:10.1f}{small_m:10.1f}")
        print(f"{10_000:8d}{large_t:10.3f}{large_t / 10_000 * 1e6:10.1f}{large_m:10.1f}")
        print(
            f"ratio for 10x items: time {large_t / small_t:.1f}x, "
            f"peak memory {large_m / small_m:.1f}x"
        )
        quiet_small, _ = measure(batch, 1_000, collect=False)
        quiet_large, _ = measure(batch, 10_000, collect=False)
        print(f"time ratio with the cyclic GC paused: {quiet_large / quiet_small:.1f}x")


if __name__ == "__main__":
    main()
