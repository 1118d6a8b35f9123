"""Something other than workerpool-tui on the port (issue #10 §5): every client command
says that no workerpool server answers there and exits 3 (SPEC §11)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import Cli, run
from live_server import LiveServer, free_port

COMMANDS = [
    ["list"],
    ["stats"],
    ["get", "abcd1234"],
    ["cancel", "abcd1234"],
    ["retry", "abcd1234"],
    ["submit", "example_task"],
    ["submit", "example_task", "--count", "3"],
    ["watch"],
]


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m http.server`` on a free loopback port: a web server, not ours."""
    port = free_port()
    root = tmp_path_factory.mktemp("www")
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "no http.server"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def banner_server() -> Iterator[str]:
    """A TCP service that is not HTTP at all: like an SSH server, it greets, then reads
    what the client says until the client hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
                try:
                    while conn.recv(4096):
                        pass
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()


def test_a_web_server_on_the_port_is_no_workerpool_server(tmp_path: Path, http_server: str) -> None:
    as_user = run("list", "--url", http_server, home=tmp_path)
    assert as_user.returncode == 3
    assert as_user.stderr == (
        f"error: no workerpool server answers at {http_server} — something else does"
        " (GET /api/v1/tasks: HTTP 404 File not found); check --url or --port\n"
    )


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_exits_3_against_a_web_server(
    cli: Cli, http_server: str, command: list[str]
) -> None:
    done = cli(*command, "--url", http_server)
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith(f"error: no workerpool server answers at {http_server}")
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stdout == ""


@pytest.mark.parametrize(
    "command", [["stats"], ["submit", "example_task"], ["watch"]], ids=" ".join
)
def test_a_service_that_is_not_http_is_no_workerpool_server(
    cli: Cli, banner_server: str, command: list[str]
) -> None:
    done = cli(*command, "--url", banner_server)
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip() == (
        f"error: no workerpool server answers at {banner_server} — something else does"
        " (it does not speak HTTP); check --url or --port"
    )


def test_our_server_is_still_recognised(cli: Cli, server: LiveServer) -> None:
    """The check costs nothing on the normal path, and a refusal is still a refusal."""
    assert cli("stats", "--url", server.url).returncode == 0
    missing = cli("get", "no-such-task", "--url", server.url)
    assert missing.returncode == 1
    assert "not_found" in missing.stderr
    wrong_place = cli("stats", "--url", server.url + "/not/here")
    assert wrong_place.returncode == 1  # our server, answering "no such endpoint"
    assert "not_found" in wrong_place.stderr
