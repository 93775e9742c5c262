"""Fixtures shared by the whole suite.

- ``redis_server`` (session): a private ``redis-server`` on a free port, never the
  shared 6379, with persistence off; ``.kill()``/``.restart()`` drive fault tests.
- ``redis_url``: that server's URL, flushed before each test.
- ``aof_redis``: a ``redis-server`` of the test's own with AOF on (every write fsynced),
  so ``.kill()`` (SIGKILL) then ``.restart()`` keeps the data.
- ``proxy``: a :class:`faults.Proxy` in front of the suite's server (flushed), to stall
  and cut the link; point a storage at ``proxy.url``.
- ``calls``: a :class:`faults.Calls` on the suite's server, counting calls made in any
  process. See :mod:`faults` for the whole fault-injection kit.
- ``storage``: a fresh :class:`MemoryStorage` or :class:`RedisStorage`, parametrized
  with ids ``memory``, ``redis`` and ``cluster`` (``RedisStorage(cluster=True)`` on a
  local three-master Redis Cluster, :mod:`cluster`); a module may override
  ``storage_options`` (keyword arguments for the constructor, e.g. a fake ``clock``).
- ``redis_cluster`` (session) / ``cluster_url``: that cluster, and its URL with every
  master flushed before the test.

``async def`` tests are supported without pytest-asyncio: each runs on a fresh event
loop, and the storages it received are closed on that loop afterwards (RedisStorage
keeps one client per loop, which must be closed on the loop it ran on).

Markers are applied here, so ``pytest -m "not redis"`` runs on a machine without
redis-server: ``redis`` on every test that uses ``redis_server`` (directly or through
``redis_url``, ``shared``, ...) or the ``redis`` parameter of ``storage`` or
``reactor_backend``. ``slow`` is set by hand on tests that take a second or more.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from reactor import Status, configure, get_config
from reactor._body import Body, TraceText, Trees, dump_body
from reactor._executor import Run, Stop, suspend_all
from reactor._sync import run_sync
from reactor.storage import MemoryStorage, RedisStorage, Storage

from apps import runs
from cluster import LocalCluster
from faults import Calls, Proxy, RedisServer

# Parametrized fixtures whose "redis" parameter looks the server up at run time (so it
# is not in the test's fixture closure).
_REDIS_PARAMETRIZED = ("storage", "reactor_backend")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(item, "callspec", None)
        chosen = params.params if params is not None else {}
        if {"redis_server", "redis_cluster"} & set(getattr(item, "fixturenames", ())) or any(
            chosen.get(name) in ("redis", "cluster") for name in _REDIS_PARAMETRIZED
        ):
            item.add_marker(pytest.mark.redis)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kwargs = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}

    async def run() -> None:
        try:
            await pyfuncitem.obj(**kwargs)
        finally:
            for value in kwargs.values():
                if isinstance(value, Storage):
                    await value.aclose()

    asyncio.run(run())
    return True


def _body_of_record(run: Run) -> str:
    """The body of ``run`` made the typed way: its :class:`Body` record, converted by
    cattrs (what ``Run.body`` builds directly, for speed)."""
    trace, trace_length = run.trace.stored()
    return dump_body(
        Body(
            owner=run.owner,
            fence=run.fence,
            inputs=run.inputs_tree,
            results=Trees(run.trees),
            undo=run.rolling.left(run.undo_stack) if run.rolling else run.undo_stack,
            pending={p: v.stored() for p, v in run.pending.items()},
            resolved=sorted(run.resolved),
            retired=run.retired,
            frames=Trees(run.frame_trees),
            element_failures=run.element_failures,
            error=run.error,
            halt_reason=run.stop_reason if run.stop is Stop.HALTED else None,
            rollback=run.rollback_state,
            undo_request=run.stop_reason
            if run.stop is Stop.CANCELLED and run.undo_on_cancel
            else None,
            idempotency_key=run.idempotency_key,
            version=run.plan.version,
            returns=run.plan.returns,
            fan_out=run.fan_out,
            parent=run.parent,
            suspend_request=run.pause_request,
            breakpoints=run.run_breakpoints,
            child_attempts=run.child_attempts,
            span_context=run.span_context,
            trace=TraceText(trace),
            trace_length=trace_length,
        )
    )


@pytest.fixture(autouse=True, scope="session")
def _bodies_match_their_record() -> Iterator[None]:
    """Every body the engine writes, in every test, is the text its typed record makes:
    ``Run.body`` builds it directly and must not drift from :class:`Body`."""
    built = Run.body

    def checked(run: Run) -> str:
        text = built(run)
        assert text == _body_of_record(run), "Run.body() differs from its Body record"
        return text

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Run, "body", checked)
        yield


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_url(redis_cluster: LocalCluster) -> str:
    redis_cluster.flush()
    return redis_cluster.url


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, aof=True)
    yield server
    server.stop()


@pytest.fixture
def proxy(redis_server: RedisServer, redis_url: str) -> Iterator[Proxy]:
    proxy = Proxy(redis_server.port)
    yield proxy
    proxy.close()


@pytest.fixture
def calls(redis_url: str) -> Iterator[Calls]:
    counts = Calls(redis_url)
    yield counts
    counts.close()


@pytest.fixture
def storage_options() -> dict[str, Any]:
    return {}


@pytest.fixture(params=["memory", "redis", "cluster"])
def storage(request: pytest.FixtureRequest, storage_options: dict[str, Any]) -> Storage:
    if request.param == "memory":
        return MemoryStorage(**storage_options)
    if request.param == "cluster":
        url = request.getfixturevalue("cluster_url")
        return RedisStorage.from_url(url, prefix="test", cluster=True, **storage_options)
    # Looked up only here, so memory-only runs need no redis-server.
    url = request.getfixturevalue("redis_url")
    return RedisStorage.from_url(url, prefix="test", **storage_options)


@contextlib.contextmanager
def reactor_using(storage: Storage) -> Iterator[Storage]:
    """Make ``storage`` the default of every reactor for the duration of the block."""
    saved = get_config().storage
    configure(storage=storage)
    try:
        yield storage
    finally:
        configure(storage=saved)
        run_sync(storage.aclose())


@pytest.fixture
def redis_reactor(redis_url: str) -> Iterator[Storage]:
    """Reactors keep their executions on the suite's redis-server during the test."""
    with reactor_using(RedisStorage.from_url(redis_url)) as storage:
        yield storage


