"""Shared pieces of the store tests: configs, a controllable task type, file checks."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import msgspec

from workerpool_tui.config import Config, StoreConfig, TaskConfig, WorkerConfig
from workerpool_tui.core import Engine, Task, TaskSpec, TaskStatus
from workerpool_tui.core.builtin import builtin_types
from workerpool_tui.core.clock import Clock
from workerpool_tui.core.handlers import TaskContext, TypeRegistry, task_type
from workerpool_tui.store.sqlite import SqliteJournal, StoreError, SyncMode
from workerpool_tui.store.sqlite_layout import EXTRA_FIELDS, SPEC_FIELDS, STATE_FIELDS


def store_config(
    db: Path, *, workers: int = 1, recover_running: str = "requeue", **task: Any
) -> Config:
    return Config(
        worker=WorkerConfig(
            min_workers=workers,
            max_workers=workers,
            enable_auto_scaling=False,
            shutdown_timeout=0.2,
        ),
        task=TaskConfig(**task),
        store=msgspec.convert({"path": str(db), "recover_running": recover_running}, StoreConfig),
    )


class Gate:
    """A task type (``gated``) whose tasks log a line, then run until the gate opens.

    ``ran`` lists task ids in the order they started, for checking recovery order.
    """

    def __init__(self) -> None:
        self.ran: list[str] = []
        self.opened = anyio.Event()

    async def handler(self, ctx: TaskContext, payload: dict[str, Any]) -> dict[str, Any]:
        self.ran.append(ctx.task_id)
        ctx.log(f"started attempt {ctx.attempt}")
        if payload.get("wait", True):
            await self.opened.wait()
        return {"echo": payload}

    def types(self) -> TypeRegistry:
        reg = TypeRegistry(builtin_types())
        reg.add(task_type("gated", self.handler))
        return reg


def make_engine(
    cfg: Config,
    db: Path,
    gate: Gate | None = None,
    clock: Clock | None = None,
    sync: SyncMode = "normal",
) -> tuple[Engine, SqliteJournal]:
    journal = SqliteJournal(db, sync=sync)
    types = (gate or Gate()).types()
    return Engine(cfg, types=types, journal=journal, clock=clock), journal


def copy_store(src: Path, dst: Path) -> None:
    """Copy a live store's files as they are on disk: what a power cut would leave."""
    for suffix in ("", "-wal"):
        s = Path(str(src) + suffix)
        if s.exists():
            shutil.copyfile(s, str(dst) + suffix)


def db_rows(db: Path) -> dict[str, dict[str, Any]]:
    """The store's rows by id, read with plain sqlite3 (after an integrity check) and
    msgspec's generic MessagePack decoder: every column, with ``spec`` and ``state``
    spread into their fields by the names the schema's comment gives them."""
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM tasks").fetchall()
    finally:
        conn.close()
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        fields = dict(r)
        fields |= zip(SPEC_FIELDS, msgspec.msgpack.decode(fields.pop("spec")), strict=True)
        fields |= zip(STATE_FIELDS, msgspec.msgpack.decode(fields.pop("state")), strict=True)
        extra = fields.pop("extra", None)
        if extra is not None:
            fields |= zip(EXTRA_FIELDS, msgspec.msgpack.decode(extra), strict=True)
        out[r["id"]] = fields
    return out


async def wait_status(engine: Engine, task_id: str, status: TaskStatus) -> Task:
    with anyio.fail_after(10):
        while True:
            task = engine.get(task_id)
            if task is not None and task.status is status:
                return task
            await anyio.sleep(0.005)


async def fill_store(db: Path, n: int) -> list[str]:
    """Run ``n`` finished tasks (with a 300-byte payload) into the store at ``db``."""
    engine, _ = make_engine(store_config(db), db)
    async with engine:
        tasks = await engine.submit_many(
            [TaskSpec(type="gated", payload={"wait": False, "pad": "x" * 300}) for _ in range(n)]
        )
        for t in tasks:
            await engine.wait_finished(t.id)
    return [t.id for t in tasks]


async def open_ids(db: Path) -> list[str]:
    """Open the store alone (no engine) and return the ids it holds; ``StoreError`` as is."""
    journal = SqliteJournal(db)
    error: StoreError | None = None
    tasks: list[Task] = []
    async with anyio.create_task_group() as tg:
        try:
            tasks = await journal.open(tg, unexpected_fatal)
        except StoreError as exc:  # raised out of the group it would come wrapped
            error = exc
        else:
            await journal.close()
    if error is not None:
        raise error
    return [t.id for t in tasks]


def writer_pids(db: Path) -> set[int]:
    """Live writer processes of store ``db`` (any parent), from the process table."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        mine = b"workerpool_tui.store.sqlite_writer" in cmd and str(db).encode() in cmd
        if mine and state not in ("Z", "X"):
            found.add(int(entry.name))
    return found


async def wait_no_writer(db: Path, deadline_s: float = 10.0) -> None:
    with anyio.fail_after(deadline_s):
        # The process table has no event to wait on: poll it, with a deadline.
        while writer_pids(db):  # noqa: ASYNC110
            await anyio.sleep(0.01)


def unexpected_fatal(reason: str) -> None:
    """``on_fatal`` for a journal opened alone: in these tests nothing may be fatal."""
    raise AssertionError(f"unexpected fatal failure: {reason}")
