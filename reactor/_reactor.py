"""The ``Reactor`` base class: class creation (checks) and the public entry points.

Each entry point has a sync face and an async twin (``run``/``arun``, ...); the sync
face drives the async core through :func:`reactor._sync.run_sync`, nothing more.
"""

from __future__ import annotations

import os
import sys
import types
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, ClassVar, TypeVar, cast

from . import _actions, _background, _codec
from ._config import storage_for
from ._dsl import Input, StepDecl
from ._graph import compile_plan
from ._mermaid import mermaid
from ._plan import Plan
from ._records import Execution, PendingInterrupt
from ._sync import run_sync
from .errors import DefinitionError, ExecutionNotFound, InputInvalid, SerializationError
from .storage import Storage

__all__ = ["Reactor", "forget", "registered", "registry"]

T = TypeVar("T")

_registry: dict[str, type[Reactor]] = {}
registry: Mapping[str, type[Reactor]] = types.MappingProxyType(_registry)
"""Every reactor class by its :attr:`Reactor.name` (read-only); stored executions record
that name."""

# Where each registered class was defined (see _origin), taken when it was registered:
# its module may have left sys.modules since.
_origins: dict[str, tuple[str, str]] = {}

_API_NAMES: frozenset[str] = frozenset()
"""Public attributes of :class:`Reactor`, which no step or input may shadow (filled in
once the class exists)."""


def forget(name: str) -> None:
    """Drop the class registered as ``name``, if any (``reactor.testing.unregister``)."""
    _registry.pop(name, None)


def registered(name: str) -> type[Reactor]:
    """The reactor class registered as ``name``.

    Only classes already imported are found: stored data never chooses which module to
    import (the worker and the CLI import the modules named with ``--app``).

    Raises:
        ExecutionNotFound: no reactor of that name is registered (nothing is changed).
    """
    try:
        return _registry[name]
    except KeyError:
        raise ExecutionNotFound(
            f"reactor {name!r} is not registered; import the module that defines it "
            "(--app MODULE for the worker and the CLI)",
            reactor=name,
        ) from None


def _check_reason(reason: str | None, reactor: str, execution_id: str) -> None:
    """Refuse a reason (of a cancel or suspend) that cannot be stored.

    Raises:
        SerializationError: it is not a string of valid Unicode.
    """
    problem = None if reason is None else _codec.text_problem(reason)
    if problem is not None:
        # Stored as a field of its own, where Redis writes it as UTF-8.
        raise SerializationError(
            f"the reason {reason!r} cannot be stored: {problem}",
            reactor=reactor,
            execution_id=execution_id,
        )


def _lookup(value: object, what: str, reactor: str) -> str:
    """``value``, an execution id or correlation id to look an execution up by.

    Checked before any storage sees it: storage writes ids as UTF-8 keys, where ``None``,
    a number or a lone surrogate would fail as a raw ``TypeError``/``UnicodeEncodeError``.

    Raises:
        ExecutionNotFound: no execution can have ``value`` as its ``what``.
    """
    problem = _codec.text_problem(value)
    if problem is not None:
        holder = "no live execution holds" if what == "correlation id" else "no execution has"
        raise ExecutionNotFound(f"{holder} the {what} {value!r}: {problem}", reactor=reactor)
    return cast("str", value)


def _drive(reactor: type, coro: Coroutine[Any, Any, T]) -> T:
    """Run an action's coroutine from sync code; eagerly (:mod:`reactor._sync`) on a store
    whose methods need no task."""
    try:
        eager = not storage_for(reactor).needs_task
    except BaseException:
        coro.close()  # never started: no "never awaited" warning on top of the error
        raise
    return run_sync(coro, eager=eager)


def _option(value: object, option: str, reactor: str) -> None:
    """Refuse a ``run()`` option that storage could not write as text (see :func:`_lookup`).

    Raises:
        InputInvalid: ``value`` is neither ``None`` nor a string of valid Unicode.
    """
    problem = None if value is None else _codec.text_problem(value)
    if problem is not None:
        raise InputInvalid(
            f"{option} {value!r} cannot be used: {problem}",
            errors={option: problem},
            reactor=reactor,
        )


