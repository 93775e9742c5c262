"""Redis storage: the production store, shared by every process that talks to one Redis."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import redis.asyncio
import redis.exceptions
from redis.asyncio.connection import parse_url

try:
    import orjson
except ImportError:  # reactor[fast] not installed: the standard library writes JSON alone
    orjson = None  # type: ignore[assignment]

from .._status import Status
from ..errors import StorageError
from . import _lua
from ._base import (
    DEFAULT_RETENTION,
    TAKEN_TTL,
    CorrelationTaken,
    EarlyPayloadWaiting,
    Storage,
    StoredExecution,
    WriteConflict,
    bound_to_running_loop,
    new_token,
)
from ._keys import Keys

__all__ = ["RedisStorage"]

ClientFactory: TypeAlias = Callable[[], redis.asyncio.Redis]
"""Makes a new client; called once per event loop the storage is used on."""


def _orjson_text(value: Any) -> str:
    text: str = orjson.dumps(value).decode()
    return text


_json: Callable[[Any], str] = (
    _orjson_text
    if orjson is not None  # reactor[fast]: some five times faster on the arguments of a write
    else json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
)
"""Compact JSON text of script arguments (strings, numbers, booleans); UTF-8 kept raw: Lua
compares the ids it decodes with ids sent as text."""

DEFAULT_MAX_CONNECTIONS = 64
"""Connections one event loop's client opens at most by default; further calls wait for
one to be free (a burst of 1,000 concurrent runs shares them)."""

DEFAULT_TIMEOUT = 5.0
"""Seconds one attempt of a call, and a connect, may take by default: a stalled link
fails the attempt (the call is then sent once more) instead of hanging it."""

LIST_WINDOW = 256
"""Most index entries one ``LIST_INDEXES`` call (and the ``LIST_PAGE`` call reading the
executions they name) reads in all: keeps each call far below a millisecond's work or so,
however many stale entries a backlog holds."""

_TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
"""Failures of the link, not of the command: the command is sent once more."""


Arg: TypeAlias = str | int | float
"""A command argument as redis-py packs it."""


class _Packed:
    """Command arguments packed once in Redis's wire format, for those many calls pass
    alike: ``EVALSHA`` and a script's SHA, the keys and constants every write of a reactor
    passes (its indexes, schedules...), which would otherwise be packed again at every
    call at about 1.5 µs each."""

    __slots__ = ("args", "data")

    def __init__(self, args: Sequence[str]) -> None:
        self.args = tuple(args)
        self.data = b"".join(_bulk(arg) for arg in args)


def _bulk(arg: Arg) -> bytes:
    """``arg`` as a RESP bulk string, encoded as redis-py encodes it."""
    data = arg.encode() if isinstance(arg, str) else repr(arg).encode()
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _pack(command: Sequence[Arg | _Packed]) -> bytes:
    """``command`` in Redis's wire format (RESP)."""
    count = 0
    parts = []
    for arg in command:
        if isinstance(arg, _Packed):
            count += len(arg.args)
            parts.append(arg.data)
        else:
            count += 1
            parts.append(_bulk(arg))
    return b"*%d\r\n%s" % (count, b"".join(parts))


def _unpacked(args: Sequence[Arg | _Packed]) -> list[Arg]:
    return [arg for part in args for arg in (part.args if isinstance(part, _Packed) else (part,))]


