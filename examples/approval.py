"""Human approval: an expense waits for a manager's yes or no.

``Expense`` books a provisional hold on the team budget, then pauses at the
``manager_approval`` interrupt (payload schema: ``schemas.confirmation()``). The script
plays both the app that shows the request to the manager and the manager's answers:

1. An expense that is approved: the pending request is shown, a malformed answer is
   refused by a *flexible* resume (the execution stays paused, nothing is counted), then
   the approval completes it and the hold becomes a payment.
2. An expense that is rejected: ``reimburse`` refuses to pay, which fails the run, so the
   budget hold is undone.

Runs on Redis when ``REACTOR_REDIS_URL`` is set (as ``examples/demo.py`` does), else on
the in-process memory store::

    python examples/approval.py
    REACTOR_REDIS_URL=redis://127.0.0.1:6390/0 python examples/approval.py
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from typing import Any

from reactor import Execution, Input, Reactor, interrupt, schemas, step


class ExpenseRejected(Exception):
    """The manager said no."""


@dataclasses.dataclass(frozen=True)
class Decision:
    """A ``schemas.confirmation()`` payload, as ``reimburse`` receives it."""

    approved: bool
    comment: str | None = None
    responded_by: str | None = None


class Expense(Reactor):
    """Hold budget, ask the manager, then reimburse (or release the hold)."""

    # Run as a script, the class would be "__main__.Expense", a name no worker or
    # `reactor resume --app approval` could find (reactor warns): pin the module's name.
    name = "approval.Expense"
    expense_id = Input(schema={"type": "string"})
    employee = Input(schema={"type": "string"})
    amount = Input(schema={"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$"})
    purpose = Input(schema={"type": "string"})

    @step
    def hold_budget(self, employee: str, amount: str) -> str:
        hold = f"hold-{secrets.token_hex(3)}"
        print(f"    [budget] provisional hold {hold}: {amount} EUR for {employee}")
        return hold

    @hold_budget.undo
    def release_hold(self, result: str, amount: str) -> None:
        print(f"    [budget] undo: released hold {result} ({amount} EUR back in the budget)")

    @interrupt(
        schema=schemas.confirmation(),
        correlation_id=lambda expense_id: f"expense-{expense_id}",
        timeout=3 * 24 * 3600,  # three days to answer; a late answer fails and undoes
    )
    def manager_approval(
        self, employee: str, amount: str, purpose: str, hold_budget: str
    ) -> dict[str, Any]:
        return {
            "title": "Expense approval",
            "question": f"Reimburse {employee} {amount} EUR for {purpose}?",
            "hold": hold_budget,
        }

    @step
    def reimburse(
        self, manager_approval: Decision, employee: str, amount: str, hold_budget: str
    ) -> str:
        who = manager_approval.responded_by or "the manager"
        if not manager_approval.approved:
            raise ExpenseRejected(f"{who}: {manager_approval.comment or 'no reason given'}")
        payment = f"pay-{hold_budget.removeprefix('hold-')}"
        print(f"    [payroll] {amount} EUR to {employee} ({payment}), approved by {who}")
        return payment

    @reimburse.compensate
    def tell_employee(self, error: Exception, employee: str) -> None:
        print(f"    [mail] to {employee}: your expense was rejected ({error})")


def show_pending(ex: Execution) -> None:
    """What an approval inbox would show for a paused expense."""
    for pending in ex.interrupts:
        print(f"    step:           {pending.step}")
        print(f"    correlation id: {pending.correlation_id}")
        print(f"    request:        {pending.request['question']} (hold {pending.request['hold']})")
        required = ", ".join((pending.schema or {}).get("required", []))
        print(f"    answer schema:  confirmation, required: {required}")
        if pending.deadline is not None:
            print(f"    deadline:       {pending.deadline:%Y-%m-%d %H:%M} UTC")
        print(f"    attempts left:  {pending.attempts_left}")


def approved_expense() -> None:
    ref = f"E{secrets.randbelow(10_000):04d}"
    print(f"1) expense {ref}: Ana asks for 86.40 EUR (train tickets)")
    ex = Expense.run(expense_id=ref, employee="ana", amount="86.40", purpose="train tickets")
    print(f"  -> {ex.status.value}, waiting for the manager:")
    show_pending(ex)

    handle = Expense.find(ex.id)  # e.g. in the web request that carries the manager's answer
    bad = {"approved": "yes please", "signature": "M."}
    print(f"  manager's form posts {bad}")
    again = handle.resume(bad)
    print(f"  -> still {again.status.value}; validation errors, shown next to the form:")
    for error in again.validation_errors:
        print(f"    {error['path']}: {error['message']}")
    left = Expense.find(ex.id).interrupts[0].attempts_left
    print(f"    (a flexible resume counts no attempt: attempts left still {left})")

    answer = {"approved": True, "comment": "ok", "responded_by": "maria"}
    print(f"  manager's form posts {answer}")
    done = handle.resume(answer)
    print(f"  -> {done.status.value}: result {done.result}\n")


def rejected_expense() -> None:
    ref = f"E{secrets.randbelow(10_000):04d}"
    print(f"2) expense {ref}: Bruno asks for 1290.00 EUR (a standing desk)")
    ex = Expense.run(expense_id=ref, employee="bruno", amount="1290.00", purpose="a standing desk")
    print(f"  -> {ex.status.value} at {ex.interrupts[0].step}")
    answer = {"approved": False, "comment": "over the team budget", "responded_by": "maria"}
    print(f"  manager answers through expense-{ref}: {answer}")
    done = Expense.resume_by_correlation_id(f"expense-{ref}", answer)
    assert done.error is not None
    print(f"  -> {done.status.value} at step {done.error.step!r}: {done.error.message}")
    print(f"     hold undone; rollback problems: {done.error.rollback_failures or 'none'}")


def main() -> None:
    url = os.environ.get("REACTOR_REDIS_URL")
    print(f"(storage: {'Redis at ' + url if url else 'in-process memory'})\n")
    approved_expense()
    rejected_expense()


if __name__ == "__main__":
    main()
