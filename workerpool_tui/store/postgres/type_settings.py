"""The types' run-time settings in the cluster: the ``type_settings`` table (schema 4).

One row per type with an override (``core/type_settings.py``): what a
``PATCH /api/v1/types/{name}`` set on any instance. Every instance reads the table at start;
a change is announced on ``<schema>_types`` (in the transaction that writes it) and every
instance's listener has it read again, so a PATCH reaches the whole cluster at once (and,
should a notification be missed, within ``REFRESH_S``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import msgspec
import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...core.errors import StoreUnavailable
from ...core.type_settings import TypeOverride
from .schema import types_channel

_AWAY = (psycopg.OperationalError, PoolTimeout, OSError)
"""PostgreSQL is out of reach (restarting, connections killed): the caller may try again."""

_decode = msgspec.json.Decoder(TypeOverride).decode
_encode = msgspec.json.Encoder().encode


class PgTypeSettings:
    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self._pool = pool
        self._s = schema
        self._channel = types_channel(schema)

    async def load(self) -> dict[str, TypeOverride]:
        async with _reachable("read the types' settings"), self._pool.connection() as conn:
            cur = await conn.execute(f"SELECT name, settings::text FROM {self._s}.type_settings")
            found = await cur.fetchall()
        return {name: _decode(raw) for name, raw in found}

    async def save(self, name: str, override: TypeOverride | None) -> None:
        async with (
            _reachable(f"store type {name}'s settings"),
            self._pool.connection() as conn,
            conn.transaction(),
        ):
            await conn.execute("SELECT pg_notify(%s, %s)", (self._channel, name))
            if override is None:
                await conn.execute(f"DELETE FROM {self._s}.type_settings WHERE name = %s", (name,))
            else:
                await conn.execute(
                    f"INSERT INTO {self._s}.type_settings (name, settings) VALUES (%s, %s::json)"
                    " ON CONFLICT (name) DO UPDATE SET settings = excluded.settings",
                    (name, _encode(override).decode()),
                )


@asynccontextmanager
async def _reachable(what: str) -> AsyncIterator[None]:
    """An outage is :class:`StoreUnavailable` (a 503 for a PATCH; the cluster's follower
    reads again once the store is back), not a crash."""
    try:
        yield
    except _AWAY as exc:
        raise StoreUnavailable(f"PostgreSQL: cannot {what}: {exc}") from exc
