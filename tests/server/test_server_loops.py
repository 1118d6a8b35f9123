"""``[server] loop`` (``workerpool_tui/eventloop.py``): which loop ``serve`` runs on, and the
server's socket-level tests again on uvloop (the loop ``auto`` picks when it is installed).

The tests of ``test_server_transport.py``, ``test_server_parsing.py`` and
``test_server_hostile.py`` are imported here, so pytest runs each a second time under this
module's ``anyio_backend``: asyncio with uvloop's loop.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import uvloop
from test_server_hostile import *  # noqa: F403  (collected again, on uvloop)
from test_server_parsing import *  # noqa: F403
from test_server_serve import LISTENING, serve_env
from test_server_transport import *  # noqa: F403

from workerpool_tui.config import ConfigError
from workerpool_tui.eventloop import backend_options, loop_factory, running_loop_name

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ("asyncio", {"loop_factory": uvloop.new_event_loop})


async def test_these_tests_run_on_uvloop() -> None:
    assert running_loop_name() == "uvloop"


def test_loop_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    assert loop_factory("asyncio") is None
    assert loop_factory("auto") is uvloop.new_event_loop
    assert backend_options("uvloop") == {"loop_factory": uvloop.new_event_loop}
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if it were not installed
    assert loop_factory("auto") is None
    assert backend_options("auto") == {}
    with pytest.raises(ConfigError, match=r"uvloop is not installed.*\[fast\]"):
        loop_factory("uvloop")


@pytest.mark.parametrize(("choice", "expected"), [("auto", "uvloop"), ("asyncio", "asyncio")])
async def test_serve_runs_on_the_configured_loop(
    tmp_path: Path, choice: str, expected: str
) -> None:
    cmd = [sys.executable, "-m", "workerpool_tui", "serve", "--port", "0", "--log-level", "info"]
    env = serve_env(WORKERPOOL__SERVER__LOOP=choice)
    async with await anyio.open_process(cmd, env=env, cwd=tmp_path) as proc:
        assert proc.stdout is not None
        out = ""
        try:
            with anyio.fail_after(15):
                while not LISTENING.search(out) or f"({expected} loop)" not in out:
                    out += (await proc.stdout.receive()).decode(errors="replace")
        finally:
            proc.terminate()
            with anyio.fail_after(10):
                await proc.wait()
