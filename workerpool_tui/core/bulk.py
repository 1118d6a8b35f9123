"""Bulk actions: cancel, retry or delete every task a filter matches (``POST
/api/v1/tasks/bulk``, ``cancel|retry|clean --status ...``, the dashboard's bulk menu).

Large matches never stall the loop: the tasks are matched, then acted on, in slices of
at most :data:`SLICE_S` of work with a checkpoint between two (a :class:`_Pacer` looks at
the clock every :data:`CHECK_EVERY` tasks). They do not flood the bus either: the
per-task events of the change are not published (a cancelled running task, which its
worker ends, is the exception: at most ``max_concurrent_tasks`` of them); one
:class:`~.bus.BulkEvent` summarises it, and every subscriber takes a fresh snapshot on it.
With a shared store, the action's writes are quiet for the other instances too
(``SharedStore.bulk``), which then hear the one summary (``SharedStore.bulk_done``); a
cancel hands the store a chunk's pending tasks that no instance holds, which it cancels
in one statement (``SharedStore.cancel_pending``), and cancels the others one by one.

Each task is checked again when its chunk is acted on (it may have moved since it was
matched); what is not changed is counted under a reason in ``skipped``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import nullcontext
from typing import TYPE_CHECKING, Literal, Protocol

import anyio
import anyio.lowlevel
import msgspec

from .bus import BulkEvent
from .errors import AlreadyFinished, EngineError, InvalidRequest, NotFound
from .models import FINAL_STATUSES, Task, TaskSpec, TaskStatus
from .registry import matches

if TYPE_CHECKING:
    from .engine import Engine

SLICE_S = 0.005
"""Work done between two checkpoints of the loop, at most (plus :data:`CHECK_EVERY` tasks)."""
CHECK_EVERY = 32
RETRY_BATCH = 128
"""Retries submitted at once (each is admitted and queued as a new task)."""
CHUNK = 2000
"""Tasks acted on per call of the action's helper."""
PAGE = 1000
"""Tasks read per query from a shared store's index while matching."""
MAX_IDS = 100_000

Action = Literal["cancel", "retry", "delete"]


class _Skip(Protocol):
    """Counts tasks left alone, by reason."""

    def __call__(self, reason: str, n: int = 1) -> None: ...


class _Pacer:
    """Yields to the loop once a slice of work has taken :data:`SLICE_S`."""

    def __init__(self) -> None:
        self._until = time.perf_counter() + SLICE_S
        self._n = 0

    async def tick(self, tasks: int = 1) -> None:
        """``tasks`` more were done; yield if the slice is over."""
        self._n += tasks
        if self._n >= CHECK_EVERY:
            self._n = 0
            if time.perf_counter() >= self._until:
                await anyio.lowlevel.checkpoint()
                self._until = time.perf_counter() + SLICE_S


