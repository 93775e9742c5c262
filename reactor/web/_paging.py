"""One page of stored executions, newest first, with an opaque cursor.

Uses ``Storage.list_page`` where the storage has it. Storages without it (the fallback,
to be removed once every storage has ``list_page``) are paged with ``Storage.list``: the
cursor is then an offset, and a page reads ``offset + limit`` index entries -- bounded by
how far a client pages, never the whole keyspace.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from reactor import Status
from reactor.storage import Storage, StoredExecution

__all__ = ["BadCursor", "list_page"]

_MAX_OFFSET = 10_000
"""Deepest the fallback pages: a crafted cursor must not make one request read a huge index."""


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
        BadCursor: the cursor is not one this function returned.
    """
    native: Any = getattr(storage, "list_page", None)
    if native is not None:
        try:
            page: tuple[list[StoredExecution], str | None] = await native(
                status=status, reactor=reactor, limit=limit, cursor=cursor
            )
        except ValueError as exc:
            raise BadCursor(str(exc)) from exc
        return page
    offset = _offset(cursor)
    # One more than the page tells whether a next page exists.
    found = await storage.list(status=status, reactor=reactor, limit=offset + limit + 1)
    page_items = found[offset : offset + limit]
    more = len(found) > offset + limit
    return page_items, _cursor(offset + limit) if more else None


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o{offset}".encode()).decode().rstrip("=")


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor(f"invalid cursor {cursor!r}") from None
    if not (text.startswith("o") and text[1:].isdigit()):
        raise BadCursor(f"invalid cursor {cursor!r}")
    offset = int(text[1:])
    if offset > _MAX_OFFSET:
        raise BadCursor(f"cannot page deeper than {_MAX_OFFSET} executions; filter instead")
    return offset
