"""Take ``screenshots/web.png``: the page in headless Chromium with a real server at work.

Run from the repository root: ``.venv/bin/python tests/web/screenshot.py``. It starts
``workerpool-tui serve`` on a free loopback port, feeds it a mix of tasks for about half a
minute (so that the charts have something to show), selects a running task, saves the
screenshot and stops the server.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import CHROMIUM, CHROMIUM_ARGS
from live_server import LiveServer

OUT = Path(__file__).resolve().parents[2] / "screenshots" / "web.png"
FEED_S = 30.0


def main() -> int:
    settings = {
        "WORKERPOOL__WORKER__MIN_WORKERS": "3",
        "WORKERPOOL__WORKER__MAX_WORKERS": "12",
        "WORKERPOOL__WORKER__SCALE_CHECK_INTERVAL": '"2s"',
    }
    with tempfile.TemporaryDirectory() as tmp, LiveServer(Path(tmp), settings=settings) as live:
        api = httpx.Client(base_url=live.url, timeout=10)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(live.url + "/")
            page.wait_for_selector("#conn[data-state='open']")
            long_ids = []
            for i in range(4):
                spec = {
                    "type": "long_running_task",
                    "payload": {"duration": 60, "steps": 120},
                    "priority": i,
                }
                long_ids.append(api.post("/api/v1/tasks", json=spec).json()["id"])
            started = time.monotonic()
            wave = 0
            while time.monotonic() - started < FEED_S:
                wave += 1
                tasks = [
                    {"type": "example_task", "priority": wave % 3} for _ in range(4 + wave % 7)
                ]
                tasks.append({"type": "default_task", "payload": {"sleep": 1.5, "wave": wave}})
                if wave % 6 == 0:
                    tasks.append({"type": "default_task", "payload": {"fail": True}})
                api.post("/api/v1/tasks/batch", json={"tasks": tasks})
                page.wait_for_timeout(1500)
            cancel = api.post("/api/v1/tasks", json={"type": "long_running_task"}).json()
            api.delete(f"/api/v1/tasks/{cancel['id']}")
            page.click("#status-filter .chip[data-status='running']")
            page.locator(f"#tasks-body tr[data-id='{long_ids[-1]}']").click()
            page.click("#status-filter .chip[data-status='']")
            page.wait_for_selector("#detail-body:not([hidden])")
            page.wait_for_timeout(1200)
            page.evaluate("document.querySelector('.table-wrap').scrollTop = 0")
            page.mouse.move(0, 0)
            OUT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(OUT))  # the page is the viewport
            browser.close()
        api.close()
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
