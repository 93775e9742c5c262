"""The ``reactor`` command: run a worker and operate on stored executions.

Usage::

    reactor [--redis URL] [--cluster] [--app MODULE]... [--json] COMMAND ...

    reactor worker [--concurrency N] [--poll-interval S] [--grace S] [--burst]
    reactor list [--status S] [--reactor NAME] [--limit N]
    reactor show ID
    reactor cancel ID [--reason R]
    reactor suspend ID [--reason R]
    reactor resume ID [--step S] --payload JSON|@FILE
    reactor resume --correlation-id CID --reactor NAME --payload JSON|@FILE
    reactor undo ID
    reactor graph module:Class

Every command but ``graph`` needs Redis: ``--redis URL`` or ``$REACTOR_REDIS_URL``;
``--cluster`` (or ``$REACTOR_REDIS_CLUSTER=1``) when it names a node of a Redis Cluster.

Stored data never chooses code: the command imports the modules named with ``--app`` (and
what they import), never a module named by a stored execution. ``list``, ``show``,
``cancel`` and ``suspend`` work from stored data alone, so they need no ``--app`` (given
one, ``show`` goes through :meth:`Reactor.find <reactor.Reactor.find>`, which fires an
overdue lazy timeout first and adds the interrupts' schemas). ``resume``, ``undo`` and
``worker`` run steps, so they need the reactor's class: ``--app`` the module that defines
it. The global options may also follow the command (``reactor show ID --json``).

Exit status: 0 done, 1 refused (the error is printed as one ``error: Type: message`` line,
or as a JSON document with ``--json``), 2 usage, 130 interrupted, 141 the reader of the
output went away (``reactor list | head -1``), as for a process killed by SIGPIPE.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import io
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import structlog

from . import _codec
from ._config import configure, get_config
from ._reactor import Reactor, registry
from ._records import TRACE_LIMIT, Execution
from ._status import Status
from ._trace import Trace
from .errors import (
    DefinitionChanged,
    ExecutionNotFound,
    FailureInfo,
    NotPaused,
    PayloadInvalid,
    ReactorError,
    StorageError,
)
from .storage import RedisStorage, Storage, StoredExecution
from .storage._base import WriteConflict
from .worker import Worker

__all__ = ["main"]

_Command = Callable[[argparse.Namespace, Storage], Awaitable[None]]


# Compare-and-set attempts of a cancel racing other writers before it gives up.
_CAS_ATTEMPTS = 10
# Exit status of a command whose reader closed the pipe: 128 + SIGPIPE, as if killed by it.
_BROKEN_PIPE = 128 + signal.SIGPIPE


class _UsageError(Exception):
    """The command line is wrong in a way argparse cannot see (exit status 2)."""


class _Refused(Exception):
    """The command cannot be carried out, for a reason that is not a ReactorError.

    Args:
        kind: The error's type as printed (``"ModuleNotFoundError"``, ...).
        message: What went wrong.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``reactor`` command.

    Args:
        argv: The arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 done, 1 refused, 2 usage error, 130 interrupted, 141 the
        output's reader went away.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits on --help (0) and on usage errors (2); main returns instead.
        return exc.code if isinstance(exc.code, int) else 2
    # Options given after the command land in "sub_" twins (see _add_common).
    args.redis = getattr(args, "sub_redis", None) or args.redis
    args.app = [*args.app, *getattr(args, "sub_app", [])]
    args.json = args.json or getattr(args, "sub_json", False)
    args.cluster = args.cluster or getattr(args, "sub_cluster", False)
    try:
        status = _main(args)
        # Flushed here, so that a closed pipe is noticed below rather than at exit.
        sys.stdout.flush()
        return status
    except _UsageError as exc:
        if args.json:
            _print_json({"error": "UsageError", "message": str(exc)}, file=sys.stderr)
        else:
            args.command_parser.print_usage(sys.stderr)
            print(f"{args.command_parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except (ReactorError, _Refused) as exc:
        _report(exc, args.json)
        return 1
    except BrokenPipeError:
        # The reader went away (``reactor list | head -1``): stop quietly. Python would
        # report the broken pipe again when it flushes stdout at exit, so point stdout
        # at /dev/null first.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return _BROKEN_PIPE
    except KeyboardInterrupt:
        return 130


def _report(exc: ReactorError | _Refused, as_json: bool) -> None:
    """Print a refusal on stderr: one ``error: Type: message`` line, or one JSON document."""
    kind = exc.kind if isinstance(exc, _Refused) else type(exc).__name__
    document: dict[str, Any] = {"error": kind, "message": str(exc)}
    if isinstance(exc, ReactorError):
        document.update(reactor=exc.reactor, execution_id=exc.execution_id, step=exc.step)
    if isinstance(exc, PayloadInvalid):
        document.update(errors=exc.errors, attempts_left=exc.attempts_left)
    if as_json:
        _print_json(document, file=sys.stderr)
        return
    print(f"error: {kind}: {exc}", file=sys.stderr)
    if isinstance(exc, PayloadInvalid):
        for error in exc.errors:
            print(f"  {error['path']}: {error['message']}", file=sys.stderr)
        print(f"  attempts left: {_attempts(exc.attempts_left)}", file=sys.stderr)


def _main(args: argparse.Namespace) -> int:
    # A console script does not put the working directory on sys.path (``python -m``
    # does): add it so --app modules import the same either way.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            # Stored text may hold lone surrogates: print them escaped rather than fail.
            stream.reconfigure(errors="backslashreplace")
    for module in args.app:
        _import(module, "--app")
    if args.command == "graph":
        cls = _graph_target(args.target)
        if args.json:
            _print_json({"reactor": cls.name, "mermaid": cls.mermaid()})
        else:
            print(cls.mermaid())
        return 0
    if args.command == "resume":
        _check_resume(args)
    url = args.redis or os.environ.get("REACTOR_REDIS_URL")
    if not url:
        raise _UsageError("no Redis to connect to: pass --redis URL or set REACTOR_REDIS_URL")
    try:
        storage = RedisStorage.from_url(url, cluster=args.cluster or _cluster_from_env())
    except ValueError as exc:
        raise _UsageError(f"--redis: {exc}") from None
    configure(storage=storage)
    if args.command == "worker":
        _configure_logging(args.json)
    asyncio.run(_run(args.handler, args, storage))
    return 0


async def _run(handler: _Command, args: argparse.Namespace, storage: Storage) -> None:
    try:
        await handler(args, storage)
    finally:
        await storage.aclose()


# ------------------------------------------------------------------------ parser


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reactor",
        description="Run a reactor worker and operate on stored executions.",
    )
    _add_common(parser, after_command=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, handler: _Command | None, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        _add_common(sub, after_command=True)
        sub.set_defaults(handler=handler, command_parser=sub)
        return sub

    worker = command(
        "worker", _worker, "fire active interrupt timeouts, recover crashed runs (needs --app)"
    )
    worker.add_argument("--concurrency", type=_positive_int, default=4, metavar="N")
    worker.add_argument(
        "--poll-interval", type=float, default=0.2, metavar="S", help="seconds between polls"
    )
    worker.add_argument(
        "--grace",
        type=_non_negative_float,
        default=None,
        metavar="S",
        help="on SIGTERM/SIGINT, wait at most S seconds for the steps in flight, then exit "
        "and leave them to lease recovery (default: wait for them)",
    )
    worker.add_argument("--burst", action="store_true", help="act on what is due now, then exit")

    listing = command("list", _list, "list executions, newest first")
    listing.add_argument("--status", choices=[s.value for s in Status])
    listing.add_argument("--reactor", metavar="NAME", help="registry name, e.g. shop.Checkout")
    listing.add_argument("--limit", type=_positive_int, default=100, metavar="N")

    show = command(
        "show", _show, "show one execution: results, error, pending interrupts (no --app needed)"
    )
    show.add_argument("id")

    resume = command(
        "resume", _resume, "resume a pending interrupt with a payload (strict; needs --app)"
    )
    resume.add_argument("id", nargs="?")
    resume.add_argument("--step", metavar="S", help="the interrupt, when several are pending")
    resume.add_argument("--correlation-id", metavar="CID", help="resume by correlation id")
    resume.add_argument("--reactor", metavar="NAME", help="reactor of --correlation-id")
    resume.add_argument(
        "--payload", required=True, metavar="JSON|@FILE", help="JSON text, @file or @- (stdin)"
    )

    suspend = command(
        "suspend",
        _suspend,
        "pause a running execution at its next step boundary (no --app needed); "
        "resume it with --step suspended",
    )
    suspend.add_argument("id")
    suspend.add_argument("--reason", metavar="R")

    cancel = command("cancel", _cancel, "cancel without compensation (no --app needed)")
    cancel.add_argument("id")
    cancel.add_argument("--reason", metavar="R")

    undo = command(
        "undo", _undo, "undo the completed steps, newest first, then cancel (needs --app)"
    )
    undo.add_argument("id")

    serve = command("serve", _serve, "serve the interrupt inbox and HTTP API (reactor[web])")
    serve.add_argument("--host", default="127.0.0.1", help="interface (default: 127.0.0.1)")
    serve.add_argument("--port", type=_positive_int, default=8000, metavar="N")
    serve.add_argument(
        "--dev", action="store_true", help="allow every request from localhost, no authorization"
    )

    graph = command("graph", None, "print a reactor's steps as a Mermaid flowchart")
    graph.add_argument("target", metavar="module:Class", help="e.g. shop.reactors:Checkout")
    return parser


def _add_common(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    # A subcommand's parser writes every attribute it knows into the result, so the copies
    # after the command use their own names and no defaults, or they would erase the
    # values given before it.
    prefix = "sub_" if after_command else ""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if after_command else value

    parser.add_argument(
        "--redis",
        dest=prefix + "redis",
        default=default(None),
        metavar="URL",
        help="Redis URL (default: $REACTOR_REDIS_URL)",
    )
    parser.add_argument(
        "--app",
        dest=prefix + "app",
        action="append",
        default=default([]),
        metavar="MODULE",
        help="import this module, which defines reactors (repeatable); resume, undo and "
        "worker need the reactor's, and no other module is ever imported",
    )
    parser.add_argument(
        "--cluster",
        dest=prefix + "cluster",
        action="store_true",
        default=default(False),
        help="the URL names a node of a Redis Cluster (default: $REACTOR_REDIS_CLUSTER)",
    )
    parser.add_argument(
        "--json",
        dest=prefix + "json",
        action="store_true",
        default=default(False),
        help="print one JSON document",
    )


def _cluster_from_env() -> bool:
    return os.environ.get("REACTOR_REDIS_CLUSTER", "").lower() in ("1", "true", "yes")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:  # also refuses NaN
        raise argparse.ArgumentTypeError(f"must be at least 0, not {text}")
    return value


def _check_resume(args: argparse.Namespace) -> None:
    if (args.id is None) == (args.correlation_id is None):
        raise _UsageError("give either an execution ID or --correlation-id")
    if args.correlation_id is not None:
        if args.reactor is None:
            raise _UsageError("--correlation-id needs --reactor NAME")
        if args.step is not None:
            raise _UsageError("--step cannot be used with --correlation-id")
    elif args.reactor is not None:
        raise _UsageError("--reactor is only used with --correlation-id")
    args.payload = _payload(args.payload)


def _payload(text: str) -> Any:
    if text.startswith("@"):
        source = text[1:]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise _UsageError(f"--payload: cannot read {source}: {exc.strerror}") from None
        except UnicodeDecodeError as exc:
            raise _UsageError(f"--payload: {source} is not UTF-8 text: {exc.reason}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _UsageError(f"--payload is not valid JSON: {exc}") from None
    except RecursionError:
        # The JSON parser recurses once per level; resume would refuse such a payload
        # anyway (nested deeper than the codec's MAX_DEPTH).
        raise _UsageError("--payload is nested too deeply to be read") from None


# ---------------------------------------------------------------------- commands


async def _worker(args: argparse.Namespace, storage: Storage) -> None:
    worker = Worker(
        storage=storage,
        concurrency=args.concurrency,
        poll_interval=args.poll_interval,
        grace=args.grace,
    )
    if args.burst:
        actions = await worker.run_once()
        structlog.get_logger("reactor.worker").info("reactor.worker.burst_done", actions=actions)
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await worker.run(stop)
    if worker.abandoned:
        # Steps still in flight past the grace period: end the process now, as a crash
        # would. A normal exit would wait for them (step threads are joined at exit, and
        # asyncio.run cancels tasks); their leases run out and another worker recovers
        # them from their last checkpoint.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


async def _list(args: argparse.Namespace, storage: Storage) -> None:
    status = Status(args.status) if args.status else None
    found = await storage.list(status=status, reactor=args.reactor, limit=args.limit)
    if args.json:
        _print_json(
            [
                {
                    "id": stored.id,
                    "reactor": stored.reactor,
                    "status": stored.status.value,
                    "reason": stored.reason,
                    "created_at": _iso(stored.created_at),
                    "updated_at": _iso(stored.updated_at),
                    "deadline": _iso(_deadline(stored)),
                    "pending": _pending_items(stored),
                }
                for stored in found
            ]
        )
        return
    if not found:
        print("no executions found")
        return
    rows = [["ID", "REACTOR", "STATUS", "UPDATED", "DEADLINE", "PENDING", "REASON"]]
    rows += [
        [
            stored.id,
            stored.reactor,
            stored.status.value,
            _short_time(stored.updated_at),
            _short_time(_deadline(stored)),
            ",".join(_pending_items(stored)),
            stored.reason or "",
        ]
        for stored in found
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


async def _show(args: argparse.Namespace, storage: Storage) -> None:
    _print_document(await _describe(await _load(storage, args.id)), args.json)


async def _resume(args: argparse.Namespace, storage: Storage) -> None:
    if args.correlation_id is not None:
        cls = _registered(args.reactor, "resume")
        execution = await cls.aresume_by_correlation_id(args.correlation_id, args.payload)
    else:
        stored = await _load(storage, args.id)
        cls = _registered(stored.reactor, "resume", execution_id=stored.id)
        execution = await cls.aresume(args.id, args.payload, step=args.step)
    _print_document(_execution_document(execution), args.json)


async def _cancel(args: argparse.Namespace, storage: Storage) -> None:
    """Cancel from the stored execution alone: no class is needed, so executions of
    reactors no process can import (``__main__.X``) can be ended, and then expire."""
    reason = args.reason or "cancelled"
    problem = _codec.text_problem(reason)
    if problem is not None:
        raise _UsageError(f"--reason {reason!r} cannot be stored: {problem}")
    await _change_stored(args, storage, lambda stored: _cancelled(stored, reason))


async def _suspend(args: argparse.Namespace, storage: Storage) -> None:
    """Ask a running execution to pause, from the stored execution alone (as
    :meth:`Reactor.suspend` does): its owner notices the request at its next checkpoint
    or lease renewal."""
    reason = args.reason or "suspended"

    def requested(stored: StoredExecution) -> StoredExecution | None:
        if stored.status is Status.PAUSED:
            return None
        body = _body(stored)
        body["suspend_request"] = reason
        trace = Trace(stored.created_at, body.get("trace", ""), body.get("trace_length", 0))
        trace.rows.append(("suspended", "suspended", trace.offset(time.time()), None, None))
        body["trace"], body["trace_length"] = trace.stored()
        return stored.evolve(body=json.dumps(body, separators=(",", ":")))

    # The owner keeps renewing it; a full lease is what any of its writes holds.
    await _change_stored(args, storage, requested, lease_seconds=get_config().lease_seconds)


async def _change_stored(
    args: argparse.Namespace,
    storage: Storage,
    change: Callable[[StoredExecution], StoredExecution | None],
    *,
    lease_seconds: float | None = None,
) -> None:
    """Write ``change`` of the stored unfinished execution (compare-and-set, again on a
    conflict) and print what is stored; ``change`` returning ``None`` leaves it as it is."""
    for _ in range(_CAS_ATTEMPTS):
        stored = await _load(storage, args.id)
        if stored.status.finished:
            raise _not_paused(stored)
        changed = change(stored)
        written = stored
        if changed is not None:
            try:
                written = await storage.write(
                    changed, expected_version=stored.version, lease_seconds=lease_seconds
                )
            except WriteConflict:
                continue
        _print_document(await _describe(written), args.json)
        return
    raise StorageError("too many concurrent writers", reactor=stored.reactor, execution_id=args.id)


async def _undo(args: argparse.Namespace, storage: Storage) -> None:
    stored = await _load(storage, args.id)
    cls = _registered(stored.reactor, "undo", execution_id=stored.id)
    _print_document(_execution_document(await cls.aundo(args.id)), args.json)


async def _serve(args: argparse.Namespace, storage: Storage) -> None:
    """Run ``reactor.web`` with uvicorn; links are signed with ``$REACTOR_WEB_SECRET``."""
    try:
        import uvicorn

        from .web import create_app
    except ImportError as exc:
        raise _Refused(
            type(exc).__name__, f"serve needs the web extra: pip install 'reactor[web]' ({exc})"
        ) from exc
    if args.dev and args.host not in ("127.0.0.1", "::1", "localhost"):
        raise _UsageError("--dev answers without authorization, so only on localhost")
    secret = os.environ.get("REACTOR_WEB_SECRET") or None
    app = create_app(dev=args.dev, secret=secret, storage=storage)
    await uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port)).serve()


# ----------------------------------------------------------------------- helpers


def _not_paused(stored: StoredExecution) -> NotPaused:
    why = f" ({stored.reason})" if stored.reason else ""
    return NotPaused(
        f"the execution is {stored.status.value}{why}",
        status=stored.status.value,
        reason=stored.reason,
        reactor=stored.reactor,
        execution_id=stored.id,
    )


async def _load(storage: Storage, execution_id: str) -> StoredExecution:
    # Bytes of argv that are not UTF-8 arrive as lone surrogates, which Redis cannot
    # take as a key.
    problem = _codec.text_problem(execution_id)
    if problem is not None:
        raise ExecutionNotFound(f"no execution has the id {execution_id!r}: {problem}")
    stored = await storage.load(execution_id)
    if stored is None:
        raise ExecutionNotFound("no such execution", execution_id=execution_id)
    return stored


def _registered(name: str, command: str, *, execution_id: str | None = None) -> type[Reactor]:
    """The reactor class registered as ``name`` by the ``--app`` modules.

    Raises:
        ExecutionNotFound: no ``--app`` module defines it; the message says how to fix it.
    """
    cls = registry.get(name)
    if cls is not None:
        return cls
    if name.startswith("__main__."):
        hint = (
            "it was defined in a script run as __main__, which no other process can import "
            '(set name = "..." on the class); its executions can still be shown and '
            "cancelled"
        )
    else:
        hint = f"import the module that defines it: reactor {command} --app MODULE ..."
    raise ExecutionNotFound(
        f"reactor {name!r} is not registered; {hint}", reactor=name, execution_id=execution_id
    )


def _graph_target(target: str) -> type[Reactor]:
    """``module:Class`` (imported), or the name of a reactor an ``--app`` module defines."""
    if ":" not in target:
        if target in registry:
            return registry[target]
        raise _UsageError(
            f"expected module:Class (e.g. shop.reactors:Checkout), not {target!r}; "
            "a reactor name works too once --app has imported it"
        )
    module_name, _, qualname = target.partition(":")
    found: Any = _import(module_name, "graph")
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if not (isinstance(found, type) and issubclass(found, Reactor)):
        raise _Refused("TypeError", f"{target} is not a Reactor class")
    return found


def _import(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _Refused(type(exc).__name__, f"{what}: cannot import {module!r}: {exc}") from exc


# ------------------------------------------------------------ stored executions
# What list, show and cancel read without the reactor's class: the executor's body is
# JSON with (among others) "results" (tagged JSON trees by step path), "pending"
# ({path: {"cid", "request", "deadline", "strategy", "attempts_left"}}), "error" and
# "returns" (the step whose result is the execution's).


def _body(stored: StoredExecution) -> dict[str, Any]:
    """The stored body, parsed.

    Raises:
        StorageError: it is not the JSON object the executor writes.
    """
    try:
        body = json.loads(stored.body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise StorageError(
            "the stored body cannot be read", reactor=stored.reactor, execution_id=stored.id
        )
    return body


def _pending(stored: StoredExecution) -> dict[str, Any]:
    if stored.status is not Status.PAUSED:
        return {}
    pending = _body(stored).get("pending")
    return pending if isinstance(pending, dict) else {}


def _pending_items(stored: StoredExecution) -> list[str]:
    """What a paused execution waits on: interrupts, breakpoints (``before:<path>``,
    ``after:<path>``) and an operator pause (``suspended``)."""
    try:
        return sorted(_pending(stored))
    except StorageError:
        return []  # A listing shows what it can; show names the unreadable execution.


def _deadline(stored: StoredExecution) -> float | None:
    """The earliest deadline of a paused execution's interrupts, lazy ones included (the
    envelope's ``deadline`` holds only the active ones, which the worker fires)."""
    try:
        pending = _pending(stored)
    except StorageError:
        # A listing shows what it can; show names the unreadable execution.
        return stored.deadline
    deadlines = [
        entry["deadline"]
        for entry in pending.values()
        if isinstance(entry, dict) and isinstance(entry.get("deadline"), int | float)
    ]
    return min(deadlines, default=stored.deadline)


def _cancelled(stored: StoredExecution, reason: str) -> StoredExecution:
    """``stored`` cancelled as :meth:`Reactor.cancel` would: its pending interrupts
    dropped, its correlation ids released, no deadline, no lease."""
    body = _body(stored)
    if stored.status is Status.PAUSED:
        body["pending"] = {}
    return stored.evolve(
        status=Status.CANCELLED,
        reason=reason,
        # ASCII escapes keep any lone surrogate in stored text writable.
        body=json.dumps(body, separators=(",", ":")),
        correlation_ids=(),
        deadline=None,
        lease_expires=None,
    )


async def _describe(stored: StoredExecution) -> dict[str, Any]:
    """The document ``show`` prints: through ``find`` when an ``--app`` module defines
    the reactor (schemas included), else from the stored data."""
    cls = registry.get(stored.reactor)
    if cls is not None:
        try:
            return _execution_document(await cls.afind(stored.id))
        except DefinitionChanged:
            pass  # The class changed since; the stored data still reads.
    return _stored_document(stored)


def _stored_document(stored: StoredExecution) -> dict[str, Any]:
    body = _body(stored)
    try:
        results: dict[str, Any] = dict(body["results"])
        returns = body.get("returns")
        error = body.get("error")
        return {
            "id": stored.id,
            "reactor": stored.reactor,
            "status": stored.status.value,
            "reason": stored.reason,
            "created_at": _iso(stored.created_at),
            "updated_at": _iso(stored.updated_at),
            "result": results.get(returns)
            if isinstance(returns, str) and stored.status is Status.COMPLETED
            else None,
            "results": results,
            "error": None
            if error is None
            else {
                "step": error["step"],
                "type": error["type"],
                "message": error["message"],
                "traceback": error.get("traceback"),
                "rollback_failures": [
                    {"step": f["step"], "kind": f["kind"], "message": f["message"]}
                    for f in error.get("rollback_failures", ())
                ],
            },
            "interrupts": [
                {
                    "step": path,
                    "kind": entry.get("kind", "interrupt"),
                    "correlation_id": entry["cid"],
                    "request": entry["request"],
                    # Declared in the class: unknown from stored data alone.
                    "schema": None,
                    "deadline": _iso(entry["deadline"]),
                    "attempts_left": entry["attempts_left"],
                }
                for path, entry in _pending(stored).items()
            ],
            "trace": [
                {
                    "event": event,
                    "step": step,
                    "time": _iso(when / 1000),  # stored in milliseconds
                    "attempt": attempt,
                    "principal": principal,
                }
                for event, step, when, attempt, principal in Trace(
                    stored.created_at, body.get("trace", "")
                ).view()[-TRACE_LIMIT:]
            ],
        }
    except (KeyError, TypeError) as exc:
        raise StorageError(
            f"the stored body cannot be read: {type(exc).__name__}: {exc}",
            reactor=stored.reactor,
            execution_id=stored.id,
        ) from exc


def _configure_logging(as_json: bool) -> None:
    """One line per event on stderr (reactor's transition events included)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    processors: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        # ConsoleRenderer formats tracebacks itself and warns if they come pre-formatted.
        processors.append(structlog.processors.format_exc_info)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def _attempts(left: int | None) -> str:
    if left is None:
        return "unlimited"
    if left == 0:
        return "0 (the execution was cancelled)"
    return str(left)


def _iso(timestamp: float | dt.datetime | None) -> str | None:
    if timestamp is None:
        return None
    if not isinstance(timestamp, dt.datetime):
        timestamp = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return timestamp.isoformat(timespec="milliseconds")


def _short_time(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _tree(value: Any) -> Any:
    """Any stored value as JSON (tagged where JSON has no such type)."""
    return _codec.encode(value)


def _text(tree: Any) -> str:
    return json.dumps(tree, ensure_ascii=False)


def _failure_document(error: FailureInfo | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {
        "step": error.step,
        "type": error.type,
        "message": error.message,
        "traceback": error.traceback,
        "rollback_failures": [
            {"step": f.step, "kind": f.kind, "message": f.message} for f in error.rollback_failures
        ],
    }


def _execution_document(execution: Execution) -> dict[str, Any]:
    return {
        "id": execution.id,
        "reactor": execution.reactor.name,
        "status": execution.status.value,
        "reason": execution.reason,
        "created_at": _iso(execution.created_at),
        "updated_at": _iso(execution.updated_at),
        "result": _tree(execution.result),
        "results": {path: _tree(value) for path, value in execution.results.items()},
        "error": _failure_document(execution.error),
        "interrupts": [
            {
                "step": pending.step,
                "kind": pending.kind,
                "correlation_id": pending.correlation_id,
                "request": _tree(pending.request),
                "schema": pending.schema,
                "deadline": _iso(pending.deadline),
                "attempts_left": pending.attempts_left,
            }
            for pending in execution.interrupts
        ],
        "trace": [
            {
                "event": entry.event,
                "step": entry.step,
                "time": _iso(entry.time),
                "attempt": entry.attempt,
                "principal": entry.principal,
            }
            for entry in execution.trace
        ],
    }


def _print_document(document: dict[str, Any], as_json: bool) -> None:
    """Print an execution document (``_execution_document`` or ``_stored_document``)."""
    if as_json:
        _print_json(document)
        return
    lines = [f"{key}: {document[key]}" for key in ("id", "reactor", "status")]
    lines += [
        f"{key}: {document[key]}"
        for key in ("reason", "created_at", "updated_at")
        if document[key] is not None
    ]
    if document["status"] == Status.COMPLETED.value:
        lines.append(f"result: {_text(document['result'])}")
    error = document["error"]
    if error is not None:
        where = f" at {error['step']}" if error["step"] else ""
        lines.append(f"error: {error['type']}{where}: {error['message']}")
        lines += [
            f"  {f['kind']} of {f['step']} failed: {f['message']}"
            for f in error["rollback_failures"]
        ]
    if document["results"]:
        lines.append("results:")
        lines += [f"  {path}: {_text(tree)}" for path, tree in document["results"].items()]
    if document["interrupts"]:
        lines.append("interrupts:")
        for pending in document["interrupts"]:
            lines.append(f"  {pending['step']}:")
            lines += [
                f"    {key}: {pending[key]}"
                for key in ("kind", "correlation_id", "deadline", "attempts_left")
                if pending[key] is not None
            ]
            lines.append(f"    request: {_text(pending['request'])}")
    if document["trace"]:
        lines.append("trace:")
        for entry in document["trace"]:
            extra = "".join(
                f" {key}={entry[key]}" for key in ("attempt", "principal") if entry[key]
            )
            step = f" {entry['step']}" if entry["step"] else ""
            lines.append(f"  {entry['time']} {entry['event']}{step}{extra}")
    print("\n".join(lines))


def _print_json(document: Any, *, file: TextIO | None = None) -> None:
    print(json.dumps(document, ensure_ascii=False, indent=2), file=file)
