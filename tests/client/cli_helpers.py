"""How the command-line tests run the CLI: as a user does (a subprocess) or through the
same ``main()`` in this process, and how they read a child's output as it comes."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from live_server import isolated_env

from workerpool_tui.cli import main

RUN_TIMEOUT_S = 30.0


def run(
    *argv: str, env: dict[str, str] | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workerpool_tui", *argv],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=env if env is not None else isolated_env(home or Path.cwd()),
        cwd=home or Path.cwd(),
    )


def run_json(*argv: str) -> Any:
    done = run(*argv, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Cli:
    """The same ``main()`` the console script calls, in this process (no interpreter start)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys

    def __call__(self, *argv: str) -> subprocess.CompletedProcess[str]:
        self._capsys.readouterr()
        code = main(list(argv))
        out, err = self._capsys.readouterr()
        return subprocess.CompletedProcess(list(argv), code, out, err)

    def json(self, *argv: str) -> Any:
        done = self(*argv, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)


class LineReader:
    """Lines of a child's stdout, read by a thread, waited for with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._q: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        self._thread = threading.Thread(
            target=lambda: [self._q.put(line) for line in stream], daemon=True
        )
        self._thread.start()

    def wait_for(self, *needles: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            for line in self.seen:
                if all(n in line for n in needles):
                    return line
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no line with {needles} in {self.seen}")
            try:
                self.seen.append(self._q.get(timeout=left))
            except queue.Empty:
                continue
