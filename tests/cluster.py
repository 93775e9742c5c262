"""A local Redis Cluster of three masters for the suite: three ``redis-server
--cluster-enabled yes`` processes on free ports, joined by ``redis-cli --cluster
create``, with persistence off."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

__all__ = ["LocalCluster"]


def _free_port() -> int:
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        # The cluster bus listens on port + 10000, which must be free and valid too.
        if port != 6379 and port + 10_000 < 65_536:
            return port


class LocalCluster:
    """Three masters sharing the 16,384 slots.

    Attributes:
        ports: The masters' ports.
        url: The URL of the first master (a cluster client discovers the others).
    """

    def __init__(self, directory: Path) -> None:
        server = shutil.which("redis-server")
        cli = shutil.which("redis-cli")
        if server is None or cli is None:
            pytest.fail("redis-server and redis-cli must be on PATH for the cluster tests")
        self.ports = [_free_port() for _ in range(3)]
        self.url = f"redis://127.0.0.1:{self.ports[0]}/0"
        self._processes: list[subprocess.Popen[bytes]] = []
        for port in self.ports:
            node = directory / str(port)
            node.mkdir()
            self._processes.append(
                subprocess.Popen(
                    [
                        server,
                        *("--port", str(port), "--bind", "127.0.0.1"),
                        *("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"),
                        *("--save", "", "--appendonly", "no"),
                        *("--dir", str(node), "--logfile", str(node / "redis.log")),
                    ]
                )
            )
        for port in self.ports:
            self._wait(lambda port=port: redis.Redis(port=port).ping(), "start")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.ports),
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for port in self.ports:
            self._wait(
                lambda port=port: redis.Redis(port=port).cluster("info")["cluster_state"] == "ok",
                "cluster_state:ok",
            )

    def _wait(self, probe: object, what: str) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                if callable(probe) and probe():
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the local Redis Cluster did not reach {what}")
            time.sleep(0.05)

    def flush(self) -> None:
        """Empty every master."""
        for port in self.ports:
            with redis.Redis(port=port) as client:
                client.flushall()

    def client(self) -> redis.RedisCluster:
        """A cluster client (text replies)."""
        return redis.RedisCluster.from_url(self.url, decode_responses=True)

    def stop(self) -> None:
        for process in self._processes:
            process.terminate()
        for process in self._processes:
            process.wait()
