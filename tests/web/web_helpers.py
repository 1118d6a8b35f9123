"""Helpers shared by the browser tests: the API over httpx, and waiting on the page."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from live_server import LiveServer

LIVE = "#conn[data-state='open']"
WAIT_S = 30.0


def api_submit(server: LiveServer, spec: dict[str, Any], token: str = "") -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = httpx.post(f"{server.url}/api/v1/tasks", json=spec, headers=headers, timeout=10)
    assert r.status_code == 201, r.text
    task: dict[str, Any] = r.json()
    return task


def api_batch(server: LiveServer, specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    r = httpx.post(f"{server.url}/api/v1/tasks/batch", json={"tasks": specs}, timeout=30)
    assert r.status_code == 201, r.text
    tasks: list[dict[str, Any]] = r.json()["tasks"]
    return tasks


def api_get(server: LiveServer, task_id: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/api/v1/tasks/{task_id}", timeout=10)
    assert r.status_code == 200, r.text
    task: dict[str, Any] = r.json()
    return task


def api_list(server: LiveServer, **params: Any) -> tuple[list[str], int]:
    """The ids of one page of ``GET /api/v1/tasks`` and the server's total."""
    r = httpx.get(f"{server.url}/api/v1/tasks", params=params, timeout=10)
    assert r.status_code == 200, r.text
    data = r.json()
    return [t["id"] for t in data["tasks"]], int(data["total"])


def api_counts(server: LiveServer) -> dict[str, int]:
    r = httpx.get(f"{server.url}/api/v1/tasks/status/stats", timeout=10)
    counts: dict[str, int] = r.json()["tasks"]
    return counts


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    """Poll ``condition`` (a cheap API read) until it holds; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def wait_idle(server: LiveServer, total: int) -> None:
    """Until the server tracks ``total`` tasks and none is pending or running."""

    def idle() -> bool:
        c = api_counts(server)
        return c["total"] == total and c["pending"] == 0 and c["running"] == 0

    wait_until(idle, f"{total} finished tasks")


def row(page: Any, task_id: str) -> Any:
    return page.locator(f"#tasks-body tr[data-id='{task_id}']")


def shown_ids(page: Any) -> list[str]:
    ids: list[str] = page.locator("#tasks-body tr[data-id]").evaluate_all(
        "rs => rs.map(r => r.dataset.id)"
    )
    return ids


def page_ids(page: Any) -> list[str]:
    """The ids of the list's current page (the table draws only those near the view)."""
    ids: list[str] = page.evaluate("[...window.workerpool.list.ids]")
    return ids


def open_page(page: Any, server: LiveServer, query: str = "") -> None:
    page.goto(server.url + "/" + query)
    page.wait_for_selector(LIVE)
    page.wait_for_selector("#f-type option[value='example_task']", state="attached")


def rows_text(first: int, last: int, total: int) -> str:
    """The list's footer for a page: ``rows 1-50 of 2,340`` (with an en dash)."""
    return f"rows {first:,}\u2013{last:,} of {total:,}"


def wait_foot(page: Any, text: str) -> None:
    """Until the list's footer reads ``text`` (see :func:`rows_text`)."""
    page.wait_for_function(
        "text => document.getElementById('tasks-foot').textContent === text", arg=text
    )


def choose_status(page: Any, status: str) -> None:
    page.click(f"#status-filter .chip[data-status='{status}']")
