"""One page of stored executions, newest first, with the storage's opaque cursor."""

from __future__ import annotations

from reactor import Status
from reactor.storage import Storage, StoredExecution

__all__ = ["BadCursor", "list_page"]


class BadCursor(ValueError):
    """The cursor was not made by this storage's paging."""


async def list_page(
    storage: Storage,
    *,
    status: Status | None = None,
    reactor: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> tuple[list[StoredExecution], str | None]:
    """Up to ``limit`` executions after ``cursor``, and the cursor of the next page.

    Returns:
        ``(executions, next_cursor)``; ``next_cursor`` is ``None`` on the last page.

    Raises:
        BadCursor: the cursor is not one the storage returned.
    """
    try:
        return await storage.list_page(status=status, reactor=reactor, limit=limit, cursor=cursor)
    except ValueError as exc:
        raise BadCursor(str(exc)) from exc
