"""A reactor whose module refuses to be imported where ``$REACTOR_TRIPWIRE`` is set.

The CLI tests set it in subprocesses that must work from stored data alone: importing
this module there, on the strength of the name an execution records, fails loudly.
"""

from __future__ import annotations

import os
from typing import Any

from reactor import Context, Input, Reactor, interrupt, schemas, step

from . import record, record_undo

if os.environ.get("REACTOR_TRIPWIRE"):
    raise RuntimeError("apps.tripwire was imported although no --app named it")


class Parked(Reactor):
    """Reserve, then wait (lazy deadline in an hour) for a confirmation."""

    order = Input(schema={"type": "integer"})

    @step
    def reserve(self, order: int, context: Context) -> str:
        record(context.execution_id, "reserve")
        return f"slot-{order}"

    @reserve.undo
    def release(self, context: Context) -> None:
        record_undo(context.execution_id, "reserve")

    @interrupt(
        schema=schemas.confirmation(),
        correlation_id=lambda order: f"parked-{order}",
        timeout=3600,
    )
    def confirm(self, reserve: str) -> dict[str, Any]:
        return {"question": f"keep {reserve}?"}

    @step
    def keep(self, confirm: dict[str, Any], reserve: str) -> str:
        return reserve if confirm["approved"] else "released"
