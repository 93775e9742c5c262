"""This tree against an earlier commit, side by side: engine overhead per step and the
memory-store pause/resume cycle, in fresh processes, interleaved over several rounds.

The earlier commit is checked out into a temporary git worktree; each round runs one
process per tree and per measurement, alternating which tree goes first, so a machine
that slows down or speeds up affects both alike. Prints the median of each tree and of
the per-round ratios, with the spread.

    python benchmarks/compare.py [--base REV] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs inside the tree under test (its benchmarks/ on sys.path): µs per step of overhead
# for the linear 10-step reactor, and µs per memory-store pause/resume cycle.
_PROBE = """
import json, sys, time
sys.path.insert(0, "benchmarks")
from reactor import MemoryStorage, configure
configure(storage=MemoryStorage(retention=1.0))
import engine, interrupts

def best(fn, runs, rounds=5):
    fn()
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(runs):
            fn()
        timings.append((time.perf_counter() - start) / runs * 1e6)
    return min(timings)

floor = best(engine.plain, 20000)
run = best(engine.Linear.run, 2000)
cycle = best(interrupts.cycle, 500)
print(json.dumps({"step": (run - floor) / engine.STEPS, "cycle": cycle}))
"""


def _measure(tree: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=tree, env=env, check=True, capture_output=True
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD~1", help="the earlier commit (default HEAD~1)")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "base"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(base), args.base],
            check=True,
        )
        try:
            rows: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
            for turn in range(args.rounds):
                order = [("base", base), ("this", ROOT)]
                for name, tree in order if turn % 2 else reversed(order):
                    rows[name].append(_measure(tree))
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], check=True
            )
    print(f"this tree against {args.base}, {args.rounds} interleaved rounds (fresh processes)")
    print(f"{'':34}{args.base:>14}{'this tree':>12}{'ratio':>8}   ratio range")
    for key, label in (("step", "engine overhead, µs/step"), ("cycle", "memory cycle, µs")):
        before = [r[key] for r in rows["base"]]
        after = [r[key] for r in rows["this"]]
        ratios = [a / b for a, b in zip(after, before, strict=True)]
        print(
            f"{label:34}{statistics.median(before):14.1f}{statistics.median(after):12.1f}"
            f"{statistics.median(ratios):8.2f}   {min(ratios):.2f}-{max(ratios):.2f}"
        )
    print("targets: overhead < 15 µs/step, memory cycle < 300 µs, neither worse than before")


if __name__ == "__main__":
    main()
