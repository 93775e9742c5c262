"""Reactors for the tests of guards, output schemas, redaction, breakpoints, edits,
operator pauses and compose retries (importable by subprocesses too)."""

from __future__ import annotations

import time
from typing import Any

from reactor import Input, Reactor, compose, interrupt, map_, result, step

CALLS: list[str] = []
SECRET = "s3cr3t-T0KEN-4711"


class Guarded(Reactor):
    name = "dsl.Guarded"
    amount = Input(schema={"type": "number"})

    @step
    def reserve(self, amount: float) -> float:
        CALLS.append("reserve")
        return amount

    @reserve.undo
    def release(self) -> None:
        CALLS.append("undo reserve")

    @step(when=lambda amount: amount > 100, default="no review")
    def review(self, reserve: float) -> str:
        CALLS.append("review")
        return "reviewed"

    @review.undo
    def unreview(self) -> None:
        CALLS.append("undo review")

    @step
    def charge(self, review: str, amount: float) -> str:
        CALLS.append("charge")
        if amount < 0:
            raise ValueError("negative amount")
        return f"charged {amount} ({review})"


class Validated(Reactor):
    name = "dsl.Validated"
    bad = Input(default=False)

    @step
    def first(self) -> int:
        CALLS.append("first")
        return 1

    @first.undo
    def unfirst(self) -> None:
        CALLS.append("undo first")

    @step(
        retries=3,
        output_schema={"type": "object", "required": ["total"], "properties": {"total": {}}},
    )
    def quote(self, first: int, bad: bool) -> dict[str, Any]:
        CALLS.append("quote")
        return {"oops": 1} if bad else {"total": 10}

    @quote.undo
    def unquote(self) -> None:
        CALLS.append("undo quote")

    @step
    def last(self, quote: dict[str, Any]) -> int:
        return int(quote["total"]) * 2


class Secretive(Reactor):
    name = "dsl.Secretive"
    token = Input(schema={"type": "string", "minLength": 3}, redact=True)
    user = Input(default="ann")

    @step
    def login(self, token: str, user: str) -> str:
        CALLS.append(f"login {token == SECRET}")
        return user

    @login.undo
    def logout(self, token: str) -> None:
        raise RuntimeError(f"cannot log out with {token}")

    @step
    def fetch(self, login: str, token: str) -> str:
        raise PermissionError(f"token {token} was refused for {login}")


class Payment(Reactor):
    name = "dsl.Payment"
    amount = Input()
    breakpoints = ["after:authorize"]

    @step
    def authorize(self, amount: float) -> float:
        CALLS.append("authorize")
        return amount

    @step
    def charge(self, authorize: float) -> str:
        CALLS.append("charge")
        return f"charged {authorize}"


class Order(Reactor):
    name = "dsl.Order"

    @step
    def reserve(self) -> int:
        CALLS.append("reserve")
        return 5

    payment = compose(Payment, inputs={"amount": result("reserve")})

    @step
    def ship(self, payment: str) -> str:
        CALLS.append("ship")
        return f"shipped after {payment}"


class Pick(Reactor):
    name = "dsl.Pick"
    line = Input()

    @step
    def pick(self, line: int) -> int:
        CALLS.append(f"pick {line}")
        return line * 10


class Lines(Reactor):
    name = "dsl.Lines"
    lines = Input()

    picked = map_(Pick, over="lines", item="line")


class Edited(Reactor):
    name = "dsl.Edited"

    @step(output_schema={"type": "integer", "minimum": 0})
    def price(self) -> int:
        return 10

    @interrupt()
    def approval(self, price: int) -> dict[str, int]:
        return {"price": price}

    @step
    def invoice(self, price: int, approval: Any) -> str:
        return f"invoice {price}"


class Flaky(Reactor):
    name = "dsl.Flaky"
    fail_times = Input(default=1)

    @step
    def book(self, fail_times: int) -> int:
        CALLS.append("book")
        return fail_times

    @book.undo
    def unbook(self) -> None:
        CALLS.append("undo book")

    @step
    def confirm(self, book: int) -> str:
        attempt = CALLS.count("book")
        CALLS.append("confirm")
        if attempt <= book:
            raise ConnectionError(f"attempt {attempt} refused")
        return f"confirmed on attempt {attempt}"

    @confirm.compensate
    def confirm_failed(self) -> None:
        CALLS.append("compensate confirm")


class Trip(Reactor):
    name = "dsl.Trip"
    fail_times = Input(default=1)

    @step
    def plan(self) -> str:
        CALLS.append("plan")
        return "plan"

    @plan.undo
    def unplan(self) -> None:
        CALLS.append("undo plan")

    booking = compose(Flaky, inputs={"fail_times": "fail_times"}, retries=2)


def _nap(self: Reactor) -> int:
    time.sleep(0.3)
    return 1


class Slow(Reactor):
    """Ten steps of 0.3 s each: long enough to be suspended from another process."""

    name = "dsl.Slow"

    s0 = step(_nap)
    s1 = step(wait_for="s0")(_nap)
    s2 = step(wait_for="s1")(_nap)
    s3 = step(wait_for="s2")(_nap)
    s4 = step(wait_for="s3")(_nap)
    s5 = step(wait_for="s4")(_nap)
    s6 = step(wait_for="s5")(_nap)
    s7 = step(wait_for="s6")(_nap)
    s8 = step(wait_for="s7")(_nap)
    s9 = step(wait_for="s8")(_nap)


class Approval(Reactor):
    """A step, an interrupt, a retried step: for the OpenTelemetry span tree."""

    name = "dsl.Approval"

    @step(retries=1)
    def prepare(self) -> int:
        CALLS.append("prepare")
        if CALLS.count("prepare") == 1:
            raise ConnectionError("first attempt fails")
        return 1

    @prepare.undo
    def unprepare(self) -> None:
        CALLS.append("undo prepare")

    @interrupt()
    def approve(self, prepare: int) -> dict[str, int]:
        return {"prepare": prepare}

    @step
    def finish(self, approve: Any) -> str:
        return "done"
