"""PostgreSQL for the cluster tests: the real server, one schema per test, dropped after.

The server is ``WORKERPOOL_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``,
what these machines and CI run). Where none answers the tests skip, and the run's summary
says so in one line; under ``CI=true`` an unreachable server fails them instead.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The engine helpers (tests/core/enginekit.py) serve these tests too.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))

psycopg = pytest.importorskip("psycopg")

PG_URL = os.environ.get("WORKERPOOL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_reachable: bool | None = None
_why = ""


def _check() -> tuple[bool, str]:
    global _reachable, _why
    if _reachable is None:
        try:
            with psycopg.connect(PG_URL, connect_timeout=3) as conn:
                conn.execute("SELECT 1")
            _reachable = True
        except psycopg.Error as exc:
            _reachable, _why = False, str(exc).strip().splitlines()[0]
    return _reachable, _why


@pytest.fixture
def pg_url() -> str:
    ok, why = _check()
    if not ok:
        message = f"no PostgreSQL at {PG_URL}: {why}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true: PostgreSQL tests never skip)")
        pytest.skip(message)
    return PG_URL


@pytest.fixture
def pg_schema(pg_url: str) -> Iterator[str]:
    """A fresh schema name for this test; the schema is dropped after it."""
    name = f"wpt_{secrets.token_hex(6)}"
    yield name
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
