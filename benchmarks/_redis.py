"""A throwaway redis-server for benchmarks (never the shared one on 6379)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator

import redis


@contextlib.contextmanager
def throwaway_redis() -> Iterator[str]:
    """Start ``redis-server`` on a free port without persistence; yield its URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as directory:
        process = subprocess.Popen(
            [
                executable,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=directory,
            stdout=subprocess.DEVNULL,
        )
        try:
            with redis.Redis(port=port) as client:
                for _ in range(500):
                    try:
                        client.ping()
                        break
                    except redis.ConnectionError:
                        time.sleep(0.01)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            process.wait()
