"""Fault injection for the suite: break the link, the server or a process on cue.

Everything here works from sync and async tests alike (nothing runs on the test's own
event loop), and across processes (counts live in Redis).

- :class:`Proxy` -- a loopback TCP proxy in front of a Redis server, on a thread of its
  own. ``stall()`` holds the bytes of one or both directions (``resume()`` lets them
  through), ``cut()`` closes every live connection at once (bytes held are lost) and
  keeps accepting new ones, ``accepted``/``live`` count connections. Point a storage at
  ``proxy.url``. Fixture ``proxy`` (conftest): one in front of the suite's server.

  A lost reply, for instance: ``stall(to_client=True)``, send a write, wait until the
  server shows it applied, ``cut()``, ``resume()``: the client never saw the reply.

- :class:`RedisServer` -- a ``redis-server`` process of the test session's own, never
  the shared 6379. ``kill()`` is SIGKILL (a crash), ``restart()`` starts it again on the
  same port. With ``aof=True`` (``--appendonly yes --appendfsync always``) every write
  acknowledged survives a kill. Fixtures (conftest): ``redis_server`` (session, nothing
  persisted) and ``aof_redis`` (one per test, AOF on).

- :class:`Child` -- a Python child process (``python -u -c code``) whose output lines
  are watched: ``wait_for(marker)``, ``kill_when(marker)``, ``kill_when_count(calls,
  name, n)`` SIGKILL it at a chosen moment. It can import ``reactor``, ``apps`` and
  this module (``PYTHONPATH``).

- :class:`Calls` -- counts calls across processes in Redis: ``hit(name)`` counts one
  (``INCR``), ``during(name)`` brackets one and keeps the most that were ever in flight
  at once (``overlap(name)``: 2 means something ran twice at the same time), ``note(name,
  value)``/``notes(name)`` keep an ordered log (``RPUSH``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

__all__ = ["Calls", "Child", "Proxy", "RedisServer"]

T = TypeVar("T")

TESTS = Path(__file__).resolve().parent


class _Link:
    """One proxied connection: the client's socket and the server's."""

    def __init__(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> None:
        self.client = client
        self.server = server
        self.pumps: list[asyncio.Task[None]] = []

    def abort(self) -> None:
        for pump in self.pumps:
            pump.cancel()
        # abort, not close: nothing still buffered may reach either side.
        for writer in (self.client, self.server):
            writer.transport.abort()


class Proxy:
    """A loopback TCP proxy to ``host:port`` that can stall and cut its connections.

    Args:
        port: The port of the server behind the proxy.
        host: Its host.

    Attributes:
        port: The port the proxy listens on (loopback).
        url: A Redis URL (db 0) of the server, through the proxy.
    """

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._upstream = (host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._links: set[_Link] = set()
        self._accepted = 0
        self._gates = self._run(self._make_gates())
        self._server = self._run(self._listen())
        self.port: int = self._server.sockets[0].getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"

    async def _make_gates(self) -> dict[str, asyncio.Event]:
        gates = {"to_server": asyncio.Event(), "to_client": asyncio.Event()}
        for gate in gates.values():
            gate.set()
        return gates

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._accept, "127.0.0.1", 0)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._accepted += 1
        try:
            server_reader, server_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            writer.transport.abort()  # the server is down: so is the proxied connection
            return
        link = _Link(writer, server_writer)
        self._links.add(link)
        link.pumps = [
            asyncio.ensure_future(self._pump(reader, server_writer, "to_server", link)),
            asyncio.ensure_future(self._pump(server_reader, writer, "to_client", link)),
        ]

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        direction: str,
        link: _Link,
    ) -> None:
        try:
            while data := await reader.read(65536):
                await self._gates[direction].wait()  # held here while stalled
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        # One side closed: close both, as a real connection would end.
        if link in self._links:
            self._links.discard(link)
            link.abort()

    def stall(self, *, to_server: bool = True, to_client: bool = True) -> None:
        """Hold the bytes going each chosen way (of live and new connections alike)."""

        async def shut() -> None:
            if to_server:
                self._gates["to_server"].clear()
            if to_client:
                self._gates["to_client"].clear()

        self._run(shut())

    def resume(self) -> None:
        """Let bytes through both ways again, those held first."""

        async def open_() -> None:
            for gate in self._gates.values():
                gate.set()

        self._run(open_())

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        """Both ways held for the ``with`` block, let through again however it ends."""
        self.stall()
        try:
            yield
        finally:
            self.resume()

    def cut(self) -> None:
        """Close every live connection abruptly (bytes held are lost); keep accepting."""

        async def cut() -> None:
            links, self._links = self._links, set()
            for link in links:
                link.abort()

        self._run(cut())

    @property
    def accepted(self) -> int:
        """Connections accepted since the proxy started."""
        return self._accepted

    @property
    def live(self) -> int:
        """Connections open now."""
        return len(self._links)

    def close(self) -> None:
        """Cut every connection, stop listening and stop the proxy's thread."""
        self.resume()
        self.cut()

        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        self._run(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class RedisServer:
    """A ``redis-server`` process this test session owns.

    Args:
        directory: Where it keeps its log (and its AOF files).
        aof: Persist every write before acknowledging it (``--appendonly yes
            --appendfsync always``), so a restart after :meth:`kill` keeps the data.

    Attributes:
        port: Its port (never 6379, the shared server's).
        url: Its URL, db 0.
    """

    def __init__(self, directory: Path, *, aof: bool = False) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.fail("redis-server is not on PATH; install it (apt-get install redis-server)")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]
        assert self.port != 6379, "the shared Redis on 6379 must not be touched"
        self.url = f"redis://127.0.0.1:{self.port}/0"
        persistence = ("--appendonly", "yes", "--appendfsync", "always") if aof else ()
        self._command = [
            executable,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", *persistence),
            *("--dir", str(directory), "--logfile", str(directory / "redis.log")),
        ]
        self._log = directory / "redis.log"
        self._process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(self._command)
        deadline = time.monotonic() + 10
        with redis.Redis(port=self.port) as client:
            while True:
                try:
                    client.ping()
                    return process
                except (redis.ConnectionError, redis.BusyLoadingError):
                    if process.poll() is not None or time.monotonic() > deadline:
                        process.kill()
                        log = self._log.read_text() if self._log.exists() else ""
                        pytest.fail(f"redis-server did not start on port {self.port}:\n{log}")
                    time.sleep(0.02)

    def kill(self) -> None:
        """Kill the server abruptly (SIGKILL), as a crash would."""
        self._process.kill()
        self._process.wait()

    def restart(self) -> None:
        """Start the server again on the same port (with its data if ``aof``)."""
        self._process = self._start()

    def stop(self) -> None:
        """Stop the server (SIGTERM) and wait for it."""
        self._process.terminate()
        self._process.wait()


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment, with ``tests`` and the ``reactor`` under test importable."""
    root = str(TESTS.parent)
    path = os.pathsep.join(filter(None, [root, str(TESTS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **(extra or {})}


class Child:
    """A Python child process to kill at a chosen moment; use it as a context manager
    (leaving the block kills it if it still runs).

    Args:
        code: The program, run as ``python -u -c code`` (unbuffered: each line printed
            is seen at once).
        env: Variables to add to the environment (see :func:`child_env`).

    Attributes:
        lines: Every line it printed so far (stdout and stderr), in order.
    """

    def __init__(self, code: str, *, env: Mapping[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-u", "-c", code],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=child_env(env),
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def _drain(self, timeout: float) -> bool:
        """Take one more line into :attr:`lines`; ``False`` once the output ended."""
        line = self._queue.get(timeout=timeout)
        if line is None:
            self._queue.put(None)  # keep the end visible to later calls
            return False
        self.lines.append(line)
        return True

    def wait_for(self, marker: str, *, timeout: float = 15) -> None:
        """Wait until the child prints a line containing ``marker``."""
        deadline = time.monotonic() + timeout
        while not any(marker in line for line in self.lines):
            try:
                if not self._drain(max(0.0, deadline - time.monotonic())):
                    pytest.fail(f"the child ended without printing {marker!r}:\n{self.output}")
            except queue.Empty:
                pytest.fail(f"the child never printed {marker!r}; it printed:\n{self.output}")

    def kill_when(self, marker: str, *, timeout: float = 15) -> None:
        """SIGKILL the child as soon as it prints a line containing ``marker``."""
        self.wait_for(marker, timeout=timeout)
        self.kill()

    def kill_when_count(self, calls: Calls, name: str, value: int, *, timeout: float = 15) -> None:
        """SIGKILL the child as soon as ``calls.count(name)`` reaches ``value``."""
        deadline = time.monotonic() + timeout
        while calls.count(name) < value:
            if self.process.poll() is not None:
                pytest.fail(f"the child ended before {name} reached {value}:\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} never reached {value}; the child printed:\n{self.output}")
            time.sleep(0.002)
        self.kill()

    def kill(self) -> None:
        """SIGKILL the child (if it still runs) and reap it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def wait(self, timeout: float = 15) -> int:
        """Wait for the child to exit by itself; its exit status."""
        return self.process.wait(timeout)

    @property
    def output(self) -> str:
        """Everything it printed so far (what is already read)."""
        with contextlib.suppress(queue.Empty):
            while self._drain(0):
                pass
        return "\n".join(self.lines)

    def __enter__(self) -> Child:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.kill()
        self._reader.join(timeout=5)
        assert self.process.stdout is not None
        self.process.stdout.close()


