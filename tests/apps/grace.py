"""A reactor whose second step outlasts a worker's SIGTERM grace period."""

from __future__ import annotations

import time

from reactor import Context, Reactor, step

from . import record


class Lingering(Reactor):
    """``long`` sleeps 20 s on its first attempt only (the worker is stopped meanwhile)."""

    @step
    def first(self, context: Context) -> str:
        record(context.execution_id, "first")
        time.sleep(0.2)
        return "first"

    @step
    def long(self, first: str, context: Context) -> str:
        if record(context.execution_id, "long") == 1:
            time.sleep(20)
        return first + " then long"
