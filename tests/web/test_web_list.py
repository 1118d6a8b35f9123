"""The task list asks the server: filters, search, totals, pages, and live updates."""

from __future__ import annotations

from typing import Any

import pytest
from live_server import LiveServer
from web_helpers import (
    api_batch,
    api_counts,
    api_list,
    api_submit,
    choose_status,
    open_page,
    page_ids,
    row,
    rows_text,
    shown_ids,
    wait_foot,
    wait_idle,
    wait_until,
)

pytestmark = pytest.mark.browser

FAIL = {"type": "default_task", "payload": {"fail": True}}
OK = {"type": "default_task", "payload": {"ok": True}}
FAILURE_MESSAGE = "DemoFailure: failed on request (payload.fail = true)"


def test_filter_and_search_see_every_task_on_the_server(
    page: Any, console: Any, fresh_server: LiveServer
) -> None:
    failed = api_batch(fresh_server, [FAIL] * 6)
    api_batch(fresh_server, [OK] * 600)  # the snapshot (500 newest) holds none of the failures
    wait_idle(fresh_server, 606)
    open_page(page, fresh_server)
    wait_foot(page, rows_text(1, 50, 606))
    assert page.locator("[data-count='failed']").text_content() == "6"

    choose_status(page, "failed")
    wait_foot(page, rows_text(1, 6, 6))  # the page held none of them: it asked the server
    assert shown_ids(page) == [t["id"] for t in reversed(failed)]

    choose_status(page, "")
    wait_foot(page, rows_text(1, 50, 606))
    page.fill("#search", failed[2]["id"][:7])  # an id prefix
    page.wait_for_function(
        "id => [...document.querySelectorAll('#tasks-body tr[data-id]')]"
        ".map(r => r.dataset.id).join() === id",
        arg=failed[2]["id"],
    )
    wait_foot(page, rows_text(1, 1, 1))
    page.fill("#search", "DEMOFAILURE")  # part of the message, any case
    wait_foot(page, rows_text(1, 6, 6))
    assert set(shown_ids(page)) == {t["id"] for t in failed}
    page.fill("#search", "no such thing")
    wait_foot(page, "no matching tasks")
    assert page.locator("#tasks-empty").is_visible()
    assert console.errors == []


def test_paging_through_a_long_filtered_list(page: Any, fresh_server: LiveServer) -> None:
    api_batch(fresh_server, [FAIL] * 120 + [OK] * 30)
    wait_idle(fresh_server, 150)
    open_page(page, fresh_server)
    choose_status(page, "failed")
    wait_foot(page, rows_text(1, 50, 120))
    assert page_ids(page) == api_list(fresh_server, status="failed", limit=50)[0]
    assert page.locator("#page-newer").is_disabled()

    page.click("#page-older")
    wait_foot(page, rows_text(51, 100, 120))
    assert page_ids(page) == api_list(fresh_server, status="failed", limit=50, offset=50)[0]
    page.click("#page-older")
    wait_foot(page, rows_text(101, 120, 120))
    assert page_ids(page) == api_list(fresh_server, status="failed", limit=50, offset=100)[0]
    assert page.locator("#page-older").is_disabled()

    page.click("#page-newer")
    wait_foot(page, rows_text(51, 100, 120))
    page.select_option("#page-size", "25")  # stays near the same rows
    wait_foot(page, rows_text(51, 75, 120))
    page.click("#page-newest")
    wait_foot(page, rows_text(1, 25, 120))
    # the virtual table draws only what is in view, whatever the page size
    page.select_option("#page-size", "500")
    wait_foot(page, rows_text(1, 120, 120))
    assert 0 < page.locator("#tasks-body tr[data-id]").count() <= 120


def test_live_events_move_tasks_in_and_out_of_a_filter(
    page: Any, console: Any, fresh_server: LiveServer
) -> None:
    open_page(page, fresh_server)
    choose_status(page, "running")
    wait_foot(page, "no matching tasks")

    task = api_submit(fresh_server, {"type": "long_running_task", "payload": {"duration": 60}})
    page.wait_for_selector(f"#tasks-body tr[data-id='{task['id']}'][data-status='running']")
    wait_foot(page, rows_text(1, 1, 1))

    r = page.request.delete(f"{fresh_server.url}/api/v1/tasks/{task['id']}")
    assert r.ok
    row(page, task["id"]).wait_for(state="detached")  # it stopped matching: it left
    wait_foot(page, "no matching tasks")

    choose_status(page, "failed")
    failed = api_submit(fresh_server, FAIL)
    page.wait_for_selector(f"#tasks-body tr[data-id='{failed['id']}']")
    wait_foot(page, rows_text(1, 1, 1))
    assert console.errors == []


