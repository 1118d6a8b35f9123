"""Headless Chromium (Debian's package) driven by Playwright, against a real ``serve``.

Every test here is marked ``browser`` (``pytestmark`` in each module). When
``/usr/bin/chromium`` or the Playwright package is missing they skip, and the run ends with
a line counting them; under ``CI=true`` they fail instead (tests/conftest.py).
``playwright install`` is never run: the system browser is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from live_server import LiveServer
from playwright_thread import launch_chromium

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session, on its own thread (playwright_thread.py)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
    with launch_chromium(CHROMIUM, CHROMIUM_ARGS) as browser:
        yield browser


CHATTY_MODULE = """
import anyio


async def chatty(ctx, payload):
    \"\"\"Writes log lines, then waits to be released or cancelled.\"\"\"
    for i in range(int(payload.get("lines", 3))):
        ctx.log(f"line {i + 1} from {ctx.task_id}")
    await anyio.sleep(float(payload.get("sleep", 0)))
    return {"lines": int(payload.get("lines", 3))}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real server with one extra task type, ``chatty``, whose handler writes log lines."""
    workdir = tmp_path_factory.mktemp("web-serve")
    (workdir / "web_test_tasks.py").write_text(CHATTY_MODULE)
    settings = {"WORKERPOOL__TASK__HANDLERS__CHATTY": '"web_test_tasks:chatty"'}
    with LiveServer(workdir, settings=settings) as live:
        yield live


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A server of this test's own, for exact counts: nothing else submits to it."""
    with LiveServer(tmp_path) as live:
        yield live


class ConsoleLog:
    """Console errors and uncaught exceptions of one page."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def on_console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def on_page_error(self, error: Any) -> None:
        self.errors.append(f"uncaught: {error}")


@pytest.fixture
def console() -> ConsoleLog:
    return ConsoleLog()


@pytest.fixture
def page(browser: Any, console: ConsoleLog) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("console", console.on_console)
    page.on("pageerror", console.on_page_error)
    try:
        yield page
    finally:
        context.close()