class _Namespace(dict[str, Any]):
    """Class body namespace that refuses a step or input name declared twice."""

    def __init__(self, reactor: str) -> None:
        super().__init__()
        self.reactor = reactor

    def __setitem__(self, key: str, value: Any) -> None:
        old = self.get(key)
        if isinstance(old, StepDecl | Input) and value is not old:
            what = "step" if isinstance(old, StepDecl) else "input"
            raise DefinitionError(
                f"{key!r} is declared twice (already a {what}); a hook decorated with "
                f"@{key}.undo or .compensate needs a name of its own",
                reactor=self.reactor,
                step=key,
            )
        super().__setitem__(key, value)


class ReactorMeta(type):
    """Checks a reactor class when it is created and compiles its plan."""

    @classmethod
    def __prepare__(mcls, name: str, bases: tuple[type, ...], **kwargs: Any) -> _Namespace:  # type: ignore[override]
        return _Namespace(name)

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> ReactorMeta:
        cls = super().__new__(mcls, name, bases, dict(namespace), **kwargs)
        inputs: dict[str, Input] = {}
        decls: dict[str, StepDecl] = {}
        for klass in reversed(cls.__mro__):
            for attr, member in vars(klass).items():
                if isinstance(member, Input | StepDecl) and attr in (
                    decls if isinstance(member, Input) else inputs
                ):
                    raise DefinitionError(
                        f"{attr!r} is both an input and a step", reactor=name, step=attr
                    )
                if isinstance(member, Input | StepDecl) and attr in _API_NAMES:
                    raise DefinitionError(
                        f"{attr!r} shadows Reactor.{attr}; give the "
                        f"{'input' if isinstance(member, Input) else 'step'} another name",
                        reactor=name,
                        step=attr,
                    )
                if isinstance(member, Input):
                    inputs[attr] = member
                elif isinstance(member, StepDecl):
                    if member.name and member.name != attr:
                        raise DefinitionError(
                            f"{attr!r} is another name for step {member.name!r}; "
                            "declare each step once",
                            reactor=name,
                            step=attr,
                        )
                    decls[attr] = member
        reactor_name = namespace.get("name") or f"{cls.__module__}.{cls.__qualname__}"
        reactor = cast("type[Reactor]", cls)
        reactor.name = reactor_name
        reactor.__reactor_plan__ = compile_plan(
            cls,
            reactor_name,
            inputs,
            decls,
            returns=getattr(cls, "returns", None),
            max_concurrency=getattr(cls, "max_concurrency", None),
            version=getattr(cls, "version", None),
            breakpoints=getattr(cls, "breakpoints", ()),
            durability=getattr(cls, "durability", None),
        )
        if decls or inputs:
            _register(reactor_name, reactor)
        return cls


def _origin(cls: type) -> tuple[str, str]:
    """Where ``cls`` is defined: its module's source file (else the module's name) and its
    qualified name. A file imported under two names -- a script run as ``__main__`` that
    is also imported by its module name -- is one origin."""
    file = getattr(sys.modules.get(cls.__module__), "__file__", None)
    return (os.path.realpath(file) if file else cls.__module__, cls.__qualname__)


def _register(name: str, cls: type[Reactor]) -> None:
    """Register ``cls`` as ``name``.

    The same class defined again (its module reloaded or imported under another name, a
    test's local class created once more) replaces the old one: it has the same
    :func:`_origin`. Any other class would silently take over the executions stored
    under the name.

    Raises:
        DefinitionError: another class is registered as ``name``.
    """
    origin = _origin(cls)
    old = _registry.get(name)
    if old is not None and _origins.get(name) != origin:
        raise DefinitionError(
            f"the name is taken by {old.__module__}.{old.__qualname__}; give this class "
            "another name (tests defining versions of one reactor: "
            "reactor.testing.unregister)",
            reactor=name,
        )
    _registry[name] = cls
    _origins[name] = origin


