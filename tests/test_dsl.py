"""Class creation: every definition mistake raises DefinitionError naming reactor and step."""

from __future__ import annotations

import pytest

from reactor import DefinitionError, Input, Reactor, compose, interrupt, map_, result, step, value


def definition_error(body: dict[str, object], name: str = "Broken") -> DefinitionError:
    with pytest.raises(DefinitionError) as info:
        type(name, (Reactor,), body)
    return info.value


def check(error: DefinitionError, step: str, *fragments: str) -> None:
    message = str(error)
    assert error.reactor == "Broken"
    assert error.step == step
    assert "Broken" in message
    assert repr(step) in message
    for fragment in fragments:
        assert fragment in message


def test_unknown_parameter_name() -> None:
    def charge(self, amount):  # type: ignore[no-untyped-def]
        return amount

    check(definition_error({"charge": step(charge)}), "charge", "'amount'", "not an input")


def test_unknown_parameter_in_undo() -> None:
    def charge(self):  # type: ignore[no-untyped-def]
        return 1

    decl = step(charge)

    def refund(self, receipt):  # type: ignore[no-untyped-def]
        pass

    decl.undo(refund)
    check(definition_error({"charge": decl}), "charge", "'receipt'")


def test_undo_reading_a_non_dependency() -> None:
    def a(self):  # type: ignore[no-untyped-def]
        return 1

    def b(self):  # type: ignore[no-untyped-def]
        return 2

    decl_a = step(a)

    def undo_a(self, b):  # type: ignore[no-untyped-def]
        pass

    decl_a.undo(undo_a)
    check(definition_error({"a": decl_a, "b": step(b)}), "a", "not a dependency")


def test_cycle_names_the_steps() -> None:
    def a(self, c):  # type: ignore[no-untyped-def]
        return c

    def b(self, a):  # type: ignore[no-untyped-def]
        return a

    def c(self, b):  # type: ignore[no-untyped-def]
        return b

    error = definition_error({"a": step(a), "b": step(b), "c": step(c)})
    assert "cycle" in str(error)
    assert error.step in {"a", "b", "c"}
    assert all(name in str(error) for name in "abc")


def test_self_dependency() -> None:
    def a(self):  # type: ignore[no-untyped-def]
        return 1

    check(definition_error({"a": step(wait_for="a")(a)}), "a", "depends on itself")


def test_duplicate_step_name_in_class_body() -> None:
    with pytest.raises(DefinitionError) as info:

        class Broken(Reactor):
            @step
            def charge(self) -> int:
                return 1

            @step
            def charge(self) -> int:  # noqa: F811 -- the mistake under test
                return 2

    check(info.value, "charge", "declared twice")


def test_hook_named_like_its_step() -> None:
    with pytest.raises(DefinitionError) as info:

        class Broken(Reactor):
            @step
            def charge(self) -> int:
                return 1

            @charge.undo
            def charge(self, result: int) -> None:
                pass

    check(info.value, "charge", "declared twice")


def test_one_step_under_two_names() -> None:
    def a(self):  # type: ignore[no-untyped-def]
        return 1

    decl = step(a)
    check(definition_error({"a": decl, "b": decl}), "a", "another name", "'b'")


def test_input_and_step_with_the_same_name() -> None:
    class Base(Reactor):
        total = Input()

        @step
        def other(self, total: int) -> int:
            return total

    with pytest.raises(DefinitionError) as info:

        class Broken(Base):
            @step
            def total(self) -> int:
                return 1

    check(info.value, "total", "both an input and a step")


def test_input_step_clash_in_one_body() -> None:
    with pytest.raises(DefinitionError) as info:

        class Broken(Reactor):
            amount = Input()
            amount = step(lambda self: 1)  # type: ignore[arg-type]

    check(info.value, "amount", "declared twice")


