"""Python opcodes the engine executes per task: a count that does not depend on the load.

    .venv/bin/python bench/opcodes.py [--tasks 20000] [--top 20]

Runs ``bench/pool.py``'s engine drive (no-op tasks submitted in batches, full tracking,
per-task timeouts, one bus subscriber draining every event) under ``sys.settrace`` with
opcode events, after a warm-up, and prints the opcodes per task in all and per function.
Tracing makes everything about 50x slower, so the workers' wall-clock time slice (which
would otherwise fire after every task) is switched off for the run. Opcodes are not time
(a C call is one opcode), but a change that removes work shows up here on a noisy machine
where a throughput benchmark cannot tell it from noise.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pool  # bench/pool.py, beside this file

import workerpool_tui.core.workers as workers_module

Counts = collections.Counter[tuple[str, str, int]]


def _short(path: str) -> str:
    return path.split("site-packages/")[-1].split("/workerpool_tui/")[-1]


async def _traced(n: int, counts: Counts) -> None:
    def local(frame: FrameType, event: str, arg: Any) -> Any:
        if event == "opcode":
            code = frame.f_code
            counts[(code.co_filename, code.co_name, code.co_firstlineno)] += 1
        return local

    def start(frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        return local

    async with pool._engine(n) as engine:
        await pool._drive(engine, 2_000)  # warm-up, not counted
        sys.settrace(start)
        try:
            await pool._drive(engine, n)
        finally:
            sys.settrace(None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=20_000)
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args()
    workers_module.SLICE_S = 1e9
    counts: Counts = collections.Counter()
    anyio.run(_traced, args.tasks, counts)
    n = args.tasks
    total = sum(counts.values()) / n
    print(f"opcodes per task: {total:.0f}  ({n:,} no-op tasks, harness included)")
    for (path, name, line), count in counts.most_common(args.top):
        print(f"{count / n:8.1f}  {_short(path)}:{line} {name}")


if __name__ == "__main__":
    main()
