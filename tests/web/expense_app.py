"""The expense reactor the web tests drive, in-process and in ``reactor serve``.

Budget holds are recorded in Redis (``$REACTOR_REDIS_URL``, hash ``expense-test:holds``)
so a test can see a hold released by an undo that ran in the server process.
"""

from __future__ import annotations

import os
from typing import Any

import redis

from reactor import Input, Reactor, interrupt, schemas, step

HOLDS = "expense-test:holds"
WEBHOOK_SECRET = "whsec_expense_test"
APP_SECRET = "app-secret"


class ExpenseRejected(Exception):
    """The manager said no."""


def _redis() -> redis.Redis:
    return redis.Redis.from_url(os.environ["REACTOR_REDIS_URL"])


class Expense(Reactor):
    """Hold the budget, ask a manager (a form with a cost center), then book."""

    name = "expense"

    expense_id = Input(schema={"type": "string"})
    employee = Input(schema={"type": "string"})
    amount = Input(schema={"type": "number"})

    @step
    def hold_budget(self, expense_id: str, amount: float) -> str:
        with _redis() as client:
            client.hset(HOLDS, expense_id, "held")
        return f"hold-{expense_id}"

    @hold_budget.undo
    def release_hold(self, expense_id: str) -> None:
        with _redis() as client:
            client.hset(HOLDS, expense_id, "released")

    @interrupt(
        correlation_id=lambda expense_id: f"expense-{expense_id}",
        schema=schemas.form(
            {
                "type": "object",
                "properties": {
                    "approved": {"type": "boolean"},
                    "cost_center": {
                        "type": "string",
                        "title": "Cost center",
                        "pattern": "^CC-[0-9]{4}$",
                        "description": "CC- and four digits, e.g. CC-1234",
                    },
                    "comment": {"type": "string"},
                    "responded_by": {"type": "string"},
                },
                "required": ["approved", "cost_center"],
                "additionalProperties": False,
            }
        ),
        max_attempts=3,
    )
    def manager_approval(self, expense_id: str, employee: str, amount: float) -> dict[str, Any]:
        return {
            "title": f"Expense {expense_id}: {amount:.2f} EUR for {employee}",
            "employee": employee,
            "amount": amount,
        }

    @step
    def book(self, manager_approval: dict[str, Any], hold_budget: str) -> str:
        if not manager_approval["approved"]:
            raise ExpenseRejected(manager_approval.get("comment") or "rejected")
        return f"booked-{hold_budget}"


class Survey(Reactor):
    """Every kind of form: a choice, several choices, free text, nested objects."""

    name = "survey"
    webhook_secret = WEBHOOK_SECRET

    topic = Input(default="lunch")

    @interrupt(schema=schemas.choice(["pizza", "sushi", "salad"]))
    def pick(self, topic: str) -> dict[str, str]:
        return {"title": f"Pick a {topic}"}

    @interrupt(schema=schemas.choice(["mon", "tue", "wed"], multiple=True), wait_for=("pick",))
    def days(self) -> None:
        return None

    @interrupt(schema=schemas.text(max_length=500), wait_for=("days",))
    def feedback(self) -> None:
        return None

    @interrupt(
        schema=schemas.form(
            {
                "type": "object",
                "properties": {
                    "guests": {"type": "integer", "minimum": 1},
                    "budget": {"type": "number"},
                    "vegan": {"type": "boolean"},
                    "size": {"enum": ["s", "m", "l"]},
                    "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}},
                    "address": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                        "required": ["city"],
                    },
                },
                "required": ["guests", "address"],
            }
        ),
        wait_for=("feedback",),
    )
    def order(self) -> None:
        return None


class Delivery(Reactor):
    """Waits on a carrier's webhook; payloads that come early are kept."""

    name = "delivery"
    webhook_secret = WEBHOOK_SECRET

    parcel = Input(schema={"type": "string"})

    @interrupt(
        correlation_id=lambda parcel: f"parcel-{parcel}",
        schema={"type": "object", "required": ["delivered"]},
        accept_early=True,
        timeout=3600,
    )
    def carrier(self, parcel: str) -> None:
        return None


class Unsigned(Reactor):
    """A webhook reactor without a secret of its own (the app's secret applies)."""

    name = "unsigned"

    ref = Input(schema={"type": "string"})

    @interrupt(correlation_id=lambda ref: f"ref-{ref}")
    def wait(self, ref: str) -> None:
        return None
