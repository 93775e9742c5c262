"""Exactly-once resume under real concurrency: threads and processes against real Redis,
standalone and a local Redis Cluster."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from reactor import AlreadyResumed, configure
from reactor.storage import RedisStorage

from conftest import reactor_using

TRIALS = 50
THREADS = 4
PROCESSES = 4


def attempt(execution_id: str, barrier: Any) -> str:
    """One resumer: wait for everyone, resume, report what happened."""
    from exactly_once_app import Once

    barrier.wait(timeout=30)
    try:
        ex = Once.resume(execution_id, {"approved": True}, step="approval")
    except AlreadyResumed:
        return "already"
    except Exception as exc:  # reported, then asserted on by the test
        return f"error {type(exc).__name__}: {exc}"
    return "accepted" if ex.completed else f"accepted but {ex.status.value}"


def resumer_process(url: str, cluster: bool, barrier: Any, jobs: Any, results: Any) -> None:
    configure(storage=RedisStorage.from_url(url, cluster=cluster))
    while (execution_id := jobs.get()) is not None:
        results.put(attempt(execution_id, barrier))


@pytest.fixture(params=["redis", "cluster"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    """The URL of the suite's redis-server, then of its local Redis Cluster; reactors of
    this process store there meanwhile."""
    cluster = request.param == "cluster"
    url = request.getfixturevalue("cluster_url" if cluster else "redis_url")
    with reactor_using(RedisStorage.from_url(url, cluster=cluster)):
        yield url, cluster


@pytest.fixture
def processes(backend: tuple[str, bool]) -> Iterator[tuple[Any, list[Any], Any]]:
    """Four resumer processes (spawned: no state inherited), fed one id per trial."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(THREADS + PROCESSES)
    jobs = [context.Queue() for _ in range(PROCESSES)]
    results = context.Queue()
    workers = [
        context.Process(target=resumer_process, args=(*backend, barrier, queue, results))
        for queue in jobs
    ]
    for worker in workers:
        worker.start()
    yield barrier, jobs, results
    for queue in jobs:
        queue.put(None)
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0


@pytest.mark.slow
def test_one_of_eight_concurrent_resumers_wins_and_downstream_runs_once(
    backend: tuple[str, bool], processes: tuple[Any, list[Any], Any]
) -> None:
    from exactly_once_app import Once

    barrier, jobs, results = processes
    url, cluster = backend
    client_class = redis.RedisCluster if cluster else redis.Redis
    client = client_class.from_url(url, decode_responses=True)
    for _ in range(TRIALS):
        ex = Once.run()
        assert ex.paused
        for queue in jobs:
            queue.put(ex.id)
        outcomes: list[str] = []
        threads = [
            threading.Thread(target=lambda i=ex.id, out=outcomes: out.append(attempt(i, barrier)))
            for _ in range(THREADS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        outcomes += [results.get(timeout=60) for _ in range(PROCESSES)]

        assert sorted(outcomes) == ["accepted"] + ["already"] * 7, outcomes
        assert client.get(f"ran:{ex.id}:downstream") == "1"
        assert client.get(f"ran:{ex.id}:after") == "1"
        assert Once.find(ex.id).completed
    client.close()
