"""The fault-injection kit (tests/faults.py) does what it says, so that tests built on it
prove what they claim."""

from __future__ import annotations

import socket
import textwrap
import time
from pathlib import Path

import pytest
import redis

from faults import Calls, Child, Proxy, RedisServer

pytestmark = pytest.mark.redis


def test_the_proxy_stalls_resumes_and_cuts(proxy: Proxy) -> None:
    with redis.Redis.from_url(proxy.url, socket_timeout=0.3) as client:
        assert client.ping()
        assert (proxy.accepted, proxy.live) == (1, 1)

        proxy.stall()
        with pytest.raises(redis.TimeoutError):
            client.execute_command("PING")
        proxy.resume()

        proxy.cut()
        assert proxy.live == 0
        assert client.set("k", "v")  # redis-py reconnects: the proxy still accepts
        assert proxy.accepted >= 2


def test_a_stall_to_the_client_lets_the_command_through(proxy: Proxy, redis_url: str) -> None:
    with (
        redis.Redis.from_url(proxy.url, socket_timeout=0.3, retry_on_timeout=False) as client,
        redis.Redis.from_url(redis_url) as direct,
    ):
        client.ping()
        proxy.stall(to_server=False, to_client=True)
        with pytest.raises(redis.TimeoutError):
            client.execute_command("SET", "k", "v")
        proxy.resume()

        assert direct.get("k") == b"v"  # applied; only the reply was held


def test_an_aof_server_keeps_acknowledged_writes_through_sigkill(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, aof=True)
    try:
        with redis.Redis.from_url(server.url) as client:
            client.set("k", "v")
        server.kill()
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.1", server.port), timeout=1),
        ):
            pass
        server.restart()
        with redis.Redis.from_url(server.url) as client:
            assert client.get("k") == b"v"
    finally:
        server.stop()


def test_a_child_is_killed_on_its_marker_and_calls_are_counted_across_processes(
    calls: Calls,
) -> None:
    code = textwrap.dedent(
        f"""
        import time
        from faults import Calls
        calls = Calls({calls.url!r})
        for n in range(1000):
            with calls.during("step"):
                print("step", n, flush=True)
                time.sleep(0.01)
        """
    )
    with Child(code) as first, Child(code) as second:
        first.kill_when("step 5")
        second.kill_when_count(calls, "step", 20)
        assert first.process.returncode == second.process.returncode == -9

    counted = calls.count("step")
    time.sleep(0.05)
    assert calls.count("step") == counted  # nothing runs any more
    assert counted >= 20
    assert calls.overlap("step") == 2  # the two children ran steps at the same time


def test_notes_keep_their_order(calls: Calls) -> None:
    for value in ["a", "b", "c"]:
        calls.note("undo", value)

    assert calls.notes("undo") == ["a", "b", "c"]
    assert calls.overlap("never") == calls.count("never") == 0
