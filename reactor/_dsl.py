"""The declarations users write: ``Input``, ``step``, ``interrupt``, sources, ``Halt``, ``Skip``.

Everything here only *records* what the class body says; :mod:`reactor._graph`
checks and compiles it when the class is created, and :mod:`reactor._executor`
runs it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Generic, Literal, TypeVar, overload

import attrs

from ._retry import RetryPolicy

__all__ = [
    "NOTHING",
    "Halt",
    "Input",
    "MapFailure",
    "MapResult",
    "Nothing",
    "Skip",
    "Source",
    "StepDecl",
    "compose",
    "input",
    "interrupt",
    "map_",
    "result",
    "step",
    "value",
]

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class Nothing(enum.Enum):
    """The type of :data:`NOTHING` (an enum, so type checkers can narrow on it)."""

    NOTHING = enum.auto()

    def __repr__(self) -> str:
        return "NOTHING"

    def __bool__(self) -> bool:
        return False


NOTHING: Final = Nothing.NOTHING
"""Marks an option that was not given (``Input(default=None)`` is a real default)."""


class Input:
    """Declares an input of a reactor, given to ``run`` as a keyword argument.

    Args:
        schema: JSON Schema the value must satisfy (checked before anything runs).
        default: Value used when the input is not given; without one the input is required.
        description: Free text shown in ``reactor show`` and the Mermaid graph.
        redact: Mask the value (``"***"``) in logs, error messages, the trace, the CLI and
            web pages; steps still receive it unmasked.

    Example::

        class Report(Reactor):
            company_id = Input(schema={"type": "integer"})
            format = Input(default="pdf")
    """

    def __init__(
        self,
        *,
        schema: Mapping[str, Any] | None = None,
        default: Any = NOTHING,
        description: str | None = None,
        redact: bool = False,
    ) -> None:
        self.schema = dict(schema) if schema is not None else None
        self.default = default
        self.description = description
        self.redact = redact
        self.name = ""

    @property
    def required(self) -> bool:
        """Whether ``run`` must be given this input."""
        return self.default is NOTHING

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Input({self.name!r}, required={self.required})"


@attrs.frozen
class Source:
    """Where an argument's value comes from; build one with :func:`result`, :func:`input`
    or :func:`value`.

    Attributes:
        kind: ``"result"``, ``"input"`` or ``"value"``.
        name: The step or input name (empty for ``"value"``).
        path: Keys or indexes to dig into the value with, in order.
        constant: The constant of a ``value(...)`` source.
    """

    kind: Literal["result", "input", "value"]
    name: str = ""
    path: tuple[str | int, ...] = ()
    constant: Any = None


def _path(path: str | int | Sequence[str | int] | None) -> tuple[str | int, ...]:
    if path is None:
        return ()
    if isinstance(path, str):
        return tuple(int(p) if p.isdigit() else p for p in path.split("."))
    if isinstance(path, int):
        return (path,)
    return tuple(path)


def result(step: str, path: str | int | Sequence[str | int] | None = None) -> Source:
    """The result of ``step`` (a dependency), optionally dug into.

    Args:
        step: Name of the step.
        path: ``"a.b.0"`` or ``("a", "b", 0)``: keys, attributes or indexes to follow.
    """
    return Source("result", step, _path(path))


def input(name: str, path: str | int | Sequence[str | int] | None = None) -> Source:
    """The reactor input ``name``, optionally dug into (see :func:`result`)."""
    return Source("input", name, _path(path))


def value(constant: Any) -> Source:
    """A constant argument."""
    return Source("value", constant=constant)


class Halt(Exception):
    """Stop the run cleanly: status ``HALTED``, nothing undone.

    A step either returns ``Halt(reason)`` or raises it; both end the run the same way
    (a raised ``Halt`` is never retried).
    """

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"Halt({self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Halt) and other.reason == self.reason

    def __hash__(self) -> int:
        return hash(("Halt", self.reason))


@attrs.frozen
class Skip(Generic[T]):
    """Return ``Skip(value)`` from a step to record ``value`` as its result; the step's
    ``undo`` never runs for it."""

    value: T | None = None


Backoff = Literal["fixed", "linear", "exponential"]
Strategy = Literal["lazy", "active"]
StepKind = Literal["step", "interrupt", "compose", "map"]


@attrs.define(eq=False)
class StepDecl:
    """A declared step (or interrupt, compose, map) of a reactor class.

    Produced by :func:`step`, :func:`interrupt`, :func:`reactor.compose` and
    :func:`reactor.map_`; ``<step>.undo`` and ``<step>.compensate`` attach rollback hooks.
    """

    kind: StepKind
    fn: Callable[..., Any] | None = None
    name: str = ""
    wait_for: tuple[str, ...] = ()
    args: dict[str, Source] = attrs.Factory(dict)
    retry: RetryPolicy = attrs.Factory(RetryPolicy)
    timeout: float | None = None
    undo_fn: Callable[..., Any] | None = None
    compensate_fn: Callable[..., Any] | None = None
    # step options
    when: Callable[..., Any] | None = None
    default: Any = None
    output_schema: dict[str, Any] | None = None
    # interrupt options
    correlation_id: Callable[..., Any] | None = None
    schema: dict[str, Any] | None = None
    strategy: str = "lazy"
    max_attempts: int | None = 1
    on_timeout: Any = NOTHING
    accept_early: bool = False
    # compose / map options
    child: Any = None
    inputs: dict[str, Source] = attrs.Factory(dict)
    over: Source | None = None
    item: str = "item"
    max_concurrency: int | None = None
    fail_fast: bool = True
    fan_out: int | None = None
    #: compose: how many times a failed child is rolled back and run again.
    retries: int = 0

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __call__(self, fn: F) -> StepDecl:
        # `approval = interrupt(...)` declares a bodyless interrupt; decorating a function
        # with the same object gives it a body.
        if self.fn is not None:
            raise TypeError(f"{self.kind} {self.name or self.fn.__name__!r} already has a body")
        self.fn = fn
        return self

    def undo(self, fn: F) -> F:
        """Decorator: run ``fn`` to undo this step's effect when the transaction rolls back.

        ``fn`` receives, by parameter name, inputs, results of this step's dependencies,
        ``result`` (this step's own result) and ``context``.
        """
        self.undo_fn = fn
        return fn

    def compensate(self, fn: F) -> F:
        """Decorator: run ``fn`` when this step itself fails after its last attempt.

        ``fn`` receives, by parameter name, inputs, results of this step's dependencies,
        ``error`` (the exception) and ``context``.
        """
        self.compensate_fn = fn
        return fn

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name!r}>"


def _step_options(
    wait_for: Iterable[str] | str,
    args: Mapping[str, Source] | None,
) -> dict[str, Any]:
    return {
        "wait_for": (wait_for,) if isinstance(wait_for, str) else tuple(wait_for),
        "args": dict(args or {}),
    }


@overload
def step(fn: Callable[..., Any], /) -> StepDecl: ...


@overload
def step(
    *,
    wait_for: Iterable[str] | str = (),
    args: Mapping[str, Source] | None = None,
    retries: int = 0,
    backoff: Backoff = "fixed",
    base_delay: float = 0.0,
    max_delay: float | None = None,
    jitter: float = 0.0,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    timeout: float | None = None,
    when: Callable[..., Any] | None = None,
    default: Any = None,
    output_schema: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], StepDecl]: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    wait_for: Iterable[str] | str = (),
    args: Mapping[str, Source] | None = None,
    retries: int = 0,
    backoff: Backoff = "fixed",
    base_delay: float = 0.0,
    max_delay: float | None = None,
    jitter: float = 0.0,
    retry_on: type[BaseException] | tuple[type[BaseException], ...] = Exception,
    timeout: float | None = None,
    when: Callable[..., Any] | None = None,
    default: Any = None,
    output_schema: Mapping[str, Any] | None = None,
) -> StepDecl | Callable[[Callable[..., Any]], StepDecl]:
    """Declare a step; works bare (``@step``) and called (``@step(retries=3)``).

    The function (``def`` or ``async def``) receives its arguments by parameter name:
    a step's name gives that step's result and makes it a dependency, an input's name
    gives the input, ``context`` gives the :class:`~reactor.Context`.

    Args:
        wait_for: Steps that must complete first, without passing their results.
        args: ``{parameter: source}`` for parameters that rename or dig into a value.
        retries: Extra attempts after the first failure.
        backoff: Delay growth between attempts: ``"fixed"``, ``"linear"``, ``"exponential"``.
        base_delay: Seconds before the first retry.
        max_delay: Upper bound of the delay, if any.
        jitter: Up to this fraction of the delay is added at random (0 to 1).
        retry_on: Exception types worth retrying; others fail the step at once.
        timeout: Seconds one attempt may take; past it the attempt fails with
            ``TimeoutError``.
        when: A predicate (arguments by parameter name, like the body's; they are
            dependencies too): when it returns false the step is skipped, recorded with
            the value ``default``, never undone, and its dependents run.
        default: The value a skipped step records (default ``None``).
        output_schema: JSON Schema the result must satisfy; a result that fails it
            fails the step at once (no retry), which rolls the execution back.
    """

    def wrap(fn: Callable[..., Any]) -> StepDecl:
        return StepDecl(
            "step",
            fn,
            retry=RetryPolicy(
                retries,
                backoff,
                base_delay,
                max_delay,
                jitter,
                retry_on if isinstance(retry_on, tuple) else (retry_on,),
            ),
            timeout=timeout,
            when=when,
            default=default,
            output_schema=dict(output_schema) if output_schema is not None else None,
            **_step_options(wait_for, args),
        )

    if fn is None:
        return wrap
    return wrap(fn)


def interrupt(
    *,
    correlation_id: Callable[..., Any] | None = None,
    schema: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    strategy: Strategy = "lazy",
    max_attempts: int | None = 1,
    on_timeout: Any = NOTHING,
    accept_early: bool = False,
    wait_for: Iterable[str] | str = (),
    args: Mapping[str, Source] | None = None,
) -> StepDecl:
    """Declare an interrupt point: the run pauses here until it is resumed with a payload.

    Use it as a decorator on an optional body that returns the *request* shown to whoever
    resumes (title, question, data), or assign it bare: ``approval = interrupt(...)``.
    The validated resume payload becomes the interrupt's result.

    Args:
        correlation_id: Callable (arguments by parameter name) giving the business key
            that :meth:`Reactor.resume_by_correlation_id` finds the execution by: a
            ``str`` of valid Unicode; anything else (``None``, a number) fails the
            interrupt with ``ArgumentInvalid`` and the run rolls back.
        schema: JSON Schema the resume payload must satisfy.
        timeout: Seconds from reaching the interrupt to its deadline.
        strategy: ``"lazy"``: the deadline is checked on resume or find; ``"active"``: a
            ``reactor worker`` fires it about a second after the deadline.
        max_attempts: Strict resumes with an invalid payload allowed (``None``: unlimited);
            the last one cancels the execution.
        on_timeout: Payload to resume with when the deadline passes, instead of failing.
        accept_early: Let ``resume_by_correlation_id`` store a payload that arrives before
            the execution reaches this interrupt.
        wait_for: Steps that must complete first, without passing their results.
        args: ``{parameter: source}`` for the body's parameters.
    """
    return StepDecl(
        "interrupt",
        None,
        correlation_id=correlation_id,
        schema=dict(schema) if schema is not None else None,
        timeout=timeout,
        strategy=strategy,
        max_attempts=max_attempts,
        on_timeout=on_timeout,
        accept_early=accept_early,
        **_step_options(wait_for, args),
    )


SourceLike = Source | str


def compose(
    child: type,
    *,
    inputs: Mapping[str, SourceLike] | None = None,
    wait_for: Iterable[str] | str = (),
    retries: int = 0,
) -> StepDecl:
    """Declare a step that runs the reactor ``child`` inside this execution.

    Assign it to the class attribute that names the step:
    ``payment = compose(Payment, inputs={"amount": result("quote", "total")})``.
    Its result is the child's result; the child's completed steps join this
    execution's rollback, and its interrupts pause this execution (path
    ``"payment.<interrupt>"``).

    Args:
        child: The child reactor class.
        inputs: ``{child_input: source}``; a plain string names a parent input or step.
        wait_for: Steps that must complete first, without passing their results.
        retries: When the child fails, roll it back (its completed steps undone) and run
            it again from the start, up to this many times; then the failure is the
            parent's.
    """
    return StepDecl(
        "compose",
        None,
        child=child,
        inputs=dict(inputs or {}),  # type: ignore[arg-type]  # strings: resolved by the graph
        retries=retries,
        **_step_options(wait_for, None),
    )


def map_(
    element: type,
    *,
    over: SourceLike,
    item: str = "item",
    inputs: Mapping[str, SourceLike] | None = None,
    max_concurrency: int | None = None,
    fail_fast: bool = True,
    wait_for: Iterable[str] | str = (),
    fan_out: int | None = None,
) -> StepDecl:
    """Declare a step that runs the reactor ``element`` once per item of a list.

    ``lines = map_(Fulfil, over="order_lines", item="line")``: the result is the list
    of element results in item order. Interrupts inside elements pause this execution
    (path ``"lines[3].<interrupt>"``).

    Args:
        element: The element reactor class.
        over: The list: a parent input or step name, or a source.
        item: The element input that receives the item.
        inputs: Other element inputs: ``{element_input: source}``.
        max_concurrency: How many elements may run at once (default: unbounded).
        fail_fast: ``True``: the first failure stops new elements and rolls back;
            ``False``: the result is a :class:`MapResult` and the parent decides.
        wait_for: Steps that must complete first, without passing their results.
        fan_out: Run the elements as jobs of the installed task queue
            (``reactor.celery.install``), ``fan_out`` at a time: each batch is enqueued,
            this execution pauses until the batch is done, then enqueues the next.
            Each element is an execution of its own (id ``<parent id>:<path>[<index>]``).
            Without a task queue, or on a storage other processes cannot share, the
            map runs in-process as if ``fan_out`` were not given.
    """
    return StepDecl(
        "map",
        None,
        child=element,
        over=over,  # type: ignore[arg-type]  # a string: resolved by the graph
        item=item,
        inputs=dict(inputs or {}),  # type: ignore[arg-type]
        max_concurrency=max_concurrency,
        fail_fast=fail_fast,
        fan_out=fan_out,
        **_step_options(wait_for, None),
    )


@attrs.frozen
class MapFailure:
    """One failed element of a ``map_(..., fail_fast=False)``.

    Attributes:
        index: The item's position.
        error: What went wrong (see :class:`reactor.FailureInfo`).
    """

    index: int
    error: Any


@attrs.frozen
class MapResult:
    """The result of ``map_(..., fail_fast=False)``.

    Attributes:
        successes: ``{index: element result}`` for the elements that completed.
        failures: The elements that failed (already rolled back).
    """

    successes: dict[int, Any]
    failures: list[MapFailure]
