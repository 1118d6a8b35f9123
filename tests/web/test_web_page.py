"""The monitoring page in headless Chromium against a real server on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import LiveServer
from web_helpers import LIVE, api_get, api_submit, open_page, row

pytestmark = pytest.mark.browser


def test_loads_without_console_errors(page: Any, console: Any, server: LiveServer) -> None:
    open_page(page, server)
    assert page.title().startswith("workerpool")
    types = page.locator("#f-type option").all_text_contents()
    assert {"default_task", "example_task", "long_running_task"} <= set(types)
    page.wait_for_function("document.getElementById('stat-queue').textContent !== '\u2013'")
    assert console.errors == []


def test_submitted_task_appears_and_completes(page: Any, console: Any, server: LiveServer) -> None:
    open_page(page, server)
    page.select_option("#f-type", "default_task")
    page.fill("#f-payload", '{"from": "the form", "n": 3}')
    page.fill("#f-priority", "5")
    page.click("#f-submit")
    page.wait_for_function(
        "document.getElementById('f-result').textContent.startsWith('Submitted')"
    )
    task_id = page.locator("#f-result").text_content().split()[-1]

    page.wait_for_selector(f"#tasks-body tr[data-id='{task_id}'][data-status='completed']")
    assert row(page, task_id).locator(".c-type").text_content() == "default_task"
    assert row(page, task_id).locator(".c-priority").text_content() == "5"
    # the detail panel follows the new task and shows its result
    page.wait_for_selector("#d-result-wrap:not([hidden])")
    result = json.loads(page.locator("#d-result").text_content())
    assert result["payload"] == {"from": "the form", "n": 3}
    assert api_get(server, task_id)["status"] == "completed"
    assert console.errors == []


def test_count_submits_that_many_tasks(page: Any, server: LiveServer) -> None:
    open_page(page, server)
    before = httpx.get(f"{server.url}/api/v1/tasks?type=default_task&limit=1").json()["total"]
    page.select_option("#f-type", "default_task")
    page.fill("#f-payload", '{"counted": true}')
    page.fill("#f-count", "4")
    page.click("#f-submit")
    page.wait_for_function(
        "document.getElementById('f-result').textContent === 'Submitted 4 tasks'"
    )
    after = httpx.get(f"{server.url}/api/v1/tasks?type=default_task&limit=1").json()["total"]
    assert after == before + 4


def test_invalid_payload_is_refused_before_sending(page: Any, server: LiveServer) -> None:
    open_page(page, server)
    before = httpx.get(f"{server.url}/api/v1/tasks/status/stats").json()["tasks"]["total"]
    page.select_option("#f-type", "long_running_task")
    for text, expected in (
        ("{oops", "Not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"duration": "long"}', '"duration" must be number'),
        ('{"speed": 1}', 'Unknown field "speed"'),
    ):
        page.fill("#f-payload", text)
        assert expected in page.locator("#f-payload-error").text_content()
        page.click("#f-submit")
    page.fill("#f-payload", "{}")
    page.fill("#f-timeout", "soon")
    page.click("#f-submit")
    assert "Timeout" in page.locator("#f-options-error").text_content()
    assert page.locator("#f-result").text_content() == ""
    after = httpx.get(f"{server.url}/api/v1/tasks/status/stats").json()["tasks"]["total"]
    assert after == before


def test_running_task_is_cancelled_from_its_button(
    page: Any, console: Any, server: LiveServer
) -> None:
    open_page(page, server)
    task = api_submit(server, {"type": "long_running_task", "payload": {"duration": 30}})
    page.wait_for_selector(f"#tasks-body tr[data-id='{task['id']}'][data-status='running']")
    row(page, task["id"]).click()
    page.wait_for_selector("#d-cancel:not([disabled])")
    page.click("#d-cancel")
    page.wait_for_selector(f"#tasks-body tr[data-id='{task['id']}'][data-status='cancelled']")
    page.wait_for_selector("#d-fields[data-status='cancelled']")
    assert page.locator("#d-cancel").is_disabled()
    assert api_get(server, task["id"])["status"] == "cancelled"
    assert console.errors == []


def test_detail_shows_the_task_log_lines(page: Any, server: LiveServer) -> None:
    open_page(page, server)
    task = api_submit(server, {"type": "chatty", "payload": {"lines": 4}})
    page.wait_for_selector(f"#tasks-body tr[data-id='{task['id']}'][data-status='completed']")
    row(page, task["id"]).click()
    page.wait_for_selector("#d-logs-wrap:not([hidden])")
    logs = page.locator("#d-logs").text_content().splitlines()
    assert logs == [f"line {i} from {task['id']}" for i in range(1, 5)]
    assert json.loads(page.locator("#d-result").text_content()) == {"lines": 4}


def test_task_data_is_shown_as_text_never_as_html(page: Any, server: LiveServer) -> None:
    html = "<img id=pwned src=x onerror=window.pwned=1><b>bold</b>"
    task = api_submit(server, {"type": "default_task", "payload": {"html": html}})
    open_page(page, server)
    row(page, task["id"]).click()
    page.wait_for_selector("#d-result-wrap:not([hidden])")
    assert html in page.locator("#d-payload").text_content()
    assert page.locator("#pwned").count() == 0
    assert page.locator("#detail b").count() == 0
    assert page.evaluate("window.pwned") is None


def test_failed_task_shows_its_error(page: Any, server: LiveServer) -> None:
    task = api_submit(server, {"type": "default_task", "payload": {"fail": True}})
    open_page(page, server)
    row(page, task["id"]).click()
    page.wait_for_selector("#d-error-wrap:not([hidden])")
    error = page.locator("#d-error").text_content()
    assert error.startswith("DemoFailure: ")
    assert "Traceback" in error
    assert page.locator("#d-result-wrap").is_hidden()


def test_retry_a_failed_task_from_its_button(page: Any, server: LiveServer) -> None:
    task = api_submit(server, {"type": "default_task", "payload": {"fail": True, "try": 2}})
    open_page(page, server)
    row(page, task["id"]).click()
    page.wait_for_selector("#d-retry:not([hidden])")
    page.click("#d-retry")
    page.wait_for_function(
        "id => window.workerpool.state.selected && window.workerpool.state.selected !== id",
        arg=task["id"],
    )
    new_id = page.evaluate("window.workerpool.state.selected")
    retried = api_get(server, new_id)
    assert retried["retry_of"] == task["id"]
    assert retried["payload"] == {"fail": True, "try": 2}
    page.wait_for_selector(f"#tasks-body tr[data-id='{new_id}']")


def test_pause_and_resume_the_pool(page: Any, server: LiveServer) -> None:
    open_page(page, server)
    page.wait_for_selector("#pool-toggle:not([disabled])")
    assert page.locator("#pool-toggle").text_content() == "Pause"
    try:
        page.click("#pool-toggle")
        page.wait_for_selector("#pool-toggle[data-paused='true']")
        assert httpx.get(f"{server.url}/api/v1/pool").json()["paused"] is True
        assert page.locator("#pool-toggle").text_content() == "Resume"
        page.click("#pool-toggle")
        page.wait_for_selector("#pool-toggle[data-paused='false']")
        assert httpx.get(f"{server.url}/api/v1/pool").json()["paused"] is False
    finally:  # never leave the shared server paused for the next test
        httpx.patch(f"{server.url}/api/v1/pool", json={"paused": False}, timeout=10)


def test_filter_by_status_and_search(page: Any, server: LiveServer) -> None:
    failed = api_submit(server, {"type": "default_task", "payload": {"fail": True}})
    ok = api_submit(server, {"type": "default_task", "payload": {"ok": True}})
    open_page(page, server)
    page.wait_for_selector(f"#tasks-body tr[data-id='{ok['id']}'][data-status='completed']")
    page.click("#status-filter .chip[data-status='failed']")
    page.wait_for_selector(f"#tasks-body tr[data-id='{ok['id']}']", state="detached")
    statuses = set(
        page.locator("#tasks-body tr[data-id]").evaluate_all("rs => rs.map(r => r.dataset.status)")
    )
    assert statuses == {"failed"}
    assert row(page, failed["id"]).count() == 1

    page.click("#status-filter .chip[data-status='']")
    page.fill("#search", ok["id"][:10])
    page.wait_for_selector(f"#tasks-body tr[data-id='{failed['id']}']", state="detached")
    assert row(page, ok["id"]).count() == 1


def test_stays_bounded_under_a_burst(page: Any, console: Any, server: LiveServer) -> None:
    page.goto(server.url + "/?keep=400")  # keep 400 tasks (plus an eighth) in memory
    page.wait_for_selector(LIVE)
    assert page.evaluate("window.workerpool.maxTasks") == 400
    for wave in range(2):
        spec = {"type": "default_task", "payload": {"wave": wave}}
        r = httpx.post(f"{server.url}/api/v1/tasks/batch", json={"tasks": [spec] * 300}, timeout=30)
        assert r.status_code == 201, r.text
        last = r.json()["tasks"][-1]["id"]
        # newest first, in submission order among tasks created in the same millisecond
        page.wait_for_function(
            "id => { const r = document.querySelector('#tasks-body tr[data-id]');"
            " return r && r.dataset.id === id && r.dataset.status === 'completed'; }",
            arg=last,
        )
    kept = page.evaluate("window.workerpool.list.tasks.size")
    assert kept <= 450
    # one page of 50 rows, and the table is virtual: a few dozen rows exist in the DOM
    assert 0 < page.locator("#tasks-body tr[data-id]").count() <= 50
    total = httpx.get(f"{server.url}/api/v1/tasks?limit=1", timeout=10).json()["total"]
    page.wait_for_function(
        "total => document.getElementById('tasks-foot').textContent"
        " === `rows 1\u201350 of ${total.toLocaleString('en-US')}`",
        arg=total,
    )
    assert page.locator("#eventlog li").count() <= 200
    assert page.locator(LIVE).count() == 1
    assert console.errors == []


def test_recovers_after_the_server_restarts(browser: Any, tmp_path: Path, console: Any) -> None:
    live = LiveServer(tmp_path).start()
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        open_page(page, live)
        before = api_submit(live, {"type": "default_task", "payload": {"life": 1}})
        page.wait_for_selector(f"#tasks-body tr[data-id='{before['id']}']")

        assert live.stop() == 0
        page.wait_for_selector("#conn[data-state='closed']")

        live.start()  # same port, a fresh (in-memory) server
        page.wait_for_selector(LIVE)
        after = api_submit(live, {"type": "default_task", "payload": {"life": 2}})
        page.wait_for_selector(f"#tasks-body tr[data-id='{after['id']}'][data-status='completed']")
        # the fresh snapshot replaced the old server's tasks
        assert row(page, before["id"]).count() == 0
        assert "disconnected" in page.locator("#eventlog").text_content()
    finally:
        context.close()
        live.stop()


def test_token_is_asked_once_and_kept_for_the_tab(browser: Any, tmp_path: Path) -> None:
    with LiveServer(tmp_path, token="web-token") as live:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.goto(live.url + "/")
            page.wait_for_selector("#token-dialog[open]")
            page.fill("#token-input", "web-token")
            page.click("#token-form button[type='submit']")
            page.wait_for_selector(LIVE)
            page.wait_for_selector("#f-type option[value='example_task']", state="attached")
            task = api_submit(live, {"type": "default_task"}, token="web-token")
            page.wait_for_selector(f"#tasks-body tr[data-id='{task['id']}']")

            page.reload()  # same tab: no second question
            page.wait_for_selector(LIVE)
            assert not page.locator("#token-dialog").evaluate("d => d.open")
        finally:
            context.close()


def test_both_themes_render(page: Any, server: LiveServer) -> None:
    open_page(page, server)
    seen = {}
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        seen[scheme] = page.evaluate(
            "[getComputedStyle(document.body).backgroundColor,"
            " getComputedStyle(document.body).color]"
        )
        assert seen[scheme][0] != seen[scheme][1]
    assert seen["dark"][0] == "rgb(15, 20, 26)"
    assert seen["light"][0] == "rgb(245, 247, 250)"
    page.click("#theme-toggle")  # an explicit choice beats the system's
    assert page.evaluate("document.documentElement.dataset.theme") == "light"
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(245, 247, 250)"
