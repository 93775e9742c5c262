"""The JSON API and webhook ingress of ``reactor.web`` against real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
from starlette.applications import Starlette

from reactor import Storage, configure
from reactor.web import SIGNATURE_HEADER, create_app, resume_link, sign_webhook

import expense_app
from expense_app import APP_SECRET as SECRET
from expense_app import Delivery, Expense, Survey, Unsigned

pytestmark = pytest.mark.redis

ClientFactory = Callable[..., httpx.AsyncClient]

APPROVE = {"approved": True, "cost_center": "CC-1234"}


async def expense(number: int = 1) -> str:
    execution = await Expense.arun(expense_id=f"e{number}", employee="ana", amount=12.5)
    assert execution.paused
    return execution.id


def holds(redis_url: str) -> dict[str, str]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return client.hgetall(expense_app.HOLDS)


def resume_url(execution_id: str, step: str = "manager_approval") -> str:
    return f"/api/executions/{execution_id}/interrupts/{step}"


# ------------------------------------------------------------------ authorization


async def test_without_authorize_every_call_is_refused(
    shared: Storage, client_for: ClientFactory
) -> None:
    execution_id = await expense()
    app = create_app()
    calls = [
        ("GET", "/"),
        ("GET", "/api/interrupts"),
        ("GET", "/api/executions"),
        ("GET", f"/api/executions/{execution_id}"),
        ("GET", "/api/reactors"),
        ("POST", resume_url(execution_id)),
        ("POST", f"/api/executions/{execution_id}/cancel"),
        ("POST", f"/api/executions/{execution_id}/undo"),
        ("POST", "/hooks/expense/expense-e1"),
    ]
    async with client_for(app) as client:
        for method, url in calls:
            response = await client.request(method, url, json=APPROVE)
            assert response.status_code == 401, (method, url, response.text)
    # dev mode answers localhost only.
    async with client_for(create_app(dev=True), client=("10.1.2.3", 5000)) as remote:
        assert (await remote.get("/api/interrupts")).status_code == 401
    async with client_for(create_app(dev=True), user=None) as local:
        assert (await local.get("/api/interrupts")).status_code == 200
        assert (await local.post(resume_url(execution_id), json=APPROVE)).status_code == 200


async def test_each_action_is_denied_without_its_permission(
    app: Starlette, shared: Storage, client_for: ClientFactory, redis_url: str
) -> None:
    execution_id = await expense()
    denied = [
        (None, "GET", f"/api/executions/{execution_id}", "view"),
        (None, "GET", "/api/interrupts", "view"),
        ("viewer", "POST", resume_url(execution_id), "resolve"),
        ("manager", "POST", f"/api/executions/{execution_id}/cancel", "cancel"),
        ("ops", "POST", f"/api/executions/{execution_id}/undo", "administer"),
    ]
    for user, method, url, action in denied:
        async with client_for(app, user=user) as client:
            response = await client.request(method, url, json=APPROVE)
        assert response.status_code == 403, (user, url)
        assert response.json() == {"error": "forbidden", "message": f"not allowed to {action}"}
    # Nothing changed.
    async with client_for(app, user="viewer") as client:
        document = (await client.get(f"/api/executions/{execution_id}")).json()
    assert document["status"] == "paused"
    assert holds(redis_url) == {"e1": "held"}


async def test_a_sync_authorize_is_called_with_action_and_execution(
    shared: Storage, client_for: ClientFactory
) -> None:
    execution_id = await expense()
    seen: list[tuple[str, str | None]] = []

    def authorize(request: Any, action: str, execution: Any) -> str | None:
        seen.append((action, execution.id if execution else None))
        return "ana"

    async with client_for(create_app(authorize=authorize)) as client:
        assert (await client.get(f"/api/executions/{execution_id}")).status_code == 200
        assert (await client.get("/api/interrupts")).status_code == 200
    assert seen == [("view", execution_id), ("view", None), ("view", execution_id)]


async def test_listings_leave_out_what_authorize_refuses(
    shared: Storage, client_for: ClientFactory
) -> None:
    mine, theirs = await expense(1), await expense(2)

    def authorize(request: Any, action: str, execution: Any) -> str | None:
        return None if execution is not None and execution.id == theirs else "ana"

    async with client_for(create_app(authorize=authorize)) as client:
        interrupts = (await client.get("/api/interrupts")).json()["interrupts"]
        executions = (await client.get("/api/executions")).json()["executions"]
        refused = await client.get(f"/api/executions/{theirs}")
    assert [i["execution_id"] for i in interrupts] == [mine]
    assert [e["id"] for e in executions] == [mine]
    assert refused.status_code == 403


async def test_a_cross_origin_post_is_refused(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    execution_id = await expense()
    async with client_for(app) as client:
        response = await client.post(
            resume_url(execution_id), json=APPROVE, headers={"origin": "https://evil.example"}
        )
    assert response.status_code == 403


# ------------------------------------------------------------------ reading


async def test_interrupts_lists_pending_interrupts_filtered_by_reactor(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    first, second = await expense(1), await expense(2)
    survey = await Survey.arun()
    async with client_for(app, user="viewer") as client:
        every = (await client.get("/api/interrupts")).json()
        only = (await client.get("/api/interrupts?reactor=expense")).json()
        unknown = await client.get("/api/interrupts?reactor=nope")
    assert [(i["reactor"], i["execution_id"], i["step"]) for i in every["interrupts"]] == [
        ("survey", survey.id, "pick"),
        ("expense", second, "manager_approval"),
        ("expense", first, "manager_approval"),
    ]
    assert every["next_cursor"] is None
    item = only["interrupts"][0]
    assert item["request"]["title"] == "Expense e2: 12.50 EUR for ana"
    assert item["schema"]["required"] == ["approved", "cost_center"]
    assert item["correlation_id"] == "expense-e2"
    assert item["attempts_left"] == 3
    assert item["deadline"] is None
    assert len(only["interrupts"]) == 2
    assert unknown.status_code == 404


async def test_executions_are_paged_with_a_cursor_and_filtered(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    ids = [await expense(n) for n in range(5)]
    await Expense.acancel(ids[0], reason="typo")
    seen: list[str] = []
    async with client_for(app, user="viewer") as client:
        url = "/api/executions?limit=2"
        while True:
            page = (await client.get(url)).json()
            assert len(page["executions"]) <= 2
            seen += [e["id"] for e in page["executions"]]
            if page["next_cursor"] is None:
                break
            url = f"/api/executions?limit=2&cursor={page['next_cursor']}"
        cancelled = (await client.get("/api/executions?status=cancelled")).json()
        paused = (await client.get("/api/executions?status=paused&reactor=expense")).json()
        assert (await client.get("/api/executions?status=nope")).status_code == 400
        assert (await client.get("/api/executions?cursor=!!")).status_code == 400
        assert (await client.get("/api/executions?limit=0")).status_code == 400
    assert seen == ids[::-1]
    assert [(e["id"], e["status"], e["reason"]) for e in cancelled["executions"]] == [
        (ids[0], "cancelled", "typo")
    ]
    assert [e["id"] for e in paused["executions"]] == ids[:0:-1]
    assert paused["executions"][0]["interrupts"] == ["manager_approval"]


async def test_execution_document_and_unknown_ids(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    execution_id = await expense()
    async with client_for(app, user="viewer") as client:
        document = (await client.get(f"/api/executions/{execution_id}")).json()
        missing = await client.get("/api/executions/nope")
        missing_resume = await client.post(resume_url("nope"), json=APPROVE)
    assert document["id"] == execution_id
    assert document["reactor"] == "expense"
    assert document["status"] == "paused"
    assert document["results"] == {"hold_budget": "hold-e1"}
    assert document["interrupts"][0]["step"] == "manager_approval"
    assert document["error"] is None
    assert [(e["event"], e["step"]) for e in document["trace"]] == [
        ("step.started", "hold_budget"),
        ("step.completed", "hold_budget"),
        ("paused", None),
    ]
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
    assert missing_resume.status_code == 404


async def test_reactors_lists_graphs_and_interrupt_schemas(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    async with client_for(app, user="viewer") as client:
        reactors = (await client.get("/api/reactors")).json()["reactors"]
    assert [r["name"] for r in reactors] == ["delivery", "expense", "survey", "unsigned"]
    expense_doc = reactors[1]
    assert expense_doc["graph"].startswith("flowchart TD")
    assert "manager_approval" in expense_doc["graph"]
    [approval] = expense_doc["interrupts"]
    assert approval["step"] == "manager_approval"
    assert approval["schema"]["properties"]["cost_center"]["pattern"] == "^CC-[0-9]{4}$"
    assert approval["max_attempts"] == 3
    assert [i["step"] for i in reactors[2]["interrupts"]] == ["pick", "days", "feedback", "order"]


# ------------------------------------------------------------------ resuming


async def test_flexible_resume_answers_422_with_field_errors_then_200(
    app: Starlette, shared: Storage, client_for: ClientFactory, redis_url: str
) -> None:
    execution_id = await expense()
    async with client_for(app, user="manager") as client:
        invalid = await client.post(resume_url(execution_id), json={"approved": True})
        after_invalid = (await client.get(f"/api/executions/{execution_id}")).json()
        valid = await client.post(resume_url(execution_id), json=APPROVE)
        again = await client.post(resume_url(execution_id), json=APPROVE)
        not_json = await client.post(resume_url(execution_id), content=b"{nope")
    assert invalid.status_code == 422
    assert invalid.json()["errors"] == [
        {"path": "/", "message": "'cost_center' is a required property"}
    ]
    # A flexible resume counts no attempt.
    assert after_invalid["interrupts"][0]["attempts_left"] == 3
    assert valid.status_code == 200
    assert valid.json()["status"] == "completed"
    assert valid.json()["result"] == "booked-hold-e1"
    assert again.status_code == 409
    assert again.json()["error"] in ("not_paused", "already_resumed")
    assert not_json.status_code == 400
    assert holds(redis_url) == {"e1": "held"}


async def test_strict_resume_counts_attempts(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    execution_id = await expense()
    async with client_for(app, user="manager") as client:
        url = resume_url(execution_id) + "?strict=true"
        first = await client.post(url, json={"approved": "yes"})
        assert first.status_code == 422
        assert first.json()["attempts_left"] == 2
        assert "/approved" in [e["path"] for e in first.json()["errors"]]
        await client.post(url, json={})
        last = await client.post(url, json={})
        assert last.json()["attempts_left"] == 0
        gone = await client.post(url, json=APPROVE)
    assert gone.status_code == 409
    assert gone.json()["error"] == "not_paused"
    document = (await Expense.afind(execution_id)).reason
    assert document == "max_attempts"


async def test_resume_of_a_step_that_is_not_pending_is_409(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    execution_id = await expense()
    async with client_for(app, user="manager") as client:
        response = await client.post(resume_url(execution_id, "book"), json=APPROVE)
    assert response.status_code == 409
    assert response.json()["pending"] == ["manager_approval"]


@pytest.fixture
def clock() -> Any:
    offset = [0.0]
    configure(clock=lambda: time.time() + offset[0])
    yield offset
    configure(clock=time.time)


async def test_resume_after_the_deadline_is_410(
    app: Starlette, shared: Storage, client_for: ClientFactory, clock: list[float]
) -> None:
    strict_one = (await Delivery.arun(parcel="p1")).id
    flexible_one = (await Delivery.arun(parcel="p2")).id
    clock[0] = 7200
    async with client_for(app, user="manager") as client:
        strict = await client.post(
            resume_url(strict_one, "carrier") + "?strict=true", json={"delivered": True}
        )
        flexible = await client.post(resume_url(flexible_one, "carrier"), json={"delivered": True})
    assert strict.status_code == 410
    assert flexible.status_code == 410
    assert flexible.json()["error"] == "expired"


async def test_twenty_concurrent_decisions_one_wins(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    execution_id = await expense()
    async with client_for(app, user="manager") as client:
        responses = await asyncio.gather(
            *(client.post(resume_url(execution_id), json=APPROVE) for _ in range(20))
        )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * 19
    assert (await Expense.afind(execution_id)).completed


# ------------------------------------------------------------------ cancel and undo


async def test_cancel_with_a_reason_then_409(
    app: Starlette, shared: Storage, client_for: ClientFactory, redis_url: str
) -> None:
    execution_id = await expense()
    async with client_for(app, user="ops") as client:
        bad = await client.post(f"/api/executions/{execution_id}/cancel", json=["no"])
        cancelled = await client.post(
            f"/api/executions/{execution_id}/cancel", json={"reason": "duplicate"}
        )
        again = await client.post(f"/api/executions/{execution_id}/cancel", json={})
    assert bad.status_code == 400
    assert cancelled.status_code == 200
    assert (cancelled.json()["status"], cancelled.json()["reason"]) == ("cancelled", "duplicate")
    assert again.status_code == 409
    # Cancel does not compensate.
    assert holds(redis_url) == {"e1": "held"}


async def test_undo_releases_the_hold(
    app: Starlette, shared: Storage, client_for: ClientFactory, redis_url: str
) -> None:
    execution_id = await expense()
    async with client_for(app, user="admin") as client:
        undone = await client.post(f"/api/executions/{execution_id}/undo")
        again = await client.post(f"/api/executions/{execution_id}/undo")
    assert undone.status_code == 200
    assert (undone.json()["status"], undone.json()["reason"]) == ("cancelled", "undo")
    assert again.status_code == 409
    assert holds(redis_url) == {"e1": "released"}


# ------------------------------------------------------------------ webhooks


def signed(body: bytes, secret: str = expense_app.WEBHOOK_SECRET, **options: Any) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign_webhook(secret, body, **options)}


async def test_webhook_with_a_valid_signature_resumes(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    execution_id = (await Delivery.arun(parcel="p1")).id
    body = json.dumps({"delivered": True}).encode()
    async with client_for(app, user=None) as client:
        response = await client.post(
            "/hooks/delivery/parcel-p1", content=body, headers=signed(body)
        )
    assert response.status_code == 200
    assert response.json() == {"execution_id": execution_id, "status": "completed"}


async def test_webhook_signatures_are_checked(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    await Delivery.arun(parcel="p1")
    body = json.dumps({"delivered": True}).encode()
    url = "/hooks/delivery/parcel-p1"
    replayed = signed(body, timestamp=int(time.time()) - 301)
    async with client_for(app, user="admin") as client:
        missing = await client.post(url, content=body)
        forged = await client.post(url, content=body, headers=signed(body, secret="guess"))
        other_body = await client.post(url, content=b'{"delivered": false}', headers=signed(body))
        garbage = await client.post(
            url, content=body, headers={SIGNATURE_HEADER: "t=1,v1=é".encode("latin-1")}
        )
        stale = await client.post(url, content=body, headers=replayed)
        # The app's secret does not sign for a reactor that has its own.
        app_secret = await client.post(url, content=body, headers=signed(body, secret=SECRET))
    assert missing.status_code == 401
    assert [r.status_code for r in (forged, other_body, garbage, stale, app_secret)] == [403] * 5
    assert "window" in stale.json()["message"]
    assert (await Delivery.afind_by_correlation_id("parcel-p1")).paused


async def test_webhook_statuses(app: Starlette, shared: Storage, client_for: ClientFactory) -> None:
    body = json.dumps({"delivered": True}).encode()
    async with client_for(app, user=None) as client:
        # Before any execution waits: kept for it (accept_early).
        early = await client.post("/hooks/delivery/parcel-p9", content=body, headers=signed(body))
        assert early.status_code == 202
        assert (await Delivery.arun(parcel="p9")).completed
        invalid = await client.post(
            "/hooks/delivery/parcel-p8", content=b"{}", headers=signed(b"{}")
        )
        unknown_reactor = await client.post("/hooks/nope/x", content=body, headers=signed(body))
        # A reactor without a webhook_secret uses the app's secret.
        unknown_id = await client.post(
            "/hooks/unsigned/ref-1", content=body, headers=signed(body, secret=SECRET)
        )
        waiting = await Unsigned.arun(ref="1")
        resumed = await client.post(
            "/hooks/unsigned/ref-1", content=body, headers=signed(body, secret=SECRET)
        )
        not_json = await client.post(
            "/hooks/unsigned/ref-1", content=b"{", headers=signed(b"{", secret=SECRET)
        )
    assert invalid.status_code == 422
    assert unknown_reactor.status_code == 404
    assert unknown_id.status_code == 404
    assert resumed.status_code == 200
    assert resumed.json()["execution_id"] == waiting.id
    assert not_json.status_code == 400


async def test_webhook_without_any_secret_needs_authorize(
    shared: Storage, client_for: ClientFactory
) -> None:
    app = create_app(authorize=lambda request, action, execution: None, reactors=[Unsigned])
    await Unsigned.arun(ref="1")
    async with client_for(app) as client:
        response = await client.post("/hooks/unsigned/ref-1", json={})
    assert response.status_code == 403


# ------------------------------------------------------------------ signed links


def link_path(url: str) -> str:
    return url.removeprefix("http://testserver")


async def test_a_signed_link_works_once_without_login(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    execution_id = await expense()
    url = resume_link(
        execution_id, "manager_approval", secret=SECRET, base_url="http://testserver/"
    )
    assert url.startswith("http://testserver/link/")
    async with client_for(app, user=None) as client:
        form = await client.get(link_path(url))
        assert form.status_code == 200
        assert "Expense e1: 12.50 EUR for ana" in form.text
        assert 'name="/cost_center"' in form.text
        invalid = await client.post(link_path(url), data={"/approved": "true", "/cost_center": "1"})
        assert invalid.status_code == 422
        assert "does not match" in invalid.text
        done = await client.post(
            link_path(url), data={"/approved": "true", "/cost_center": "CC-0001"}
        )
        assert done.status_code == 200
        assert "decision was recorded" in done.text
        reopened = await client.get(link_path(url))
        reused = await client.post(
            link_path(url), data={"/approved": "false", "/cost_center": "CC-0001"}
        )
    assert reopened.status_code == 410
    assert "already decided" in reopened.text
    assert reused.status_code == 409
    assert "already decided" in reused.text
    execution = await Expense.afind(execution_id)
    assert execution.completed
    assert execution.results["manager_approval"]["approved"] is True


async def test_forged_and_expired_links(
    app: Starlette, shared: Storage, client_for: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id = await expense()
    good = resume_link(execution_id, "manager_approval", secret=SECRET, base_url="")
    other = resume_link(execution_id, "manager_approval", secret="other", base_url="")
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    now = time.time()
    with monkeypatch.context() as patch:
        patch.setattr(time, "time", lambda: now - 3600)
        expired = resume_link(
            execution_id, "manager_approval", secret=SECRET, base_url="", expires_in=60
        )
    async with client_for(app, user=None) as client:
        assert (await client.get(tampered)).status_code == 403
        assert (await client.get(other)).status_code == 403
        assert (await client.get("/link/garbage")).status_code == 403
        assert (await client.post(tampered, data={"/approved": "true"})).status_code == 403
        gone = await client.get(expired)
        assert gone.status_code == 410
        assert (await client.post(expired, data={"/approved": "true"})).status_code == 410
        assert (await client.get(good)).status_code == 200
    assert (await Expense.afind(execution_id)).paused


def test_resume_link_refuses_an_empty_secret() -> None:
    with pytest.raises(ValueError, match="secret"):
        resume_link("x", "y", secret="", base_url="")
    with pytest.raises(ValueError, match="expires_in"):
        resume_link("x", "y", secret="s", base_url="", expires_in=0)


async def test_bad_payloads_are_refused_and_change_nothing(
    app: Starlette, shared: Storage, client_for: ClientFactory
) -> None:
    execution_id = await expense()
    before = await shared.load(execution_id)
    deep = b"[" * 100_000 + b"]" * 100_000
    surrogate = b'{"approved": true, "cost_center": "\\ud800"}'
    async with client_for(app, user="manager") as client:
        too_deep = await client.post(resume_url(execution_id), content=deep)
        unstorable = await client.post(resume_url(execution_id), content=surrogate)
        hook = await client.post(
            "/hooks/unsigned/ref-9", content=deep, headers=signed(deep, secret=SECRET)
        )
    assert (too_deep.status_code, too_deep.json()["error"]) == (400, "bad_request")
    assert (unstorable.status_code, unstorable.json()["error"]) == (422, "payload_invalid")
    assert hook.status_code == 400
    assert await shared.load(execution_id) == before
