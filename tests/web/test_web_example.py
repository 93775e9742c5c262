"""``examples/web_app.py``: the inbox mounted in a FastAPI app next to its own routes."""

from __future__ import annotations

import re
import runpy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reactor import configure

EXAMPLE = Path(__file__).parents[2] / "examples" / "web_app.py"


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.delenv("REACTOR_REDIS_URL", raising=False)
    saved = configure().storage
    namespace = runpy.run_path(str(EXAMPLE), run_name="web_app")
    yield namespace
    configure(storage=saved)


async def test_a_rejected_expense_releases_its_hold(example: dict[str, Any]) -> None:
    transport = httpx.ASGITransport(example["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for purpose in ("train", "taxi"):
            filed = await client.post(
                "/expenses", data={"employee": "ana", "amount": "12.5", "purpose": purpose}
            )
            assert filed.status_code == 303
        home = (await client.get("/")).text
        assert "signed link for the manager" in home
        inbox = (await client.get("/reactor/")).text
        taxi, train = re.findall(r'href="/reactor/executions/(\w+)#manager_approval"', inbox)
        rejected = await client.post(
            f"/reactor/executions/{train}/interrupts/manager_approval",
            data={"/approved": "false", "/comment": "take the bus"},
        )
        assert rejected.status_code == 303
        link = re.search(
            r'href="http://testserver(/reactor/link/[^"]+)"', (await client.get("/")).text
        )
        assert link is not None
        approved = await client.post(link[1], data={"/approved": "true"})
        assert "decision was recorded" in approved.text
        # Only managers may answer.
        client.cookies.set("user", "sam")
        page = (await client.get(f"/reactor/executions/{taxi}")).text
        assert "Approve" not in page
        train_doc = (await client.get(f"/reactor/api/executions/{train}")).json()
        taxi_doc = (await client.get(f"/reactor/api/executions/{taxi}")).json()
    assert train_doc["status"] == "failed"
    assert train_doc["results"]["manager_approval"]["responded_by"] == "mia"
    assert taxi_doc["status"] == "completed"
    assert sorted(example["BUDGET"].values()) == ["booked", "released"]
