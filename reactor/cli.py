"""The ``reactor`` command: run a worker and operate on stored executions.

Usage::

    reactor [--redis URL] [--app MODULE]... [--json] COMMAND ...

    reactor worker [--concurrency N] [--poll-interval S] [--burst]
    reactor list [--status S] [--reactor NAME] [--limit N]
    reactor show ID
    reactor resume ID [--step S] --payload JSON|@FILE
    reactor resume --correlation-id CID --reactor NAME --payload JSON|@FILE
    reactor cancel ID [--reason R]
    reactor undo ID
    reactor graph module:Class

Every command but ``graph`` needs Redis: ``--redis URL`` or ``$REACTOR_REDIS_URL``. An
execution's reactor class is imported from the name recorded with it, so ``--app`` is only
needed for reactors whose module cannot be imported by that name. The global options may
also follow the command (``reactor show ID --json``).

Exit status: 0 done, 1 refused (the error is printed as one ``error:`` line), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from . import _codec
from ._config import configure
from ._execution import Execution, FailureInfo
from ._reactor import Reactor, resolve
from ._status import Status
from .errors import ExecutionNotFound, PayloadInvalid, ReactorError
from .storage import RedisStorage, Storage
from .worker import Worker

__all__ = ["main"]

_Command = Callable[[argparse.Namespace, Storage], Awaitable[None]]


class _UsageError(Exception):
    """The command line is wrong in a way argparse cannot see (exit status 2)."""


class _Refused(Exception):
    """The command cannot be carried out, for a reason that is not a ReactorError."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``reactor`` command.

    Args:
        argv: The arguments after the program name (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 done, 1 refused, 2 usage error.
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
    try:
        return _main(args)
    except _UsageError as exc:
        args.command_parser.print_usage(sys.stderr)
        print(f"{args.command_parser.prog}: error: {exc}", file=sys.stderr)
        return 2
    except PayloadInvalid as exc:
        print(f"error: {exc}", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error['path']}: {error['message']}", file=sys.stderr)
        print(f"  attempts left: {_attempts(exc.attempts_left)}", file=sys.stderr)
        return 1
    except (ReactorError, _Refused) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _main(args: argparse.Namespace) -> int:
    # A console script does not put the working directory on sys.path (``python -m``
    # does): add it so --app and recorded reactor names import the same either way.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    for module in args.app:
        _import(module, "--app")
    if args.command == "graph":
        print(_reactor_class(args.target).mermaid())
        return 0
    if args.command == "resume":
        _check_resume(args)
    url = args.redis or os.environ.get("REACTOR_REDIS_URL")
    if not url:
        raise _UsageError("no Redis to connect to: pass --redis URL or set REACTOR_REDIS_URL")
    try:
        storage = RedisStorage.from_url(url)
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

    worker = command("worker", _worker, "fire active interrupt timeouts, recover crashed runs")
    worker.add_argument("--concurrency", type=_positive_int, default=4, metavar="N")
    worker.add_argument(
        "--poll-interval", type=float, default=0.2, metavar="S", help="seconds between polls"
    )
    worker.add_argument("--burst", action="store_true", help="act on what is due now, then exit")

    listing = command("list", _list, "list executions, newest first")
    listing.add_argument("--status", choices=[s.value for s in Status])
    listing.add_argument("--reactor", metavar="NAME", help="registry name, e.g. shop.Checkout")
    listing.add_argument("--limit", type=_positive_int, default=100, metavar="N")

    show = command("show", _show, "show one execution: results, error, pending interrupts")
    show.add_argument("id")

    resume = command("resume", _resume, "resume a pending interrupt with a payload (strict)")
    resume.add_argument("id", nargs="?")
    resume.add_argument("--step", metavar="S", help="the interrupt, when several are pending")
    resume.add_argument("--correlation-id", metavar="CID", help="resume by correlation id")
    resume.add_argument("--reactor", metavar="NAME", help="reactor of --correlation-id")
    resume.add_argument(
        "--payload", required=True, metavar="JSON|@FILE", help="JSON text, @file or @- (stdin)"
    )

    cancel = command("cancel", _cancel, "cancel without compensation")
    cancel.add_argument("id")
    cancel.add_argument("--reason", metavar="R")

    undo = command("undo", _undo, "undo the completed steps, newest first, then cancel")
    undo.add_argument("id")

    graph = command("graph", None, "print a reactor's steps as a Mermaid flowchart")
    graph.add_argument("target", metavar="module:Class")
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
        help="import this module first (repeatable)",
    )
    parser.add_argument(
        "--json",
        dest=prefix + "json",
        action="store_true",
        default=default(False),
        help="print one JSON document",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
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
    try:
        return json.loads(text)
    except ValueError as exc:
        raise _UsageError(f"--payload is not valid JSON: {exc}") from None


# ---------------------------------------------------------------------- commands


async def _worker(args: argparse.Namespace, storage: Storage) -> None:
    worker = Worker(storage=storage, concurrency=args.concurrency, poll_interval=args.poll_interval)
    if args.burst:
        actions = await worker.run_once()
        structlog.get_logger("reactor.worker").info("reactor.worker.burst_done", actions=actions)
        return
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await worker.run(stop)


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
                    "deadline": _iso(stored.deadline),
                }
                for stored in found
            ]
        )
        return
    if not found:
        print("no executions found")
        return
    rows = [["ID", "REACTOR", "STATUS", "UPDATED", "DEADLINE", "REASON"]]
    rows += [
        [
            stored.id,
            stored.reactor,
            stored.status.value,
            _short_time(stored.updated_at),
            _short_time(stored.deadline),
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
    cls = await _class_of(storage, args.id)
    _print_execution(await cls.afind(args.id), args.json)


async def _resume(args: argparse.Namespace, storage: Storage) -> None:
    if args.correlation_id is not None:
        cls = _reactor_class(args.reactor)
        execution = await cls.aresume_by_correlation_id(args.correlation_id, args.payload)
    else:
        cls = await _class_of(storage, args.id)
        execution = await cls.aresume(args.id, args.payload, step=args.step)
    _print_execution(execution, args.json)


async def _cancel(args: argparse.Namespace, storage: Storage) -> None:
    cls = await _class_of(storage, args.id)
    _print_execution(await cls.acancel(args.id, reason=args.reason), args.json)


async def _undo(args: argparse.Namespace, storage: Storage) -> None:
    cls = await _class_of(storage, args.id)
    _print_execution(await cls.aundo(args.id), args.json)


# ----------------------------------------------------------------------- helpers


async def _class_of(storage: Storage, execution_id: str) -> type[Reactor]:
    """The reactor class of a stored execution, imported from its recorded name."""
    stored = await storage.load(execution_id)
    if stored is None:
        raise ExecutionNotFound("no such execution", execution_id=execution_id)
    return resolve(stored.reactor)


def _reactor_class(target: str) -> type[Reactor]:
    """``module:Class`` (imported), or a registry name such as ``module.Class``."""
    if ":" not in target:
        return resolve(target)
    module_name, _, qualname = target.partition(":")
    found: Any = _import(module_name, "graph")
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if not (isinstance(found, type) and issubclass(found, Reactor)):
        raise _Refused(f"{target} is not a Reactor class")
    return found


def _import(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _Refused(f"{what}: cannot import {module!r}: {exc}") from exc


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
                "correlation_id": pending.correlation_id,
                "request": _tree(pending.request),
                "schema": pending.schema,
                "deadline": _iso(pending.deadline),
                "attempts_left": pending.attempts_left,
            }
            for pending in execution.interrupts
        ],
    }