class _Script:
    """A Lua script, named by its SHA1 as ``EVALSHA`` wants it."""

    __slots__ = ("evalsha", "sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        self.evalsha = _Packed(["EVALSHA", self.sha])  # the start of every call, packed once


_WRITE = _Script(_lua.WRITE)
_LOAD_BY_CORRELATION = _Script(_lua.LOAD_BY_CORRELATION)
_TOUCH = _Script(_lua.TOUCH)
_RESERVE_IDEMPOTENCY_KEY = _Script(_lua.RESERVE_IDEMPOTENCY_KEY)
_PUT_EARLY = _Script(_lua.PUT_EARLY)
_TAKE_EARLY = _Script(_lua.TAKE_EARLY)
_LIST_INDEXES = _Script(_lua.LIST_INDEXES)
_LIST_PAGE = _Script(_lua.LIST_PAGE)
_EXPIRED_LEASES = _Script(_lua.EXPIRED_LEASES)
_EXPIRED_LEASES_SCORED = _Script(_lua.EXPIRED_LEASES_SCORED)

_KNOWN_IDS = 65_536
"""Execution ids whose reactor a cluster-layout storage remembers, and correlation ids
whose holder a storage remembers (then it starts over): a lookup by id alone that misses
walks the reactors; a lookup by correlation id that misses costs one more round trip."""

_HOLDER_MOVES = 50
"""Calls a lookup by correlation id makes at most while the holder it expects keeps
turning out another (each miss means a concurrent write moved the id meanwhile)."""


class _Attempt:
    """One attempt of a call in flight, as the client's timer watches it."""

    __slots__ = ("cancelling", "deadline", "expired", "task")

    def __init__(self, task: asyncio.Task[Any], deadline: float) -> None:
        self.task = task
        self.deadline = deadline
        self.cancelling = task.cancelling()
        self.expired = False


class _Client:
    """The redis-py client of one event loop.

    Commands go to a pooled connection as one packed command each, without redis-py's
    generic command path: its retry wrapper, metrics hooks and reply callbacks cost about
    30 µs per call here, a sixth of a whole round trip, for nothing these replies need.
    They are packed here too (:func:`_pack`), so that the keys every write of a reactor
    passes alike are packed once (:class:`_Packed`).

    A command that fails on the link (a connection the server closed or restarted
    behind, a dropped or stalled link) is sent once more on a fresh connection; only a
    second failure surfaces. Every script is safe to send twice: reads and lease
    stamps are repeatable, and writes carry a token by which they recognise their own
    effect when the first send was applied but its reply lost.
    """

    def __init__(self, client: redis.asyncio.Redis, timeout: float, max_connections: int) -> None:
        self.redis = client
        self.timeout = timeout
        # Bounds the connections in use: a call beyond the bound waits for a free one.
        # (redis-py's blocking pool would too, but its condition variable costs ~25 µs on
        # every command; an uncontended semaphore costs about a microsecond.)
        self.slots = asyncio.Semaphore(max_connections)
        # Connections not in use, kept here rather than in redis-py's pool, whose hand-out
        # and take-back cost ~9 µs per call here (a health check of each connection it
        # hands out, metrics) against a list's pop and append. The pool still makes them,
        # with its settings. A connection the server closed meanwhile fails the first
        # attempt of a call, and the second goes on a fresh socket (see send).
        self.idle: list[redis.asyncio.Connection] = []
        self.closed = False
        self.loop = asyncio.get_running_loop()
        # The attempts in flight, and the one timer that fails those that outlast the
        # timeout (armed while any is in flight).
        self.attempts: set[_Attempt] = set()
        self.watch: asyncio.TimerHandle | None = None

    async def run(
        self, script: _Script, keys: Sequence[str | _Packed], args: Sequence[Arg | _Packed]
    ) -> Any:
        """Run ``script``, loading it first if the server does not know it (yet, or
        any more after a restart)."""
        count = 0
        for key in keys:
            count += len(key.args) if isinstance(key, _Packed) else 1
        return await self.send(script, script.evalsha, count, *keys, *args)

    async def send(self, script: _Script | None, *command: Arg | _Packed) -> Any:
        """Send ``command`` (the ``EVALSHA`` of ``script``, if given), once more on a
        fresh connection if the link fails.

        Each attempt -- taking a connection (connecting if need be), sending, reading
        the reply -- has :attr:`timeout` seconds in all (see :meth:`_attempt`).
        """
        async with self.slots:
            connection = self.idle.pop() if self.idle else self._new_connection()
            try:
                try:
                    return await self._attempt(connection, script, command)
                except _TRANSIENT:
                    # A new socket (the next send connects again): the old one might still
                    # deliver the first reply, which must not pass for the second's.
                    await connection.disconnect()
                return await self._attempt(connection, script, command)
            finally:
                if self.closed:
                    await connection.disconnect()
                else:
                    self.idle.append(connection)

    async def _attempt(
        self,
        connection: redis.asyncio.Connection,
        script: _Script | None,
        command: Sequence[Arg | _Packed],
    ) -> Any:
        """One attempt of a call, failed with ``TimeoutError`` (a transient error) if it
        outlasts :attr:`timeout`, as ``asyncio.timeout`` would fail it.

        One timer watches every attempt of the client rather than one per attempt:
        ``asyncio.timeout`` costs ~4 µs of every call here (a timer armed and
        cancelled each time), the watcher a set entry. Rather than redis-py's timeout
        per socket operation too: its send timeout runs the send as a task of its own,
        an extra event loop turn (~40 µs here) on every call.
        """
        task = asyncio.current_task()
        if task is None:  # not inside a task: nothing the watcher could cancel
            raise RuntimeError("RedisStorage calls must run inside an asyncio task")
        attempt = _Attempt(task, self.loop.time() + self.timeout)
        self.attempts.add(attempt)
        if self.watch is None:
            self.watch = self.loop.call_at(attempt.deadline, self._expire)
        try:
            return await _reply(connection, script, command)
        except asyncio.CancelledError:
            # As asyncio.timeout: a cancellation of ours becomes a timeout, unless the
            # task was also cancelled from outside meanwhile.
            if attempt.expired and task.uncancel() <= attempt.cancelling:
                raise TimeoutError(f"no reply within {self.timeout} s") from None
            raise
        finally:
            self.attempts.discard(attempt)

    def _expire(self) -> None:
        """Cancel the attempts past their deadline; watch again at the next deadline."""
        self.watch = None
        now = self.loop.time()
        following = math.inf
        for attempt in self.attempts:
            if attempt.expired:
                continue
            if attempt.deadline <= now:
                attempt.expired = True
                attempt.task.cancel()
            else:
                following = min(following, attempt.deadline)
        if following < math.inf:
            self.watch = self.loop.call_at(following, self._expire)

    def _new_connection(self) -> redis.asyncio.Connection:
        # Connected by its first send; typed loosely in redis-py.
        pool = self.redis.connection_pool
        connection: redis.asyncio.Connection = pool.make_connection()  # type: ignore[no-untyped-call]
        return connection

    async def aclose(self) -> None:
        """Disconnect the idle connections (one in use is when its call ends) and the
        client."""
        self.closed = True
        if self.watch is not None:
            self.watch.cancel()
            self.watch = None
        idle, self.idle = self.idle, []
        for connection in idle:
            await connection.disconnect()
        await self.redis.aclose()


class _ClusterClient:
    """The redis-py Redis Cluster client of one event loop: each command goes to the
    node serving its keys' slot (redis-py routes it and follows redirections)."""

    def __init__(self, client: redis.asyncio.RedisCluster, max_connections: int) -> None:
        self.redis = client
        self.slots = asyncio.Semaphore(max_connections)
        # Scripts are loaded on every primary before their first use, one load at a time,
        # so that a burst of first calls does not answer NOSCRIPT and load it many times.
        self._loaded: set[str] = set()
        self._loading = asyncio.Lock()
        self._ready = False

    async def _start(self) -> None:
        # redis-py's cluster client breaks connections when its first commands run
        # concurrently, before it knows the cluster: learn it (and reach every node)
        # once, alone.
        async with self._loading:
            if not self._ready:
                await self.redis.initialize()
                await self.redis.ping(target_nodes=redis.asyncio.RedisCluster.ALL_NODES)
                self._ready = True

    async def _load(self, script: _Script, *, again: bool = False) -> None:
        async with self._loading:
            if again:
                self._loaded.discard(script.sha)
            if script.sha not in self._loaded:
                await self.redis.script_load(script.text)
                self._loaded.add(script.sha)

    async def run(
        self, script: _Script, keys: Sequence[str | _Packed], args: Sequence[Arg | _Packed]
    ) -> Any:
        """Run ``script`` on the node of its keys, loading it on every primary first
        (again if a node lost it: restarted, or a replica promoted)."""
        if not self._ready:
            await self._start()
        if script.sha not in self._loaded:
            await self._load(script)
        # redis-py finds the node from the keys it is given one by one.
        flat = _unpacked(keys)
        command = ("EVALSHA", script.sha, len(flat), *flat, *_unpacked(args))
        try:
            return await self.send(None, *command)
        except redis.exceptions.NoScriptError:
            await self._load(script, again=True)
            return await self.send(None, *command)

    async def send(self, script: _Script | None, *command: Arg) -> Any:
        """Send ``command`` to the node of its keys (``script`` is for :meth:`run`)."""
        if not self._ready:
            await self._start()
        async with self.slots:
            return await self.redis.execute_command(*command)

    async def aclose(self) -> None:
        await self.redis.aclose()


async def _reply(
    connection: redis.asyncio.Connection, script: _Script | None, command: Sequence[Arg | _Packed]
) -> Any:
    packed = _pack(command)
    try:
        return await _call(connection, packed)
    except redis.exceptions.NoScriptError:
        if script is None:
            raise
        await _call(connection, _pack(("SCRIPT", "LOAD", script.text)))
        return await _call(connection, packed)


async def _call(connection: redis.asyncio.Connection, packed: bytes) -> Any:
    # On failure or cancellation, send and read disconnect the connection themselves, so
    # a reply left unread cannot be taken for the next command's.
    await connection.send_packed_command(packed, check_health=False)
    return await connection.read_response()


class RedisStorage(Storage):
    """Keeps executions in Redis (standalone, 6.0 or later; no modules needed).

    Every method is one round trip, except: ``list_page`` makes two per
    :data:`LIST_WINDOW` index entries it reads (the index entries, then the executions
    they name: a script must be given every key it touches); and a lookup by
    correlation id (``load_by_correlation``, ``put_early`` when the id is held) makes
    two when this instance does not know the holder yet (it remembers the holders of
    the ids it wrote or found). State changes run as Lua scripts, so they are atomic
    however many processes share the database, and each script does bounded work. (A script the
    server does not know yet, after a restart for instance, costs two more trips the
    first time.) See :mod:`reactor.storage._keys` for the key layout.

    Transient connection errors are invisible: a call that fails on the link is sent
    once more on a fresh connection, and every write recognises its own applied copy
    (see :class:`~reactor.storage.Storage`). Every attempt of a call, and every
    connect, has a timeout, so a stalled link fails a call (after its one resend) with
    :class:`~reactor.errors.StorageError` within about twice ``socket_timeout`` rather
    than hanging it.

    One instance may be used from several threads and event loops at once: it keeps
    one redis-py client per running event loop, created on first use. Call
    :meth:`aclose` on each loop before closing that loop.

    Args:
        url_or_factory: A Redis URL (``redis://[[user]:password@]host[:port][/db]``,
            ``rediss://``, ``unix://``; options such as ``?socket_timeout=2`` allowed), or a
            callable returning a new ``redis.asyncio.Redis`` created with
            ``decode_responses=True`` (for options a URL cannot carry).
        prefix: First segment of every key.
        retention: Seconds a finished execution is kept.
        clock: Source of unix time for ``created_at``/``updated_at`` (tests may pass a
            fake clock). Expiry and leases run on the Redis server's clock.
        socket_timeout: Seconds one attempt of a call may take: getting a connection,
            sending, reading the reply. Default: the URL's ``socket_timeout`` (or the
            factory client's), else 5.
        connect_timeout: Seconds opening a connection may take. Default: the URL's
            ``socket_connect_timeout`` (or the factory client's), else 5.
        max_connections: Most connections each event loop's client uses at once; more
            concurrent calls wait for a free one. Default 64.
        cluster: Talk to a Redis Cluster (the URL names any of its nodes) and use the
            cluster key layout: every key of one reactor under the hash tag
            ``{<prefix>:<reactor>}``, one slot per reactor, and listings, schedules and
            lookups by id alone walk the reactors (see :mod:`reactor.storage._keys`).
            The same code serves a standalone Redis with ``cluster=False``.

    Attributes:
        keys: The names of the keys this storage uses.

    Raises:
        ValueError: The URL is not a valid Redis URL, or ``retention``, a timeout or
            ``max_connections`` is not positive, or a cluster ``prefix`` has braces.
    """

    durable = True

    def __init__(
        self,
        url_or_factory: str | ClientFactory,
        *,
        prefix: str = "reactor",
        retention: float = DEFAULT_RETENTION,
        clock: Callable[[], float] = time.time,
        socket_timeout: float | None = None,
        connect_timeout: float | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        cluster: bool = False,
    ) -> None:
        if retention <= 0:
            raise ValueError(f"retention must be positive, not {retention!r}")
        timeouts = {"socket_timeout": socket_timeout, "socket_connect_timeout": connect_timeout}
        if isinstance(url_or_factory, str):
            # Fail here rather than on first use, which may be far from the mistake.
            options = parse_url(url_or_factory)
            for name, given in timeouts.items():
                in_url = options.get(name)
                if given is None and isinstance(in_url, int | float):
                    timeouts[name] = in_url
        for name, value in timeouts.items():
            # A zero or negative timeout would mean none to redis-py: a hang on a stall.
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be positive, not {value!r}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, not {max_connections!r}")
        self._timeouts = timeouts
        self.max_connections = max_connections
        self._url = url_or_factory
        if cluster and ("{" in prefix or "}" in prefix):
            raise ValueError(f"a cluster prefix cannot hold a hash tag's braces: {prefix!r}")
        self.keys = Keys(prefix, cluster)
        self.cluster = cluster
        # Cluster layout: reactors this instance registered in the reactors set, and the
        # reactor of ids it has seen (a key of an execution needs its reactor).
        self._registered: set[str] = set()
        self._reactor_of: dict[str, str] = {}
        # The execution last seen holding a (reactor, correlation id): a script reading
        # the holder must be given its key, so a lookup names the one it expects.
        self._holders: dict[tuple[str, str], str] = {}
        self.retention = retention
        self._clock = clock
        self._lock = threading.Lock()
        self._clients: dict[asyncio.AbstractEventLoop, _Client | _ClusterClient] = {}
        self._written: dict[tuple[str, float], tuple[_Packed, _Packed]] = {}

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "reactor",
        retention: float = DEFAULT_RETENTION,
        clock: Callable[[], float] = time.time,
        socket_timeout: float | None = None,
        connect_timeout: float | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        cluster: bool = False,
    ) -> RedisStorage:
        """Return a storage connecting to ``url``; see :class:`RedisStorage` for the arguments."""
        return cls(
            url,
            prefix=prefix,
            retention=retention,
            clock=clock,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            cluster=cluster,
        )

    def __repr__(self) -> str:
        url = _redact(self._url) if isinstance(self._url, str) else repr(self._url)
        cluster = ", cluster=True" if self.cluster else ""
        return f"{type(self).__name__}(url={url!r}, prefix={self.keys.prefix!r}{cluster})"

    def _client(self) -> _Client | _ClusterClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)  # a dict read is atomic: only creating needs the lock
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(loop)
            if client is None:
                # A loop closed without aclose() can never run its client again: drop it.
                for closed in [known for known in self._clients if known.is_closed()]:
                    del self._clients[closed]
                if self.cluster:
                    client = _ClusterClient(self._connect_cluster(), self.max_connections)
                else:
                    client = self._connect()
                self._clients[loop] = client
                bound_to_running_loop(self.aclose)
            return client

    def _written_by(self, reactor: str) -> tuple[_Packed, _Packed]:
        """The keys after the execution's of every write of ``reactor``, and the write
        script's arguments from ARGV[3] on for it: the same for every write of the
        reactor, so built once."""
        found = self._written.get((reactor, self.retention))
        if found is None:
            keys = [
                self.keys.correlations(reactor),
                self.keys.deadlines_of(reactor),
                self.keys.leases_of(reactor),
            ]
            # The cluster layout has no index across reactors: only the reactor's own.
            scopes = [reactor] if self.cluster else [None, reactor]
            indexes: list[str] = []
            for status in Status:
                for scope in scopes:
                    keys.append(self.keys.status(status.value, scope))
                    index = len(keys) + 1  # a 1-based KEYS position, after the execution's
                    expiry = 0
                    if status.finished:
                        keys.append(self.keys.expiry(status.value, scope))
                        expiry = index + 1
                    indexes += [status.value, str(index), str(expiry)]
            constants = [
                str(_milliseconds(self.retention)),
                Status.RUNNING.value,
                str(len(keys) + 2),
                # One argument: Redis hands a script each argument as a string of its
                # own (~0.1 µs each), and most writes keep the status and read none.
                " ".join(indexes),
            ]
            found = self._written[reactor, self.retention] = (_Packed(keys), _Packed(constants))
        return found

    def _connect(self) -> _Client:
        if isinstance(self._url, str):
            # The pool never refuses: _Client.slots keeps calls within its size.
            pool = redis.asyncio.ConnectionPool.from_url(
                self._url, decode_responses=True, max_connections=self.max_connections
            )
            client = redis.asyncio.Redis.from_pool(pool)
        else:
            client = self._url()
            if not client.connection_pool.connection_kwargs.get("decode_responses"):
                raise ValueError(
                    "the client factory must create clients with decode_responses=True"
                )
        # Connections are made from these on demand, so none exists without a connect
        # timeout. The socket timeout becomes the client's own timer for each attempt
        # (see _Client.send); redis-py's would only cost time on top.
        options = client.connection_pool.connection_kwargs
        timeouts: dict[str, float] = {}
        for name, chosen in self._timeouts.items():
            found = options.get(name)
            if chosen is None:
                chosen = found if isinstance(found, int | float) and found > 0 else None
            timeouts[name] = DEFAULT_TIMEOUT if chosen is None else chosen
        options["socket_connect_timeout"] = timeouts["socket_connect_timeout"]
        options["socket_timeout"] = None
        return _Client(client, timeouts["socket_timeout"], self.max_connections)

    def _connect_cluster(self) -> redis.asyncio.RedisCluster:
        if not isinstance(self._url, str):
            raise ValueError("cluster=True needs a URL, not a client factory")
        timeouts = {
            name: chosen if chosen is not None else DEFAULT_TIMEOUT
            for name, chosen in self._timeouts.items()
        }
        return redis.asyncio.RedisCluster.from_url(
            self._url,
            decode_responses=True,
            max_connections=self.max_connections,
            **timeouts,
        )

    def _note(self, execution_id: str, reactor: str) -> None:
        """Remember the reactor of an execution (cluster layout)."""
        if len(self._reactor_of) >= _KNOWN_IDS:
            self._reactor_of.clear()
        self._reactor_of[execution_id] = reactor

    def _note_holder(self, reactor: str, correlation_id: str, execution_id: str) -> None:
        """Remember the execution holding a correlation id."""
        if len(self._holders) >= _KNOWN_IDS:
            self._holders.clear()
        self._holders[reactor, correlation_id] = execution_id

    async def _by_holder(
        self,
        operation: str,
        script: _Script,
        reactor: str,
        correlation_id: str,
        keys: list[str],
        args: list[Arg],
    ) -> tuple[Any, str | None]:
        """Run ``script`` with ``keys`` and ``args``, then the key of the execution
        expected to hold ``correlation_id`` and its id (none at first if this instance
        knows of none), until the script does not answer ``{'holder', id}``: that
        another execution holds it, to expect next time.

        Returns:
            The script's last reply, and the id it expected.

        Raises:
            StorageError: the holder moved at every call.
        """
        client = self._client()
        expected = self._holders.get((reactor, correlation_id))
        for _ in range(_HOLDER_MOVES):
            known = [] if expected is None else [self.keys.execution(expected, reactor)]
            with _translate_errors(operation, reactor=reactor):
                reply = await client.run(script, [*keys, *known], [*args, expected or ""])
            match reply:
                case ["holder", str(holder)]:
                    expected = holder
                    self._note_holder(reactor, correlation_id, holder)
                case _:
                    return reply, expected
        raise StorageError(f"redis {operation}: the correlation id keeps moving", reactor=reactor)

    async def _register(self, reactor: str) -> None:
        """Add ``reactor`` to the reactors set, once per storage instance (cluster
        layout): before its first execution is written, so a walk never misses one."""
        if reactor in self._registered:
            return
        client = self._client()
        with _translate_errors("register", reactor=reactor):
            await client.send(None, "SADD", self.keys.reactors, reactor)
        self._registered.add(reactor)

    async def _reactors(self) -> list[str]:
        """Names of the reactors with stored executions, sorted (cluster layout)."""
        client = self._client()
        with _translate_errors("reactors"):
            names = await client.send(None, "SMEMBERS", self.keys.reactors)
        return sorted(_text("reactors", name) for name in names)

    async def _reactor_for(self, execution_id: str) -> str | None:
        """The reactor of ``execution_id`` (cluster layout), walking the reactors if
        this instance has not seen it."""
        reactor = self._reactor_of.get(execution_id)
        if reactor is not None:
            return reactor
        found = await self.load(execution_id)
        return None if found is None else found.reactor

    async def _load_tagged(self, execution_id: str, reactor: str) -> StoredExecution | None:
        client = self._client()
        with _translate_errors("load", reactor=reactor, execution_id=execution_id):
            fields = await client.send(None, "HGETALL", self.keys.execution(execution_id, reactor))
        if not fields:
            return None
        found = _envelope(execution_id, fields if isinstance(fields, dict) else _pairs(fields))
        self._note(execution_id, found.reactor)
        return found

    async def _load_walking(self, execution_id: str) -> StoredExecution | None:
        """Load by id alone in the cluster layout: the reactor remembered for the id,
        else every reactor's key for it at once."""
        known = self._reactor_of.get(execution_id)
        if known is not None:
            found = await self._load_tagged(execution_id, known)
            if found is not None:
                return found
        candidates = await asyncio.gather(
            *(self._load_tagged(execution_id, reactor) for reactor in await self._reactors())
        )
        return next((found for found in candidates if found is not None), None)

    async def aclose(self) -> None:
        """Close the client of the running event loop (a later call opens a new one)."""
        with self._lock:
            client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            with _translate_errors("close"):
                await client.aclose()

    async def load(self, execution_id: str) -> StoredExecution | None:
        if self.cluster:
            return await self._load_walking(execution_id)
        client = self._client()
        with _translate_errors("load", execution_id=execution_id):
            fields = await client.send(None, "HGETALL", self.keys.execution(execution_id))
        if not fields:
            return None
        # A flat field/value list, or a map if the URL asks for RESP3.
        return _envelope(execution_id, fields if isinstance(fields, dict) else _pairs(fields))

    async def load_by_correlation(
        self, reactor: str, correlation_id: str
    ) -> StoredExecution | None:
        reply, execution_id = await self._by_holder(
            "load_by_correlation",
            _LOAD_BY_CORRELATION,
            reactor,
            correlation_id,
            [self.keys.correlations(reactor)],
            [correlation_id],
        )
        match reply:
            case None:
                return None
            case ["found", list(fields)] if execution_id is not None:
                if self.cluster:
                    self._note(execution_id, reactor)
                return _envelope(execution_id, _pairs(fields))
        raise _unexpected("load_by_correlation", reply, reactor=reactor)

    async def write(
        self,
        record: StoredExecution,
        *,
        expected_version: int,
        lease_seconds: float | None = None,
        token: str | None = None,
        takeover: bool = False,
    ) -> StoredExecution:
        now = self._clock()
        finished = record.status.finished
        common, constants = self._written_by(record.reactor)
        if self.cluster:
            await self._register(record.reactor)
            self._note(record.id, record.reactor)
        keys: list[str | _Packed] = [self.keys.execution(record.id, record.reactor), common]
        if not finished:
            keys += [self.keys.early(record.reactor, cid) for cid in record.correlation_ids]
        deadline_score = "" if finished or record.deadline is None else _score(record.deadline)
        lease = (
            _score(lease_seconds)
            if record.status is Status.RUNNING and lease_seconds is not None
            else ""
        )
        values = _json(
            [
                record.id,
                expected_version,
                repr(now),
                _score(record.created_at or now),
                finished,
                deadline_score,
                lease,
                token or new_token(),
                takeover,
                *_fields(record),
            ]
        )
        client = self._client()
        with _translate_errors("write", reactor=record.reactor, execution_id=record.id):
            reply = await client.run(_WRITE, keys, [values, record.body, constants])
        match reply:
            case ["ok", str(created_at), str(lease_expires), str(updated_at)]:
                if not finished:
                    for cid in record.correlation_ids:
                        self._note_holder(record.reactor, cid, record.id)
                return record.written(
                    version=expected_version + 1,
                    created_at=float(created_at),
                    updated_at=float(updated_at),
                    lease_expires=float(lease_expires) if lease_expires else None,
                )
            case ["conflict", list(fields)]:
                current = _envelope(record.id, _pairs(fields)) if fields else None
                raise WriteConflict(record.id, current)
            case ["taken", str(correlation_id), str(holder)]:
                raise CorrelationTaken(correlation_id, holder)
            case ["early", str(correlation_id)]:
                raise EarlyPayloadWaiting(correlation_id)
        raise _unexpected("write", reply, reactor=record.reactor, execution_id=record.id)

    async def touch(self, execution_id: str, *, version: int, lease_seconds: float) -> bool:
        keys = [self.keys.execution(execution_id), self.keys.leases] if not self.cluster else []
        if self.cluster:
            reactor = await self._reactor_for(execution_id)
            if reactor is None:
                return False
            keys = [self.keys.execution(execution_id, reactor), self.keys.leases_of(reactor)]
        client = self._client()
        with _translate_errors("touch", execution_id=execution_id):
            reply = await client.run(
                _TOUCH,
                keys,
                [execution_id, version, _score(lease_seconds), Status.RUNNING.value],
            )
        if reply not in (0, 1):
            raise _unexpected("touch", reply, execution_id=execution_id)
        return bool(reply)

    async def reserve_idempotency_key(self, reactor: str, key: str, execution_id: str) -> str:
        client = self._client()
        with _translate_errors("reserve_idempotency_key", reactor=reactor):
            reply = await client.run(
                _RESERVE_IDEMPOTENCY_KEY,
                [self.keys.idempotency(reactor, key)],
                [execution_id, _milliseconds(self.retention)],
            )
        if not isinstance(reply, str):
            raise _unexpected("reserve_idempotency_key", reply, reactor=reactor)
        return reply

    async def put_early(
        self,
        reactor: str,
        correlation_id: str,
        payload: str,
        *,
        ttl: float,
        token: str | None = None,
    ) -> str | None:
        reply, _ = await self._by_holder(
            "put_early",
            _PUT_EARLY,
            reactor,
            correlation_id,
            [self.keys.correlations(reactor), self.keys.early(reactor, correlation_id)],
            [
                correlation_id,
                payload,
                # PX must be positive; a payload that expires at once is simply gone.
                max(1, _milliseconds(ttl)),
                token or new_token(),
            ],
        )
        match reply:
            case ["held", str(holder)]:
                return holder
            case ["stored"]:
                return None
            case ["conflict"]:
                raise WriteConflict(correlation_id, None)
        raise _unexpected("put_early", reply, reactor=reactor)

    async def take_early(
        self, reactor: str, correlation_id: str, *, token: str | None = None
    ) -> str | None:
        keys = [
            self.keys.early(reactor, correlation_id),
            self.keys.taken(reactor, correlation_id, token or new_token()),
        ]
        client = self._client()
        with _translate_errors("take_early", reactor=reactor):
            reply = await client.run(_TAKE_EARLY, keys, [_milliseconds(TAKEN_TTL)])
        if reply is not None and not isinstance(reply, str):
            raise _unexpected("take_early", reply, reactor=reactor)
        return reply

    async def due(self, now: float, *, limit: int = 100) -> list[str]:
        if self.cluster:
            return await self._walk_schedule("due", now, limit)
        client = self._client()
        with _translate_errors("due"):
            ids = await client.send(
                None, "ZRANGEBYSCORE", self.keys.deadlines, "-inf", repr(now), "LIMIT", 0, limit
            )
        return _ids_of("due", ids)

    async def expired_leases(self, *, limit: int = 100) -> list[str]:
        if self.cluster:
            return await self._walk_schedule("expired_leases", None, limit)
        client = self._client()
        with _translate_errors("expired_leases"):
            ids = await client.run(_EXPIRED_LEASES, [self.keys.leases], [limit])
        return _ids_of("expired_leases", ids)

    async def _walk_schedule(self, operation: str, now: float | None, limit: int) -> list[str]:
        """The first ``limit`` ids of every reactor's deadline schedule (up to ``now``)
        or lease schedule (expired by each node's clock), merged soonest first."""
        client = self._client()

        async def one(reactor: str) -> list[tuple[float, str]]:
            with _translate_errors(operation, reactor=reactor):
                if now is None:
                    flat = await client.run(
                        _EXPIRED_LEASES_SCORED, [self.keys.leases_of(reactor)], [limit]
                    )
                else:
                    flat = await client.send(
                        None,
                        "ZRANGEBYSCORE",
                        self.keys.deadlines_of(reactor),
                        "-inf",
                        repr(now),
                        "WITHSCORES",
                        "LIMIT",
                        0,
                        limit,
                    )
            if not isinstance(flat, list):
                raise _unexpected(operation, flat, reactor=reactor)
            if flat and isinstance(flat[0], list | tuple):
                # redis-py's reply callback already paired members and scores.
                flat = [value for pair in flat for value in pair]
            ids = _ids_of(operation, flat[::2])
            for execution_id in ids:
                self._note(execution_id, reactor)
            return [(float(score), i) for i, score in zip(ids, flat[1::2], strict=True)]

        found = await asyncio.gather(*(one(reactor) for reactor in await self._reactors()))
        return [i for _, i in sorted(entry for entries in found for entry in entries)][:limit]

    async def list_page(
        self,
        *,
        status: Status | None = None,
        reactor: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[StoredExecution], str | None]:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit!r}")
        after = ("", "") if cursor is None else _parse_cursor(cursor)
        if self.cluster and reactor is None:
            return await self._list_walking(status, limit, after)
        return await self._list_index(status, reactor, limit, after)

    async def _list_walking(
        self, status: Status | None, limit: int, after: tuple[str, str]
    ) -> tuple[list[StoredExecution], str | None]:
        """A page across reactors (cluster layout): the page of each reactor after the
        same cursor, merged in the indexes' order (newest first, then id bytes)."""
        pages = await asyncio.gather(
            *(self._list_index(status, reactor, limit, after) for reactor in await self._reactors())
        )
        merged = sorted(
            (found for page, _ in pages for found in page),
            key=lambda e: (e.created_at, e.id.encode()),
            reverse=True,
        )
        more = len(merged) > limit or any(next_cursor for _, next_cursor in pages)
        page = merged[:limit]
        if not more or not page:
            return page, None
        return page, f"{page[-1].created_at!r}/{page[-1].id}"

    async def _list_index(
        self, status: Status | None, reactor: str | None, limit: int, after: tuple[str, str]
    ) -> tuple[list[StoredExecution], str | None]:
        statuses = [status.value] if status is not None else [s.value for s in Status]
        keys = [self.keys.status(value, reactor) for value in statuses]
        # Each call reads a bounded window; a page that needs more calls them again
        # from where the last one stopped, so no call holds Redis for long.
        window = max(1, LIST_WINDOW // len(keys))
        client = self._client()
        found: list[StoredExecution] = []
        while True:
            with _translate_errors("list", reactor=reactor):
                entries = await client.run(_LIST_INDEXES, keys, [window, *after])
            if not isinstance(entries, list):
                raise _unexpected("list", entries, reactor=reactor)
            if not entries:
                return found, None
            named: list[str] = []
            flat: list[Arg] = []
            for entry in entries:
                match entry:
                    case [int(index), str(found_id), str(score), int(last)]:
                        named.append(self.keys.execution(found_id, reactor))
                        flat += [index, found_id, score, last]
                    case _:
                        raise _unexpected("list", entries, reactor=reactor)
            with _translate_errors("list", reactor=reactor):
                reply = await client.run(
                    _LIST_PAGE,
                    [*keys, *named],
                    [
                        len(keys),
                        min(limit - len(found), LIST_WINDOW),
                        int(reactor is not None),
                        reactor or "",
                        *statuses,
                        *flat,
                    ],
                )
            match reply:
                case [list(page), str(score), str(execution_id)]:
                    pass
                case _:
                    raise _unexpected("list", reply, reactor=reactor)
            for entry in page:
                match entry:
                    case [str(found_id), list(fields)]:
                        found.append(_envelope(found_id, _pairs(fields)))
                    case _:
                        raise _unexpected("list", reply, reactor=reactor)
            if not score:
                return found, None
            after = (score, execution_id)
            if len(found) >= limit:
                return found, f"{score}/{execution_id}"


class _translate_errors:
    """Turn redis-py errors (connection lost, timeout, script error...) into StorageError.

    A class rather than a generator-based context manager: this wraps every call.
    """

    __slots__ = ("_context", "_operation")

    def __init__(self, operation: str, **context: str | None) -> None:
        self._operation = operation
        self._context = context

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, traceback: object) -> None:
        if isinstance(exc, redis.exceptions.RedisError | OSError):
            raise StorageError(f"redis {self._operation} failed: {exc}", **self._context) from exc


