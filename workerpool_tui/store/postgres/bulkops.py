"""A bulk action's writes in the cluster: a chunk of tasks is one statement, not one
transaction per task.

A bulk cancel (``core/bulk.py``) hands the store the ids of a chunk of tasks no instance
holds; :meth:`PgBulk.cancel_pending` cancels those still pending and claimed by nobody
(``owner IS NULL``) in ONE ``UPDATE``, writing what a single cancel writes (status,
``finished_at``, ``message``; ``cluster.py``, ``CANCEL_PENDING``), and reports in the same
statement how it found the others: a task claimed meanwhile is running (it is left to the
per-task cancel, which asks its owner), one that ended is final. The update trigger does
the rest once for the whole statement: the counts move, and the waiting descendants of
the cancelled tasks are cancelled (``cancel_children``, schema 3).
:meth:`PgBulk.delete_final` deletes the final ones of a chunk, and their unique keys.

Within a bulk action (:data:`~.quiet.QUIET`), both announce nothing per task.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ...core.errors import StoreUnavailable
from ...core.models import TaskStatus
from ...core.storage import PendingCancel
from .connect import describe
from .quiet import HUSH, QUIET
from .schema import NOW

_STATUS = {s.value: s for s in TaskStatus}
_T = TypeVar("_T")

CANCEL_PENDING_MANY = f"""
WITH changed AS (
    UPDATE {{s}}.tasks SET status = 'cancelled', finished_at = {NOW},
        message = 'cancelled by request'
    WHERE id = ANY(%(ids)s::text[]) AND status = 'pending' AND owner IS NULL
    RETURNING id
)
SELECT t.id, t.status, c.id IS NOT NULL
FROM {{s}}.tasks t LEFT JOIN changed c ON c.id = t.id
WHERE t.id = ANY(%(ids)s::text[])
"""
"""One statement for a chunk. Its ``SELECT`` sees the table as the statement began: a
task cancelled here reads ``pending`` (and ``changed``), one claimed while the ``UPDATE``
waited for its row reads ``pending`` too, but not ``changed``."""

DELETE_FINAL = """
DELETE FROM {s}.tasks WHERE id = ANY(%s::text[])
    AND status IN ('completed', 'failed', 'cancelled')
"""

FORGET_KEYS = """
DELETE FROM {s}.unique_keys k USING unnest(%s::text[]) AS g(id)
WHERE k.task_id = g.id AND NOT EXISTS (SELECT 1 FROM {s}.tasks t WHERE t.id = g.id)
"""


class PgBulk:
    """The chunked writes of bulk actions (see the module docstring)."""

    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self._pool = pool
        self._cancel = CANCEL_PENDING_MANY.format(s=schema)
        self._delete = DELETE_FINAL.format(s=schema)
        self._forget_keys = FORGET_KEYS.format(s=schema)

    async def cancel_pending(self, ids: list[str]) -> PendingCancel:
        """Cancel those of ``ids`` that are pending and claimed by no instance, in one
        statement; the others as it found them."""
        if not ids:
            return PendingCancel([], {})

        async def run(conn: psycopg.AsyncConnection[Any]) -> PendingCancel:
            cur = await conn.execute(self._cancel, {"ids": ids})
            cancelled: list[str] = []
            others: dict[str, TaskStatus] = {}
            for task_id, status, changed in await cur.fetchall():
                if changed:
                    cancelled.append(task_id)
                else:
                    others[task_id] = _STATUS[status]
            return PendingCancel(cancelled, others)

        return await self._write(run)

    async def delete_final(self, ids: list[str]) -> int:
        """Delete the final ones of ``ids``, and the unique keys they held; how many went."""
        if not ids:
            return 0

        async def run(conn: psycopg.AsyncConnection[Any]) -> int:
            cur = await conn.execute(self._delete, (ids,))
            deleted: int = cur.rowcount
            # A duplicate must not be answered with a deleted task.
            await conn.execute(self._forget_keys, (ids,))
            return deleted

        return await self._write(run)

    async def _write(self, run: Callable[[psycopg.AsyncConnection[Any]], Awaitable[_T]]) -> _T:
        """``run`` in a transaction, quiet within a bulk action; ``StoreUnavailable`` when
        PostgreSQL cannot be reached."""
        try:
            async with self._pool.connection() as conn, conn.transaction():
                if QUIET.get():
                    await conn.execute(HUSH)
                return await run(conn)
        except (psycopg.Error, PoolTimeout, OSError) as exc:
            raise StoreUnavailable(f"PostgreSQL: {describe(exc)}", retry_after_s=1.0) from None