def _print_execution(execution: Execution, as_json: bool) -> None:
    document = _execution_document(execution)
    if as_json:
        _print_json(document)
        return
    lines = [f"{key}: {document[key]}" for key in ("id", "reactor", "status")]
    lines += [
        f"{key}: {document[key]}"
        for key in ("reason", "created_at", "updated_at")
        if document[key] is not None
    ]
    if execution.status is Status.COMPLETED:
        lines.append(f"result: {_text(document['result'])}")
    error = execution.error
    if error is not None:
        where = f" at {error.step}" if error.step else ""
        lines.append(f"error: {error.type}{where}: {error.message}")
        lines += [f"  {f.kind} of {f.step} failed: {f.message}" for f in error.rollback_failures]
    if document["results"]:
        lines.append("results:")
        lines += [f"  {path}: {_text(tree)}" for path, tree in document["results"].items()]
    if document["interrupts"]:
        lines.append("interrupts:")
        for pending in document["interrupts"]:
            lines.append(f"  {pending['step']}:")
            lines += [
                f"    {key}: {pending[key]}"
                for key in ("correlation_id", "deadline", "attempts_left")
                if pending[key] is not None
            ]
            lines.append(f"    request: {_text(pending['request'])}")
    print("\n".join(lines))


def _print_json(document: Any) -> None:
    print(json.dumps(document, ensure_ascii=False, indent=2))