class BulkFilter(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Every given field must match (an empty filter matches every task)."""

    status: list[TaskStatus] | None = None
    type: str | None = None
    q: str | None = None
    """An id prefix, or part of the type or of the message (as the listing's ``q``)."""
    ids: list[str] | None = None
    """Task ids or unique prefixes (4+ characters); one that matches no task is
    ``NotFound``, several ``AmbiguousId``, and nothing changes."""
    older_than: float | None = None
    """Seconds: final tasks that finished, other tasks created, longer ago than this."""


class BulkResult(msgspec.Struct, frozen=True):
    matched: int
    changed: int
    skipped: dict[str, int]


async def run_bulk(
    engine: Engine, action: Action, flt: BulkFilter, *, dry_run: bool = False
) -> BulkResult:
    """Apply ``action`` to every task ``flt`` matches; ``dry_run``: count only."""
    if flt.ids is not None and len(flt.ids) > MAX_IDS:
        raise InvalidRequest(f"filter.ids: at most {MAX_IDS}")
    tasks = await _match(engine, flt)
    skipped: dict[str, int] = {}

    def skip(reason: str, n: int = 1) -> None:
        skipped[reason] = skipped.get(reason, 0) + n

    changed = 0
    pacer = _Pacer()
    if dry_run:
        for task in tasks:
            why = _refusal(action, task)
            if why is None:
                changed += 1
            else:
                skip(why)
            await pacer.tick()
        return BulkResult(len(tasks), changed, skipped)
    # A shared store's writes of the action are quiet: the other instances hear one summary.
    with nullcontext() if engine.store is None else engine.store.bulk():
        for start in range(0, len(tasks), CHUNK):
            chunk = tasks[start : start + CHUNK]
            if action == "cancel":
                changed += await _cancel(engine, chunk, skip, pacer)
            elif action == "delete":
                changed += await _delete(engine, chunk, skip, pacer)
            else:
                for at in range(0, len(chunk), RETRY_BATCH):
                    changed += await _retry(engine, chunk[at : at + RETRY_BATCH], skip)
                    await pacer.tick(RETRY_BATCH)
        if engine.journaling and action != "retry":
            await engine.journal.commit()
    result = BulkResult(len(tasks), changed, skipped)
    event = BulkEvent(action, result.matched, result.changed, dict(skipped))
    if engine.store is not None:  # first: it reads the counts again, for this bus's followers
        await engine.store.bulk_done(event)
    engine.bus.publish(event)
    return result


def _refusal(action: Action, task: Task) -> str | None:
    final = task.status in FINAL_STATUSES
    if action == "cancel":
        return "already_final" if final else None
    return None if final else "not_final"


async def _match(engine: Engine, flt: BulkFilter) -> list[Task]:
    statuses = frozenset(flt.status) if flt.status else None
    horizon = None if flt.older_than is None else engine.clock.now() - flt.older_than
    needle = flt.q.lower() if flt.q else None

    def keep(task: Task) -> bool:
        if statuses is not None and task.status not in statuses:
            return False
        if flt.type is not None and task.type != flt.type:
            return False
        if needle is not None and not matches(task, needle):
            return False
        if horizon is not None:
            final = task.status in FINAL_STATUSES
            when = (task.finished_at if final else None) or task.created_at
            if when > horizon:
                return False
        return True

    pacer = _Pacer()
    if flt.ids is not None:
        found: dict[str, Task] = {}
        for one in flt.ids:
            task = await engine.lookup(one)  # NotFound, AmbiguousId: nothing changes
            if keep(task):
                found[task.id] = task
            await pacer.tick()
        return list(found.values())
    if engine.store is None:
        every = list(engine.registry.newest())  # a copy (in C): the registry moves meanwhile
        out: list[Task] = []
        for task in every:
            if keep(task):
                out.append(task)
            await pacer.tick()
        return out
    # A shared store: page through its index (every instance's tasks), filtered there by
    # status, type and q; the rest here. Tasks submitted meanwhile shift the pages: a task
    # seen twice counts once.
    seen: dict[str, Task] = {}
    offset = 0
    while True:
        page, total = await engine.list_tasks(
            status=statuses, type_=flt.type, q=flt.q, limit=PAGE, offset=offset
        )
        for task in page:
            if keep(task):
                seen.setdefault(task.id, task)
        offset += len(page)
        if not page or offset >= total:
            return list(seen.values())


async def _cancel(engine: Engine, tasks: Iterable[Task], skip: _Skip, pacer: _Pacer) -> int:
    changed = 0
    loose: list[Task] = []
    """Pending in a shared store and held by no instance, as matched: one statement."""
    for task in tasks:
        await pacer.tick()
        if (
            engine.store is not None
            and task.status is TaskStatus.PENDING
            and engine.registry.get(task.id) is None
        ):
            loose.append(task)
        else:
            changed += await _cancel_one(engine, task, skip)
    if loose:
        changed += await _cancel_loose(engine, loose, skip, pacer)
    return changed


async def _cancel_loose(engine: Engine, tasks: list[Task], skip: _Skip, pacer: _Pacer) -> int:
    """Tasks no instance held when matched: the store cancels those still pending and
    unclaimed in one statement. This instance holds none of those (it would have claimed
    them: they would be running in the table, which the statement leaves alone), so none
    of its own records changes; the ones claimed since go through the single cancel."""
    assert engine.store is not None
    outcome = await engine.store.cancel_pending([t.id for t in tasks])
    done = set(outcome.cancelled)
    changed = len(done)
    for task in tasks:
        if task.id in done:
            continue
        await pacer.tick()
        status = outcome.others.get(task.id)
        if status is None:
            skip(NotFound.code)  # deleted meanwhile
        elif status in FINAL_STATUSES:  # it ended, or a cancelled parent took it along
            skip("already_final")
        else:
            changed += await _cancel_one(engine, task, skip)
    return changed


async def _cancel_one(engine: Engine, task: Task, skip: _Skip) -> int:
    """One task as it is now: 1 if it was cancelled (or its owner asked to)."""
    held = engine.registry.get(task.id)
    live = held or task
    if live.status in FINAL_STATUSES:
        skip("already_final")
        return 0
    if held is None:  # another cluster instance's: its owner stops it
        try:
            await engine.cancel(task.id, wait_s=0)
        except (AlreadyFinished, NotFound) as exc:  # it ended, or went, meanwhile
            skip(exc.code)
            return 0
    elif live.status is TaskStatus.PENDING:
        engine.cancel_pending_quietly(live)
    elif not engine.interrupt_held(live.id, "cancelled"):
        skip("not_running_here")
        return 0
    return 1


async def _delete(engine: Engine, tasks: Iterable[Task], skip: _Skip, pacer: _Pacer) -> int:
    gone: list[Task] = []
    for task in tasks:
        await pacer.tick()
        live = engine.registry.get(task.id) or task
        if live.status not in FINAL_STATUSES:
            skip("not_final")
            continue
        gone.append(live)
    for task in gone:
        engine.registry.discard(task)
        await pacer.tick()
    if engine.store is not None:
        deleted = await engine.store.delete_final([t.id for t in gone])
        if deleted < len(gone):
            skip("gone", len(gone) - deleted)
        return deleted
    engine.unique.forget(gone)  # a later duplicate must not be answered with a deleted task
    engine.journal.forget(gone)
    return len(gone)


async def _retry(engine: Engine, tasks: Iterable[Task], skip: _Skip) -> int:
    specs = []
    for task in tasks:
        live = engine.registry.get(task.id) or task
        if live.status not in FINAL_STATUSES:
            skip("not_final")
            continue
        specs.append(
            TaskSpec(
                type=live.type,
                payload=live.payload,
                priority=live.priority,
                timeout_s=live.timeout_s,
                max_retries=live.max_retries,
                retry_of=live.id,
                # As Engine.retry: not its unique_key, but its parents.
                depends_on=live.depends_on or (),
            )
        )
    if not specs:
        return 0
    room = engine.backlog.free
    if room < len(specs):
        skip("queue_full", len(specs) - room)
        specs = specs[:room]
        if not specs:
            return 0
    try:
        await engine.submit_many(specs, announce=False)
    except EngineError as exc:  # queue full meanwhile, a type no longer registered, ...
        skip(exc.code, len(specs))
        return 0
    return len(specs)


def bulk_summary(event: BulkEvent) -> str:
    """One line for people: ``bulk cancel: 3 of 5 matched changed (2 already_final)``."""
    line = f"bulk {event.action}: {event.changed} of {event.matched} matched changed"
    if event.skipped:
        line += " (" + ", ".join(f"{n} {why}" for why, n in sorted(event.skipped.items())) + ")"
    return line
