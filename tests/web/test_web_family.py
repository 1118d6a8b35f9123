"""The task detail lists parents and children as links that open that task (issue 12),
in headless Chromium against a real ``serve``."""

from __future__ import annotations

from typing import Any

import pytest
from live_server import LiveServer
from web_helpers import api_batch, open_page, row

pytestmark = pytest.mark.browser


def _family(page: Any) -> list[str]:
    texts: list[str] = page.locator("#d-family li").all_text_contents()
    return [" ".join(t.split()) for t in texts]


def test_detail_links_parents_and_children(page: Any, console: Any, server: LiveServer) -> None:
    parent, child, later = api_batch(
        server,
        [
            {"type": "default_task"},
            {"type": "default_task", "depends_on": ["$0"]},
            {"type": "default_task", "depends_on": ["$1"], "delay": "1h"},
        ],
    )
    open_page(page, server)
    row(page, child["id"]).click()
    page.wait_for_selector("#d-family-wrap:not([hidden])")
    page.wait_for_function(
        "() => document.querySelectorAll('#d-family li').length === 2"
        " && document.getElementById('d-family').textContent.includes('completed')"
    )
    assert _family(page) == [
        f"parent {parent['id']} default_task completed",
        f"child {later['id']} default_task pending",
    ]
    # a link opens that task
    page.click(f"#d-family a[data-id='{parent['id']}']")
    page.wait_for_function(
        "id => document.getElementById('d-title').textContent === id", arg=parent["id"]
    )
    page.wait_for_function(
        "id => document.querySelector('#d-family a') && "
        "document.querySelector('#d-family a').dataset.id === id",
        arg=child["id"],
    )
    assert _family(page) == [f"child {child['id']} default_task completed"]
    # a task without relatives shows no list
    (alone,) = api_batch(server, [{"type": "default_task"}])
    row(page, alone["id"]).click()
    page.wait_for_function(
        "id => document.getElementById('d-title').textContent === id", arg=alone["id"]
    )
    page.wait_for_selector("#d-family-wrap", state="hidden")
    assert console.errors == []
