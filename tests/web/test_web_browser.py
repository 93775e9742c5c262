"""A manager in Chromium (Playwright) against ``reactor serve`` in a subprocess.

Needs Debian's Chromium at /usr/bin/chromium (``.ci/run`` installs it); skipped without it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from playwright.async_api import Page, async_playwright, expect

from reactor import Storage
from reactor.web import resume_link

import expense_app
from expense_app import APP_SECRET, Expense

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).parents[2]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.redis,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (/usr/bin/chromium)"),
]

Serve = Callable[..., str]


@pytest.fixture
def serve(shared: Storage, redis_url: str, tmp_path: Path) -> Iterator[Serve]:
    """Start ``python -m reactor serve`` on a free port; returns its base URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(*options: str) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(Path(__file__).parent)]),
            "REACTOR_WEB_SECRET": APP_SECRET,
        }
        log = tmp_path / f"serve-{port}.log"
        command = [sys.executable, "-m", "reactor", "serve", "--app", "expense_app"]
        command += ["--redis", redis_url, "--port", str(port), *options]
        with log.open("wb") as output:
            process = subprocess.Popen(command, env=env, stdout=output, stderr=subprocess.STDOUT)
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/static/style.css", timeout=1)
                return url
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("reactor serve did not start:\n" + log.read_text())
                time.sleep(0.1)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Page]:
    """A fresh page in Debian's Chromium (Playwright's own browsers are never downloaded)."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


def holds(redis_url: str) -> dict[str, str]:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return client.hgetall(expense_app.HOLDS)


async def test_a_manager_fixes_the_form_then_approves(serve: Serve, shared: Storage) -> None:
    url = serve("--dev")
    execution = await Expense.arun(expense_id="e1", employee="ana", amount=12.5)
    async with chromium() as page:
        await page.goto(url + "/")
        await expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
        await page.get_by_role("link", name="Expense e1: 12.50 EUR for ana").click()
        await page.get_by_label("Cost center").fill("CC-12")
        await page.get_by_role("button", name="Approve").click()
        # The refused answer comes back with the error next to its field, the value kept.
        await expect(page.locator(".field.invalid .field-errors")).to_contain_text("does not match")
        cost_center = page.get_by_label("Cost center")
        await expect(cost_center).to_have_value("CC-12")
        await expect(cost_center).to_have_attribute("aria-invalid", "true")
        await cost_center.fill("CC-1234")
        await page.get_by_label("Comment").fill("fine")
        await page.get_by_role("button", name="Approve").click()
        await expect(page.locator(".status")).to_have_text("completed")
    assert (await Expense.afind(execution.id)).result == "booked-hold-e1"


async def test_a_rejected_expense_has_its_hold_undone(
    serve: Serve, shared: Storage, redis_url: str
) -> None:
    url = serve("--dev")
    execution = await Expense.arun(expense_id="e2", employee="bo", amount=99.0)
    assert holds(redis_url) == {"e2": "held"}
    async with chromium() as page:
        await page.goto(f"{url}/?reactor=expense")
        await page.get_by_role("link", name="Expense e2: 99.00 EUR for bo").click()
        await page.get_by_label("Cost center").fill("CC-0002")
        await page.get_by_label("Comment").fill("over budget")
        await page.get_by_role("button", name="Reject").click()
        await expect(page.locator(".status")).to_have_text("failed")
        await expect(page.locator(".error")).to_contain_text("ExpenseRejected")
    assert (await Expense.afind(execution.id)).failed
    assert holds(redis_url) == {"e2": "released"}


async def test_a_signed_link_works_once_without_login(serve: Serve, shared: Storage) -> None:
    url = serve()  # no --dev and no authorize: only signed links get through
    execution = await Expense.arun(expense_id="e3", employee="cy", amount=5.0)
    link = resume_link(execution.id, "manager_approval", secret=APP_SECRET, base_url=url)
    async with chromium() as page:
        inbox = await page.goto(url + "/")
        assert inbox is not None and inbox.status == 401
        opened = await page.goto(link)
        assert opened is not None and opened.status == 200
        await expect(
            page.get_by_role("heading", name="Expense e3: 5.00 EUR for cy")
        ).to_be_visible()
        await page.get_by_label("Cost center").fill("CC-0003")
        await page.get_by_role("button", name="Approve").click()
        await expect(page.get_by_role("heading", level=1)).to_contain_text("decision was recorded")
        assert (await Expense.afind(execution.id)).completed
        again = await page.goto(link)
        assert again is not None and again.status == 410
        await expect(page.get_by_role("heading", level=1)).to_have_text(
            "This request was already decided"
        )
