"""How the process ends: every bad input is one line on stderr and exit 2, never a
traceback (issue #15 §6), each tried through the real command line; and the process never
hangs at exit on a thread that outlived the run."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from workerpool_tui.config import load_config
from workerpool_tui.core import Engine, TaskSpec
from workerpool_tui.store.sqlite import SqliteJournal

_STUCK = """
import threading
from workerpool_tui import cli

cli.EXIT_JOIN_S = 0.2
threading.Thread(target=threading.Event().wait, name="stuck handler").start()
cli._leave_stuck_threads(3)
print("not reached")
"""


def test_a_thread_that_outlives_the_run_does_not_keep_the_process() -> None:
    out = subprocess.run([sys.executable, "-c", _STUCK], capture_output=True, text=True, timeout=30)
    assert out.returncode == 3
    assert "leaving a thread that did not stop: stuck handler" in out.stderr
    assert "not reached" not in out.stdout


NOBODY = "http://127.0.0.1:9"
"""Client commands below must fail on their input before they try to connect."""
BAD = "\udcff\udcfe"
"""The bytes 0xff 0xfe, as Python hands undecodable bytes of argv and environ over."""


def run_cli(
    home: Path, *argv: str, env: dict[str, str] | None = None, stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WORKERPOOL")}
    environ.update({"HOME": str(home), "XDG_DATA_HOME": str(home / "data"), "NO_COLOR": "1"})
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "workerpool_tui", *argv],
        capture_output=True,
        input=stdin,
        cwd=home,
        env=environ,
        timeout=60,
        check=False,
    )


def assert_one_line_exit_2(done: subprocess.CompletedProcess[bytes], *words: str) -> None:
    err = done.stderr.decode("utf-8", "backslashreplace")
    assert done.returncode == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    for word in words:
        assert word in lines[0], err


FILES: dict[str, bytes] = {
    "utf16.toml": b"\xff\xfe[server]\n",
    "latin1.toml": b'[server]\nhost = "caf\xe9"\n',
    "header0.toml": b"[server]\nheader_timeout = 0\n",
    "keepalive0.toml": b'[server]\nkeep_alive_timeout = "0s"\n',
    "retries.toml": b"[task]\ndefault_max_retries = 1000\n",
    "latin1.json": b'{"name": "caf\xe9"}',
}

CASES = [
    pytest.param(
        ["--config", "utf16.toml", "serve"],
        {},
        b"",
        ("utf16.toml", "UTF-16 byte-order mark", "must be saved as UTF-8"),
        id="config-ff-fe",
    ),
    pytest.param(
        ["--config", "latin1.toml", "serve"],
        {},
        b"",
        ("latin1.toml", "not UTF-8 text: byte 0xe9 at line 2"),
        id="config-latin1",
    ),
    pytest.param(
        ["--config", "header0.toml", "serve"],
        {},
        b"",
        ("server.header_timeout: must be greater than 0",),
        id="header-timeout-0",
    ),
    pytest.param(
        ["--config", "keepalive0.toml", "serve"],
        {},
        b"",
        ("server.keep_alive_timeout: must be greater than 0",),
        id="keep-alive-0",
    ),
    pytest.param(
        ["--config", "retries.toml", "serve"],
        {},
        b"",
        ("task.default_max_retries: must be at most 100",),
        id="retries-over-limit",
    ),
    pytest.param(
        ["serve"],
        {"WORKERPOOL__SERVER__AUTH_TOKEN": BAD},
        b"",
        ("environment WORKERPOOL__SERVER__AUTH_TOKEN: not valid UTF-8 text",),
        id="env-token-bytes",
    ),
    pytest.param(
        ["serve"],
        {"WORKERPOOL__SERVER__AUTH_TOKEN": "two words"},
        b"",
        ("server.auth_token: must be visible ASCII",),
        id="env-token-space",
    ),
    pytest.param(
        ["serve", "--host", BAD], {}, b"", ("--host: not valid UTF-8 text",), id="host-bytes"
    ),
    pytest.param(
        ["serve", "--store", "x" + BAD],
        {},
        b"",
        ("--store: not valid UTF-8 text",),
        id="store-bytes",
    ),
    pytest.param(
        ["stats", "--url", NOBODY, "--token", BAD],
        {},
        b"",
        ("--token: not valid UTF-8 text",),
        id="token-bytes",
    ),
    pytest.param(
        ["stats", "--url", NOBODY],
        {"WORKERPOOL_TOKEN": BAD},
        b"",
        ("WORKERPOOL_TOKEN: a token must be visible ASCII",),
        id="env-client-token-bytes",
    ),
    pytest.param(
        ["stats", "--url", "http://" + BAD],
        {},
        b"",
        ("--url: not valid UTF-8 text",),
        id="url-bytes",
    ),
    pytest.param(
        ["submit", "t" + BAD, "--url", NOBODY],
        {},
        b"",
        ("TYPE: not valid UTF-8 text",),
        id="type-bytes",
    ),
    pytest.param(
        ["submit", "default_task", "--payload", '{"a": "' + BAD + '"}', "--url", NOBODY],
        {},
        b"",
        ("--payload: not valid UTF-8 text",),
        id="payload-bytes",
    ),
    pytest.param(
        ["submit", "default_task", "--payload", "@latin1.json", "--url", NOBODY],
        {},
        b"",
        ("--payload @latin1.json: not UTF-8 text (byte 0xe9",),
        id="payload-file-latin1",
    ),
    pytest.param(
        ["submit", "default_task", "--payload", "-", "--url", NOBODY],
        {},
        b'{"a": "\xff"}',
        ("--payload (stdin): not UTF-8 text (byte 0xff",),
        id="payload-stdin-bytes",
    ),
    pytest.param(
        ["get", "abcd" + BAD, "--url", NOBODY],
        {},
        b"",
        ("ID: not valid UTF-8 text",),
        id="id-bytes",
    ),
]


@pytest.mark.parametrize(("argv", "env", "stdin", "words"), CASES)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, argv: list[str], env: dict[str, str], stdin: bytes, words: tuple[str, ...]
) -> None:
    for name, data in FILES.items():
        (tmp_path / name).write_bytes(data)
    assert_one_line_exit_2(run_cli(tmp_path, *argv, env=env, stdin=stdin), *words)


# ------------------------------------------------------------------ a damaged store


async def _fill(db: Path, n: int) -> None:
    cfg = load_config(
        None,
        environ={},
        overrides={"worker": {"min_workers": 0, "enable_auto_scaling": False}},
    )
    async with Engine(cfg, journal=SqliteJournal(db)) as engine:
        await engine.submit_many(
            [TaskSpec(type="default_task", payload={"i": i, "pad": "x" * 200}) for i in range(n)]
        )
        await engine.shutdown()


def _damage_with_many_problems(db: Path) -> bytes:
    """Overwrite one b-tree page's cell count so that ``quick_check`` lists several
    problems (rather than failing outright): the case that used to print six lines."""
    good = db.read_bytes()
    page = 4096
    for number in range(1, len(good) // page):
        data = bytearray(good)
        data[number * page + 3 : number * page + 5] = b"\x00\x40"
        db.write_bytes(bytes(data))
        conn = sqlite3.connect(db)
        try:
            rows = [r[0] for r in conn.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError:
            continue
        finally:
            conn.close()
        if sum(len(str(row).splitlines()) for row in rows) > 2:
            return bytes(data)
    raise AssertionError("no damage found that quick_check reports as several problems")


def test_a_damaged_store_is_one_line_naming_the_first_problem(tmp_path: Path) -> None:
    db = tmp_path / "tasks.db"
    anyio.run(_fill, db, 300)
    damaged = _damage_with_many_problems(db)
    done = run_cli(tmp_path, "serve", "--no-server", "--store", str(db), "--log-level", "error")
    assert_one_line_exit_2(done, f"store {db} is corrupt (quick_check: ", "problems reported")
    assert "*** in database" not in done.stderr.decode()
    logged = done.stdout.decode().splitlines()
    assert len(logged) >= 3 and all("quick_check" in line for line in logged), logged
    assert db.read_bytes() == damaged  # left untouched
