"""The browser fixture leaves the main thread free for other tests' event loops."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

pytestmark = pytest.mark.browser


def test_event_loops_run_in_the_main_thread_while_the_browser_is_open(browser: Any) -> None:
    page = browser.new_page()
    try:
        page.set_content("<p id='p'>hello</p>")
        assert page.text_content("#p") == "hello"

        async def answer() -> int:
            await asyncio.sleep(0)
            return 42

        # Playwright's sync API left its loop marked as running in this thread, so these
        # raised "Cannot run the event loop while another loop is running" (and every
        # Textual or anyio test that ran after a browser test failed the same way).
        assert asyncio.run(answer()) == 42
        assert anyio.run(answer) == 42
        assert page.evaluate("1 + 1") == 2  # and the page still answers afterwards
    finally:
        page.close()
