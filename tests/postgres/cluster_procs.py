"""Real ``workerpool-tui serve`` processes sharing one PostgreSQL schema (a cluster)."""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from anyio.abc import Process, TaskGroup

import workerpool_tui

_CHECKOUT = Path(workerpool_tui.__file__).resolve().parent.parent
"""The checkout under test: the instances import the package from it too (with only their
work directory on the path they imported the installed one, another checkout's code)."""
_LISTENING = re.compile(rb"API listening on (http://127\.0\.0\.1:\d+)")

RECORDER = """
import os, time
from pathlib import Path

import anyio


async def recorded(ctx, payload):
    \"\"\"Sleeps, leaving start/end lines (with the process id) in a shared file.\"\"\"
    log = Path(payload["log"])
    with log.open("a") as fh:
        fh.write(f"start {ctx.task_id} {os.getpid()} {time.time()}\\n")
    await anyio.sleep(float(payload.get("sleep", 0)))
    with log.open("a") as fh:
        fh.write(f"end {ctx.task_id} {os.getpid()} {time.time()}\\n")
    return {"pid": os.getpid()}
"""


class Instance:
    def __init__(self, name: str, proc: Process, url: str) -> None:
        self.name = name
        self.proc = proc
        self.url = url
        self.output = b""


STEADY = {"WORKERPOOL__STORE__HEARTBEAT": '"0.5s"', "WORKERPOOL__STORE__LEASE": '"10s"'}
"""Extra settings for a test about what instances show, not recovery: with the recovery
tests' 1.5 s lease a loaded machine's late heartbeat can mark an instance dead."""


def _env(
    workdir: Path, pg_url: str, schema: str, name: str, extra: dict[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKERPOOL")}
    env.update(
        {
            "HOME": str(workdir),
            "XDG_DATA_HOME": str(workdir / "data"),
            "PYTHONPATH": os.pathsep.join([str(workdir), str(_CHECKOUT)]),
            "PYTHONUNBUFFERED": "1",
            "WORKERPOOL__STORE__URL": f'"{pg_url}"',
            "WORKERPOOL__STORE__SCHEMA": f'"{schema}"',
            "WORKERPOOL__STORE__INSTANCE_NAME": f'"{name}"',
            "WORKERPOOL__STORE__HEARTBEAT": '"0.25s"',
            "WORKERPOOL__STORE__LEASE": '"1.5s"',
            "WORKERPOOL__SERVER__PORT": "0",
            "WORKERPOOL__WORKER__SHUTDOWN_TIMEOUT": '"2s"',
            "WORKERPOOL__WORKER__ENABLE_AUTO_SCALING": "false",
            "WORKERPOOL__LOGGER__LEVEL": '"info"',
            "WORKERPOOL__TASK__HANDLERS__RECORDED": '"recorder_tasks:recorded"',
        }
    )
    env.update(extra)
    return env


async def start(
    workdir: Path, pg_url: str, schema: str, name: str, tg: TaskGroup, **extra: str
) -> Instance:
    (workdir / "recorder_tasks.py").write_text(RECORDER)
    proc = await anyio.open_process(
        [sys.executable, "-m", "workerpool_tui", "serve"],
        env=_env(workdir, pg_url, schema, name, extra),
        cwd=workdir,
        stderr=None,
    )
    assert proc.stdout is not None
    seen = b""
    try:
        with anyio.fail_after(30):
            async for chunk in proc.stdout:
                seen += chunk
                match = _LISTENING.search(seen)
                if match:
                    instance = Instance(name, proc, match.group(1).decode())
                    instance.output = seen
                    tg.start_soon(_drain, instance)
                    return instance
    except BaseException:
        proc.kill()
        await proc.aclose()
        raise
    raise AssertionError(f"{name} exited before listening: {seen.decode(errors='replace')}")


async def _drain(instance: Instance) -> None:
    assert instance.proc.stdout is not None
    async for chunk in instance.proc.stdout:
        instance.output += chunk


async def stop(instance: Instance, sig: int = signal.SIGTERM) -> int:
    if instance.proc.returncode is None:
        instance.proc.send_signal(sig)
    with anyio.fail_after(20):
        return await instance.proc.wait()


@asynccontextmanager
async def cluster() -> AsyncIterator[tuple[TaskGroup, list[Instance]]]:
    """A task group for the instances' log readers; every instance still running at the
    end is killed (a failing test must not leave servers behind)."""
    instances: list[Instance] = []
    async with anyio.create_task_group() as tg:
        try:
            yield tg, instances
        finally:
            for instance in instances:
                if instance.proc.returncode is None:
                    instance.proc.kill()
            with anyio.CancelScope(shield=True):
                for instance in instances:
                    await instance.proc.wait()
                    await instance.proc.aclose()
            tg.cancel_scope.cancel()
