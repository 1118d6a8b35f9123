"""Suite-wide settings: an isolated environment for every test, the skip families, and the
usual SIGINT for the processes tests start.

A *skip family* is a pytest marker for tests that need something outside Python (a browser,
a PostgreSQL server). Such a test skips (``pytest.skip`` in it or in a fixture) when the
thing is missing, and the run ends with one line per family and reason, e.g.
``3 browser tests skipped: /usr/bin/chromium is not installed (apt-get install chromium)``.
Under ``CI=true`` a skip in a family is turned into a failure: CI must never pass by
skipping. A new family is one entry in :data:`SKIP_FAMILIES` plus a marker in
``pyproject.toml``; the tests of ``tests/web/`` and ``tests/postgres/`` are marked by their
directory (:data:`FAMILY_DIRS`), others with ``@pytest.mark.NAME``.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ("pytester",)

SKIP_FAMILIES: dict[str, str] = {
    "browser": "browser",
    "postgres": "PostgreSQL",
}
"""Marker name -> what the summary line calls its tests ("3 PostgreSQL tests skipped: ...")."""

FAMILY_DIRS: dict[str, str] = {"web": "browser", "postgres": "postgres"}
"""Every test under ``tests/<dir>/`` carries its family's marker without writing it."""

_TESTS = Path(__file__).resolve().parent

_STASH = pytest.StashKey[Counter[tuple[str, str]]]()


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def _family(item: pytest.Item) -> str | None:
    for name in SKIP_FAMILIES:
        if item.get_closest_marker(name) is not None:
            return name
    return None


def _skip_reason(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr)
    return reason.removeprefix("Skipped: ")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_STASH] = Counter()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A shell's `cmd &` (and so `nohup make test &`) starts the run with SIGINT ignored,
        # and every process a test starts would inherit that: the tests that stop a child
        # with SIGINT (`watch`, `submit --wait`) then wait in vain. Give children the usual
        # Ctrl+C; a run in the background gets no Ctrl+C from the terminal anyway.
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            top = item.path.resolve().relative_to(_TESTS).parts[0]
        except ValueError:
            continue
        marker = FAMILY_DIRS.get(top)
        if marker is not None and item.get_closest_marker(marker) is None:
            item.add_marker(marker)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    family = _family(item) if report.skipped else None
    if family is None:
        return report
    reason = _skip_reason(report)
    if _in_ci():
        report.outcome = "failed"
        report.longrepr = (
            f"{SKIP_FAMILIES[family]} test skipped under CI=true (CI must run it): {reason}"
        )
    else:
        item.config.stash[_STASH][(family, reason)] += 1
    return report


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    skipped = config.stash.get(_STASH, Counter())
    for (family, reason), count in sorted(skipped.items()):
        noun = "test" if count == 1 else "tests"
        terminalreporter.write_line(
            f"{count} {SKIP_FAMILIES[family]} {noun} skipped: {reason}",
            yellow=True,
            bold=True,
        )
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int) and config.pluginmanager.hasplugin("randomly"):
        terminalreporter.write_line(
            f"random order: --randomly-seed={seed} repeats it (-p no:randomly: file order)"
        )


@pytest.fixture(autouse=True)
def _isolated_env(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Tests never read the developer's config, home or data directory."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    for name in list(os.environ):
        if name.startswith("WORKERPOOL"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(home)
    yield
