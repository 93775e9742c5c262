"""Test helpers and pytest fixtures for applications that use reactor.

Installed as a pytest plugin (entry point ``reactor``), so these fixtures are
available in any suite once reactor is installed:

- ``memory_storage``: every reactor without a storage of its own uses a fresh
  :class:`~reactor.MemoryStorage` for the test.
- ``reactor_clock``: a :class:`FakeClock` that drives interrupt deadlines and leases,
  so timeout tests need no sleeping.
- ``reactor_events``: a list collecting ``(event, fields)`` for every transition.

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

import pytest

from ._config import configure, get_config
from ._reactor import _registry
from .storage import MemoryStorage

__all__ = ["FakeClock", "memory_storage", "reactor_clock", "reactor_events", "unregister"]


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
        _registry.pop(name, None)
