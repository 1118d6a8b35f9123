"""Bulk actions on the web page in headless Chromium: checkboxes mark rows, the bulk bar
acts on them (or on the filter), after a confirmation that says what would change."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from live_server import LiveServer
from web_helpers import open_page, row

pytestmark = pytest.mark.browser


def _submit(server: LiveServer, tasks: list[dict[str, Any]]) -> list[str]:
    resp = httpx.post(f"{server.url}/api/v1/tasks/batch", json={"tasks": tasks})
    assert resp.status_code == 201, resp.text
    return [t["id"] for t in resp.json()["tasks"]]


async def _accept(dialog: Any) -> None:
    await dialog.accept()


async def _dismiss(dialog: Any) -> None:
    await dialog.dismiss()


def _status(server: LiveServer, task_id: str) -> str:
    status: str = httpx.get(f"{server.url}/api/v1/tasks/{task_id}").json()["status"]
    return status


def test_mark_rows_and_cancel_them(page: Any, console: Any, fresh_server: LiveServer) -> None:
    httpx.patch(f"{fresh_server.url}/api/v1/pool", json={"paused": True})
    ids = _submit(fresh_server, [{"type": "long_running_task"}] * 3)
    open_page(page, fresh_server)
    for task_id in ids:
        page.wait_for_selector(f"#tasks-body tr[data-id='{task_id}']")
    row(page, ids[0]).locator(".c-sel input").check()
    row(page, ids[1]).locator(".c-sel input").check()
    page.wait_for_function("document.getElementById('bulk-scope').textContent === '2 marked'")
    questions: list[str] = []

    async def answer(dialog: Any) -> None:  # handlers run on the Playwright thread
        questions.append(dialog.message)
        await dialog.accept()

    page.on("dialog", answer)
    page.select_option("#bulk-action", "cancel")
    page.click("#bulk-go")
    for task_id in ids[:2]:
        page.wait_for_selector(f"#tasks-body tr[data-id='{task_id}'][data-status='cancelled']")
    assert questions == ["Cancel 2 of 2 task(s) (2 marked)?"]
    assert _status(fresh_server, ids[2]) == "pending"
    page.wait_for_function("document.getElementById('bulk-scope').textContent === 'all tasks'")
    assert not row(page, ids[0]).locator(".c-sel input").is_checked()
    assert console.errors == []


def test_bulk_over_the_filter_and_a_declined_confirmation(
    page: Any, console: Any, fresh_server: LiveServer
) -> None:
    httpx.patch(f"{fresh_server.url}/api/v1/pool", json={"paused": True})
    ids = _submit(fresh_server, [{"type": "long_running_task"}] * 2)
    open_page(page, fresh_server)
    page.click("#status-filter .chip[data-status='pending']")
    page.wait_for_function(
        "document.getElementById('bulk-scope').textContent === 'filter: pending'"
    )
    page.once("dialog", _dismiss)
    page.click("#bulk-go")
    page.wait_for_timeout(300)  # a declined question sends nothing more: nothing to wait on
    assert [_status(fresh_server, i) for i in ids] == ["pending", "pending"]
    page.once("dialog", _accept)
    page.click("#bulk-go")
    page.wait_for_function("document.querySelectorAll('#tasks-body tr[data-id]').length === 0")
    assert [_status(fresh_server, i) for i in ids] == ["cancelled", "cancelled"]
    # delete the cancelled ones from the "cancelled" filter: they leave the list
    page.click("#status-filter .chip[data-status='cancelled']")
    for task_id in ids:
        page.wait_for_selector(f"#tasks-body tr[data-id='{task_id}']")
    page.select_option("#bulk-action", "delete")
    page.once("dialog", _accept)
    page.click("#bulk-go")
    page.wait_for_function("document.querySelectorAll('#tasks-body tr[data-id]').length === 0")
    total = httpx.get(f"{fresh_server.url}/api/v1/tasks/status/stats").json()["tasks"]["total"]
    assert total == 0
    assert console.errors == []
