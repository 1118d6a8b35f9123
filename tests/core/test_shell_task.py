"""``shell_task`` (SPEC §5): tails, exit codes, and killing the whole process group."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import anyio
import pytest
from enginekit import (
    child_pids,
    live_group_members,
    make_config,
    submit,
    wait_final,
    wait_for,
)

from workerpool_tui.core import Engine, InvalidRequest, TaskStatus
from workerpool_tui.core.shell import TAIL_BYTES

pytestmark = pytest.mark.anyio

SHELL = make_config(task={"allow_shell": True})


def shell_engine() -> Engine:
    """The engine builds its own registry: ``shell_task`` is there because of allow_shell."""
    return Engine(SHELL)


async def test_argv_runs_without_a_shell_and_keeps_both_tails() -> None:
    async with shell_engine() as engine:
        task = await submit(
            engine, "shell_task", {"argv": ["sh", "-c", "echo out; echo err >&2; echo two"]}
        )
        await wait_final(engine, task)
    assert task.status is TaskStatus.COMPLETED
    assert task.result == {"exit_code": 0, "stdout_tail": "out\ntwo\n", "stderr_tail": "err\n"}
    assert task.logs is not None and list(task.logs) == ["out", "two"]


async def test_command_output_tail_is_bounded_to_the_end() -> None:
    async with shell_engine() as engine:
        task = await submit(
            engine,
            "shell_task",
            {"command": "head -c 20000 /dev/zero | tr '\\0' a; printf END"},
        )
        await wait_final(engine, task)
    assert task.status is TaskStatus.COMPLETED
    tail = task.result["stdout_tail"]
    assert len(tail) == TAIL_BYTES
    assert tail.endswith("aaaEND")


async def test_non_zero_exit_fails_and_keeps_the_result() -> None:
    async with shell_engine() as engine:
        task = await submit(
            engine, "shell_task", {"command": "echo partial; echo oops >&2; exit 3"}
        )
        await wait_final(engine, task)
    assert task.status is TaskStatus.FAILED
    assert task.error is not None
    assert task.error.type == "ShellFailed"
    assert "exit code 3" in task.error.message
    assert "oops" in task.error.message
    assert task.result == {"exit_code": 3, "stdout_tail": "partial\n", "stderr_tail": "oops\n"}


async def test_env_and_cwd(tmp_path: object) -> None:
    async with shell_engine() as engine:
        task = await submit(
            engine,
            "shell_task",
            {
                "command": 'printf "%s %s" "$GREETING" "$(pwd)"',
                "env": {"GREETING": "hi"},
                "cwd": str(tmp_path),
            },
        )
        await wait_final(engine, task)
    assert task.result["stdout_tail"] == f"hi {tmp_path}"


@pytest.mark.parametrize(
    "payload",
    [{}, {"argv": []}, {"argv": ["true"], "command": "true"}, {"argv": "true"}, {"cmd": "x"}],
)
async def test_bad_payload_is_refused_at_submission(payload: dict[str, object]) -> None:
    async with shell_engine() as engine:
        with pytest.raises(InvalidRequest):
            await submit(engine, "shell_task", payload)
        assert len(engine.registry) == 0


async def _start_group(engine: Engine, **kw: object) -> tuple[int, object]:
    """Submit ``sleep 300 & sleep 300`` and wait until its group has both sleepers."""
    before = child_pids()
    task = await submit(engine, "shell_task", {"command": "sleep 300 & sleep 300"}, **kw)
    found: list[int] = []

    def group_is_up() -> bool:
        for pid in child_pids() - before:
            if len(live_group_members(pid)) >= 2:
                found.append(pid)
                return True
        return False

    await wait_for(group_is_up, "the command's process group to start")
    return found[0], task


async def test_cancel_kills_the_whole_process_group() -> None:
    async with shell_engine() as engine:
        pgid, task = await _start_group(engine)
        members = live_group_members(pgid)
        assert pgid in members and len(members) >= 2
        await engine.cancel(task.id)  # type: ignore[attr-defined]
        assert task.status is TaskStatus.CANCELLED  # type: ignore[attr-defined]
        assert pgid not in child_pids()  # the shell was reaped
        # The background sleep was a grandchild: it died with the group.
        await wait_for(lambda: not live_group_members(pgid), "the process group to die")


async def test_timeout_kills_the_whole_process_group() -> None:
    async with shell_engine() as engine:
        pgid, task = await _start_group(engine, timeout_s=1.5)
        done = await wait_final(engine, task.id)  # type: ignore[attr-defined]
        assert done.status is TaskStatus.FAILED
        assert done.error is not None and done.error.type == "timeout"
        assert pgid not in child_pids()
        await wait_for(lambda: not live_group_members(pgid), "the process group to die")


def _pids_running(marker: str) -> set[int]:
    """Live processes whose command line holds ``marker``."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.add(int(entry))
    return {p for p in found if _alive(p)}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


async def test_cancel_at_any_point_of_the_start_leaves_no_process() -> None:
    """Cancel after 0, 1, 2, ... loop turns: also while the process is being set up."""
    async with shell_engine() as engine:
        for turns in range(0, 40, 2):
            marker = f"300.{uuid.uuid4().int % 10**6:06d}"
            before = child_pids()
            task = await submit(
                engine, "shell_task", {"command": f"sleep {marker} & sleep {marker}"}
            )
            for _ in range(turns):
                await anyio.lowlevel.checkpoint()
            if not task.status.final:
                await engine.cancel(task.id)
            assert task.status is TaskStatus.CANCELLED
            assert child_pids() - before == set()
            await wait_for(lambda m=marker: not _pids_running(m), f"no 'sleep {marker}' left")


async def test_output_without_newlines_is_logged_in_bounded_pieces() -> None:
    async with shell_engine() as engine:
        task = await submit(
            engine, "shell_task", {"command": "head -c 1000000 /dev/zero | tr '\\0' x"}
        )
        await wait_final(engine, task)
    assert task.status is TaskStatus.COMPLETED
    assert task.result["stdout_tail"] == "x" * TAIL_BYTES
    # The unterminated line did not pile up in memory: it reached the log in pieces.
    assert task.logs
    assert all(0 < len(line) <= TAIL_BYTES for line in task.logs)


async def test_a_group_that_ignores_sigterm_is_killed() -> None:
    async with shell_engine() as engine:
        before = child_pids()
        task = await submit(
            engine, "shell_task", {"command": "trap '' TERM; sleep 300 & sleep 300; wait"}
        )
        found: list[int] = []

        def group_is_up() -> bool:
            found[:] = [p for p in child_pids() - before if len(live_group_members(p)) >= 2]
            return bool(found)

        await wait_for(group_is_up, "the command's process group to start")
        await engine.cancel(task.id)
        assert task.status is TaskStatus.CANCELLED
        await wait_for(lambda: not live_group_members(found[0]), "the process group to die")


async def test_a_program_that_does_not_exist_fails_the_task() -> None:
    async with shell_engine() as engine:
        task = await submit(engine, "shell_task", {"argv": ["/nonexistent/program-zz"]})
        await wait_final(engine, task)
        assert task.status is TaskStatus.FAILED
        assert task.error is not None and task.error.type == "FileNotFoundError"
        nxt = await submit(engine, "shell_task", {"argv": ["true"]})
        assert (await wait_final(engine, nxt)).status is TaskStatus.COMPLETED
