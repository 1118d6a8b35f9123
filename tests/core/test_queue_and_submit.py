"""The bounded priority queue and all-or-nothing submission (SPEC §5, §6, §11)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from enginekit import (
    make_config,
    make_engine,
    registry_with,
    submit,
    task_events,
    wait_all_final,
)

from workerpool_tui.core import (
    Engine,
    InvalidRequest,
    QueueFull,
    ShuttingDown,
    TaskSpec,
    TaskStatus,
    UnknownTaskType,
)
from workerpool_tui.core.bus import TaskEvent
from workerpool_tui.core.handlers import TaskContext
from workerpool_tui.core.models import EventKind, Task
from workerpool_tui.core.queue import PriorityQueue

pytestmark = pytest.mark.anyio


def _t(seq: int, priority: int) -> Task:
    return Task(id=f"t{seq}", type="x", payload={}, priority=priority, seq=seq)


# ------------------------------------------------------------------ the queue alone
def test_queue_pops_higher_priority_first_and_fifo_among_equals() -> None:
    q = PriorityQueue(10)
    tasks = [_t(1, 0), _t(2, 5), _t(3, 0), _t(4, -3), _t(5, 5), _t(6, 0)]
    q.push_many(tasks)
    assert len(q) == 6
    assert [t.id for t in q] == ["t2", "t5", "t1", "t3", "t6", "t4"]  # iteration = dispatch order
    popped = [q.pop() for _ in range(6)]
    assert [t.id for t in popped if t] == ["t2", "t5", "t1", "t3", "t6", "t4"]
    assert q.pop() is None
    assert len(q) == 0


def test_queue_is_bounded_and_force_admits_retries() -> None:
    q = PriorityQueue(2)
    q.push_many([_t(1, 0), _t(2, 0)])
    assert q.free == 0
    with pytest.raises(OverflowError):
        q.push_many([_t(3, 0)])
    assert len(q) == 2
    q.push_many([_t(4, 0)], force=True)
    assert len(q) == 3
    assert q.free == 0


def test_queue_discard_counts_out_at_once_and_skips_the_entry() -> None:
    q = PriorityQueue(10)
    a, b, c = _t(1, 0), _t(2, 0), _t(3, 0)
    q.push_many([a, b, c])
    b.transition(TaskStatus.CANCELLED)
    q.discard(b)
    assert len(q) == 2
    assert q.free == 8
    assert [t.id for t in q] == ["t1", "t3"]
    assert q.pop() is a
    assert q.pop() is c
    assert q.pop() is None


def test_queue_compacts_after_many_discards() -> None:
    q = PriorityQueue(1000)
    tasks = [_t(i, 0) for i in range(200)]
    q.push_many(tasks)
    for task in tasks[:150]:
        task.transition(TaskStatus.CANCELLED)
        q.discard(task)
    assert len(q) == 50
    assert q.held() < 200  # stale entries were compacted away
    assert [q.pop() for _ in range(50)] == tasks[150:]


# ------------------------------------------------------------------ through the engine
async def test_engine_dispatches_by_priority_then_fifo() -> None:
    order: list[int] = []

    async def record(ctx: TaskContext, payload: dict[str, Any]) -> None:
        order.append(payload["n"])

    cfg = make_config(worker={"min_workers": 1, "max_workers": 1})
    async with make_engine({"record": record}, cfg) as engine:
        engine.pause()
        specs = [
            TaskSpec(type="record", payload={"n": n}, priority=p)
            for n, p in enumerate([0, 1, 0, 9, -1, 1, 0])
        ]
        tasks = await engine.submit_many(specs)
        assert engine.stats().queue.depth == 7
        engine.resume()
        await wait_all_final(engine, tasks)
    assert order == [3, 1, 5, 0, 2, 6, 4]


async def test_queue_full_refuses_and_creates_nothing() -> None:
    cfg = make_config(task={"queue_capacity": 3})
    async with make_engine(config=cfg) as engine:
        engine.pause()
        sub = engine.bus.subscribe(name="observer")
        kept = await engine.submit_many([TaskSpec(type="default_task")] * 3)
        before = (len(engine.registry), engine.stats().tasks, len(engine.queue))
        published = engine.bus.published
        with pytest.raises(QueueFull) as info:
            await submit(engine, "default_task")
        assert info.value.code == "queue_full"
        assert (info.value.depth, info.value.capacity) == (3, 3)
        assert info.value.retry_after_s > 0
        with pytest.raises(QueueFull, match="room for 0"):
            await engine.submit_many([TaskSpec(type="default_task")] * 2)
        assert (len(engine.registry), engine.stats().tasks, len(engine.queue)) == before
        assert engine.bus.published == published
        created = [e for e in sub.get_nowait() if isinstance(e, TaskEvent)]
        assert [e.task for e in created] == kept
        sub.close()
        engine.resume()
        await wait_all_final(engine, kept)
        # Room again: the queue takes submissions once it drained.
        more = await engine.submit_many([TaskSpec(type="default_task")] * 3)
        await wait_all_final(engine, more)


async def test_batch_larger_than_the_room_left_enqueues_nothing() -> None:
    cfg = make_config(task={"queue_capacity": 5})
    async with make_engine(config=cfg) as engine:
        engine.pause()
        await engine.submit_many([TaskSpec(type="default_task")] * 3)
        with pytest.raises(QueueFull):
            await engine.submit_many([TaskSpec(type="default_task")] * 3)
        assert len(engine.queue) == 3
        assert len(engine.registry) == 3
        ok = await engine.submit_many([TaskSpec(type="default_task")] * 2)
        assert len(ok) == 2
        assert len(engine.queue) == 5


def nested(levels: int) -> dict[str, Any]:
    """A payload whose value ``d`` holds ``levels`` arrays inside one another (the payload
    object itself is one more level)."""
    inner: Any = []
    for _ in range(levels - 1):
        inner = [inner]
    return {"d": inner}


BAD_SPECS = [
    pytest.param(TaskSpec(type="no_such_type"), UnknownTaskType, "unknown task type", id="type"),
    pytest.param(
        TaskSpec(type="long_running_task", payload={"steps": 0}),
        InvalidRequest,
        r"payload: Expected `int` >= 1 - at `\$.steps`",
        id="payload-value",
    ),
    pytest.param(
        TaskSpec(type="long_running_task", payload={"bogus": 1}),
        InvalidRequest,
        "bogus",
        id="payload-unknown-field",
    ),
    pytest.param(
        TaskSpec(type="default_task", payload={"sleep": "long"}),
        InvalidRequest,
        "payload",
        id="payload-type",
    ),
    pytest.param(TaskSpec(type="default_task", timeout_s=0), InvalidRequest, "timeout", id="t0"),
    pytest.param(
        TaskSpec(type="default_task", timeout_s=-1.0), InvalidRequest, "timeout", id="t-neg"
    ),
    pytest.param(
        TaskSpec(type="default_task", timeout_s=float("inf")), InvalidRequest, "timeout", id="inf"
    ),
    pytest.param(
        TaskSpec(type="default_task", max_retries=-1), InvalidRequest, "max_retries", id="retries"
    ),
    pytest.param(
        TaskSpec(type="default_task", max_retries=101), InvalidRequest, "max_retries", id="r-big"
    ),
    pytest.param(
        TaskSpec(type="default_task", priority=2**64), InvalidRequest, "priority", id="prio-big"
    ),
    pytest.param(
        TaskSpec(type="default_task", priority=-(2**31) - 1),
        InvalidRequest,
        r"priority: -2147483649 is outside",
        id="prio-low",
    ),
    pytest.param(
        TaskSpec(type="default_task", timeout_s=86_400.5),
        InvalidRequest,
        "max_task_timeout",
        id="t-too-long",
    ),
    pytest.param(
        TaskSpec(type="default_task", payload={"x": 2**64}),
        InvalidRequest,
        r"payload.x: integer 18446744073709551616 does not fit in 64 bits",
        id="payload-int",
    ),
    pytest.param(
        TaskSpec(type="default_task", payload={"a": [{"b": -(2**63) - 1}]}),
        InvalidRequest,
        r"payload.a\[0\].b: integer",
        id="payload-int-deep",
    ),
    pytest.param(
        TaskSpec(type="default_task", payload={"f": float("nan")}),
        InvalidRequest,
        "payload.f: nan is not a JSON number",
        id="payload-nan",
    ),
    pytest.param(
        TaskSpec(type="default_task", payload={"tags": [{"odd"}]}),
        InvalidRequest,
        r"payload.tags\[0\]: set is not a JSON value",
        id="payload-not-json",
    ),
    pytest.param(
        TaskSpec(type="default_task", payload=nested(64)),
        InvalidRequest,
        "nested deeper than 64 levels",
        id="payload-deep",
    ),
    pytest.param(
        TaskSpec(type="long_running_task", payload={"steps": 10**12}),
        InvalidRequest,
        r"<= 10000",
        id="steps-bounded",
    ),
]


@pytest.mark.parametrize(("bad", "error", "words"), BAD_SPECS)
async def test_one_bad_spec_in_a_batch_enqueues_nothing(
    bad: TaskSpec, error: type[Exception], words: str
) -> None:
    async with make_engine() as engine:
        engine.pause()
        sub = engine.bus.subscribe(name="observer")
        good = TaskSpec(type="default_task", payload={"a": 1})
        with pytest.raises(error, match=words):
            await engine.submit_many([good, good, bad, good])
        assert len(engine.registry) == 0
        assert len(engine.queue) == 0
        assert engine.stats().tasks.total == 0
        assert await engine.list_tasks() == ([], 0)
        assert sub.get_nowait() == []


async def test_the_deepest_and_widest_admitted_values_are_stored_as_sent() -> None:
    """The edges of every range are admitted (and the one past them refused, above)."""
    edge = {
        "d": nested(63)["d"],
        "big": 2**63 - 1,
        "small": -(2**63),
        "f": 1.5e308,
    }
    async with make_engine() as engine:
        engine.pause()
        task = await engine.submit(
            TaskSpec(
                type="default_task",
                payload=edge,
                priority=2**31 - 1,
                max_retries=100,
                timeout_s=86_400,
            )
        )
        assert task.payload == edge
        low = await engine.submit(TaskSpec(type="default_task", priority=-(2**31)))
        assert low.priority == -(2**31)


async def test_unknown_type_names_the_known_ones() -> None:
    async with make_engine() as engine:
        with pytest.raises(UnknownTaskType) as info:
            await submit(engine, "nope")
        assert info.value.code == "unknown_task_type"
        for known in ("default_task", "example_task", "long_running_task"):
            assert known in str(info.value)
        assert len(engine.registry) == 0


async def test_shell_task_while_disabled_names_allow_shell() -> None:
    async with make_engine() as engine:
        assert "shell_task" not in engine.types
        with pytest.raises(UnknownTaskType, match=r"task\.allow_shell"):
            await submit(engine, "shell_task", {"argv": ["true"]})
        assert len(engine.registry) == 0
        assert len(engine.queue) == 0


async def test_submission_defaults_come_from_config() -> None:
    cfg = make_config(task={"default_task_timeout": "7s", "default_max_retries": 2})
    async with make_engine(config=cfg) as engine:
        engine.pause()
        task = await submit(engine, "default_task")
        assert (task.timeout_s, task.max_retries, task.priority) == (7.0, 2, 0)
        assert task.status is TaskStatus.PENDING
        assert task.payload == {}
        own = await submit(engine, "default_task", timeout_s=0.5, max_retries=0, priority=-4)
        assert (own.timeout_s, own.max_retries, own.priority) == (0.5, 0, -4)
        assert own.seq > task.seq


async def test_ids_are_unique_and_url_safe() -> None:
    async with make_engine() as engine:
        engine.pause()
        tasks = await engine.submit_many([TaskSpec(type="default_task")] * 50)
        ids = {t.id for t in tasks}
        assert len(ids) == 50
        assert all(i.isalnum() and i.isascii() for i in ids)
        assert all(engine.get(i) is not None for i in ids)


async def test_submit_outside_the_engine_lifetime_is_refused() -> None:
    engine = Engine(make_config(), types=registry_with())
    with pytest.raises(ShuttingDown, match="not running"):
        engine.submit_nowait([TaskSpec(type="default_task")])
    async with engine:
        pass
    with pytest.raises(ShuttingDown, match="shutting down"):
        await submit(engine, "default_task")
    assert len(engine.registry) == 0


async def test_plain_specs_take_the_fast_path_and_become_the_same_tasks() -> None:
    # Issue #16: specs without run_at, depends_on nor a unique key skip the order plan,
    # the waiting room and the key table; their tasks, events and queue places must be
    # exactly those of the full path (taken here through a unique key per spec).
    cfg = make_config(
        task={"default_task_timeout": "7s", "types": {"example_task": {"priority": 3}}}
    )
    async with make_engine(config=cfg) as engine:
        engine.pause()
        specs = [
            TaskSpec(type="default_task", payload={"n": 1}),
            TaskSpec(type="example_task", payload={}, max_retries=2, on_duplicate="return"),
            TaskSpec(type="default_task", priority=-4, timeout_s=0.5, retry_of="t0"),
            TaskSpec(type="default_task", payload={"n": 2}),
        ]
        keyed = [msgspec.structs.replace(s, unique_key=f"k{i}") for i, s in enumerate(specs)]
        async with engine.bus.subscribe(maxsize=100, name="test") as sub:
            created: list[bool] = []
            plain = await engine.submit_many(specs, created=created)
            full = await engine.submit_many(keyed)
            events = task_events(sub.get_nowait())
        assert created == [True] * 4
        assert [e.kind for e in events] == [EventKind.CREATED] * 8
        assert [e.task for e in events] == plain + full
        skip = {"id", "seq", "created_at", "unique_key"}
        for a, b in zip(plain, full, strict=True):
            fields_a = {k: v for k, v in msgspec.structs.asdict(a).items() if k not in skip}
            fields_b = {k: v for k, v in msgspec.structs.asdict(b).items() if k not in skip}
            assert fields_a == fields_b
        assert [t.seq for t in plain + full] == list(range(1, 9))
        # By priority, then in submission order.
        order = (plain[1], full[1], plain[0], plain[3], full[0], full[3], plain[2], full[2])
        assert list(engine.backlog.queue) == list(order)
        assert engine.registry.counts[TaskStatus.PENDING] == 8
        # Room is checked alike: a plain batch larger than the room admits nothing.
        room = engine.queue.free
        with pytest.raises(QueueFull, match=f"{room + 1} submitted, room for {room}"):
            engine.submit_nowait([TaskSpec(type="default_task")] * (room + 1))
        assert len(engine.registry) == 8
