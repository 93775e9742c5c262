"""Fixtures of the web tests: the expense reactors on the suite's Redis, an authorizing app."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from reactor import Execution, Storage
from reactor.web import create_app

import expense_app

SECRET = expense_app.APP_SECRET

ROLES = {
    "viewer": {"view"},
    "manager": {"view", "resolve"},
    "ops": {"view", "cancel"},
    "admin": {"view", "resolve", "cancel", "administer"},
}


async def authorize(request: Request, action: str, execution: Execution | None) -> str | None:
    """Who the ``X-User`` header names, if their role allows ``action``."""
    user = request.headers.get("x-user", "")
    return user if action in ROLES.get(user, set()) else None


@pytest.fixture
def app(shared: Storage) -> Starlette:
    return create_app(
        authorize=authorize,
        secret=SECRET,
        reactors=[
            expense_app.Expense,
            expense_app.Survey,
            expense_app.Delivery,
            expense_app.Unsigned,
        ],
    )


@pytest.fixture
def client_for() -> Callable[..., httpx.AsyncClient]:
    def make(app: Starlette, user: str | None = "admin", **options: object) -> httpx.AsyncClient:
        headers = {"x-user": user} if user else {}
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app, **options),
            base_url="http://testserver",
            headers=headers,
        )

    return make
