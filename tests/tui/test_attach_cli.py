"""``workerpool-tui attach`` as a user runs it: a real process on a pseudo-terminal
against a real ``serve`` in another process."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from live_server import LiveServer

from .test_fatal_exit import Terminal, terminal_env

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="a pseudo-terminal")


def _attach(tmp_path: Path, *args: str) -> Terminal:
    env = terminal_env(tmp_path)
    return Terminal([sys.executable, "-m", "workerpool_tui", "attach", *args], env, tmp_path)


def test_connects_then_q_leaves_at_once_and_the_server_goes_on(tmp_path: Path) -> None:
    server = LiveServer(tmp_path, token="right-token").start()
    try:
        term = _attach(tmp_path, server.url, "--token", "right-token")
        term.until(lambda: b"connected to" in term.output, "the connection in the header")
        term.send(b"q")
        term.finish("attach to exit")
        assert term.proc.returncode == 0
        assert server.proc is not None and server.proc.poll() is None  # still serving
    finally:
        server.stop()


def test_a_refused_token_is_one_line_and_exit_1(tmp_path: Path) -> None:
    server = LiveServer(tmp_path, token="right-token").start()
    try:
        term = _attach(tmp_path, "--url", server.url, "--token", "wrong-token")
        text = term.finish("attach to exit")
    finally:
        server.stop()
    assert term.proc.returncode == 1
    reasons = re.findall(r"error: [^\x1b\n]*", text)
    assert reasons == [
        "error: the server refused the token: pass --token, or set WORKERPOOL_TOKEN"
        " or server.auth_token"
    ], text[-400:]


def test_a_bad_url_is_usage_exit_2(tmp_path: Path) -> None:
    term = _attach(tmp_path, "ftp://example")
    text = term.finish("attach to exit")
    assert "error: --url: expected http://HOST:PORT" in text
    assert term.proc.returncode == 2
