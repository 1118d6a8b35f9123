"""``workerpool-tui attach``: the dashboard over a real server's HTTP + WebSocket API."""

from __future__ import annotations

from contextlib import AsyncExitStack

import anyio
import anyio.abc
import pytest
from live_server import free_port
from textual.widgets import Input, TextArea

from workerpool_tui.core import TaskStatus
from workerpool_tui.tui.remote_http import TOKEN_HINT
from workerpool_tui.tui.screens.confirm import ConfirmScreen
from workerpool_tui.tui.screens.detail import DetailScreen
from workerpool_tui.tui.screens.resize import ResizeScreen
from workerpool_tui.tui.screens.submit import SubmitScreen
from workerpool_tui.tui.widgets.task_table import TaskTable

from .attach_harness import attached, serve, server_config
from .harness import long_task, plain, until

pytestmark = pytest.mark.anyio


async def test_table_shows_the_servers_tasks_and_follows_them() -> None:
    async with serve() as server:
        engine = server.engine
        first = await engine.submit_many([long_task() for _ in range(3)])
        async with attached(server.address) as (app, _source, pilot):
            table = app.query_one(TaskTable)
            await until(pilot, lambda: set(table.shown_ids) == {t.id for t in first})
            assert "connected to http://127.0.0.1:" in app.sub_title
            [later] = await engine.submit_many([long_task()])  # a task event, not a snapshot
            await until(pilot, lambda: table.shown_ids[:1] == [later.id])
            await until(pilot, lambda: app.bridge.stats().tasks.total == 4)


async def test_submit_cancel_retry_reach_the_server() -> None:
    async with serve() as server:
        engine = server.engine
        async with attached(server.address) as (app, source, pilot):
            await pilot.press("n")
            await until(pilot, lambda: isinstance(app.screen, SubmitScreen))
            form = app.screen
            assert isinstance(form, SubmitScreen)
            await until(pilot, lambda: form.request is not None)
            form.query_one("#submit-payload", TextArea).text = '{"sleep": 30}'
            form.query_one("#submit-count", Input).value = "2"
            await pilot.pause()
            await pilot.press("ctrl+s")
            await until(pilot, lambda: len(engine.registry) == 2)
            table = app.query_one(TaskTable)
            await until(pilot, lambda: len(table.shown_ids) == 2)
            task_id = table.highlighted_id
            assert task_id is not None and engine.get(task_id) is not None

            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
            await pilot.press("y")
            await until(pilot, lambda: engine.get(task_id).status is TaskStatus.CANCELLED)  # type: ignore[union-attr]

            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, DetailScreen))
            await pilot.press("r")
            await until(pilot, lambda: len(engine.registry) == 3)
            again = next(t for t in engine.registry.newest() if t.retry_of == task_id)
            await until(pilot, lambda: source.get(again.id) is not None)


async def test_pause_and_resize_reach_the_server() -> None:
    async with serve() as server:
        engine = server.engine
        async with attached(server.address) as (app, _source, pilot):
            await pilot.press("p")
            await until(pilot, lambda: engine.paused)
            await until(pilot, lambda: app.bridge.paused())
            await pilot.press("p")
            await until(pilot, lambda: not engine.paused)

            await pilot.press("plus")
            await until(pilot, lambda: engine.pool_state().min == 3)
            await pilot.press("w")
            await until(pilot, lambda: isinstance(app.screen, ResizeScreen))
            form = app.screen
            form.query_one("#resize-min", Input).value = "1"
            form.query_one("#resize-max", Input).value = "5"
            await pilot.pause()
            await pilot.press("enter")
            await until(pilot, lambda: (engine.pool_state().min, engine.pool_state().max) == (1, 5))
            await until(pilot, lambda: app.bridge.pool().max == 5)


