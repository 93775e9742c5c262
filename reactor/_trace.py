"""An execution's trace as a run keeps and stores it.

Every write stores the whole trace with the rest of the body, so its rows are kept as
JSON text once encoded: a row is encoded once in the life of a process and is parsed
only when somebody looks at the trace (:attr:`reactor.Execution.trace`), not at every
write and read of the execution.

Rows are short, for the same reason (the JSON writer's time grows with the number of
values): times are whole milliseconds since the execution was created, and a step attempt
that completed right after it started -- the common case -- is one row of three values.
:func:`entries` turns rows back into trace entries:

- ``(event, step, time, attempt, principal)``: any event;
- ``(step, started, took)`` or ``(step, started, took, attempt)``: a ``step.started`` and a
  ``step.completed`` entry, ``took`` milliseconds apart (attempt 1 unless given).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

from . import _codec
from ._records import TRACE_LIMIT

__all__ = ["Entry", "Trace", "TraceView", "entries", "epoch_ms", "parse_rows"]

Row = tuple[Any, ...]
Entry = tuple[str, str | None, int, int | None, str | None]
"""``(event, step, time in epoch milliseconds, attempt, principal)``."""


def epoch_ms(seconds: float) -> int:
    """An epoch time in whole milliseconds (the trace's unit)."""
    return int(seconds * 1000)


def parse_rows(text: str) -> list[Row]:
    """The rows of a stored trace text (JSON arrays separated by commas)."""
    return [tuple(row) for row in _codec.parse_tree(f"[{text}]")] if text else []


def entries(rows: Iterable[Row], base: int) -> Iterator[Entry]:
    """The trace entries ``rows`` stand for; ``base``: the execution's creation time
    (:func:`epoch_ms` of it: row times count from it)."""
    for row in rows:
        if len(row) == 5:
            event, step, millis, attempt, principal = row
            yield (event, step, base + millis, attempt, principal)
        else:
            step, started, took = row[:3]
            attempt = row[3] if len(row) == 4 else 1
            yield ("step.started", step, base + started, attempt, None)
            yield ("step.completed", step, base + started + took, attempt, None)


class Trace:
    """Rows read from the store, as their stored text, followed by rows added since.

    Attributes:
        base: The execution's creation time in epoch milliseconds: row times count from it.
        text: The stored rows: JSON arrays separated by commas (``""``: none).
        count: How many rows :attr:`text` holds.
        rows: Rows added since the text was last made (appended to directly on the hot
            path; :meth:`stored` moves them into the text).
    """

    __slots__ = ("base", "count", "rows", "text")

    def __init__(self, created_at: float, text: str = "", count: int = 0) -> None:
        self.base = epoch_ms(created_at)
        self.text = text
        self.count = count
        self.rows: list[Row] = []

    def offset(self, seconds: float) -> int:
        """The row time of epoch time ``seconds``: whole milliseconds since :attr:`base`."""
        return epoch_ms(seconds) - self.base

    def stored(self) -> tuple[str, int]:
        """The text and the row count to store: the newest rows, at most twice
        ``TRACE_LIMIT`` (trimmed back to ``TRACE_LIMIT`` when there are more)."""
        rows = self.rows
        if rows:
            new = _codec.dump_tree(rows)[1:-1]
            self.text = f"{self.text},{new}" if self.text else new
            self.count += len(rows)
            rows.clear()
            if self.count > 2 * TRACE_LIMIT:
                kept = parse_rows(self.text)[-TRACE_LIMIT:]
                self.text, self.count = _codec.dump_tree(kept)[1:-1], len(kept)
        return self.text, self.count

    def trim(self) -> None:
        """Keep the newest ``TRACE_LIMIT`` rows (for a run that adds many between writes)."""
        if len(self.rows) > TRACE_LIMIT:
            del self.rows[:-TRACE_LIMIT]
            self.text, self.count = "", 0

    def all(self) -> list[Row]:
        """Every row, oldest first."""
        return [*parse_rows(self.text), *self.rows]

    def view(self) -> TraceView:
        """The entries as they are now, made when read (for :class:`reactor.Execution`)."""
        return TraceView(self.base, self.text, tuple(self.rows))


class TraceView(Sequence[Entry]):
    """The entries of a trace at one moment, parsed on first use."""

    __slots__ = ("_added", "_base", "_entries", "_text")

    def __init__(self, base: int, text: str, added: tuple[Row, ...]) -> None:
        self._base = base
        self._text = text
        self._added = added
        self._entries: list[Entry] | None = None

    def _made(self) -> list[Entry]:
        if self._entries is None:
            rows = [*parse_rows(self._text), *self._added]
            self._entries = list(entries(rows, self._base))
        return self._entries

    @overload
    def __getitem__(self, index: int) -> Entry: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Entry]: ...
    def __getitem__(self, index: int | slice) -> Entry | Sequence[Entry]:
        return self._made()[index]

    def __len__(self) -> int:
        return len(self._made())

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._made())
