"""A FastAPI app with the interrupt inbox mounted at ``/reactor``, next to its own routes.

Employees file expenses; each runs the ``Expense`` reactor: a budget hold (undone if the
expense is rejected), a manager's approval (``schemas.confirmation()``), then the booking.
Managers answer in the inbox at ``/reactor/``, or through the signed link the home page
shows for each expense (what you would e-mail to someone without an account).

Run it (Redis when ``REACTOR_REDIS_URL`` is set, else in memory)::

    python examples/web_app.py          # then open http://127.0.0.1:8000/
    uvicorn examples.web_app:app        # the same, with uvicorn's options

``/as/NAME`` switches the demo user: ``mia`` is a manager, anyone else may only look.
"""

from __future__ import annotations

import html
import os
import secrets
from typing import Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.requests import Request as StarletteRequest

from reactor import (
    Execution,
    Input,
    MemoryStorage,
    Reactor,
    RedisStorage,
    configure,
    interrupt,
    schemas,
    step,
)
from reactor.web import create_app, resume_link

SECRET = os.environ.get("REACTOR_WEB_SECRET") or secrets.token_hex(16)
MANAGERS = {"mia"}
BUDGET: dict[str, str] = {}
"""Budget holds by expense id: ``"held"``, ``"released"`` or ``"booked"`` (a real app: a DB)."""


class ExpenseRejected(Exception):
    """The manager said no."""


class Expense(Reactor):
    """Hold budget, ask the manager, then book (or release the hold)."""

    name = "demo.expense"

    expense_id = Input(schema={"type": "string"})
    employee = Input(schema={"type": "string"})
    amount = Input(schema={"type": "number", "exclusiveMinimum": 0})
    purpose = Input(schema={"type": "string"})

    @step
    def hold_budget(self, expense_id: str) -> str:
        BUDGET[expense_id] = "held"
        return f"hold-{expense_id}"

    @hold_budget.undo
    def release_hold(self, expense_id: str) -> None:
        BUDGET[expense_id] = "released"

    @interrupt(schema=schemas.confirmation(), timeout=3 * 24 * 3600)
    def manager_approval(
        self, expense_id: str, employee: str, amount: float, purpose: str
    ) -> dict[str, Any]:
        return {
            "title": f"{employee}: {amount:.2f} EUR for {purpose}",
            "expense": expense_id,
            "employee": employee,
            "amount": amount,
            "purpose": purpose,
        }

    @step
    def book(self, expense_id: str, manager_approval: dict[str, Any]) -> str:
        if not manager_approval["approved"]:
            raise ExpenseRejected(manager_approval.get("comment") or "rejected by the manager")
        BUDGET[expense_id] = "booked"
        return f"booking-{expense_id}"


def authorize(request: StarletteRequest, action: str, execution: Execution | None) -> str | None:
    """Everyone may look; managers may answer, cancel and undo. Plug your login in here."""
    user = request.cookies.get("user", "mia")
    if action == "view" or user in MANAGERS:
        return user
    return None


# The inbox lists executions from the configured storage: the one the reactors use.
url = os.environ.get("REACTOR_REDIS_URL")
configure(storage=RedisStorage.from_url(url) if url else MemoryStorage())

app = FastAPI(title="Expenses")
app.mount("/reactor", create_app(authorize=authorize, secret=SECRET, reactors=[Expense]))
filed: list[str] = []


@app.get("/", response_class=HTMLResponse)
async def home(request: Request) -> str:
    rows = []
    for execution_id in reversed(filed):
        execution = await Expense.afind(execution_id)
        expense_id = execution.results.get("hold_budget", "").removeprefix("hold-")
        link = ""
        if execution.paused:
            url = resume_link(
                execution_id,
                "manager_approval",
                secret=SECRET,
                base_url=str(request.base_url) + "reactor",
            )
            link = f' · <a href="{html.escape(url)}">signed link for the manager</a>'
        rows.append(
            f'<li><a href="/reactor/executions/{execution_id}">{expense_id}</a> '
            f"{execution.status.value} · budget {BUDGET.get(expense_id, '-')}{link}</li>"
        )
    user = html.escape(request.cookies.get("user", "mia"))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Expenses</title>
<link rel="stylesheet" href="/reactor/static/style.css"></head><body><main>
<h1>Expenses</h1><p>Signed in as {user}. <a href="/reactor/">Open the inbox</a></p>
<form method="post" action="/expenses">
<p><label for="employee">Employee</label><input id="employee" name="employee" required></p>
<p><label for="amount">Amount (EUR)</label>
<input id="amount" name="amount" type="number" step="0.01" required></p>
<p><label for="purpose">Purpose</label><input id="purpose" name="purpose" required></p>
<button type="submit">File expense</button></form>
<h2>Filed</h2><ul>{"".join(rows) or "<li>none yet</li>"}</ul></main></body></html>"""


@app.post("/expenses")
async def file_expense(
    employee: str = Form(), amount: float = Form(), purpose: str = Form()
) -> RedirectResponse:
    expense_id = f"exp-{secrets.token_hex(3)}"
    execution = await Expense.arun(
        expense_id=expense_id, employee=employee, amount=amount, purpose=purpose
    )
    filed.append(execution.id)
    return RedirectResponse("/", status_code=303)


@app.get("/as/{user}")
async def switch_user(user: str) -> RedirectResponse:
    response = RedirectResponse("/", status_code=303)
    response.set_cookie("user", user, httponly=True, samesite="lax")
    return response


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=8000)
