"""An instance's memory does not grow with the cluster's task count (issue #11).

Fills a fresh schema with N finished tasks (one ``INSERT ... SELECT`` from
``generate_series``, as another instance's history would be), starts a real
``workerpool-tui serve`` on it, and measures the server's RSS: at start, after listing,
searching, counting and paging through the history over HTTP, and, as a baseline in the
same run, the same server on an empty schema doing the same.

    .venv/bin/python bench/cluster_memory.py --tasks 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

# bench/http.py would shadow the standard library's http package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import urllib.request  # noqa: E402

import psycopg  # noqa: E402

PG = os.environ.get("WORKERPOOL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start(schema: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKERPOOL")}
    env.update(
        {
            "WORKERPOOL__STORE__URL": f'"{PG}"',
            "WORKERPOOL__STORE__SCHEMA": f'"{schema}"',
            "WORKERPOOL__SERVER__PORT": "0",
            "WORKERPOOL__LOGGER__LEVEL": '"info"',
            "PYTHONUNBUFFERED": "1",
        }
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "workerpool_tui", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    seen = b""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen += line
        m = re.search(rb"API listening on (http://\S+)", line)
        if m:
            return proc, m.group(1).decode()
    proc.kill()
    raise SystemExit(f"serve did not start: {seen.decode(errors='replace')}")


def get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=120) as r:
        return json.load(r)


def exercise(url: str, pages: int) -> None:
    get(f"{url}/api/v1/tasks/status/stats")
    for offset in range(0, pages * 1000, 1000):
        get(f"{url}/api/v1/tasks?limit=1000&offset={offset}")
    get(f"{url}/api/v1/tasks?status=failed&limit=1000")
    get(f"{url}/api/v1/tasks?q=deadbeef&limit=1000")
    get(f"{url}/api/v1/tasks?q=example&limit=1000")
    get(f"{url}/api/v1/tasks?type=example_task&limit=1000")


def fill(schema: str, n: int) -> float:
    start_ = time.monotonic()
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(
            f"""
            INSERT INTO {schema}.tasks (id, type, status, priority, payload, max_retries,
                timeout_s, created_at, started_at, finished_at, progress, result, attempts,
                instance)
            SELECT lpad(to_hex(g), 16, '0'),
                   CASE WHEN g %% 3 = 0 THEN 'example_task' ELSE 'default_task' END,
                   CASE WHEN g %% 50 = 0 THEN 'failed' ELSE 'completed' END, 0,
                   json_build_object('n', g), 0, 300, 1.7e9 + g, 1.7e9 + g, 1.7e9 + g + 1,
                   100, '{{"ok": true}}', 1, 'elsewhere'
            FROM generate_series(1, %s) AS g
            """,
            (n,),
        )
        conn.execute(f"ANALYZE {schema}.tasks")
    return time.monotonic() - start_


def measure(schema: str, pages: int) -> tuple[int, int, float]:
    proc, url = start(schema)
    try:
        time.sleep(1.0)
        at_start = rss_kib(proc.pid)
        t0 = time.monotonic()
        for _ in range(3):
            exercise(url, pages)
        took = time.monotonic() - t0
        after = rss_kib(proc.pid)
        return at_start, after, took
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--pages", type=int, default=20, help="pages of 1000 listed")
    args = parser.parse_args()
    empty = f"bench_mem_{secrets.token_hex(4)}"
    full = f"bench_mem_{secrets.token_hex(4)}"
    try:
        # The schemas are created by the first start; then one is filled.
        for schema in (empty, full):
            proc, _ = start(schema)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
        took = fill(full, args.tasks)
        print(f"filled {args.tasks:,} finished tasks in {took:.1f}s")
        base = measure(empty, args.pages)
        big = measure(full, args.pages)
        print(f"{'schema':<24}{'RSS at start':>14}{'after reads':>14}{'reads took':>12}")
        for name, (a, b, t) in (("empty (baseline)", base), (f"{args.tasks:,} tasks", big)):
            print(f"{name:<24}{a / 1024:>11.1f} MB{b / 1024:>11.1f} MB{t:>10.2f} s")
        print(f"RSS ratio after reads (full / empty): {big[1] / base[1]:.2f}x")
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            for schema in (empty, full):
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()