@pytest.fixture(params=["memory", "redis"])
def reactor_backend(request: pytest.FixtureRequest) -> Iterator[Storage]:
    """Reactors keep their executions in MemoryStorage, then on the suite's redis-server."""
    chosen: Storage = (
        MemoryStorage()
        if request.param == "memory"
        else RedisStorage.from_url(request.getfixturevalue("redis_url"), prefix="t")
    )
    with reactor_using(chosen) as storage:
        yield storage


@pytest.fixture
def shared(redis_reactor: Storage, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Storage:
    """Reactors on the suite's redis under the default prefix, as subprocesses given
    ``$REACTOR_REDIS_URL`` use it; the test apps' step counters live there too."""
    monkeypatch.setenv("REACTOR_REDIS_URL", redis_url)
    return redis_reactor


T = TypeVar("T")


def wait_until(probe: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll ``probe`` until it returns something true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


async def left_running(reactor: Any, execution_id: str, storage: Storage) -> None:
    """Leave an execution of ``reactor`` running with an expired lease after its step
    ``first``, as a graceful stop of its process would. (On a loop of its own: the sync
    facade's would run the steps inline, blocking this watch.)"""
    try:
        run = asyncio.ensure_future(reactor.arun(execution_id=execution_id))
        while not runs(execution_id, "first"):
            await asyncio.sleep(0.01)
        suspend_all()
        assert (await run).status is Status.RUNNING
    finally:
        await storage.aclose()
