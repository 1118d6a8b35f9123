"""Connecting to the cluster's PostgreSQL: the URL, the connection pool, the schema.

Everything that can go wrong at start is one line (:class:`~workerpool_tui.store.StoreError`,
exit 2 from the CLI): a malformed URL, a server that does not answer, refused credentials,
a missing database, a schema newer than this program. The URL in every message has its
password masked.

The schema is created or migrated under a session advisory lock keyed by the schema's
name, so that instances starting at once take turns: the first migrates, the others find
it done.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from ..errors import StoreError
from .migrations import migration
from .schema import SCHEMA_VERSION

CONNECT_TIMEOUT_S = 5
_logger = logging.getLogger("workerpool_tui.store")


def redact(url: str) -> str:
    """The URL with its password (if any) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unreadable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    masked = f"{user}:***@{netloc[1]}" if len(netloc) == 2 else parts.netloc
    return urlunsplit(parts._replace(netloc=masked))


def is_postgres_url(value: str) -> bool:
    return value.startswith(("postgresql://", "postgres://"))


def check_url(url: str) -> str:
    """``url`` if psycopg can read it as a connection URL; ``StoreError`` otherwise."""
    if not is_postgres_url(url):
        raise StoreError(f"store url {redact(url)!r}: expected postgresql://user@host/database")
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise StoreError(f"store {redact(url)}: invalid URL: {_first_line(exc)}") from None
    return url


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # psycopg says 'connection failed: connection to server at "h", port p failed: FATAL: ...'
    text = re.sub(r"\s+", " ", text)
    return text.removeprefix("connection failed: ") or type(exc).__name__


def describe(exc: BaseException) -> str:
    """One line for a connection or query failure."""
    return _first_line(exc)


async def connect(
    url: str, *, name: str = "start-up", autocommit: bool = True
) -> psycopg.AsyncConnection[Any]:
    """One connection, with start-up errors as one line."""
    try:
        return await psycopg.AsyncConnection.connect(
            url,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=application_name(name),
        )
    except psycopg.Error as exc:
        raise StoreError(f"store {redact(url)}: cannot connect: {_first_line(exc)}") from None


def application_name(instance: str) -> str:
    """What ``pg_stat_activity`` shows for this instance's connections."""
    return f"workerpool-tui {instance}"[:63]


class CountingPool(AsyncConnectionPool):
    """The pool, counting the connections taken from it: each is one round of queries
    (what tests and benchmarks read to check an idle instance stays quiet)."""

    checkouts = 0

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[Any]:
        self.checkouts += 1
        async with super().connection(timeout) as conn:
            yield conn


def make_pool(
    url: str, *, instance_id: int, name: str, min_size: int = 1, max_size: int = 4
) -> CountingPool:
    """The instance's connection pool (not open yet). Every connection says which instance
    it serves (``workerpool.instance``), which the triggers put in change notifications."""

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(
            sql.SQL("SELECT set_config('workerpool.instance', {}, false)").format(
                sql.Literal(str(instance_id))
            )
        )

    return CountingPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        kwargs={
            "autocommit": True,
            "connect_timeout": CONNECT_TIMEOUT_S,
            "application_name": application_name(name),
        },
        configure=configure,
        timeout=CONNECT_TIMEOUT_S,
        reconnect_timeout=0,  # keep trying for ever: PostgreSQL may come back
        name=f"workerpool-{instance_id}",
    )


async def ensure_schema(conn: psycopg.AsyncConnection[Any], url: str, schema: str) -> int:
    """Create or migrate ``schema`` to :data:`SCHEMA_VERSION`; returns the version found.
    Refuses (``StoreError``) a schema newer than this program."""
    lock_key = sql.Literal(f"workerpool-tui schema {schema}")
    try:
        await conn.execute(sql.SQL("SELECT pg_advisory_lock(hashtext({}))").format(lock_key))
        try:
            return await _migrate(conn, url, schema)
        finally:
            await conn.execute(sql.SQL("SELECT pg_advisory_unlock(hashtext({}))").format(lock_key))
    except psycopg.Error as exc:
        raise StoreError(
            f"store {redact(url)}: cannot set up schema {schema!r}: {_first_line(exc)}"
        ) from None


async def _migrate(conn: psycopg.AsyncConnection[Any], url: str, schema: str) -> int:
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{schema}.meta",))
    row = await cur.fetchone()
    exists = bool(row and row[0])
    version = 0
    if exists:
        cur = await conn.execute(
            sql.SQL("SELECT value FROM {}.meta WHERE key = 'schema_version'").format(
                sql.Identifier(schema)
            )
        )
        found = await cur.fetchone()
        version = int(found[0]) if found else 0
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"store {redact(url)}: schema {schema!r} has version {version}, newer than this"
            f" workerpool-tui understands ({SCHEMA_VERSION}): upgrade workerpool-tui"
        )
    if version == SCHEMA_VERSION:
        return version
    async with conn.transaction():
        await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        for step in range(version, SCHEMA_VERSION):
            await conn.execute(migration(step, schema).encode())
        await conn.execute(
            sql.SQL(
                "INSERT INTO {}.meta (key, value) VALUES ('schema_version', %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ).format(sql.Identifier(schema)),
            (str(SCHEMA_VERSION),),
        )
    if version:
        _logger.info("schema %s migrated from version %d to %d", schema, version, SCHEMA_VERSION)
    else:
        _logger.info("schema %s created (version %d)", schema, SCHEMA_VERSION)
    return version
