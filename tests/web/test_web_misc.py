"""The paging adapter, trace rendering and ``reactor serve``'s refusals."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from reactor import MemoryStorage, Status
from reactor.cli import main
from reactor.storage import StoredExecution
from reactor.web._documents import trace_entries
from reactor.web._paging import BadCursor, list_page


def stored(number: int) -> StoredExecution:
    return StoredExecution(id=f"x{number}", reactor="r", status=Status.PAUSED, version=0, body="{}")


async def test_paging_uses_list_page_where_the_storage_has_it() -> None:
    calls: list[dict[str, Any]] = []

    class Paged(MemoryStorage):
        async def list_page(self, **options: Any) -> tuple[list[StoredExecution], str | None]:
            calls.append(options)
            if options["cursor"] == "bad":
                raise ValueError("bad cursor")
            return [stored(1)], "next"

    storage = Paged()
    assert await list_page(storage, status=Status.PAUSED, limit=5, cursor="c") == (
        [stored(1)],
        "next",
    )
    assert calls == [{"status": Status.PAUSED, "reactor": None, "limit": 5, "cursor": "c"}]
    with pytest.raises(BadCursor):
        await list_page(storage, cursor="bad")


def test_serve_refuses_dev_mode_off_localhost(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--dev", "--host", "0.0.0.0", "--redis", "redis://127.0.0.1:1/0"]) == 2
    assert "only on localhost" in capsys.readouterr().err


def test_trace_entries_are_read_from_the_execution_when_the_engine_keeps_them() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    execution: Any = SimpleNamespace(
        trace=[
            {"event": "step.completed", "step": "hold", "time": when, "attempt": 1},
            SimpleNamespace(
                event="resumed", step="approval", time=when, attempt=1, principal="mia"
            ),
        ]
    )
    assert trace_entries(execution) == [
        {
            "event": "step.completed",
            "step": "hold",
            "time": "2026-01-02T03:04:05+00:00",
            "attempt": 1,
            "principal": None,
        },
        {
            "event": "resumed",
            "step": "approval",
            "time": "2026-01-02T03:04:05+00:00",
            "attempt": 1,
            "principal": "mia",
        },
    ]
    assert trace_entries(SimpleNamespace()) == []  # type: ignore[arg-type]