def _ids_of(operation: str, reply: object) -> list[str]:
    if not isinstance(reply, list):
        raise _unexpected(operation, reply)
    return [_text(operation, execution_id) for execution_id in reply]


def _parse_cursor(cursor: str) -> tuple[str, str]:
    """The (index score, id) of the entry the previous page ended on."""
    score, slash, execution_id = cursor.partition("/")
    try:
        if not slash or math.isnan(float(score)):
            raise ValueError
    except ValueError:
        raise ValueError(f"not a cursor of RedisStorage.list_page: {cursor!r}") from None
    return score, execution_id


def _unexpected(operation: str, reply: object, **context: str | None) -> StorageError:
    return StorageError(f"redis {operation}: unexpected reply {reply!r:.200}", **context)


def _text(operation: str, value: object) -> str:
    if not isinstance(value, str):
        raise _unexpected(operation, value)
    return value


def _score(value: float) -> str:
    """``value`` as a sorted-set score that reads back exactly.

    Raises:
        ValueError: ``value`` is NaN, which Redis refuses as a score. Checked here
            because Redis does not undo what a script wrote before a command failed.
    """
    if math.isnan(value):
        raise ValueError("a time stored by reactor cannot be NaN")
    return repr(value)


def _milliseconds(seconds: float) -> int:
    return math.ceil(seconds * 1000)


