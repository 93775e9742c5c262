"""The Celery app of the background tests: ``celery -A celery_app worker`` (with
``tests`` on ``PYTHONPATH`` and ``$REACTOR_REDIS_URL`` set) runs the reactors of
:mod:`apps.background`. Broker and result backend are that same Redis.
"""

from __future__ import annotations

import os

from celery import Celery

import reactor.celery
from reactor import configure

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
