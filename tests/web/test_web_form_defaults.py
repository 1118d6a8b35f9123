"""The web submit form shows the type's default priority and timeout, and leaves empty
fields to the server, which applies them (issue 13)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import LiveServer
from web_helpers import api_get, open_page

pytestmark = pytest.mark.browser

TYPES = '[task.types.default_task]\npriority = 7\ntimeout = "45s"\n'


@pytest.fixture
def typed_server(tmp_path: Path) -> Iterator[LiveServer]:
    (tmp_path / "config.toml").write_text(TYPES)  # serve reads ./config.toml
    with LiveServer(tmp_path) as live:
        yield live


def _submit(page: Any) -> str:
    page.evaluate("document.getElementById('f-result').textContent = ''")
    page.click("#f-submit")
    page.wait_for_function(
        "document.getElementById('f-result').textContent.startsWith('Submitted')"
    )
    task_id: str = page.locator("#f-result").text_content().split()[-1]
    page.click("#tab-submit")  # the page showed the new task: back to the form
    return task_id


def test_empty_fields_get_the_types_defaults(
    page: Any, console: Any, typed_server: LiveServer
) -> None:
    open_page(page, typed_server)
    page.select_option("#f-type", "default_task")
    assert page.get_attribute("#f-priority", "placeholder") == "7"
    assert page.get_attribute("#f-timeout", "placeholder") == "45s"
    task = api_get(typed_server, _submit(page))
    assert (task["priority"], task["timeout_s"]) == (7, 45.0)
    page.select_option("#f-type", "example_task")  # no defaults of its own
    assert page.get_attribute("#f-priority", "placeholder") == "0"
    page.select_option("#f-type", "default_task")
    page.fill("#f-priority", "-2")
    task = api_get(typed_server, _submit(page))
    assert (task["priority"], task["timeout_s"]) == (-2, 45.0)
    assert console.errors == []
