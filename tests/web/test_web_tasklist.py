"""tasklist.js against a scripted server, in the browser: orders of events and answers that a
real server produces only now and then, made to happen every time."""

from __future__ import annotations

from typing import Any

import pytest
from live_server import LiveServer

pytestmark = pytest.mark.browser

HARNESS = """
async () => {
  const { TaskList } = await import("/static/tasklist.js");
  let n = 0;
  const task = () => {
    n += 1;
    const at = new Date(Date.UTC(2026, 0, 1) + n * 1000).toISOString();
    return { id: `t${String(n).padStart(5, "0")}`, type: "default_task", status: "completed",
             attempts: 1, progress: 100, created_at: at, started_at: at, finished_at: at };
  };
  const server = [];  // newest first
  for (let i = 0; i < 120; i++) server.unshift(task());
  let hold = false;
  const held = [];
  const answer = (params) => {
    const offset = Number(params.get("offset"));
    const limit = Number(params.get("limit"));
    return { tasks: server.slice(offset, offset + limit), total: server.length };
  };
  const fetchPage = (params) => new Promise((resolve) => {
    // held answers are computed when released: the server answers after what happened
    if (hold) held.push(() => resolve(answer(params)));
    else resolve(answer(params));
  });
  const list = new TaskList({ fetchPage, onChange() {}, pageSize: 50, maxTasks: 2000 });
  const settle = async () => {
    for (let i = 0; i < 400 && (list.inflight || list.dirty || list.timer); i++) {
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  list.setQuery({ statuses: ["completed"] });
  await settle();
  list.goTo(50);
  await settle();
  const before = [...list.ids];
  const result = { before: [before[0], before.length, list.offset] };

  // five tasks complete above the page; the page's request is answered after that, and
  // the five events reach the page only after the answer
  hold = true;
  list.markDirty();
  await new Promise((r) => setTimeout(r, 600));  // the request is out (0.5 s spacing)
  const fresh = [task(), task(), task(), task(), task()];
  for (const t of fresh) server.unshift(t);
  hold = false;
  held.splice(0).forEach((release) => release());
  while (list.inflight) await new Promise((r) => setTimeout(r, 10));
  for (const t of fresh) list.onEvent("completed", t);
  result.rowsKept = list.ids.join() === before.join();
  await settle();
  result.after = { same: list.ids.join() === before.join(), offset: list.offset,
                   total: list.total };
  return result;
}
"""


def test_a_deeper_page_keeps_its_rows_when_events_trail_the_answer(
    page: Any, server: LiveServer
) -> None:
    page.goto(server.url + "/")
    result = page.evaluate(HARNESS)
    assert result["before"] == ["t00070", 50, 50]
    # the answer already counted the five tasks above the page: the rows on screen stay,
    # they do not jump by five and back (they used to)
    assert result["rowsKept"], result
    assert result["after"] == {"same": True, "offset": 55, "total": 125}, result
