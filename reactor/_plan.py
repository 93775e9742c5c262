"""The compiled form of a reactor class: a :class:`Plan` of :class:`Node` objects, each of
one :class:`Kind` (step, interrupt, compose, map).

:mod:`reactor._graph` builds plans when a class is created; the engine runs them. A kind
holds what differs between kinds -- what it compiles, how it is drawn, which engine
routine runs it -- so no other module branches on a kind's name.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any, ClassVar, Protocol

import attrs
import jsonschema

from ._dsl import NOTHING, Input, StepDecl

__all__ = [
    "KINDS",
    "Binding",
    "Call",
    "Compiler",
    "ComposeKind",
    "InterruptKind",
    "Kind",
    "MapKind",
    "Node",
    "Plan",
    "Runner",
    "StepKind",
]


@attrs.frozen
class Binding:
    """How one parameter of a user callable gets its value.

    Attributes:
        param: The parameter name.
        kind: ``"input"``, ``"result"``, ``"value"``, ``"context"``, ``"own_result"``
            (``result`` in ``undo``) or ``"error"`` (``error`` in ``compensate``).
        name: Input or step name for ``"input"``/``"result"``.
        path: Keys/indexes to dig into the value with.
        constant: The value of a ``"value"`` binding.
        hint: The parameter's annotation, when it asks for a structured type.
    """

    param: str
    kind: str
    name: str = ""
    path: tuple[str | int, ...] = ()
    constant: Any = None
    hint: Any = None
    #: A step's result as it is (no path, no conversion): the common case, which
    #: :meth:`reactor._invoke.Binder.bind` reads without a call.
    direct: bool = attrs.field(init=False)

    @direct.default
    def _direct(self) -> bool:
        return self.kind == "result" and not self.path and self.hint is None


@attrs.frozen
class Call:
    """A user callable with its compiled parameter bindings."""

    fn: Callable[..., Any]
    is_async: bool
    bindings: tuple[Binding, ...]
    #: ``True`` when ``fn`` is a plain function to call with ``self`` first.
    method: bool
    #: The return annotation, used to restore the result's type after a pause.
    return_hint: Any = None


class Runner(Protocol):
    """What the engine offers kinds to run a node (``frame`` is the engine's own)."""

    def run_step(self, frame: Any, node: Node) -> Coroutine[Any, Any, bool | None]: ...

    def run_guarded(
        self, frame: Any, node: Node, body: Callable[[Any, Node, str], Coroutine[Any, Any, Any]]
    ) -> Coroutine[Any, Any, bool | None]: ...

    async def reach_interrupt(self, frame: Any, node: Node, path: str) -> bool | None: ...

    async def run_compose(self, frame: Any, node: Node, path: str) -> bool | None: ...

    async def run_map(self, frame: Any, node: Node, path: str) -> bool | None: ...


class Compiler(Protocol):
    """What :mod:`reactor._graph` offers kinds to compile a declaration."""

    def body(self, node: Node, *, required: bool) -> None: ...

    def correlation(self, node: Node) -> None: ...

    def payload_schema(self, node: Node) -> None: ...

    def child(self, node: Node, *, item: str | None) -> None: ...

    def over(self, node: Node) -> None: ...

    def guard(self, node: Node) -> None: ...

    def output_schema(self, node: Node) -> None: ...


class Kind:
    """What one kind of node does differently. Subclasses fill in the class variables and
    override what differs; instances are shared (kinds hold no state)."""

    name: ClassVar[str]
    #: Mermaid node brackets, left and right.
    shape: ClassVar[tuple[str, str]] = ('[["', '"]]')
    #: Whether the node runs one child frame per item (its paths carry ``[index]``).
    per_item: ClassVar[bool] = False
    #: Whether a payload may resume it.
    resumable: ClassVar[bool] = False

    def compile(self, compiler: Compiler, node: Node) -> None:
        """Compile what this kind needs of ``node.decl`` into ``node``."""
        raise NotImplementedError

    def option_errors(self, decl: StepDecl) -> list[str]:
        """What is wrong with options only this kind has."""
        return []

    def result_hint(self, node: Node) -> Any:
        """The annotation a stored result is restored to (``None``: as stored)."""
        return None

    def label(self, name: str) -> str:
        """How the node is labelled in a drawing."""
        return f"{self.name}: {name}"

    def run(self, runner: Runner, frame: Any, node: Node) -> Coroutine[Any, Any, bool | None]:
        """Run ``node``: ``True`` completed, ``False`` waits on an interrupt, ``None``
        failed or stopped."""
        raise NotImplementedError


class StepKind(Kind):
    """A function the engine calls (with retries, timeout, undo and compensate)."""

    name = "step"
    shape = ('["', '"]')

    def compile(self, compiler: Compiler, node: Node) -> None:
        compiler.body(node, required=True)
        compiler.guard(node)
        compiler.output_schema(node)

    def option_errors(self, decl: StepDecl) -> list[str]:
        if decl.default is not None and decl.when is None:
            return ["default= is the value of a skipped step: it needs when="]
        return []

    def result_hint(self, node: Node) -> Any:
        return node.call.return_hint if node.call is not None else None

    def label(self, name: str) -> str:
        return name

    def run(self, runner: Runner, frame: Any, node: Node) -> Coroutine[Any, Any, bool | None]:
        # Steps, by far the most common nodes, skip the guard's coroutine frame.
        return runner.run_step(frame, node)


class InterruptKind(Kind):
    """A point where the execution waits for a payload from outside."""

    name = "interrupt"
    shape = ('{{"', '"}}')
    resumable = True

    def compile(self, compiler: Compiler, node: Node) -> None:
        compiler.body(node, required=False)
        compiler.correlation(node)
        compiler.payload_schema(node)

    def option_errors(self, decl: StepDecl) -> list[str]:
        errors = []
        if decl.strategy == "active" and decl.timeout is None:
            errors.append('strategy="active" needs a timeout')
        if decl.accept_early and decl.correlation_id is None:
            errors.append("accept_early=True needs a correlation_id")
        if decl.on_timeout is not NOTHING and decl.timeout is None:
            errors.append("on_timeout needs a timeout")
        return errors

    def run(self, runner: Runner, frame: Any, node: Node) -> Coroutine[Any, Any, bool | None]:
        return runner.run_guarded(frame, node, runner.reach_interrupt)


class ComposeKind(Kind):
    """A child reactor run once inside the execution."""

    name = "compose"

    def compile(self, compiler: Compiler, node: Node) -> None:
        compiler.body(node, required=False)
        compiler.child(node, item=None)

    def option_errors(self, decl: StepDecl) -> list[str]:
        retries = decl.retries
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            return [f"retries must be an int >= 0, got {retries!r}"]
        return []

    def run(self, runner: Runner, frame: Any, node: Node) -> Coroutine[Any, Any, bool | None]:
        return runner.run_guarded(frame, node, runner.run_compose)


class MapKind(ComposeKind):
    """A child reactor run once per item of a list."""

    name = "map"
    per_item = True

    def compile(self, compiler: Compiler, node: Node) -> None:
        compiler.body(node, required=False)
        compiler.child(node, item=node.decl.item)
        compiler.over(node)

    def option_errors(self, decl: StepDecl) -> list[str]:
        fan_out = decl.fan_out
        if fan_out is not None and (
            not isinstance(fan_out, int) or isinstance(fan_out, bool) or fan_out < 1
        ):
            return [f"fan_out must be an int >= 1, got {fan_out!r}"]
        return []

    def run(self, runner: Runner, frame: Any, node: Node) -> Coroutine[Any, Any, bool | None]:
        return runner.run_guarded(frame, node, runner.run_map)


KINDS: Mapping[str, Kind] = {
    k.name: k for k in (StepKind(), InterruptKind(), ComposeKind(), MapKind())
}
"""Each kind by the name the DSL records in ``StepDecl.kind``."""


@attrs.define(eq=False)
class Node:
    """A step of a plan, with everything the engine needs to run and roll it back."""

    name: str
    decl: StepDecl
    kind: Kind
    deps: tuple[str, ...]
    dependents: tuple[str, ...] = ()
    #: Steps whose results the node reads (the rest of ``deps`` is ``wait_for`` ordering).
    data_deps: frozenset[str] = frozenset()
    #: Inputs the node reads.
    input_deps: frozenset[str] = frozenset()
    call: Call | None = None
    undo: Call | None = None
    compensate: Call | None = None
    correlation: Call | None = None
    validator: jsonschema.protocols.Validator | None = None
    child: Plan | None = None
    child_inputs: tuple[Binding, ...] = ()
    over: Binding | None = None
    #: The ``when=`` predicate: false skips the step.
    guard: Call | None = None
    #: The compiled ``output_schema=``.
    output_validator: jsonschema.protocols.Validator | None = None


@attrs.define(eq=False)
class Plan:
    """A reactor class compiled for running.

    Attributes:
        reactor: The class.
        name: Its registry name (stored with each execution).
        version: The class's ``version`` attribute (stored with each execution).
        inputs: The declared inputs by name.
        validators: Compiled JSON Schemas of the inputs that declare one.
        nodes: Steps by name, in declaration order.
        roots: Steps that depend on nothing.
        returns: The step whose result is the execution's result.
        max_concurrency: How many steps may run at once, if bounded.
        breakpoints: The class's ``breakpoints`` (``"before:<path>"``/``"after:<path>"``,
            paths relative to this class).
        breaking: Whether this plan or a child's declares breakpoints.
        redacted: Inputs declared ``redact=True``.
        durability: The class's ``durability`` (``None``: the configured one).
    """

    reactor: type
    name: str
    version: Any
    inputs: dict[str, Input]
    validators: dict[str, jsonschema.protocols.Validator]
    nodes: dict[str, Node]
    roots: tuple[str, ...]
    returns: str | None
    max_concurrency: int | None
    breakpoints: frozenset[str] = frozenset()
    breaking: bool = False
    redacted: frozenset[str] = frozenset()
    durability: str | None = None
