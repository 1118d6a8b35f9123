"""The Schedules panel, in headless Chromium against a real ``serve``: the list with its
countdown, pause/resume, run now, delete (asks first), and a config schedule's refusal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import LiveServer
from web_helpers import api_submit, choose_status, open_page, page_ids, rows_text, wait_foot

pytestmark = pytest.mark.browser

NIGHTLY = '[[schedule]]\nname = "nightly"\ntype = "default_task"\ncron = "30 2 * * *"\n'


@pytest.fixture
def sched_server(tmp_path: Path) -> Iterator[LiveServer]:
    (tmp_path / "config.toml").write_text(NIGHTLY)  # serve reads ./config.toml
    with LiveServer(tmp_path) as live:
        r = httpx.post(
            f"{live.url}/api/v1/schedules",
            json={"name": "tick", "type": "default_task", "every": "1h"},
        )
        assert r.status_code == 201, r.text
        yield live


def _row(page: Any, name: str) -> Any:
    return page.locator(f"#schedules-body tr[data-key='{name}']")


def test_schedules_panel_lists_and_acts(page: Any, console: Any, sched_server: LiveServer) -> None:
    server = sched_server
    open_page(page, server)
    page.click("#tab-schedules")
    page.wait_for_selector("#schedules-body tr[data-key='tick']")
    tick, nightly = _row(page, "tick"), _row(page, "nightly")
    assert tick.locator(".c-rule").text_content() == "every 1h"
    assert nightly.locator(".c-rule").text_content() == "30 2 * * *"
    assert nightly.get_attribute("data-source") == "config"
    assert "read-only" in nightly.locator(".c-name").get_attribute("title")
    assert tick.locator(".c-next").text_content().startswith("in ")
    # live: it polls while shown (the countdown moves), and stops when another tab is
    polls = page.evaluate("window.workerpool.schedules.state.polls")
    page.wait_for_function(f"window.workerpool.schedules.state.polls >= {polls + 2}")
    # pause and resume
    tick.locator("button[data-act='pause']").click()
    page.wait_for_selector("#schedules-body tr[data-key='tick'][data-paused='true']")
    assert tick.locator(".c-next").text_content() == "paused"
    assert httpx.get(f"{server.url}/api/v1/schedules/tick").json()["paused"] is True
    tick.locator("button[data-act='resume']").click()
    page.wait_for_selector("#schedules-body tr[data-key='tick'][data-paused='false']")
    # run now: a task is submitted and its status shows, coloured
    tick.locator("button[data-act='run']").click()
    page.wait_for_function(
        "document.querySelector(\"#schedules-body tr[data-key='tick'] .c-status\")"
        ".className.includes('st-')"
    )
    assert "submitted task" in page.locator("#schedules-result").text_content()
    # a config schedule: the server refuses with the reason, nothing changes
    nightly.locator("button[data-act='pause']").click()
    page.wait_for_function(
        "document.getElementById('schedules-result').textContent.includes('configuration')"
    )
    assert httpx.get(f"{server.url}/api/v1/schedules/nightly").json()["paused"] is False
    # delete asks first: no keeps it, yes deletes it
    page.once("dialog", lambda d: d.dismiss())
    tick.locator("button[data-act='delete']").click()
    page.wait_for_timeout(0)
    assert httpx.get(f"{server.url}/api/v1/schedules/tick").status_code == 200
    page.once("dialog", lambda d: d.accept())
    tick.locator("button[data-act='delete']").click()
    page.wait_for_selector("#schedules-body tr[data-key='tick']", state="detached")
    assert httpx.get(f"{server.url}/api/v1/schedules/tick").status_code == 404
    page.click("#tab-submit")
    stopped = page.evaluate("window.workerpool.schedules.state.polls")
    page.wait_for_timeout(1500)
    assert page.evaluate("window.workerpool.schedules.state.polls") == stopped
    # the browser reports the 409 itself; nothing else may go wrong
    assert [e for e in console.errors if "409 (Conflict)" not in e] == []


def test_scheduled_filter_shows_the_tasks_waiting_for_a_time(
    page: Any, console: Any, sched_server: LiveServer
) -> None:
    server = sched_server
    later = api_submit(server, {"type": "default_task", "delay": "1h"})
    now = api_submit(server, {"type": "default_task"})
    open_page(page, server)
    page.wait_for_selector(f"#tasks-body tr[data-id='{now['id']}']")
    choose_status(page, "scheduled")
    wait_foot(page, rows_text(1, 1, 1))
    assert page_ids(page) == [later["id"]]
    assert "runs in" in page.locator(f"#tasks-body tr[data-id='{later['id']}']").text_content()
    # the server filtered it: waiting=time
    assert page.evaluate("window.workerpool.list.statuses.has('scheduled')")
    choose_status(page, "")
    page.wait_for_selector(f"#tasks-body tr[data-id='{now['id']}']")
    assert console.errors == []
