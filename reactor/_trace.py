"""An execution's trace as a run keeps and stores it.

Every write stores the whole trace with the rest of the body, so its rows are kept as
JSON text once encoded: a row is encoded once in the life of a process and is parsed
only when somebody looks at the trace (:attr:`reactor.Execution.trace`), not at every
write and read of the execution. The rows are those of
:func:`reactor._records.trace_entries`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, overload

from . import _codec
from ._records import TRACE_LIMIT

__all__ = ["Trace", "TraceView", "parse_rows"]

Row = tuple[Any, ...]


def parse_rows(text: str) -> list[Row]:
    """The rows of a stored trace text (JSON arrays separated by commas)."""
    return [tuple(row) for row in json.loads(f"[{text}]")] if text else []


class Trace:
    """Rows read from the store, as their stored text, followed by rows added since.

    Attributes:
        text: The stored rows: JSON arrays separated by commas (``""``: none).
        count: How many rows :attr:`text` holds.
        rows: Rows added since the text was last made (appended to directly on the hot
            path; :meth:`stored` moves them into the text).
    """

    __slots__ = ("count", "rows", "text")

    def __init__(self, text: str = "", count: int = 0) -> None:
        self.text = text
        self.count = count
        self.rows: list[Row] = []

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
        """The rows as they are now, parsed when read (for :class:`reactor.Execution`)."""
        return TraceView(self.text, tuple(self.rows))


class TraceView(Sequence[Row]):
    """The rows of a trace at one moment, parsed on first use."""

    __slots__ = ("_added", "_rows", "_text")

    def __init__(self, text: str, added: tuple[Row, ...]) -> None:
        self._text = text
        self._added = added
        self._rows: list[Row] | None = None

    def _parsed(self) -> list[Row]:
        if self._rows is None:
            self._rows = [*parse_rows(self._text), *self._added]
        return self._rows

    @overload
    def __getitem__(self, index: int) -> Row: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Row]: ...
    def __getitem__(self, index: int | slice) -> Row | Sequence[Row]:
        return self._parsed()[index]

    def __len__(self) -> int:
        return len(self._parsed())

    def __iter__(self) -> Iterator[Row]:
        return iter(self._parsed())