def test_a_deeper_page_keeps_its_rows_while_new_tasks_arrive(
    page: Any, fresh_server: LiveServer
) -> None:
    api_batch(fresh_server, [OK] * 120)
    wait_idle(fresh_server, 120)
    open_page(page, fresh_server)
    choose_status(page, "completed")
    page.click("#page-older")
    wait_foot(page, rows_text(51, 100, 120))
    before = page_ids(page)

    api_batch(fresh_server, [OK] * 5)  # five newer matches, above this page
    wait_idle(fresh_server, 125)
    wait_foot(page, rows_text(56, 105, 125))
    assert page_ids(page) == before
    assert before == api_list(fresh_server, status="completed", limit=50, offset=55)[0]


def test_failed_rows_show_their_final_message(page: Any, fresh_server: LiveServer) -> None:
    once = api_submit(fresh_server, FAIL)
    retried = api_submit(fresh_server, {**FAIL, "max_retries": 1})  # fails twice
    open_page(page, fresh_server)
    for task in (once, retried):
        page.wait_for_selector(f"#tasks-body tr[data-id='{task['id']}'][data-status='failed']")
        assert row(page, task["id"]).locator(".c-message").text_content() == FAILURE_MESSAGE
    assert api_counts(fresh_server)["failed"] == 2


def test_a_burst_is_drawn_once_a_frame_and_fetched_a_few_times_a_second(
    page: Any, console: Any, fresh_server: LiveServer
) -> None:
    open_page(page, fresh_server)
    choose_status(page, "completed")
    wait_foot(page, "no matching tasks")
    page.evaluate(
        """() => {
          const wp = window.workerpool;
          window.probe = { frames: 0, renders: wp.state.renders, fetches: wp.list.fetches,
                           t0: performance.now() };
          const tick = () => { window.probe.frames += 1; requestAnimationFrame(tick); };
          requestAnimationFrame(tick);
        }"""
    )
    for _ in range(6):
        api_batch(fresh_server, [OK] * 500)
    wait_idle(fresh_server, 3000)
    wait_foot(page, rows_text(1, 50, 3000))
    probe = page.evaluate(
        """() => {
          const wp = window.workerpool;
          return { frames: window.probe.frames,
                   renders: wp.state.renders - window.probe.renders,
                   fetches: wp.list.fetches - window.probe.fetches,
                   elapsed_ms: performance.now() - window.probe.t0,
                   min_interval_ms: 500 };
        }"""
    )
    # one table render per animation frame at most (plus the one in progress)
    assert probe["renders"] <= probe["frames"] + 1, probe
    # list requests are spaced by the minimum interval, whatever the event rate
    assert probe["fetches"] <= probe["elapsed_ms"] / probe["min_interval_ms"] + 2, probe
    assert page.locator("#tasks-body tr[data-id]").count() <= 50
    assert page_ids(page) == api_list(fresh_server, status="completed", limit=50)[0]
    assert console.errors == []


def test_a_count_in_the_header_filters_the_list(page: Any, fresh_server: LiveServer) -> None:
    api_batch(fresh_server, [FAIL] * 3 + [OK] * 4)
    wait_idle(fresh_server, 7)
    open_page(page, fresh_server)
    page.wait_for_function("document.querySelector(\"[data-count='failed']\").textContent === '3'")
    page.click("#stat-counts .count[data-status='failed']")
    wait_foot(page, rows_text(1, 3, 3))
    assert (
        page.locator("#status-filter .chip[data-status='failed']").get_attribute("aria-pressed")
        == "true"
    )
    # Ctrl+click adds a status: the server is asked for both
    page.click("#status-filter .chip[data-status='completed']", modifiers=["Control"])
    wait_foot(page, rows_text(1, 7, 7))
    wait_until(lambda: len(api_list(fresh_server, status="failed,completed")[0]) == 7, "listing")


def test_the_footer_names_a_new_page_only_once_its_rows_are_there(
    page: Any, fresh_server: LiveServer
) -> None:
    """While the next page is on its way the rows on screen are the previous page's: the
    footer says it is loading instead of naming the new range (it did, and a reader of the
    footer saw rows 51-100 over rows 1-50)."""
    api_batch(fresh_server, [OK] * 120)
    wait_idle(fresh_server, 120)
    open_page(page, fresh_server)
    wait_foot(page, rows_text(1, 50, 120))
    held: list[Any] = []
    page.route(lambda url: "offset=50" in url, lambda route: held.append(route))  # held
    page.click("#page-older")
    page.wait_for_function(
        "document.getElementById('tasks-foot').textContent.startsWith('loading rows from 51')"
    )
    assert held, "the page asked for offset 50"
    assert page_ids(page) == api_list(fresh_server, limit=50, offset=0)[0]
    # Release it: the held request goes on or fails with its route; after a failure the
    # list fetches again (tasklist.js: fetch() schedules another), either way the page comes.
    page.unroute_all(behavior="ignoreErrors")
    wait_foot(page, rows_text(51, 100, 120))
    assert page_ids(page) == api_list(fresh_server, limit=50, offset=50)[0]
