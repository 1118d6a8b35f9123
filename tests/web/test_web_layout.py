"""The page uses the viewport: the list grows with the window, the task detail is in view.

Checked at 1920x1080, 1400x900, 1024x768 (two columns) and 800x900 (one column).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from live_server import LiveServer
from web_helpers import api_batch, open_page

pytestmark = pytest.mark.browser

GEOMETRY = """() => {
  const box = (id) => document.getElementById(id).getBoundingClientRect().toJSON();
  const panel = document.querySelector(".tasks-panel").getBoundingClientRect().toJSON();
  return { w: innerWidth, h: innerHeight, scrollY, panel, wrap: box("tasks-wrap"),
           scrollWidth: document.documentElement.scrollWidth, detail: box("detail"),
           fields: box("d-fields") };
}"""


@pytest.fixture(scope="module")
def tasks(server: LiveServer) -> list[dict[str, Any]]:
    return api_batch(server, [{"type": "default_task", "payload": {"n": n}} for n in range(80)])


@pytest.fixture
def sized(browser: Any, server: LiveServer, tasks: list[dict[str, Any]]) -> Iterator[Any]:
    contexts: list[Any] = []

    def open_at(width: int, height: int) -> dict[str, Any]:
        """The page at ``width`` x ``height`` with a task selected: its geometry."""
        context = browser.new_context(viewport={"width": width, "height": height})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        open_page(page, server)
        page.wait_for_selector(f"#tasks-body tr[data-id='{tasks[-1]['id']}']", state="attached")
        page.locator("#tasks-body tr[data-id]").first.click()
        page.wait_for_selector("#d-fields dt")
        geometry: dict[str, Any] = page.evaluate(GEOMETRY)
        return geometry

    try:
        yield open_at
    finally:
        for context in contexts:
            context.close()


@pytest.mark.parametrize("size", [(1920, 1080), (1400, 900), (1024, 768)])
def test_two_columns_fill_the_window_and_show_the_detail(sized: Any, size: tuple[int, int]) -> None:
    g = sized(*size)
    assert g["scrollY"] == 0
    assert g["scrollWidth"] <= g["w"]  # nothing sticks out sideways
    # the detail sits beside the list, in view without scrolling
    assert g["detail"]["top"] >= 0 and g["detail"]["bottom"] <= g["h"], g
    assert g["fields"]["top"] < g["h"] - 100, g
    # the list reaches down to the bottom of the window: no empty band below it
    assert g["h"] - g["panel"]["bottom"] <= 32, g
    assert g["wrap"]["height"] >= 0.45 * g["h"], g


def test_the_list_grows_with_the_window(sized: Any) -> None:
    small = sized(1400, 900)
    tall = sized(1400, 1300)
    assert tall["wrap"]["height"] - small["wrap"]["height"] >= 380  # most of the extra 400 px


def test_one_column_on_a_narrow_window(sized: Any) -> None:
    g = sized(800, 900)
    assert g["scrollWidth"] <= g["w"]
    # the list takes about a screen; selecting a row brings the detail (below it) into view
    assert g["wrap"]["height"] >= g["h"] - 260, g
    assert g["detail"]["top"] >= 0 and g["detail"]["top"] < g["h"] - 200, g
