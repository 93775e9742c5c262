"""Planning: check a reactor class's declarations and compile them into a :class:`Plan`.

All the work that does not depend on a run -- signatures, dependency edges, cycle
detection, JSON Schema compilation -- happens here, once, when the class is created.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import jsonschema

from ._dsl import NOTHING, Halt, Input, Skip, Source, StepDecl
from ._plan import KINDS, Binding, Call, Node, Plan
from .errors import DefinitionError

__all__ = ["RESERVED_INPUT_NAMES", "RESERVED_STEP_NAMES", "breakpoint_error", "compile_plan"]

#: Names an input may not take: options of ``run()`` and names with a reserved meaning in
#: step signatures. Checked at class creation so ``run(**inputs, execution_id=...)`` can
#: never be ambiguous.
RESERVED_INPUT_NAMES = frozenset(
    {
        "self",
        "context",
        "result",
        "error",
        "execution_id",
        "idempotency_key",
        "interrupt_handler",
        "max_concurrency",
        "breakpoints",
    }
)

#: Names a step may not take: ``"suspended"`` names the pending item of an operator pause.
RESERVED_STEP_NAMES = frozenset({"suspended"})

_BACKOFFS = ("fixed", "linear", "exponential")
_STRATEGIES = ("lazy", "active")


def _fail(reactor: str, message: str, step: str | None = None) -> DefinitionError:
    return DefinitionError(message, reactor=reactor, step=step)


def _structured_hint(annotation: Any) -> Any:
    """The annotation if injected values should be converted to it, else ``None``."""
    if annotation in (inspect.Parameter.empty, Any, None, type(None)) or _is_union(annotation):
        # A union (``X | None`` too) names no single type to convert to; values restored
        # from storage already carry their type in the codec's tags.
        return None
    if isinstance(annotation, type) and annotation in (str, int, float, bool, dict, list):
        return None
    return annotation


def _result_hint(annotation: Any) -> Any:
    """The type a stored result is restored to, from a step's return annotation.

    ``Halt`` is never stored and ``Skip[T]`` stores a ``T``, so both leave the union; a
    union of several types is left to the codec's tags, which record each value's type.
    """
    members = typing.get_args(annotation) if _is_union(annotation) else (annotation,)
    kept = []
    for member in members:
        origin = typing.get_origin(member) or member
        if origin is Halt:
            continue
        if origin is Skip:
            args = typing.get_args(member)
            member = args[0] if args else Any
        kept.append(member)
    return _structured_hint(kept[0]) if len(kept) == 1 else None


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:
        # Unresolvable forward references: fall back to no conversion rather than refuse.
        return {}


class _Compiler:
    """Compiles the declarations of one class; kinds call its per-part methods
    (:class:`reactor._plan.Compiler`)."""

    def __init__(
        self, reactor: type, name: str, inputs: dict[str, Input], decls: dict[str, StepDecl]
    ):
        self.reactor = reactor
        self.name = name
        self.inputs = inputs
        self.decls = decls

    def body(self, node: Node, *, required: bool) -> None:
        decl = node.decl
        if decl.fn is not None:
            node.call = self.call(
                decl.fn, node.name, f"{decl.kind} {node.name!r}", method=True, args=decl.args
            )
        elif required:
            raise _fail(self.name, f"a {decl.kind} needs a function", node.name)
        elif decl.args:
            raise _fail(self.name, "args= needs a body to pass them to", node.name)

    def correlation(self, node: Node) -> None:
        if node.decl.correlation_id is not None:
            node.correlation = self.call(
                node.decl.correlation_id, node.name, "correlation_id", method=False
            )

    def payload_schema(self, node: Node) -> None:
        decl = node.decl
        if decl.schema is None:
            return
        node.validator = _validator(self.name, decl.schema, "interrupt payload", node.name)
        if decl.on_timeout is not NOTHING:
            errors = list(node.validator.iter_errors(decl.on_timeout))
            if errors:
                raise _fail(
                    self.name, f"on_timeout fails the schema: {errors[0].message}", node.name
                )

    def child(self, node: Node, *, item: str | None) -> None:
        node.child = _child_plan(self.name, node.name, node.decl)
        node.child_inputs = tuple(
            self.source_binding(k, v, node.name) for k, v in node.decl.inputs.items()
        )
        _check_child_inputs(self.name, node, item)

    def guard(self, node: Node) -> None:
        when = node.decl.when
        if when is None:
            return
        try:
            params = list(inspect.signature(when).parameters)
        except (TypeError, ValueError):
            params = []  # self.call() below says what is wrong with it
        # A predicate written as a method (first parameter `self`) gets the instance too.
        node.guard = self.call(
            when, node.name, "when predicate", method=bool(params) and params[0] == "self"
        )

    def output_schema(self, node: Node) -> None:
        if node.decl.output_schema is not None:
            node.output_validator = _validator(
                self.name, node.decl.output_schema, "output", node.name
            )

    def over(self, node: Node) -> None:
        if node.decl.over is None:
            raise _fail(self.name, f"{node.decl.kind}_ needs over=", node.name)
        node.over = self.source_binding("over", node.decl.over, node.name)

    def source_binding(self, param: str, source: Source | str, owner: str) -> Binding:
        if isinstance(source, str):
            if source in self.inputs:
                source = Source("input", source)
            elif source in self.decls:
                source = Source("result", source)
            else:
                raise _fail(
                    self.name,
                    f"{param!r} names {source!r}, which is neither an input nor a step",
                    owner,
                )
        if not isinstance(source, Source):
            raise _fail(
                self.name,
                f"{param!r} must be given by result(), input(), value() or a name, not {source!r}",
                owner,
            )
        if source.kind == "input" and source.name not in self.inputs:
            raise _fail(self.name, f"{param!r} reads unknown input {source.name!r}", owner)
        if source.kind == "result" and source.name not in self.decls:
            raise _fail(
                self.name, f"{param!r} reads the result of unknown step {source.name!r}", owner
            )
        return Binding(param, source.kind, source.name, source.path, source.constant)

    def call(
        self,
        fn: Callable[..., Any],
        owner: str,
        role: str,
        *,
        method: bool,
        args: Mapping[str, Source] | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> Call:
        """Compile ``fn``'s parameters into bindings.

        ``extra`` maps reserved parameter names allowed for this role to binding kinds.
        """
        if not callable(fn):
            raise _fail(self.name, f"the {role} must be callable, got {fn!r}", owner)
        try:
            signature = inspect.signature(fn)
        except (TypeError, ValueError) as exc:
            raise _fail(self.name, f"cannot read the {role}'s signature: {exc}", owner) from exc
        params = list(signature.parameters.values())
        if method:
            if not params or params[0].kind not in (
                inspect.Parameter.POSITIONAL_ONLY,
                inspect.Parameter.POSITIONAL_OR_KEYWORD,
            ):
                raise _fail(self.name, f"the {role} must take `self` first", owner)
            params = params[1:]
        hints = _hints(fn)
        args = dict(args or {})
        bindings = []
        for p in params:
            if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise _fail(
                    self.name,
                    f"the {role} takes *{p.name}; parameters are injected by name, declare each",
                    owner,
                )
            if p.kind is inspect.Parameter.POSITIONAL_ONLY:
                raise _fail(
                    self.name, f"the {role}'s parameter {p.name!r} is positional-only", owner
                )
            hint = _structured_hint(hints.get(p.name, inspect.Parameter.empty))
            if p.name in args:
                bindings.append(
                    attrs.evolve(self.source_binding(p.name, args.pop(p.name), owner), hint=hint)
                )
            elif extra and p.name in extra:
                bindings.append(Binding(p.name, extra[p.name]))
            elif p.name == "context":
                bindings.append(Binding(p.name, "context"))
            elif p.name in self.inputs:
                bindings.append(Binding(p.name, "input", p.name, hint=hint))
            elif p.name in self.decls:
                bindings.append(Binding(p.name, "result", p.name, hint=hint))
            elif p.default is not inspect.Parameter.empty:
                continue
            else:
                raise _fail(
                    self.name,
                    f"the {role}'s parameter {p.name!r} is not an input, a step, "
                    f"or one of {sorted({'context', *(extra or {})})}",
                    owner,
                )
        if args:
            raise _fail(
                self.name, f"args= names {sorted(args)}, which the {role} does not take", owner
            )
        return Call(
            fn,
            inspect.iscoroutinefunction(fn),
            tuple(bindings),
            method,
            _result_hint(hints.get("return", inspect.Parameter.empty)),
        )


def _check_options(name: str, decl: StepDecl) -> None:
    step = decl.name

    def bad(message: str) -> DefinitionError:
        return _fail(name, message, step)

    retry = decl.retry
    if not isinstance(retry.retries, int) or isinstance(retry.retries, bool) or retry.retries < 0:
        raise bad(f"retries must be an int >= 0, got {retry.retries!r}")
    if retry.backoff not in _BACKOFFS:
        raise bad(f"backoff must be one of {_BACKOFFS}, got {retry.backoff!r}")
    for option, v in (
        ("base_delay", retry.base_delay),
        ("max_delay", retry.max_delay),
        ("timeout", decl.timeout),
    ):
        if v is None and option != "base_delay":
            continue
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
            raise bad(f"{option} must be a finite number >= 0, got {v!r}")
    if decl.timeout is not None and decl.timeout == 0:
        raise bad("timeout must be > 0")
    if not isinstance(retry.jitter, int | float) or not 0 <= retry.jitter <= 1:
        raise bad(f"jitter must be between 0 and 1, got {retry.jitter!r}")
    if not retry.retry_on or not all(
        isinstance(t, type) and issubclass(t, BaseException) for t in retry.retry_on
    ):
        raise bad(f"retry_on must be exception types, got {retry.retry_on!r}")
    if decl.strategy not in _STRATEGIES:
        raise bad(f"strategy must be one of {_STRATEGIES}, got {decl.strategy!r}")
    if decl.max_attempts is not None and (
        not isinstance(decl.max_attempts, int)
        or isinstance(decl.max_attempts, bool)
        or decl.max_attempts < 1
    ):
        raise bad(f"max_attempts must be an int >= 1 or None, got {decl.max_attempts!r}")
    for error in KINDS[decl.kind].option_errors(decl):
        raise bad(error)
    if decl.max_concurrency is not None and (
        not isinstance(decl.max_concurrency, int) or decl.max_concurrency < 1
    ):
        raise bad(f"max_concurrency must be an int >= 1, got {decl.max_concurrency!r}")


def _validator(name: str, schema: Mapping[str, Any], what: str, step: str | None) -> Any:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        cls.check_schema(dict(schema))
    except jsonschema.SchemaError as exc:
        raise _fail(name, f"the {what} schema is invalid: {exc.message}", step) from exc
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def compile_plan(
    reactor: type,
    name: str,
    inputs: dict[str, Input],
    decls: dict[str, StepDecl],
    *,
    returns: str | None,
    max_concurrency: int | None,
    version: Any = None,
    breakpoints: Any = (),
    durability: str | None = None,
) -> Plan:
    """Check a reactor's declarations and compile them.

    Raises:
        DefinitionError: naming the reactor and the step, for any mistake.
    """
    label = reactor.__qualname__
    for input_name in inputs:
        if input_name in RESERVED_INPUT_NAMES:
            raise _fail(
                label,
                f"input {input_name!r} uses a reserved name "
                f"({', '.join(sorted(RESERVED_INPUT_NAMES))})",
                input_name,
            )
        if input_name in decls:
            raise _fail(label, f"{input_name!r} is both an input and a step", input_name)
    validators = {
        n: _validator(label, i.schema, f"input {n!r}", n)
        for n, i in inputs.items()
        if i.schema is not None
    }
    for n, i in inputs.items():
        if i.schema is not None and not i.required:
            errors = list(validators[n].iter_errors(i.default))
            if errors and i.default is not None:
                raise _fail(
                    label, f"the default of input {n!r} fails its schema: {errors[0].message}", n
                )

    compiler = _Compiler(reactor, label, inputs, decls)
    nodes: dict[str, Node] = {}
    for step_name, decl in decls.items():
        if step_name in RESERVED_STEP_NAMES:
            raise _fail(label, f"step name {step_name!r} is reserved", step_name)
        _check_options(label, decl)
        for dep in decl.wait_for:
            if dep not in decls:
                raise _fail(label, f"wait_for names unknown step {dep!r}", step_name)
        node = Node(step_name, decl, KINDS[decl.kind], ())
        deps: list[str] = list(decl.wait_for)
        node.kind.compile(compiler, node)
        sources = [
            *(
                b
                for call in (node.call, node.correlation, node.guard)
                if call
                for b in call.bindings
            ),
            *node.child_inputs,
            *((node.over,) if node.over is not None else ()),
        ]
        node.data_deps = frozenset(b.name for b in sources if b.kind == "result")
        node.input_deps = frozenset(b.name for b in sources if b.kind == "input")
        deps.extend(b.name for b in sources if b.kind == "result")
        if step_name in deps:
            raise _fail(label, "the step depends on itself", step_name)
        node.deps = tuple(dict.fromkeys(deps))
        nodes[step_name] = node

    _check_acyclic(label, nodes)
    ancestors = _ancestors(nodes)
    for step_name, node in nodes.items():
        decl = node.decl
        for role, fn, extra in (
            ("undo", decl.undo_fn, {"result": "own_result"}),
            ("compensate", decl.compensate_fn, {"error": "error"}),
        ):
            if fn is None:
                continue
            call = compiler.call(
                fn, step_name, f"{role} of {step_name!r}", method=True, extra=extra
            )
            for b in call.bindings:
                if (
                    b.kind == "result"
                    and b.name != step_name
                    and b.name not in ancestors[step_name]
                ):
                    raise _fail(
                        label,
                        f"the {role} reads {b.name!r}, which is not a dependency of the step",
                        step_name,
                    )
            if role == "undo":
                node.undo = call
            else:
                node.compensate = call
    dependents: dict[str, list[str]] = {n: [] for n in nodes}
    for step_name, node in nodes.items():
        for dep in node.deps:
            dependents[dep].append(step_name)
    for step_name, node in nodes.items():
        node.dependents = tuple(dependents[step_name])

    if returns is not None and returns not in nodes:
        raise _fail(label, f"returns names unknown step {returns!r}", returns)
    if durability is not None and durability not in ("eager", "lazy"):
        raise _fail(label, f'durability must be "eager" or "lazy", got {durability!r}')
    if max_concurrency is not None and (
        not isinstance(max_concurrency, int) or max_concurrency < 1
    ):
        raise _fail(label, f"max_concurrency must be an int >= 1, got {max_concurrency!r}")
    if isinstance(breakpoints, str) or not all(isinstance(b, str) for b in breakpoints):
        raise _fail(label, f"breakpoints must be a list of strings, got {breakpoints!r}")
    plan = Plan(
        reactor=reactor,
        name=name,
        version=version,
        inputs=inputs,
        validators=validators,
        nodes=nodes,
        roots=tuple(n for n, node in nodes.items() if not node.deps),
        returns=returns if returns is not None else (next(reversed(nodes)) if nodes else None),
        max_concurrency=max_concurrency,
        breakpoints=frozenset(breakpoints),
        redacted=frozenset(n for n, i in inputs.items() if i.redact),
        durability=durability,
    )
    for bp in plan.breakpoints:
        problem = breakpoint_error(plan, bp)
        if problem:
            raise _fail(label, problem)
    plan.breaking = bool(plan.breakpoints) or any(
        node.child.breaking for node in nodes.values() if node.child is not None
    )
    return plan


def breakpoint_error(plan: Plan, breakpoint: str) -> str | None:
    """What is wrong with ``breakpoint`` for ``plan`` (``None``: nothing).

    A breakpoint is ``"before:<path>"`` or ``"after:<path>"``; the path names a step,
    through compose/map steps for children (``"payment.charge"``, ``"lines.pick"`` for
    every element, ``"lines[2].pick"`` for one).
    """
    when, _, path = breakpoint.partition(":")
    if when not in ("before", "after") or not path:
        return f'breakpoint {breakpoint!r} must be "before:<step path>" or "after:<step path>"'
    current: Plan | None = plan
    node: Node | None = None
    for part in path.split("."):
        name, bracket, index = part.partition("[")
        node = current.nodes.get(name) if current is not None else None
        if node is None or (bracket and not (node.kind.per_item and index[:-1].isdigit())):
            return f"breakpoint {breakpoint!r} names no step of {plan.reactor.__qualname__}"
        current = node.child
    if when == "after" and node is not None and node.kind.resumable:
        # An interrupt completes when resumed from outside, past any breakpoint.
        return f'breakpoint {breakpoint!r}: an interrupt takes "before:" only'
    return None


def _child_plan(label: str, step: str, decl: StepDecl) -> Plan:
    plan = getattr(decl.child, "__reactor_plan__", None)
    if not isinstance(plan, Plan):
        raise _fail(label, f"{decl.kind} needs a Reactor subclass, got {decl.child!r}", step)
    return plan


def _check_child_inputs(label: str, node: Node, item: str | None) -> None:
    assert node.child is not None
    child = node.child
    given = {b.param for b in node.child_inputs}
    if item is not None:
        if item not in child.inputs:
            raise _fail(
                label, f"item={item!r} is not an input of {child.reactor.__qualname__}", node.name
            )
        if item in given:
            raise _fail(label, f"input {item!r} is given twice (item= and inputs=)", node.name)
        given.add(item)
    unknown = given - set(child.inputs)
    if unknown:
        raise _fail(
            label,
            f"inputs= names {sorted(unknown)}, not inputs of {child.reactor.__qualname__}",
            node.name,
        )
    missing = [n for n, i in child.inputs.items() if i.required and n not in given]
    if missing:
        raise _fail(
            label,
            f"required inputs {missing} of {child.reactor.__qualname__} are not given",
            node.name,
        )


def _check_acyclic(label: str, nodes: dict[str, Node]) -> None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in nodes:
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            name, i = stack.pop()
            if i == 0:
                state[name] = 1
                path.append(name)
            deps = nodes[name].deps
            if i < len(deps):
                stack.append((name, i + 1))
                dep = deps[i]
                if state.get(dep) == 1:
                    cycle = [*path[path.index(dep) :], dep]
                    raise _fail(label, f"steps form a cycle: {' -> '.join(reversed(cycle))}", dep)
                if not state.get(dep):
                    stack.append((dep, 0))
            else:
                state[name] = 2
                path.pop()


def _ancestors(nodes: dict[str, Node]) -> dict[str, frozenset[str]]:
    memo: dict[str, frozenset[str]] = {}

    def visit(name: str) -> frozenset[str]:
        if name not in memo:
            found: set[str] = set()
            for dep in nodes[name].deps:
                found.add(dep)
                found |= visit(dep)
            memo[name] = frozenset(found)
        return memo[name]

    for name in nodes:
        visit(name)
    return memo