@pytest.mark.parametrize(
    "name", ["execution_id", "idempotency_key", "interrupt_handler", "context"]
)
def test_input_with_a_reserved_name(name: str) -> None:
    check(definition_error({name: Input()}), name, "reserved")


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"backoff": "quadratic"}, "backoff"),
        ({"base_delay": -0.1}, "base_delay"),
        ({"max_delay": float("inf")}, "max_delay"),
        ({"jitter": 2}, "jitter"),
        ({"retry_on": (ValueError, "oops")}, "retry_on"),
        ({"timeout": 0}, "timeout"),
        ({"wait_for": ("ghost",)}, "ghost"),
        ({"args": {"x": result("ghost")}}, "ghost"),
        ({"args": {"y": value(1)}}, "does not take"),
    ],
)
def test_bad_step_options(options: dict[str, object], fragment: str) -> None:
    def charge(self, x=None):  # type: ignore[no-untyped-def]
        return x

    check(definition_error({"charge": step(**options)(charge)}), "charge", fragment)  # type: ignore[call-overload]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"strategy": "eager", "timeout": 1}, "strategy"),
        ({"strategy": "active"}, "needs a timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"accept_early": True}, "correlation_id"),
        ({"schema": {"type": "nonsense"}}, "schema is invalid"),
        ({"timeout": 5, "on_timeout": 1, "schema": {"type": "object"}}, "on_timeout fails"),
        ({"correlation_id": lambda ghost: ghost}, "'ghost'"),
    ],
)
def test_bad_interrupt_options(options: dict[str, object], fragment: str) -> None:
    check(definition_error({"approval": interrupt(**options)}), "approval", fragment)  # type: ignore[arg-type]


def test_star_args_are_refused() -> None:
    def charge(self, **kwargs):  # type: ignore[no-untyped-def]
        return kwargs

    check(definition_error({"charge": step(charge)}), "charge", "*kwargs")


def test_bad_input_schema() -> None:
    check(definition_error({"amount": Input(schema={"type": 12})}), "amount", "schema is invalid")


def test_returns_unknown_step() -> None:
    def a(self):  # type: ignore[no-untyped-def]
        return 1

    check(definition_error({"a": step(a), "returns": "ghost"}), "ghost", "returns")


def test_compose_of_a_non_reactor() -> None:
    check(definition_error({"child": compose(dict)}), "child", "Reactor subclass")


def test_compose_missing_child_input() -> None:
    class Child(Reactor):
        amount = Input()

        @step
        def pay(self, amount: int) -> int:
            return amount

    check(definition_error({"child": compose(Child)}), "child", "'amount'", "not given")
    check(
        definition_error({"child": compose(Child, inputs={"amount": value(1), "x": value(2)})}),
        "child",
        "'x'",
    )


def test_map_item_not_an_input() -> None:
    class Element(Reactor):
        line = Input()

        @step
        def ship(self, line: int) -> int:
            return line

    body = {"lines": Input(), "each": map_(Element, over="lines", item="thing")}
    check(definition_error(body), "each", "'thing'")
    check(definition_error({"each": map_(Element, over="ghost", item="line")}), "each", "'ghost'")


def test_a_valid_reactor_is_accepted_and_registered() -> None:
    from reactor import registry

    class Fine(Reactor):
        amount = Input(schema={"type": "integer"}, default=1)

        @step(retries=2, backoff="exponential", base_delay=0.1, max_delay=1, jitter=0.5, timeout=3)
        async def charge(self, amount: int) -> int:
            return amount

        @charge.undo
        def refund(self, result: int, amount: int) -> None:
            pass

    assert registry[Fine.name] is Fine
    assert Fine.name == f"{__name__}.test_a_valid_reactor_is_accepted_and_registered.<locals>.Fine"


@pytest.mark.parametrize("name", ["run", "name", "version", "find", "cancel", "mermaid"])
def test_a_step_or_input_may_not_shadow_the_reactor_api(name: str) -> None:
    with pytest.raises(DefinitionError, match=f"shadows Reactor.{name}"):
        type(name.title(), (Reactor,), {name: step(lambda self: 1)})
    with pytest.raises(DefinitionError, match=f"shadows Reactor.{name}"):
        type(name.title(), (Reactor,), {name: Input()})
