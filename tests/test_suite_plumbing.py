"""The suite's own plumbing (tests/conftest.py): skip families, the random-order seed, and
SIGINT for child processes.

Each case runs a small pytest session in a subprocess with this repository's conftest.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).resolve().parent / "conftest.py"

TESTS = """
import pytest

@pytest.fixture
def chromium():
    pytest.skip("/usr/bin/chromium is not installed (apt-get install chromium)")

@pytest.mark.browser
def test_page_a(chromium):
    pass

@pytest.mark.browser
def test_page_b(chromium):
    pass

@pytest.mark.postgres
def test_cluster():
    pytest.skip("no server at 127.0.0.1:5432")

@pytest.mark.skip(reason="not today")
def test_unrelated():
    pass

def test_plain():
    pass
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini(
        "[pytest]\nmarkers =\n    browser: needs a browser\n    postgres: needs PostgreSQL\n"
    )
    pytester.makepyfile(test_things=TESTS)
    return pytester


def test_skipped_families_are_counted_at_the_end(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = suite.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(passed=1, skipped=4)
    lines = result.stdout.lines
    assert (
        "2 browser tests skipped: /usr/bin/chromium is not installed (apt-get install chromium)"
        in lines
    )
    assert "1 PostgreSQL test skipped: no server at 127.0.0.1:5432" in lines
    assert not any("not today" in line and "tests skipped" in line for line in lines)
    # the summary comes after the short test summary, right before pytest's closing line
    assert lines.index("1 PostgreSQL test skipped: no server at 127.0.0.1:5432") > len(lines) - 5


def test_ci_fails_instead_of_skipping(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CI", "true")
    result = suite.runpytest_subprocess("-p", "no:randomly")
    # a skip in a fixture (setup) becomes an error, a skip in the test a failure
    result.assert_outcomes(passed=1, skipped=1, errors=2, failed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*browser test skipped under CI=true (CI must run it): /usr/bin/chromium is not*",
            "*PostgreSQL test skipped under CI=true (CI must run it): no server at 127.0.0.1:5432",
        ]
    )
    assert not any("tests skipped:" in line for line in result.stdout.lines)


def test_the_random_order_seed_is_printed_at_the_end(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    result = suite.runpytest_subprocess("-q", "-p", "randomly", "--randomly-seed=4242")
    result.stdout.fnmatch_lines(["random order: --randomly-seed=4242 repeats it*"])


CHILD_SIGINT = """
import signal, subprocess, sys

def test_a_child_gets_the_usual_sigint():
    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    assert out.strip() == "True"
"""


def test_children_get_sigint_when_the_run_started_with_it_ignored(tmp_path: Path) -> None:
    """``make test &`` ignores SIGINT in the run; a test's ``watch`` child must still stop
    on Ctrl+C (it stayed up and its test timed out)."""
    (tmp_path / "conftest.py").write_text(CONFTEST.read_text())
    (tmp_path / "test_child.py").write_text(CHILD_SIGINT)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as `cmd &` does
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tests_under_web_and_postgres_are_in_their_family_unmarked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    pytester.makeconftest(CONFTEST.read_text())
    pytester.makeini(
        "[pytest]\nmarkers =\n    browser: needs a browser\n    postgres: needs PostgreSQL\n"
    )
    for folder, reason in (("web", "no chromium"), ("postgres", "no server")):
        (pytester.path / folder).mkdir()
        (pytester.path / folder / f"test_{folder}.py").write_text(
            f"import pytest\n\ndef test_it():\n    pytest.skip({reason!r})\n"
        )
    result = pytester.runpytest_subprocess("-p", "no:randomly")
    result.assert_outcomes(skipped=2)
    assert "1 browser test skipped: no chromium" in result.stdout.lines
    assert "1 PostgreSQL test skipped: no server" in result.stdout.lines
