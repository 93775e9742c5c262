"""Reactors whose interrupts time out actively (a worker fires them)."""

from __future__ import annotations

from typing import Any

from reactor import Context, Reactor, interrupt, schemas, step

from . import record, record_undo


class Expiring(Reactor):
    """Three undoable steps, then an approval that fails the run after 1 s."""

    @step
    def a(self, context: Context) -> int:
        return record(context.execution_id, "a")

    @a.undo
    def undo_a(self, context: Context) -> None:
        record_undo(context.execution_id, "a")

    @step
    def b(self, a: int, context: Context) -> int:
        return record(context.execution_id, "b")

    @b.undo
    def undo_b(self, context: Context) -> None:
        record_undo(context.execution_id, "b")

    @step
    def c(self, b: int, context: Context) -> int:
        return record(context.execution_id, "c")

    @c.undo
    def undo_c(self, context: Context) -> None:
        record_undo(context.execution_id, "c")

    approval = interrupt(schema=schemas.confirmation(), timeout=1, strategy="active", wait_for="c")

    @step
    def finish(self, approval: dict[str, Any], context: Context) -> int:
        return record(context.execution_id, "finish")


class Defaulting(Reactor):
    """An approval that, after 1 s, resumes itself as rejected."""

    @step
    def a(self, context: Context) -> int:
        return record(context.execution_id, "a")

    approval = interrupt(
        schema=schemas.confirmation(),
        timeout=1,
        strategy="active",
        on_timeout={"approved": False},
        wait_for="a",
    )

    @step
    def finish(self, approval: dict[str, Any], context: Context) -> str:
        record(context.execution_id, "finish")
        return "approved" if approval["approved"] else "rejected"


class Reminder(Reactor):
    """One undoable step, then a reply that fails the run after 1 s (many at once)."""

    @step
    def book(self, context: Context) -> int:
        return record(context.execution_id, "book")

    @book.undo
    def unbook(self, context: Context) -> None:
        record_undo(context.execution_id, "book")

    reply = interrupt(timeout=1, strategy="active", wait_for="book")
