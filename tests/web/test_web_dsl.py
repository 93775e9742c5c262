"""Breakpoints and operator pauses in the inbox and the API; principals in the trace."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette

from reactor import Storage
from reactor.web import create_app

from conftest import authorize
from expense_app import Expense

pytestmark = pytest.mark.redis

ClientFactory = Callable[..., httpx.AsyncClient]


async def test_a_breakpoint_is_listed_like_an_interrupt_and_resumed_with_a_principal(
    shared: Storage, client_for: ClientFactory
) -> None:
    app: Starlette = create_app(authorize=authorize, reactors=[Expense])
    execution = await Expense.arun(
        expense_id="b1", employee="ana", amount=12.5, breakpoints=["after:hold_budget"]
    )
    assert "after:hold_budget" in [p.step for p in execution.interrupts]
    async with client_for(app, user="admin") as client:
        listed = (await client.get("/api/interrupts")).json()["interrupts"]
        inbox = await client.get("/")
        resumed = await client.post(
            f"/api/executions/{execution.id}/interrupts/after:hold_budget", json=None
        )
        cancelled = await client.post(
            f"/api/executions/{execution.id}/cancel", json={"reason": "test"}
        )
    assert (execution.id, "after:hold_budget", "breakpoint") in [
        (i["execution_id"], i["step"], i["kind"]) for i in listed
    ]
    assert inbox.status_code == 200 and "after:hold_budget" in inbox.text
    assert resumed.status_code == 200, resumed.text
    document = resumed.json()
    assert [i["step"] for i in document["interrupts"]] == ["manager_approval"]
    assert ("resumed", "after:hold_budget", "admin") in [
        (e["event"], e["step"], e["principal"]) for e in document["trace"]
    ]
    assert cancelled.status_code == 200
    assert ("cancelled", "admin") in [
        (e["event"], e["principal"]) for e in cancelled.json()["trace"]
    ]


async def test_a_redacted_input_is_absent_from_the_pages_and_the_api(
    shared: Storage, client_for: ClientFactory
) -> None:
    import dsl_app

    app: Starlette = create_app(authorize=authorize, reactors=[dsl_app.Secretive])
    execution = await dsl_app.Secretive.arun(token=dsl_app.SECRET)
    assert execution.failed
    async with client_for(app, user="admin") as client:
        page = await client.get(f"/executions/{execution.id}")
        document = await client.get(f"/api/executions/{execution.id}")
        listing = await client.get("/api/executions")
    assert page.status_code == document.status_code == listing.status_code == 200
    assert "cannot log out with ***" in page.text
    for text in (page.text, document.text, listing.text):
        assert dsl_app.SECRET not in text
