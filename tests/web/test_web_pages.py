"""Forms generated from schemas, and the HTML pages (served in-process)."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.datastructures import FormData

from reactor import Storage, schemas
from reactor.web import create_app
from reactor.web._forms import build_form, parse_form

from expense_app import Expense, Survey

ClientFactory = Callable[..., httpx.AsyncClient]

NESTED = schemas.form(
    {
        "type": "object",
        "properties": {
            "guests": {"type": "integer", "minimum": 1},
            "budget": {"type": "number"},
            "vegan": {"type": "boolean"},
            "size": {"enum": ["s", "m", "l"]},
            "level": {"enum": [1, 2, 3, 4, 5, 6]},
            "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}},
            "address": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}},
                "required": ["city"],
            },
            "extra": {"type": "array", "items": {"type": "object"}},
        },
        "required": ["guests", "address"],
    }
)


def widgets(schema: dict[str, object], **options: object) -> dict[str, str]:
    return {f.pointer: f.widget for f in build_form(schema, **options).walk()}  # type: ignore[arg-type]


def test_each_schema_kind_gets_its_widgets() -> None:
    confirmation = build_form(schemas.confirmation())
    assert confirmation.decision
    assert {f.pointer: f.widget for f in confirmation.walk()} == {
        "/comment": "textarea",
        "/responded_by": "text",
    }
    # Who answers is known: not asked.
    assert widgets(schemas.confirmation(), principal="ana") == {"/comment": "textarea"}
    assert widgets(schemas.choice(["a", "b"])) == {"/choice": "radio"}
    assert widgets(schemas.choice(["a", "b"], multiple=True)) == {"/choices": "checkboxes"}
    assert widgets(schemas.text()) == {"/text": "textarea"}
    assert widgets(NESTED) == {
        "/guests": "integer",
        "/budget": "number",
        "/vegan": "checkbox",
        "/size": "radio",
        "/level": "select",
        "/tags": "checkboxes",
        "/address": "fieldset",
        "/address/city": "text",
        "/address/zip": "text",
        "/extra": "json",
    }
    assert widgets({"type": "array"}) == {"": "json"}


def test_a_posted_form_becomes_the_payload() -> None:
    data = FormData(
        [
            ("/guests", "4"),
            ("/budget", "12.5"),
            ("/vegan", "true"),
            ("/size", "m"),
            ("/level", "3"),
            ("/tags", "a"),
            ("/tags", "c"),
            ("/address/city", "Lyon"),
            ("/address/zip", ""),
            ("/extra", '[{"x": 1}]'),
        ]
    )
    assert parse_form(NESTED, data) == {
        "guests": 4,
        "budget": 12.5,
        "vegan": True,
        "size": "m",
        "level": 3,
        "tags": ["a", "c"],
        "address": {"city": "Lyon"},
        "extra": [{"x": 1}],
    }
    # Unparseable numbers stay text for the schema to refuse; empty fields are left out.
    assert parse_form(NESTED, FormData([("/guests", "many")])) == {
        "guests": "many",
        "vegan": False,
        "address": {},
    }
    assert parse_form(
        schemas.confirmation(),
        FormData([("/approved", "false"), ("/comment", "")]),
        principal="ana",
    ) == {"approved": False, "responded_by": "ana"}
    assert parse_form(None, FormData([("", '{"a": 1}')])) == {"a": 1}


def test_errors_land_next_to_their_fields() -> None:
    form = build_form(
        NESTED,
        values={"guests": "many", "address": {}},
        errors=[
            {"path": "/guests", "message": "'many' is not of type 'integer'"},
            {"path": "/address", "message": "'city' is a required property"},
            {"path": "/extra/0/x", "message": "bad"},
            {"path": "/", "message": "Additional properties are not allowed ('x' was unexpected)"},
        ],
    )
    errors = {f.pointer: f.errors for f in form.walk() if f.errors}
    assert errors == {
        "/guests": ["'many' is not of type 'integer'"],
        "/address/city": ["This field is required."],
        "/extra": ["bad"],
    }
    assert form.errors == ["Additional properties are not allowed ('x' was unexpected)"]
    assert next(f for f in form.walk() if f.pointer == "/guests").value == "many"
    decision = build_form(
        schemas.confirmation(),
        errors=[{"path": "/", "message": "'approved' is a required property"}],
    )
    assert decision.decision_errors == ["This field is required."]


# ------------------------------------------------------------------ pages


async def test_inbox_lists_pending_requests_with_a_filter(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    expense = await Expense.arun(expense_id="e1", employee="ana", amount=12.5)
    await Survey.arun()
    async with client_for(app, user="viewer") as client:
        inbox = await client.get("/")
        filtered = await client.get("/?reactor=expense")
        anonymous = await client.get("/", headers={"x-user": ""})
    assert inbox.status_code == 200
    assert f'href="/executions/{expense.id}#manager_approval"' in inbox.text
    assert "Expense e1: 12.50 EUR for ana" in inbox.text
    assert "Pick a lunch" in inbox.text
    assert "Pick a lunch" not in filtered.text
    assert '<option value="expense" selected>' in filtered.text
    assert anonymous.status_code == 403


async def test_execution_page_shows_buttons_by_permission(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    expense = await Expense.arun(expense_id="e1", employee="ana", amount=12.5)
    page = f"/executions/{expense.id}"
    async with client_for(app, user="viewer") as client:
        viewer = (await client.get(page)).text
    async with client_for(app, user="manager") as client:
        manager = (await client.get(page)).text
    async with client_for(app, user="admin") as client:
        admin = (await client.get(page)).text
    assert "Approve" not in viewer and "Cancel execution" not in viewer
    assert "Approve" in manager and "Cancel execution" not in manager
    assert "Approve" in admin and "Cancel execution" in admin and "Undo completed" in admin
    # Labels belong to their controls.
    for control in re.findall(r'<(?:input|textarea|select) id="(f\d+)"', admin):
        assert f'for="{control}"' in admin
    assert "hold_budget" in admin and "completed" in admin


async def test_form_errors_then_approval_then_cancel_and_undo_pages(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    first = await Expense.arun(expense_id="e1", employee="ana", amount=12.5)
    second = await Expense.arun(expense_id="e2", employee="bo", amount=3.0)
    third = await Expense.arun(expense_id="e3", employee="cy", amount=3.0)
    async with client_for(app, user="admin") as client:
        action = f"/executions/{first.id}/interrupts/manager_approval"
        invalid = await client.post(action, data={"/approved": "true", "/cost_center": "CC-1"})
        assert invalid.status_code == 422
        assert 'aria-invalid="true"' in invalid.text
        assert re.search(r'id="f\d+-errors"><li>&#39;CC-1&#39; does not match', invalid.text)
        assert 'value="CC-1"' in invalid.text
        approved = await client.post(action, data={"/approved": "true", "/cost_center": "CC-1234"})
        assert approved.status_code == 303
        assert approved.headers["location"] == f"/executions/{first.id}"
        again = await client.post(action, data={"/approved": "true", "/cost_center": "CC-1234"})
        assert again.status_code == 409
        assert "already decided" in again.text
        cancel = await client.post(f"/executions/{second.id}/cancel", data={"reason": "dup"})
        assert cancel.status_code == 303
        undo = await client.post(f"/executions/{third.id}/undo")
        assert undo.status_code == 303
        cancelled = (await client.get(f"/executions/{second.id}")).text
        missing = await client.get("/executions/nope")
    assert (await Expense.afind(first.id)).completed
    assert (await Expense.afind(second.id)).reason == "dup"
    assert (await Expense.afind(third.id)).reason == "undo"
    assert "cancelled" in cancelled and "(dup)" in cancelled
    assert missing.status_code == 404


async def test_mounted_in_fastapi_links_stay_under_the_mount(
    shared: Storage, client_for: ClientFactory
) -> None:
    expense = await Expense.arun(expense_id="e1", employee="ana", amount=12.5)
    outer = FastAPI()

    @outer.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    outer.mount("/reactor", create_app(dev=True, reactors=[Expense]))
    async with client_for(outer) as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        inbox = await client.get("/reactor/")
        assert f'href="/reactor/executions/{expense.id}#manager_approval"' in inbox.text
        assert 'href="/reactor/static/style.css"' in inbox.text
        assert (await client.get("/reactor/static/style.css")).status_code == 200
        posted = await client.post(
            f"/reactor/executions/{expense.id}/interrupts/manager_approval",
            data={"/approved": "true", "/cost_center": "CC-1234"},
        )
        assert posted.headers["location"] == f"/reactor/executions/{expense.id}"
        api = await client.get(f"/reactor/api/executions/{expense.id}")
    assert api.json()["status"] == "completed"


@pytest.mark.parametrize("path", ["/", "/api/interrupts"])
async def test_executions_of_reactors_not_served_are_not_shown(
    path: str, shared: Storage, client_for: ClientFactory
) -> None:
    await Survey.arun()
    async with client_for(create_app(dev=True, reactors=[Expense])) as client:
        response = await client.get(path)
    assert "Pick a lunch" not in response.text