async def test_reconnects_with_a_fresh_view_and_no_duplicates() -> None:
    cfg = server_config(free_port())
    async with AsyncExitStack() as first:
        server = await first.enter_async_context(serve(cfg))
        server.engine.pause()  # pending tasks: the server stops without waiting for them
        ids = {t.id for t in await server.engine.submit_many([long_task() for _ in range(3)])}
        async with attached(server.address) as (app, source, pilot):
            table = app.query_one(TaskTable)
            await until(pilot, lambda: set(table.shown_ids) == ids)

            # The stream drops, the server stays: the fresh snapshot replaces the view.
            snapshots = source.snapshots
            await server.close_websockets()
            await until(pilot, lambda: source.snapshots > snapshots)
            await until(pilot, lambda: set(table.shown_ids) == ids)
            assert len(table.shown_ids) == len(ids)  # nothing duplicated

            # The server stops: the header says so and counts the attempts.
            snapshots = source.snapshots
            await first.aclose()
            await until(pilot, lambda: not source.connected)
            await until(pilot, lambda: "reconnecting in" in app.sub_title)
            assert "attempt" in app.sub_title

            # A new server on the same port (a memory store: none of the old tasks).
            async with serve(cfg) as again:
                await until(pilot, lambda: source.connected and source.snapshots > snapshots)
                [fresh] = await again.engine.submit_many([long_task()])
                await until(pilot, lambda: table.shown_ids == [fresh.id])
                await until(pilot, lambda: app.sub_title.startswith("connected to"))


async def test_refused_token_says_so_and_exits() -> None:
    async with serve(server_config(server={"auth_token": "right-token"})) as server:
        async with attached(server.address, "wrong-token", connect=False) as (app, source, pilot):
            await until(pilot, lambda: app.fatal_error is not None)
            assert app.fatal_error == TOKEN_HINT
            assert "pass --token" in TOKEN_HINT
            assert source.attempts == 0  # no retry loop hammering the server
        assert app.return_code == 1


async def test_opens_without_a_server_and_quits_at_once() -> None:
    async with attached("http://127.0.0.1:9", connect=False) as (app, source, pilot):
        await until(pilot, lambda: source.attempts >= 2)
        await until(pilot, lambda: "reconnecting in" in app.sub_title)
        assert "connection refused" in app.sub_title
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)
    assert app.return_code == 0


async def test_detail_view_reads_the_tasks_log_lines_from_the_server() -> None:
    async with serve() as server:
        engine = server.engine
        [task] = await engine.submit_many([long_task()])
        live = engine.get(task.id)
        assert live is not None
        live.add_log("hello from the handler")  # (the stream's events carry no log lines)
        async with attached(server.address) as (app, source, pilot):
            app.open_task(task.id)
            await until(pilot, lambda: isinstance(app.screen, DetailScreen))
            screen = app.screen

            def logs() -> str:
                return plain(screen.query_one("#detail-logs"))

            await until(pilot, lambda: "hello from the handler" in logs())
            live.add_log("a second line")
            await until(pilot, lambda: "a second line" in logs())
            await pilot.press("escape")  # the detail closes: no more reads of the task
            await until(pilot, lambda: not isinstance(app.screen, DetailScreen))
            seen = source.events_seen
            await until(pilot, lambda: source.events_seen > seen + 3)  # progress events
            folded = source.get(task.id)
            assert folded is not None and folded.progress > 0
            assert list(folded.logs or ()) == ["hello from the handler", "a second line"]


async def test_something_else_at_the_url_is_retried_and_named() -> None:
    """Not a workerpool server (an HTTP server answering 404 with HTML): the header says
    the upgrade was refused and keeps retrying with backoff; nothing crashes."""

    async def not_workerpool(client: anyio.abc.SocketStream) -> None:
        async with client:
            with anyio.move_on_after(2):
                await client.receive()
                body = b"<html>nope</html>"
                await client.send(
                    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
                )

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, not_workerpool)
        async with attached(f"http://127.0.0.1:{port}", connect=False) as (app, source, pilot):
            await until(pilot, lambda: source.attempts >= 2)
            await until(pilot, lambda: "reconnecting in" in app.sub_title)
            assert "refused" in app.sub_title and "HTTP 404" in app.sub_title
            assert app.fatal_error is None and app.is_running
        tg.cancel_scope.cancel()
