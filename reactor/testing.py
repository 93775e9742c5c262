"""Test helpers and pytest fixtures for applications that use reactor.

Installed as a pytest plugin (entry point ``reactor``), so these fixtures are
available in any suite once reactor is installed:

- ``memory_storage``: every reactor without a storage of its own uses a fresh
  :class:`~reactor.MemoryStorage` for the test.
- ``reactor_clock``: a :class:`FakeClock` that drives interrupt deadlines and leases,
  so timeout tests need no sleeping.
- ``reactor_events``: a list collecting ``(event, fields)`` for every transition.

:func:`mock_step` replaces a step's body for the duration of a ``with`` block, for tests
of reactors whose steps call the outside world.

:func:`unregister` lets a test define a second version of a reactor under a name that is
already registered.

Example::

    def test_times_out(memory_storage, reactor_clock):
        ex = Approval.run(order=1)
        reactor_clock.advance(3600)
        with pytest.raises(InterruptTimeout):
            Approval.resume(ex.id, {"approved": True})
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from ._config import configure, get_config
from ._dsl import NOTHING
from ._plan import Call, Plan, StepKind
from ._reactor import Reactor, forget
from .errors import ReactorError
from .storage import MemoryStorage

__all__ = [
    "FakeClock",
    "StepMock",
    "memory_storage",
    "mock_step",
    "reactor_clock",
    "reactor_events",
    "unregister",
]


class FakeClock:
    """A clock that only moves when told to.

    Args:
        start: The unix time it starts at (default: now).
    """

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.now += seconds


@contextlib.contextmanager
def _setting(name: str, value: Any) -> Iterator[None]:
    """Configure option ``name`` as ``value`` for the block, then restore it."""
    saved = getattr(get_config(), name)
    configure(**{name: value})
    try:
        yield
    finally:
        configure(**{name: saved})


@pytest.fixture
def memory_storage() -> Iterator[MemoryStorage]:
    """A fresh MemoryStorage configured as the default for the test."""
    storage = MemoryStorage()
    with _setting("storage", storage):
        yield storage


@pytest.fixture
def reactor_clock() -> Iterator[FakeClock]:
    """A :class:`FakeClock` that reactor uses for deadlines and leases during the test."""
    clock = FakeClock()
    with _setting("clock", clock):
        yield clock


@pytest.fixture
def reactor_events() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Collects ``(event, fields)`` of every transition event during the test."""
    events: list[tuple[str, dict[str, Any]]] = []
    hook = (*get_config().middleware, lambda event, fields: events.append((event, fields)))
    with _setting("middleware", hook):
        yield events


@attrs.frozen
class StepMock:
    """What :func:`mock_step` yields: the calls the replaced body received.

    Attributes:
        calls: The keyword arguments of each call, in order (the parameters the real
            body declares, bound by name as usual).
    """

    calls: list[dict[str, Any]] = attrs.Factory(list)


@contextlib.contextmanager
def mock_step(
    reactor: type[Reactor],
    step: str,
    *,
    returns: Any = NOTHING,
    raises: BaseException | type[BaseException] | None = None,
) -> Iterator[StepMock]:
    """Replace the body of ``step`` of ``reactor`` for the duration of the block.

    The mock receives the arguments the real body would (dependencies stay as they
    are), records them, and returns ``returns`` or raises ``raises`` (retries,
    compensation and ``undo`` apply as to the real body). For a step of a child, mock
    it on the child class.

    Args:
        reactor: The reactor class.
        step: The step's name.
        returns: The result to give.
        raises: An exception (instance or class) to raise instead.

    Raises:
        ReactorError: ``step`` is not a step of ``reactor``, or neither or both of
            ``returns`` and ``raises`` are given.

    Example::

        with mock_step(Checkout, "charge", returns={"charged": 12.5}) as charge:
            Checkout.run(order_id="A-1", amount=12.5)
        assert charge.calls[0]["amount"] == 12.5
    """
    plan: Plan = reactor.__reactor_plan__
    node = plan.nodes.get(step)
    name = plan.name
    if node is None or node.call is None or not isinstance(node.kind, StepKind):
        raise ReactorError(f"{step!r} is not a step with a body", reactor=name, step=step)
    if (returns is NOTHING) == (raises is None):
        raise ReactorError("give exactly one of returns= and raises=", reactor=name, step=step)
    mock = StepMock()

    def body(**kwargs: Any) -> Any:
        mock.calls.append(kwargs)
        if raises is not None:
            raise raises
        return returns

    real = node.call
    node.call = Call(body, False, real.bindings, False, real.return_hint)
    try:
        yield mock
    finally:
        node.call = real


def unregister(*names: str) -> None:
    """Forget the reactor classes registered under ``names`` (unknown names are ignored).

    A class registered under a name another class holds is a ``DefinitionError``; a test
    that defines several versions of one reactor (to check what happens to executions
    stored by the old one) unregisters the name before defining each version. Classes
    already defined keep working; only :data:`reactor.registry` forgets them.

    Example::

        unregister("shop.Checkout")

        class CheckoutV2(Reactor):
            name = "shop.Checkout"
            ...
    """
    for name in names:
        forget(name)
