"""The Celery app of ``benchmarks/scale.py``: ``celery -A scale_app worker`` runs
:class:`Ten` from a Redis given as ``$REACTOR_REDIS_URL`` (also broker)."""

from __future__ import annotations

import os

import redis
from celery import Celery

import reactor.celery
from reactor import Context, Input, Reactor, map_, step

from map import SyncElement

url = os.environ["REACTOR_REDIS_URL"]
app = Celery("reactor_scale", broker=url, set_as_current=False)
app.conf.update(worker_prefetch_multiplier=4, broker_connection_retry_on_startup=True)
reactor.celery.install(app)
_counter = redis.Redis.from_url(url)


class Ten(Reactor):
    """Ten steps in a row; the last counts the completed runs."""

    name = "benchmarks.scale.Ten"

    @step
    def s1(self) -> int:
        return 1

    @step
    def s2(self, s1: int) -> int:
        return s1 + 1

    @step
    def s3(self, s2: int) -> int:
        return s2 + 1

    @step
    def s4(self, s3: int) -> int:
        return s3 + 1

    @step
    def s5(self, s4: int) -> int:
        return s4 + 1

    @step
    def s6(self, s5: int) -> int:
        return s5 + 1

    @step
    def s7(self, s6: int) -> int:
        return s6 + 1

    @step
    def s8(self, s7: int) -> int:
        return s7 + 1

    @step
    def s9(self, s8: int) -> int:
        return s8 + 1

    @step
    def s10(self, s9: int, context: Context) -> int:
        _counter.incr("bench:completed")
        return s9 + 1


class Element(SyncElement):
    """Three def steps on one item (those of ``map.py``), under a name of its own."""

    name = "benchmarks.scale.Element"


class Fanned(Reactor):
    """A map of :class:`Element` fanned out 500 at a time."""

    name = "benchmarks.scale.Fanned"
    items = Input()

    each = map_(Element, over="items", item="item", fan_out=500)