class Reactor(metaclass=ReactorMeta):
    """Base class of reactors: subclass it and declare inputs and steps.

    Class attributes a subclass may set:
        name: Registry name recorded with each execution (default ``module.QualName``).
        version: Any JSON value recorded with each execution.
        returns: Step whose result is the execution's result (default: the last declared).
        max_concurrency: How many steps may run at once (default: unbounded).
        storage: A :class:`~reactor.storage.Storage` for this class only.
        breakpoints: ``"before:<step path>"``/``"after:<step path>"`` where every
            execution pauses (also inside a child: a child class's own breakpoints
            apply wherever it runs).
        durability: ``"eager"`` or ``"lazy"`` for this class (see ``configure``).

    Steps receive an instance of the class as ``self`` (a fresh one per execution and
    per process: keep state in results, not on ``self``).
    """

    name: ClassVar[str]
    version: ClassVar[Any] = None
    returns: ClassVar[str | None] = None
    max_concurrency: ClassVar[int | None] = None
    durability: ClassVar[str | None] = None
    storage: ClassVar[Storage | None] = None
    breakpoints: ClassVar[Iterable[str]] = ()
    __reactor_plan__: ClassVar[Plan]

    # ------------------------------------------------------------------ run

    @classmethod
    def run(
        cls,
        *,
        execution_id: str | None = None,
        idempotency_key: str | None = None,
        interrupt_handler: Callable[[PendingInterrupt], Any] | None = None,
        max_concurrency: int | None = None,
        breakpoints: Iterable[str] = (),
        **inputs: Any,
    ) -> Execution:
        """Start an execution and run it until it completes, fails, halts or pauses.

        Args:
            execution_id: Use this id instead of a new uuid4 hex (refused if taken).
            idempotency_key: A second run with the same key returns the first execution.
            interrupt_handler: Called with each :class:`PendingInterrupt` reached; a
                payload it returns resumes at once, ``None`` pauses.
            max_concurrency: How many steps may run at once (overrides the class's).
            breakpoints: ``"before:<step path>"``/``"after:<step path>"`` where this
                execution pauses, besides the class's (``"before:payment.charge"`` in a
                child, ``"before:lines.pick"`` in every map element); each pauses once,
                with a pending item of that name resumed by :meth:`resume`.
            **inputs: The reactor's inputs.

        Raises:
            InputInvalid: before anything runs, if an input is missing, unknown or
                fails its schema (every violation is listed), ``execution_id`` or
                ``idempotency_key`` is not a string of valid Unicode, or a breakpoint
                names no step.
        """
        return _drive(
            cls,
            cls.arun(
                execution_id=execution_id,
                idempotency_key=idempotency_key,
                interrupt_handler=interrupt_handler,
                max_concurrency=max_concurrency,
                breakpoints=breakpoints,
                **inputs,
            ),
        )

    @classmethod
    async def arun(
        cls,
        *,
        execution_id: str | None = None,
        idempotency_key: str | None = None,
        interrupt_handler: Callable[[PendingInterrupt], Any] | None = None,
        max_concurrency: int | None = None,
        breakpoints: Iterable[str] = (),
        **inputs: Any,
    ) -> Execution:
        """Async twin of :meth:`run`."""
        _option(execution_id, "execution_id", cls.name)
        _option(idempotency_key, "idempotency_key", cls.name)
        return await _actions.start(
            cls.__reactor_plan__,
            storage_for(cls),
            inputs,
            execution_id=execution_id,
            idempotency_key=idempotency_key,
            interrupt_handler=interrupt_handler,
            max_concurrency=max_concurrency,
            breakpoints=breakpoints,
        )

    @classmethod
    def submit(
        cls,
        *,
        execution_id: str | None = None,
        idempotency_key: str | None = None,
        **inputs: Any,
    ) -> Execution:
        """Store a new execution and enqueue it on the installed task queue; return at once.

        The execution comes back ``RUNNING`` with no step run yet, and :meth:`find` sees
        it from any process. A worker of the queue (``reactor.celery.install``) runs it
        until it pauses or ends.

        Args:
            execution_id: Use this id instead of a new uuid4 hex (refused if taken).
            idempotency_key: A second submit (or run) with the same key returns the first
                execution instead of enqueueing another.
            **inputs: The reactor's inputs.

        Raises:
            InputInvalid: an input is missing, unknown or fails its schema, or
                ``execution_id`` or ``idempotency_key`` is not a string of valid Unicode.
            ReactorError: no task queue is installed, or the storage is not shared
                (``MemoryStorage``).
        """
        return _drive(
            cls, cls.asubmit(execution_id=execution_id, idempotency_key=idempotency_key, **inputs)
        )

    @classmethod
    async def asubmit(
        cls,
        *,
        execution_id: str | None = None,
        idempotency_key: str | None = None,
        **inputs: Any,
    ) -> Execution:
        """Async twin of :meth:`submit`."""
        _option(execution_id, "execution_id", cls.name)
        _option(idempotency_key, "idempotency_key", cls.name)
        return await _background.submit(
            cls.__reactor_plan__,
            storage_for(cls),
            inputs,
            execution_id=execution_id,
            idempotency_key=idempotency_key,
        )

    # --------------------------------------------------------------- resume

    @classmethod
    def resume(
        cls,
        execution_id: str,
        payload: Any,
        *,
        step: str | None = None,
        strict: bool = True,
        background: bool = False,
        update: Mapping[str, Any] | None = None,
        principal: str | None = None,
    ) -> Execution:
        """Resume a pending interrupt; the run continues in this process.

        Breakpoints (``step="before:charge"``) and operator pauses (``step="suspended"``)
        are resumed the same way; their payload is ignored.

        Args:
            execution_id: The execution.
            payload: The interrupt's result, checked against its schema first.
            step: The interrupt's path; may be left out when exactly one is pending.
            strict: ``True`` (default): an invalid payload uses one attempt and raises
                ``PayloadInvalid``. ``False`` (flexible, what :meth:`Execution.resume`
                does): an invalid payload returns the still-paused execution with
                ``validation_errors`` set, counting no attempt.
            background: Validate and claim here (exactly once), then enqueue the rest of
                the run on the installed task queue (``reactor.celery.install``) and
                return at once with the execution ``RUNNING``.
            update: ``{step_path: new_result}``: replace the recorded results of
                completed steps before continuing (each checked against the step's
                ``output_schema``; recorded in the trace).
            principal: Who resumes, recorded in the trace.

        Raises:
            PayloadInvalid: strict, and the payload fails the schema; one attempt is used,
                and the last one cancels the execution (undoing its steps) --
                ``attempts_left``.
            SerializationError: the payload cannot be stored (a lone surrogate, nesting
                deeper than the codec's ``MAX_DEPTH``, over ``max_payload_bytes``);
                checked before the schema: no attempt is used, nothing changes.
            ExecutionNotFound: no execution of this reactor has that id (``None``, a
                number or a string holding a lone surrogate never names one).
            NotPaused: the execution is not paused.
            NotPending: ``step`` is not a pending interrupt.
            AmbiguousStep: ``step`` was left out while several interrupts are pending.
            AlreadyResumed: another resume of the interrupt was accepted first.
            InterruptTimeout: the interrupt's deadline passed (the execution failed).
            ReactorError: ``background`` without an installed task queue, or an
                ``update`` naming a step that has not completed.
            OutputInvalid: an ``update`` fails its step's output schema (nothing changed).
        """
        return _drive(
            cls,
            cls.aresume(
                execution_id,
                payload,
                step=step,
                strict=strict,
                background=background,
                update=update,
                principal=principal,
            ),
        )

    @classmethod
    async def aresume(
        cls,
        execution_id: str,
        payload: Any,
        *,
        step: str | None = None,
        strict: bool = True,
        background: bool = False,
        update: Mapping[str, Any] | None = None,
        principal: str | None = None,
    ) -> Execution:
        """Async twin of :meth:`resume`."""
        return await _actions.resume(
            cls.__reactor_plan__,
            storage_for(cls),
            _lookup(execution_id, "id", cls.name),
            payload,
            step=step,
            strict=strict,
            background=background,
            update=update,
            principal=principal,
        )

    @classmethod
    def resume_by_correlation_id(
        cls,
        correlation_id: str,
        payload: Any,
        *,
        background: bool = False,
        principal: str | None = None,
    ) -> Execution:
        """Strict resume of the interrupt that registered ``correlation_id``.

        When no execution waits on it yet and an interrupt of this class declares
        ``accept_early=True``, the payload is stored for the execution to consume when
        it gets there; the returned Execution then has an empty ``id``. ``background``
        as for :meth:`resume`; ``principal`` (who resumes) is recorded in the trace.
        """
        return _drive(
            cls,
            cls.aresume_by_correlation_id(
                correlation_id, payload, background=background, principal=principal
            ),
        )

    @classmethod
    async def aresume_by_correlation_id(
        cls,
        correlation_id: str,
        payload: Any,
        *,
        background: bool = False,
        principal: str | None = None,
    ) -> Execution:
        """Async twin of :meth:`resume_by_correlation_id`."""
        return await _actions.resume(
            cls.__reactor_plan__,
            storage_for(cls),
            None,
            payload,
            correlation_id=_lookup(correlation_id, "correlation id", cls.name),
            strict=True,
            background=background,
            principal=principal,
        )

    # ------------------------------------------------------------ inspection

    @classmethod
    def find(cls, execution_id: str) -> Execution:
        """The stored execution (an overdue lazy timeout fires first).

        Raises:
            ExecutionNotFound: no execution of this reactor has that id (``None``, a
                number or a string holding a lone surrogate never names one).
        """
        return _drive(cls, cls.afind(execution_id))

    @classmethod
    async def afind(cls, execution_id: str) -> Execution:
        """Async twin of :meth:`find`."""
        return await _actions.find(
            cls.__reactor_plan__, storage_for(cls), _lookup(execution_id, "id", cls.name)
        )

    @classmethod
    def find_by_correlation_id(cls, correlation_id: str) -> Execution:
        """The live execution holding ``correlation_id``.

        Raises:
            ExecutionNotFound: no live execution of this reactor holds it.
        """
        return _drive(cls, cls.afind_by_correlation_id(correlation_id))

    @classmethod
    async def afind_by_correlation_id(cls, correlation_id: str) -> Execution:
        """Async twin of :meth:`find_by_correlation_id`."""
        return await _actions.find(
            cls.__reactor_plan__,
            storage_for(cls),
            correlation_id=_lookup(correlation_id, "correlation id", cls.name),
        )

    # ---------------------------------------------------------------- ending

    @classmethod
    def cancel(
        cls, execution_id: str, reason: str | None = None, *, principal: str | None = None
    ) -> Execution:
        """Cancel without compensation: status ``CANCELLED``, context kept.

        A running execution stops before its next step. ``principal`` (who cancels) is
        recorded in the trace.

        Raises:
            NotPaused: the execution has already ended.
            ExecutionNotFound: no execution of this reactor has that id.
            SerializationError: ``reason`` is not a string of valid Unicode (nothing
                changes).
        """
        return _drive(cls, cls.acancel(execution_id, reason=reason, principal=principal))

    @classmethod
    async def acancel(
        cls, execution_id: str, reason: str | None = None, *, principal: str | None = None
    ) -> Execution:
        """Async twin of :meth:`cancel`."""
        execution_id = _lookup(execution_id, "id", cls.name)
        _check_reason(reason, cls.name, execution_id)
        return await _actions.cancel(
            cls.__reactor_plan__, storage_for(cls), execution_id, reason, principal=principal
        )

    @classmethod
    def undo(cls, execution_id: str, *, principal: str | None = None) -> Execution:
        """Undo the completed steps newest first, then status ``CANCELLED`` (reason
        ``"undo"``). Works on paused, completed, halted and failed executions.
        ``principal`` (who undoes) is recorded in the trace.

        Raises:
            NotPaused: the execution is running or already cancelled.
            ExecutionNotFound: no execution of this reactor has that id.
        """
        return _drive(cls, cls.aundo(execution_id, principal=principal))

    @classmethod
    async def aundo(cls, execution_id: str, *, principal: str | None = None) -> Execution:
        """Async twin of :meth:`undo`."""
        return await _actions.undo(
            cls.__reactor_plan__,
            storage_for(cls),
            _lookup(execution_id, "id", cls.name),
            principal=principal,
        )

    @classmethod
    def suspend(
        cls, execution_id: str, reason: str | None = None, *, principal: str | None = None
    ) -> Execution:
        """Operator pause: a running execution stops at its next step boundary (steps in
        flight finish) and is ``PAUSED`` with a pending item ``"suspended"``;
        ``resume(id, None, step="suspended")`` continues it.

        It works on an execution running in any process: this process's live run is
        told at once, another process's notices the stored request at its next
        checkpoint or lease renewal (about a second). A paused execution is returned
        as it is.

        Args:
            execution_id: The execution.
            reason: Why, shown with the pending item.
            principal: Who suspends, recorded in the trace.

        Raises:
            NotPaused: the execution has already ended.
        """
        return _drive(cls, cls.asuspend(execution_id, reason, principal=principal))

    @classmethod
    async def asuspend(
        cls, execution_id: str, reason: str | None = None, *, principal: str | None = None
    ) -> Execution:
        """Async twin of :meth:`suspend`."""
        execution_id = _lookup(execution_id, "id", cls.name)
        _check_reason(reason, cls.name, execution_id)
        return await _actions.suspend(
            cls.__reactor_plan__, storage_for(cls), execution_id, reason, principal=principal
        )

    # ----------------------------------------------------------------- graph

    @classmethod
    def mermaid(cls) -> str:
        """A Mermaid flowchart of the reactor's steps (children as subgraphs)."""
        return mermaid(cls.__reactor_plan__)


_API_NAMES = frozenset({"name", *(n for n in vars(Reactor) if not n.startswith("_"))})
