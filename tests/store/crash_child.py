"""Run by test_store_crash.py: an engine on a store, submitting until it is killed.

Several submitters (like HTTP connections) each submit a batch of 1-4 ``default_task``s
and print the batch's ids on one line as soon as ``submit_many`` returns, i.e. once the
engine acknowledged them. Every payload carries a unique ``n`` to spot duplicates.
"""

from __future__ import annotations

import itertools
import sys

import anyio

from workerpool_tui.config import Config, StoreConfig, TaskConfig, WorkerConfig
from workerpool_tui.core import Engine, QueueFull, TaskSpec
from workerpool_tui.store.sqlite import SqliteJournal


async def main(db: str) -> None:
    cfg = Config(
        # Two slow workers: work is left pending and running when the test kills us.
        worker=WorkerConfig(min_workers=2, max_workers=2, enable_auto_scaling=False),
        task=TaskConfig(queue_capacity=1000, max_tracked_tasks=100_000),
        store=StoreConfig(path=db),
    )
    counter = itertools.count()
    async with Engine(cfg, journal=SqliteJournal(db)) as engine:

        async def submitter(k: int) -> None:
            while True:
                specs = [
                    TaskSpec(type="default_task", payload={"n": next(counter), "sleep": 0.02})
                    for _ in range(1 + k % 4)
                ]
                try:
                    tasks = await engine.submit_many(specs)
                except QueueFull:
                    await anyio.sleep(0.01)
                    continue
                sys.stdout.write(" ".join(t.id for t in tasks) + "\n")
                sys.stdout.flush()

        async with anyio.create_task_group() as tg:
            for k in range(8):
                tg.start_soon(submitter, k)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
