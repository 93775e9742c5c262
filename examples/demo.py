"""The ``make demo`` driver: run every example, each in its own process(es).

1. ``examples/checkout.py``: a saga on the embedded memory store (no Redis needed).
2. ``examples/report_webhook.py`` + ``examples/webhook_handler.py``: a run pauses in one
   process and is resumed by its correlation id from another, through Redis.
3. ``examples/approval.py``: a human approval, on Redis.

Redis comes from ``REACTOR_REDIS_URL`` when it is set; otherwise, when ``redis-server``
is on PATH, the demo starts a throwaway one on a free port (never 6379), with
persistence off, and stops it at the end. With neither, only the checkout runs::

    python examples/demo.py
    REACTOR_REDIS_URL=redis://127.0.0.1:6390/0 python examples/demo.py
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

EXAMPLES = Path(__file__).resolve().parent
ROOT = EXAMPLES.parent
SHARED_REDIS_PORT = 6379  # a shared server runs there: never start on it, never touch it


class DemoFailed(Exception):
    """An example did not behave as the story says it should."""


def header(title: str) -> None:
    print(f"\n=== {title} ===")


def say(text: str) -> None:
    print(f"\n{text}")


def run_example(script: str, *args: str, env: dict[str, str], expect: int = 0) -> str:
    """Run ``examples/<script>`` in a new Python process, echo its output, return stdout."""
    shown = shlex.join(["python", f"examples/{script}", *args])
    print(f"$ {shown}")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=ROOT,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    for line in proc.stdout.splitlines():
        print(f"  | {line}".rstrip())
    if proc.returncode != expect:
        raise DemoFailed(f"{shown} exited with status {proc.returncode}, expected {expect}")
    if expect:
        print(f"  (exit status {proc.returncode}, as expected)")
    return proc.stdout


def free_port() -> int:
    """A currently free TCP port on the loopback interface, other than the shared 6379."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port: int = probe.getsockname()[1]
        if port != SHARED_REDIS_PORT:
            return port


def wait_until_ready(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 10
    with redis.Redis(host="127.0.0.1", port=port) as client:
        while server.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
    tail = log.read_text(errors="replace")[-600:] if log.exists() else ""
    raise DemoFailed(f"redis-server did not start on port {port}:\n{tail}")


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@contextlib.contextmanager
def throwaway_redis(executable: str) -> Iterator[str]:
    """Start ``redis-server`` on a free port with persistence off; stop it on exit."""
    with tempfile.TemporaryDirectory(prefix="reactor-demo-") as tmp:
        log = Path(tmp) / "redis.log"
        port = free_port()
        command = [
            executable,
            *("--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no"),
            *("--dir", tmp, "--logfile", str(log)),
        ]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until_ready(port, server, log)
            print(f"Started a throwaway redis-server on 127.0.0.1:{port} (pid {server.pid}).")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop(server)
            print(f"\nStopped the throwaway redis-server on port {port}.")


@contextlib.contextmanager
def redis_url() -> Iterator[str | None]:
    """``REACTOR_REDIS_URL``, else a throwaway server's URL, else ``None``."""
    url = os.environ.get("REACTOR_REDIS_URL")
    if url:
        print(f"Using the Redis at REACTOR_REDIS_URL={url}.")
        yield url
        return
    executable = shutil.which("redis-server")
    if executable is None:
        yield None
        return
    with throwaway_redis(executable) as url:
        yield url


def checkout_demo(env: dict[str, str]) -> None:
    header("1. Checkout saga -- embedded memory store, one process")
    say("Two checkouts: one ships, one cannot, and its completed steps are undone in reverse.")
    run_example("checkout.py", env={k: v for k, v in env.items() if k != "REACTOR_REDIS_URL"})


def start_report(*args: str, env: dict[str, str]) -> str:
    """Run ``report_webhook.py start ARGS``; return the correlation id it printed."""
    started = run_example("report_webhook.py", "start", *args, env=env)
    found = re.search(r"^correlation id:\s+(\S+)$", started, re.MULTILINE)
    if found is None:
        raise DemoFailed("report_webhook.py start printed no correlation id")
    return found.group(1)


def report_webhook_demo(env: dict[str, str]) -> None:
    header("2. Report webhook -- paused in one process, resumed from another")
    print(f"$ export REACTOR_REDIS_URL={env['REACTOR_REDIS_URL']}")
    say("The app requests a report; the run pauses until the provider's webhook arrives:")
    correlation_id = start_report("7", env=env)
    report_id = correlation_id.removeprefix("report-")
    body = json.dumps({"status": "done", "url": f"https://reports.example.com/{report_id}.pdf"})

    say(
        "That process has exited; the execution waits in Redis. The provider calls the\n"
        f"webhook, which resumes it by correlation id {correlation_id} in a new process:"
    )
    run_example("webhook_handler.py", correlation_id, body, env=env)

    say("The provider delivers the same webhook again; nothing runs twice:")
    run_example("webhook_handler.py", correlation_id, body, env=env, expect=1)

    say("Another report, this time the provider reports a failure; the request is undone:")
    correlation_id = start_report("8", "--format", "csv", env=env)
    failed = json.dumps({"status": "failed", "url": "", "error": "quota exceeded"})
    run_example("webhook_handler.py", correlation_id, failed, env=env)


def approval_demo(env: dict[str, str]) -> None:
    header("3. Expense approval -- a human in the loop, on Redis")
    say("Each expense holds budget, then waits for the manager's confirmation:")
    run_example("approval.py", env=env)


def main() -> int:
    # Turn a plain `kill` into SystemExit too, so the redis-server is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    env = dict(os.environ)
    try:
        checkout_demo(env)
        header("Redis for the next examples")
        with redis_url() as url:
            if url is None:
                print(
                    "No Redis: the report webhook and approval examples keep executions in\n"
                    "Redis, and REACTOR_REDIS_URL is not set and redis-server is not on PATH.\n"
                    "Install one (apt-get install redis-server; the demo then starts a\n"
                    "throwaway server itself) or set REACTOR_REDIS_URL=redis://HOST:PORT/0,\n"
                    "then run the demo again."
                )
                return 0
            env["REACTOR_REDIS_URL"] = url
            report_webhook_demo(env)
            approval_demo(env)
    except DemoFailed as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo interrupted", file=sys.stderr)
        return 130
    print("\nDemo finished.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
