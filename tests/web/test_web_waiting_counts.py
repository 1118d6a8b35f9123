"""The tasks card says how many pending tasks wait for a time or for their parents:
``pending`` counts only runnable ones, so without it "4 tracked" would not add up."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from live_server import LiveServer
from web_helpers import open_page

pytestmark = pytest.mark.browser


def test_the_tasks_card_counts_waiting_tasks_apart(page: Any, fresh_server: LiveServer) -> None:
    batch = {
        "tasks": [
            {"type": "long_running_task", "payload": {"duration": 30}},
            {"type": "default_task", "depends_on": ["$0"]},
            {"type": "default_task", "delay": "1h"},
        ]
    }
    r = httpx.post(f"{fresh_server.url}/api/v1/tasks/batch", json=batch, timeout=10)
    assert r.status_code == 201, r.text
    open_page(page, fresh_server)
    page.wait_for_function(
        "document.getElementById('stat-latency').textContent"
        ".includes('(1 scheduled, 1 waiting for parents)')"
    )
    assert page.locator("[data-count='pending']").text_content() == "0"
