"""The Celery app of the background tests: ``celery -A celery_app worker`` (with
``tests`` on ``PYTHONPATH`` and ``$REACTOR_REDIS_URL`` set) runs the reactors of
:mod:`apps.background` and the gated map below. Broker and result backend are that
same Redis.
"""

from __future__ import annotations

import os
import time

from celery import Celery

import reactor.celery
from reactor import Input, Reactor, configure, input, map_, step

from apps import counters, record, record_undo

url = os.environ["REACTOR_REDIS_URL"]
app = Celery("reactor_tests", broker=url, backend=url, set_as_current=False)
app.conf.update(
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)
if "REACTOR_LEASE_SECONDS" in os.environ:
    # Short leases make a crashed worker's execution recoverable within the test.
    configure(lease_seconds=float(os.environ["REACTOR_LEASE_SECONDS"]))
advance = reactor.celery.install(app)

import apps.background  # noqa: E402, F401 -- the reactors the workers run

GATE_WAIT = 15.0
"""Longest a :class:`Gate` waits (a failed test that never opens it frees the workers)."""


class Gate(Reactor):
    """An element whose ``enter`` waits until the test opens its gate, except in the
    first element to enter; undoing ``enter`` notes the item. Steps count their starts
    per ``tag``."""

    name = "tests.celery_app.Gate"
    item = Input()
    tag = Input()

    @step
    def enter(self, item: int, tag: str) -> int:
        record(tag, f"enter{item}")
        # The first to enter passes, not element 0: the workers take the elements in no
        # particular order.
        first = counters().incr(f"entered:{tag}") == 1
        deadline = time.monotonic() + GATE_WAIT
        while not first and not counters().exists(f"open:{tag}") and time.monotonic() < deadline:
            time.sleep(0.02)
        return item

    @enter.undo
    def leave(self, item: int, tag: str) -> None:
        record_undo(tag, str(item))

    @step
    def after(self, enter: int, tag: str) -> int:
        record(tag, f"after{enter}")
        return enter


class Gated(Reactor):
    """A map of :class:`Gate`, all elements in one batch."""

    name = "tests.celery_app.Gated"
    items = Input()
    tag = Input()

    gates = map_(Gate, over="items", item="item", inputs={"tag": input("tag")}, fan_out=10)
