"""An order approval, operated through the ``reactor`` command in the CLI tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from reactor import Input, Reactor, interrupt, schemas, step


class Approval(Reactor):
    """Quote an order, wait for a manager's confirmation, then place it."""

    order_id = Input(schema={"type": "integer"})

    @step
    def quote(self, order_id: int) -> dict[str, Any]:
        return {"order": order_id, "total": 42, "at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)}

    @interrupt(
        schema=schemas.confirmation(),
        correlation_id=lambda order_id: f"order-{order_id}",
        max_attempts=3,
    )
    def confirm(self, quote: dict[str, Any]) -> dict[str, Any]:
        return {"question": f"place order {quote['order']}?"}

    @step
    def place(self, confirm: dict[str, Any], quote: dict[str, Any]) -> str:
        verdict = "placed" if confirm["approved"] else "dropped"
        return f"order {quote['order']} {verdict}"
