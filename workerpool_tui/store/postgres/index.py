"""Reading the cluster's tasks: lookups, listings, searches and counts are queries.

An instance keeps in memory only the tasks it runs (and its recently finished ones), so
its memory does not grow with the cluster's task count. Listings walk an index newest
first and stop at the page; counts come from the ``counts`` table the triggers keep (read
at most once a second, and only while somebody asks).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import msgspec
from psycopg_pool import AsyncConnectionPool

from ...core.models import FINAL_STATUSES, Task, TaskStatus
from . import rows

COUNTS_TTL_S = 1.0
_LIKE_SPECIALS = str.maketrans({"%": r"\%", "_": r"\_", "\\": r"\\"})


WAITING = {
    "time": "(status = 'pending' AND run_at IS NOT NULL AND blocked = 0)",
    "dependencies": "(status = 'pending' AND blocked > 0)",
    "none": "(status <> 'pending' OR (run_at IS NULL AND blocked = 0))",
}
"""The ``waiting`` filter of a listing (see ``core/index.py``)."""


class Counts:
    """Cluster-wide task counts, as the ``counts`` table has them."""

    __slots__ = (
        "at",
        "blocked",
        "cancelled",
        "completed",
        "failed",
        "pending",
        "running",
        "scheduled",
    )

    def __init__(self, values: Iterable[int] = (0, 0, 0, 0, 0, 0, 0), at: float = 0.0) -> None:
        (
            self.pending,
            self.scheduled,
            self.running,
            self.completed,
            self.failed,
            self.cancelled,
            self.blocked,
        ) = (int(v) for v in values)
        self.at = at

    @property
    def total(self) -> int:
        return (
            self.pending
            + self.scheduled
            + self.blocked
            + self.running
            + self.completed
            + self.failed
            + self.cancelled
        )

    def of(self, status: TaskStatus) -> int:
        if status is TaskStatus.PENDING:
            return self.pending + self.scheduled
        return int(getattr(self, status.value))


class PgIndex:
    def __init__(self, pool: AsyncConnectionPool, schema: str) -> None:
        self._pool = pool
        self._s = schema
        self._counts_sql = (
            "SELECT sum(pending), sum(scheduled), sum(running), sum(completed), sum(failed),"
            f" sum(cancelled), sum(blocked) FROM {schema}.counts"
        )
        self.counts = Counts()
        self.admitted = 0
        """Tasks this instance admitted since the counts were read (they are runnable in
        the cluster; admission adds them to the counts until the next read)."""

    async def refresh_counts(self) -> Counts:
        admitted = self.admitted
        async with self._pool.connection() as conn:
            cur = await conn.execute(self._counts_sql)
            row = await cur.fetchone()
        self.counts = Counts((v or 0 for v in row) if row else (), at=time.monotonic())
        self.admitted -= admitted  # those are in the counts now
        return self.counts

    def runnable(self) -> int:
        """Runnable tasks waiting in the cluster, as far as this instance knows."""
        return self.counts.pending + self.admitted

    async def run_now(self, task_id: str) -> bool:
        """A pending task waiting for a time becomes runnable (the trigger wakes the
        claimers); False when it was not waiting for one."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"UPDATE {self._s}.tasks SET run_at = NULL"
                " WHERE id = %s AND status = 'pending' AND run_at IS NOT NULL",
                (task_id,),
            )
            return cur.rowcount > 0

    async def by_id(self, task_id: str) -> Task | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {rows.COLUMNS} FROM {self._s}.tasks WHERE id = %s", (task_id,)
            )
            row = await cur.fetchone()
        return None if row is None else rows.task(row)

    async def results(self, ids: list[str]) -> dict[str, Any]:
        """The results of these tasks by id, in one query (see ``SharedStore.results``)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT id, result::text FROM {self._s}.tasks WHERE id = ANY(%s::text[])",
                (ids,),
            )
            found = await cur.fetchall()
        return {id_: None if raw is None else msgspec.json.decode(raw) for id_, raw in found}

    async def by_prefix(self, prefix: str, limit: int) -> list[Task]:
        like = prefix.translate(_LIKE_SPECIALS) + "%"
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {rows.COLUMNS} FROM {self._s}.tasks WHERE id LIKE %s ORDER BY id LIMIT %s",
                (like, limit),
            )
            return [rows.task(r) for r in await cur.fetchall()]

    async def page(
        self,
        *,
        statuses: frozenset[TaskStatus] | None,
        type_: str | None,
        q: str | None,
        limit: int,
        offset: int,
        waiting: str | None = None,
        parent: str | None = None,
    ) -> tuple[list[Task], int]:
        where: list[str] = []
        params: list[object] = []
        if waiting is not None:
            where.append(WAITING[waiting])
        if parent is not None:  # the tasks_parents index (schema 3)
            where.append("depends_on @> ARRAY[%s]::text[] AND depends_on IS NOT NULL")
            params.append(parent)
        if statuses is not None:
            where.append("status = ANY(%s::text[])")
            params.append(sorted(s.value for s in statuses))
        if type_ is not None:
            where.append("type = %s")
            params.append(type_)
        if q:
            needle = q.lower()
            contains = "%" + needle.translate(_LIKE_SPECIALS) + "%"
            where.append("(id LIKE %s OR lower(type) LIKE %s OR lower(message) LIKE %s)")
            params += [needle.translate(_LIKE_SPECIALS) + "%", contains, contains]
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {rows.COLUMNS} FROM {self._s}.tasks{clause}"
                " ORDER BY seq DESC LIMIT %s OFFSET %s",
                (*params, limit, offset),
            )
            found = [rows.task(r) for r in await cur.fetchall()]
            if type_ is None and not q and waiting is None and parent is None:
                counts = await self.refresh_counts()
                total = counts.total if statuses is None else sum(counts.of(s) for s in statuses)
            else:
                cur = await conn.execute(
                    f"SELECT count(*) FROM {self._s}.tasks{clause}", tuple(params)
                )
                row = await cur.fetchone()
                total = int(row[0]) if row else 0
        return found, total

    async def snapshot(self, limit: int) -> list[Task]:
        """Every unfinished task and the most recent final ones, ``limit`` in all, newest
        first."""
        finals = sorted(s.value for s in FINAL_STATUSES)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {rows.COLUMNS} FROM {self._s}.tasks"
                " WHERE status IN ('pending', 'running') ORDER BY seq DESC LIMIT %s",
                (limit,),
            )
            active = [rows.task(r) for r in await cur.fetchall()]
            room = limit - len(active)
            final: list[Task] = []
            if room > 0:
                cur = await conn.execute(
                    f"SELECT {rows.COLUMNS} FROM {self._s}.tasks"
                    " WHERE status = ANY(%s::text[]) ORDER BY seq DESC LIMIT %s",
                    (finals, room),
                )
                final = [rows.task(r) for r in await cur.fetchall()]
        return sorted(active + final, key=lambda t: t.seq, reverse=True)
