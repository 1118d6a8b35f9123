"""The engine stays free of the adapters and their libraries (checked in a fresh process)."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = (
    "textual",
    "rich",
    "h11",
    "httptools",
    "uvloop",
    "wsproto",
    "workerpool_tui.tui",
    "workerpool_tui.server",
    "workerpool_tui.client",
)


def test_core_imports_no_adapter() -> None:
    code = (
        "import sys, workerpool_tui.core, workerpool_tui.core.engine, workerpool_tui.core.shell\n"
        f"f = {FORBIDDEN!r}\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in f or m.startswith(f)]\n"
        "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"core imported: {out.stdout.strip()}"


def test_the_embedded_dashboard_imports_no_client() -> None:
    """Only ``attach`` needs the HTTP client: the in-process dashboard stays without it
    (bench/dashboard.py runs with bench/ first on sys.path, where http.py would hide the
    standard library's ``http`` the client needs)."""
    code = (
        "import sys, workerpool_tui.tui.app, workerpool_tui.tui.run\n"
        "bad = [m for m in sys.modules if m.startswith('workerpool_tui.client')"
        " or m == 'http.client']\n"
        "print(','.join(sorted(bad)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"the embedded dashboard imported: {out.stdout.strip()}"
