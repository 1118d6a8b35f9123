"""Helpers for the cluster tests: engines over a real PostgreSQL schema."""

from __future__ import annotations

from typing import Any

import anyio
import psycopg
from enginekit import make_config, registry_with

from workerpool_tui import __version__
from workerpool_tui.config import Config
from workerpool_tui.core import Engine, Task
from workerpool_tui.core.handlers import Handler
from workerpool_tui.store.postgres.store import PostgresStore

DEADLINE_S = 15.0


def pg_config(url: str, schema: str, **sections: dict[str, Any]) -> Config:
    store = {"url": url, "schema": schema, "heartbeat": "0.2s", "lease": "1s"}
    store.update(sections.pop("store", {}))
    return make_config(store=store, **sections)


def pg_engine(
    url: str,
    schema: str,
    handlers: dict[str, Handler] | None = None,
    config: Config | None = None,
    **sections: dict[str, Any],
) -> tuple[Engine, PostgresStore]:
    cfg = config or pg_config(url, schema, **sections)
    store = PostgresStore(cfg, version=__version__)
    return Engine(cfg, types=registry_with(handlers), store=store), store


async def wait_task(engine: Engine, task_id: str, predicate: Any, what: str = "") -> Task:
    """Wait (deadline) until the task, as the cluster has it, satisfies ``predicate``;
    re-checked after each bus delivery and at least every 50 ms (other instances' changes
    reach this one's bus only while it follows events)."""
    async with engine.bus.subscribe(maxsize=100_000, name="test-wait") as sub:
        with anyio.fail_after(DEADLINE_S):
            while True:
                task = engine.get(task_id) or await engine.lookup(task_id)
                if predicate(task):
                    return task
                with anyio.move_on_after(0.05):
                    await sub.get_batch()
    raise AssertionError(f"timed out waiting for {what}")  # pragma: no cover


async def wait_final_pg(engine: Engine, task_id: str) -> Task:
    return await wait_task(engine, task_id, lambda t: t.status.final, "final")


async def wait_claimed(engine: Engine) -> None:
    """Wait (deadline) until the instance has finished at least one claim: each claims at
    start, but ``async with engine`` does not wait for that first round trip."""
    backlog: Any = engine.store.backlog
    async with engine.bus.subscribe(maxsize=100_000, name="test-wait") as sub:
        with anyio.fail_after(DEADLINE_S):
            while backlog.claims < 1:
                with anyio.move_on_after(0.02):  # a claim that finds nothing publishes nothing
                    await sub.get_batch()


def rows(url: str, schema: str, where: str = "true") -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT id, status, instance, attempts, owner FROM {schema}.tasks WHERE {where}"
            " ORDER BY seq"
        ).fetchall()
