"""The Instances and Workers panels and each task's instance, in headless Chromium against
a real ``serve`` (and, where PostgreSQL answers, one in cluster mode)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import LiveServer
from web_helpers import api_submit, open_page, row

pytestmark = pytest.mark.browser

PG_URL = os.environ.get("WORKERPOOL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def test_instances_panel_shows_this_server_alone_outside_a_cluster(
    page: Any, console: Any, server: LiveServer
) -> None:
    open_page(page, server)
    page.click("#tab-instances")
    page.wait_for_selector("#instances-body tr[data-state='running']")
    assert (
        page.locator("#instances-summary")
        .text_content()
        .startswith("Not in cluster mode: this server only")
    )
    rows = page.locator("#instances-body tr")
    assert rows.count() == 1
    assert rows.locator(".c-name").text_content().endswith("★")
    assert rows.locator(".c-workers").text_content().startswith("4/")
    # live: it polls while shown, and stops when another tab is
    page.wait_for_function("window.workerpool.panels.polls.instances >= 2")
    page.click("#tab-submit")
    stopped = page.evaluate("window.workerpool.panels.polls.instances")
    page.wait_for_timeout(1500)  # longer than a polling period: no poll may come
    assert page.evaluate("window.workerpool.panels.polls.instances") == stopped
    assert console.errors == []


def test_workers_panel_is_live_and_a_busy_worker_opens_its_task(
    page: Any, console: Any, fresh_server: LiveServer
) -> None:
    server = fresh_server
    open_page(page, server)
    page.click("#tab-workers")
    page.wait_for_selector("#workers-body tr[data-state='idle']")
    assert page.locator("#workers-body tr").count() == 4
    task = api_submit(
        server, {"type": "long_running_task", "payload": {"duration": 30, "steps": 300}}
    )
    busy = f"#workers-body tr[data-task='{task['id']}']"
    page.wait_for_selector(busy)
    assert page.locator(f"{busy} .c-state").text_content() == "busy"
    assert page.locator(f"{busy} .c-type").text_content() == "long_running_task"
    assert page.locator(f"{busy} .c-task").text_content() == task["id"][:8]
    page.click(busy)
    page.wait_for_function(
        "id => document.getElementById('d-title').textContent === id", arg=task["id"]
    )
    assert page.locator("#tab-task").get_attribute("aria-selected") == "true"
    fields = page.locator("#d-fields dt").all_text_contents()
    assert "instance" in fields  # always shown (a dash outside a cluster)
    r = httpx.delete(f"{server.url}/api/v1/tasks/{task['id']}", timeout=10)
    assert r.status_code == 200
    page.click("#tab-workers")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#workers-body tr')]"
        ".every(r => r.dataset.state === 'idle')"
    )
    cancelled = page.locator("#workers-body tr .c-done").all_text_contents()
    assert cancelled == ["0", "0", "0", "0"]  # a cancelled task is neither done nor failed
    assert console.errors == []


@pytest.fixture
def cluster_server(tmp_path: Path) -> Iterator[LiveServer]:
    """``serve`` in cluster mode on a schema of its own (skipped without PostgreSQL)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        with psycopg.connect(PG_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no PostgreSQL at {PG_URL}: {exc}")
        pytest.skip(f"no PostgreSQL at {PG_URL}")
    schema = f"wpt_{secrets.token_hex(6)}"
    settings = {
        "WORKERPOOL__STORE__URL": f'"{PG_URL}"',
        "WORKERPOOL__STORE__SCHEMA": f'"{schema}"',
        "WORKERPOOL__STORE__INSTANCE_NAME": '"web-a"',
    }
    try:
        with LiveServer(tmp_path, settings=settings) as live:
            yield live
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def test_in_a_cluster_the_panel_lists_the_instances_and_tasks_name_theirs(
    page: Any, console: Any, cluster_server: LiveServer
) -> None:
    server = cluster_server
    open_page(page, server)
    task = api_submit(server, {"type": "default_task", "payload": {"n": 1}})
    page.wait_for_selector(f"#tasks-body tr[data-id='{task['id']}'][data-status='completed']")
    assert row(page, task["id"]).locator(".c-worker").text_content().startswith("web-a/")
    row(page, task["id"]).click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#d-fields dd')].some(d => d.textContent === 'web-a')"
    )
    page.click("#tab-instances")
    page.wait_for_selector("#instances-body tr[data-name='web-a'][data-state='running']")
    summary = page.locator("#instances-summary").text_content()
    assert summary.startswith("Cluster: 1 instance, 1 running"), summary
    page.click("#tab-workers")
    page.wait_for_function(
        "() => document.getElementById('workers-summary').textContent.includes('of instance web-a')"
    )
    assert console.errors == []


def test_workers_panel_names_the_worker_processes(page: Any, console: Any, tmp_path: Path) -> None:
    settings = {
        "WORKERPOOL__WORKER__PROCESSES": "1",
        "WORKERPOOL__TASK__TYPES__DEFAULT_TASK__ISOLATION": '"process"',
    }
    with LiveServer(tmp_path, settings=settings) as server:
        open_page(page, server)
        page.click("#tab-workers")
        page.wait_for_function(
            "() => document.getElementById('workers-summary').textContent"
            ".includes('1 worker process (pid ')"
        )
        summary = page.locator("#workers-summary").text_content()
        assert "0 busy, 0 restarts" in summary
        assert console.errors == []


def test_submit_form_shows_a_types_gates(page: Any, console: Any, tmp_path: Path) -> None:
    settings = {
        "WORKERPOOL__TASK__TYPES__EXAMPLE_TASK__CONCURRENCY": "2",
        "WORKERPOOL__TASK__TYPES__EXAMPLE_TASK__PAUSED": "true",
    }
    with LiveServer(tmp_path, settings=settings) as server:
        open_page(page, server)
        page.click("#tab-submit")
        page.select_option("#f-type", "example_task")
        page.wait_for_function(
            "() => document.getElementById('f-type-desc').textContent"
            ".includes('(running 0/2 · paused)')"
        )
        assert console.errors == []