_DURING = """
-- Count one more call of a name in flight, and keep the most ever in flight at once.
--
-- KEYS[1]  calls in flight now (integer)
-- KEYS[2]  most calls ever in flight at once (integer)
--
-- Reply: the calls in flight now, this one included.
local in_flight_key = KEYS[1]
local most_key = KEYS[2]

local now = redis.call('INCR', in_flight_key)
if now > tonumber(redis.call('GET', most_key) or '0') then
  redis.call('SET', most_key, now)
end
return now
"""


class Calls:
    """Counts of calls made in any process, kept in the Redis at ``url``.

    Args:
        url: A Redis URL (the suite's server, say; each test flushes it).
        prefix: First segment of the keys used.
    """

    def __init__(self, url: str, prefix: str = "faults") -> None:
        self.url = url
        self.prefix = prefix
        self._redis = redis.Redis.from_url(url, decode_responses=True)

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    def hit(self, name: str) -> int:
        """Count one call of ``name``; how many there have been, this one included."""
        return int(self._redis.incr(self._key("hits", name)))

    def count(self, name: str) -> int:
        """How many calls of ``name`` were counted."""
        return int(self._redis.get(self._key("hits", name)) or 0)

    @contextlib.contextmanager
    def during(self, name: str) -> Iterator[int]:
        """Count one call of ``name`` (see :meth:`hit`) for the block, and how many were
        in flight at once; yields the calls in flight, this one included."""
        self.hit(name)
        keys = [self._key("in_flight", name), self._key("overlap", name)]
        in_flight = int(self._redis.eval(_DURING, 2, *keys))
        try:
            yield in_flight
        finally:
            self._redis.decr(keys[0])

    def overlap(self, name: str) -> int:
        """The most calls of ``name`` ever in flight at once (0: none counted)."""
        return int(self._redis.get(self._key("overlap", name)) or 0)

    def note(self, name: str, value: str) -> None:
        """Append ``value`` to the log of ``name``."""
        self._redis.rpush(self._key("notes", name), value)

    def notes(self, name: str) -> list[str]:
        """The log of ``name``, oldest first."""
        return [str(value) for value in self._redis.lrange(self._key("notes", name), 0, -1)]

    def close(self) -> None:
        """Close the connections to Redis."""
        self._redis.close()