def _fields(record: StoredExecution) -> list[str]:
    """The hash fields of ``record`` the write script stores as given, flattened."""
    fields = [
        "reactor",
        record.reactor,
        "status",
        record.status.value,
        "correlation_ids",
        _json(record.correlation_ids) if record.correlation_ids else "[]",
    ]
    if record.deadline is not None:
        fields += ["deadline", repr(record.deadline)]
    if record.reason is not None:
        fields += ["reason", record.reason]
    return fields


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    """``[field, value, field, value...]`` (a hash as Lua returns it) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _envelope(execution_id: str, fields: Mapping[Any, Any]) -> StoredExecution:
    try:
        return StoredExecution(
            id=execution_id,
            reactor=fields["reactor"],
            status=Status(fields["status"]),
            version=int(fields["version"]),
            body=fields["body"],
            correlation_ids=_ids(fields["correlation_ids"]),
            deadline=_optional_float(fields.get("deadline")),
            lease_expires=_optional_float(fields.get("lease_expires")),
            reason=fields.get("reason"),
            created_at=float(fields["created_at"]),
            updated_at=float(fields["updated_at"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageError(
            f"redis: malformed stored execution: {exc!r}", execution_id=execution_id
        ) from exc


def _ids(text: str) -> tuple[str, ...]:
    return () if text == "[]" else tuple(json.loads(text))


def _optional_float(value: str | None) -> float | None:
    return None if value is None else float(value)


def _redact(url: str) -> str:
    """``url`` without its password (in the user part or a ``password=`` parameter)."""
    parts = urllib.parse.urlsplit(url)
    userinfo, _, hostport = parts.netloc.rpartition("@")
    username = userinfo.partition(":")[0]
    query = [
        (name, value)
        for name, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if name != "password"
    ]
    return urllib.parse.urlunsplit(
        parts._replace(
            netloc=f"{username}@{hostport}" if username else hostport,
            query=urllib.parse.urlencode(query),
        )
    )
