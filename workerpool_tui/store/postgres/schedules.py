"""Schedules and unique keys in the cluster: the database decides.

A schedule's due time fires once per cluster: every instance runs the timer, submits the
run with the unique key ``schedule:NAME:DUE`` (one task, whoever inserts it), and records
it with a conditional update of the schedule's row (``last_run`` only moves forward).
A unique key is taken by one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` that replaces
the holder only when it no longer holds the key: the row lock serialises two instances,
so there is no check-then-insert race. A key claimed for a task not inserted yet (its
submission is committing) holds for :data:`CLAIM_GRACE_S`.
"""

from __future__ import annotations

import msgspec
from psycopg_pool import AsyncConnectionPool

from ...core.schedules import ScheduleSpec
from .schema import NOW

CLAIM_GRACE_S = 60.0
_decode_spec = msgspec.json.Decoder(ScheduleSpec).decode
_encode = msgspec.json.Encoder().encode

CLAIM_KEY = f"""
INSERT INTO {{s}}.unique_keys AS k (key, task_id, until, claimed_at)
VALUES (%s, %s, %s, {NOW})
ON CONFLICT (key) DO UPDATE
    SET task_id = excluded.task_id, until = excluded.until, claimed_at = excluded.claimed_at
WHERE (k.until IS NULL OR k.until <= {NOW})
  AND NOT EXISTS (
      SELECT 1 FROM {{s}}.tasks t WHERE t.id = k.task_id AND t.status IN ('pending', 'running')
  )
  AND (EXISTS (SELECT 1 FROM {{s}}.tasks t WHERE t.id = k.task_id)
       OR k.claimed_at < {NOW} - {CLAIM_GRACE_S})
RETURNING task_id
"""


class PgKeys:
    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self._pool = pool
        self._claim = CLAIM_KEY.format(s=schema)
        self._holder = f"SELECT task_id FROM {schema}.unique_keys WHERE key = %s"
        self._release = f"DELETE FROM {schema}.unique_keys WHERE key = %s AND task_id = %s"

    async def claim(self, key: str, task_id: str, until: float | None) -> str | None:
        """Take ``key`` for ``task_id``; the id of the task holding it when it is taken."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._claim, (key, task_id, until))
            if await cur.fetchone() is not None:
                return None
            cur = await conn.execute(self._holder, (key,))
            row = await cur.fetchone()
        return None if row is None else str(row[0])

    async def release(self, key: str, task_id: str) -> None:
        """Give back a key whose task was not submitted after all."""
        async with self._pool.connection() as conn:
            await conn.execute(self._release, (key, task_id))


class PgSchedules:
    """The ``ScheduleStore`` of ``core/schedules.py`` over the ``schedules`` table."""

    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self._pool = pool
        self._s = schema

    async def load(self) -> tuple[list[ScheduleSpec], dict[str, tuple[float, str]]]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT name, spec::text, last_run, last_task_id FROM {self._s}.schedules"
            )
            found = await cur.fetchall()
        specs = [_decode_spec(spec) for _, spec, _, _ in found if spec is not None]
        runs = {name: (last, task) for name, _, last, task in found if last is not None}
        return specs, runs

    async def save(self, spec: ScheduleSpec) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                f"INSERT INTO {self._s}.schedules (name, spec) VALUES (%s, %s::json)"
                " ON CONFLICT (name) DO UPDATE SET spec = excluded.spec",
                (spec.name, _encode(spec).decode()),
            )

    async def delete(self, name: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(f"DELETE FROM {self._s}.schedules WHERE name = %s", (name,))

    async def claim(self, name: str, due: float, task_id: str) -> bool:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"INSERT INTO {self._s}.schedules AS s (name, last_run, last_task_id)"
                " VALUES (%s, %s, %s) ON CONFLICT (name) DO UPDATE"
                " SET last_run = excluded.last_run, last_task_id = excluded.last_task_id"
                " WHERE s.last_run IS NULL OR s.last_run < excluded.last_run"
                " RETURNING name",
                (name, due, task_id),
            )
            return await cur.fetchone() is not None
