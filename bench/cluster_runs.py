"""The runs of ``bench/cluster.py``: starting each system in a fresh schema, one flow of
tasks through it, and its figures (see that file for what is measured and how)."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from cluster_procs import CpuMeter, Proc, free_port, stop_all

HERE = Path(__file__).resolve().parent

PG = os.environ.get("WORKERPOOL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
PY = sys.executable
BASELINES = HERE / "baselines"
POLL_S = 0.05
START_TIMEOUT_S = 60.0
NOOP, IO = "{}", '{"sleep": 0.02}'


@dataclass
class Result:
    tasks: int
    seconds: float
    cpu: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.admin = psycopg.connect(PG, autocommit=True)
        self.pg_port = urlsplit(PG).port or 5432
        self.tag = secrets.token_hex(3)
        self.serial = 0
        self.schemas: list[str] = []
        self.tmp = tempfile.mkdtemp(prefix="bench-cluster-")

    # ------------------------------------------------------------------ plumbing
    def schema(self) -> str:
        self.serial += 1
        name = f"bench_cl_{self.tag}_{self.serial}"
        self.schemas.append(name)
        return name

    def drop(self, schema: str) -> None:
        self.admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")

    def backends_of(self, ports: set[int]) -> dict[int, int]:
        rows = self.admin.execute(
            "SELECT pid, client_port FROM pg_stat_activity WHERE client_port = ANY(%s)",
            (list(ports),),
        ).fetchall()
        return {int(pid): int(port) for pid, port in rows}

    def scalar(self, query: str) -> Any:
        row = self.admin.execute(query).fetchone()
        return row[0] if row else None

    def peer(self, script: str, role: str, schema: str, *extra: str, name: str = "") -> Proc:
        cmd = [PY, str(BASELINES / script), role, "--dsn", PG, "--schema", schema, *extra]
        return Proc(name or f"{script} {role}", cmd, dict(os.environ), self.tmp)

    def serve(self, schema: str, index: int, workers: int, *, store: str = PG) -> tuple[Proc, str]:
        """A real ``workerpool-tui serve``: on the cluster store, or ``store=""`` (memory)."""
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKERPOOL")}
        capacity = self.args.max_tasks + 1000
        env.update(
            HOME=self.tmp,
            WORKERPOOL__STORE__SCHEMA=schema,
            WORKERPOOL__STORE__INSTANCE_NAME=f"{schema}-{index}",
            WORKERPOOL__WORKER__MIN_WORKERS=str(workers),
            WORKERPOOL__WORKER__MAX_WORKERS=str(workers),
            WORKERPOOL__WORKER__SHUTDOWN_TIMEOUT="5s",
            WORKERPOOL__TASK__QUEUE_CAPACITY=str(capacity),
            WORKERPOOL__TASK__MAX_TRACKED_TASKS=str(2 * capacity),
            WORKERPOOL__LOGGER__LEVEL="warning",
        )
        cmd = [PY, "-m", "workerpool_tui", "serve", "--port", str(port), "--store", store]
        return Proc(f"serve-{index}", cmd, env, self.tmp), f"http://127.0.0.1:{port}"

    def start_ours(
        self, schema: str, n: int, workers: int, *, store: str = PG
    ) -> tuple[list[Proc], list[str]]:
        procs: list[Proc] = []
        urls: list[str] = []
        try:
            for i in range(n):
                proc, url = self.serve(schema, i + 1, workers, store=store)
                procs.append(proc)
                urls.append(url)
                wait_healthy(proc, url)  # one at a time: the first creates the schema
        except BaseException:
            stop_all(procs)
            raise
        return procs, urls

    # ------------------------------------------------------------------ one run
    def flow(
        self,
        workers: list[Proc],
        client: Proc,
        count: int,
        drained: Callable[[], bool],
        last_finish: Callable[[], tuple[float, int]],
        expected_s: float,
    ) -> Result:
        """Start ``client`` (already ``ready``), wait until ``drained``; the figures."""
        client.expect("ready", START_TIMEOUT_S)
        time.sleep(0.5)  # let the workers settle into waiting
        meter = CpuMeter(
            {**{p.name: p.pid for p in workers}, "client": client.pid},
            self.backends_of,
            self.pg_port,
        )
        meter.start()
        client.send("go")
        timeout = min(self.args.run_timeout, max(30.0, 4 * expected_s + 10))
        deadline = time.monotonic() + timeout
        report: dict[str, Any] | None = None
        next_poll = 0.0
        while True:
            if report is None:
                line = client.poll_line("result ")
                if line is not None:
                    report = json.loads(line[len("result ") :])
                    if report["errors"] or report["submitted"] != count:
                        raise RuntimeError(f"{client.name}: {report}")
            if report is not None and drained():
                break
            for p in [*workers, client]:
                if not p.alive():
                    raise RuntimeError(p.failure(f"exited ({p.popen.returncode}) during the run"))
            if time.monotonic() > deadline:
                raise RuntimeError(f"not drained within {timeout:.0f}s (bounded by --run-timeout)")
            if time.monotonic() >= next_poll:
                meter.poll()
                next_poll = time.monotonic() + 0.25
            time.sleep(POLL_S)
        meter.stop()
        client.send("quit")
        end, done = last_finish()
        if done != count:
            raise RuntimeError(f"{done} of {count} tasks completed")
        return Result(count, end - report["t0"], meter.result())

    def ours(
        self, instances: int, count: int, payload: str, workers: int, expected: float
    ) -> Result:
        schema = self.schema()
        procs: list[Proc] = []
        try:
            procs, urls = self.start_ours(schema, instances, workers)
            cmd = [PY, str(HERE / "cluster_load.py"), "submit", "--count", str(count)]
            cmd += ["--payload", payload] + [a for u in urls for a in ("--url", u)]
            client = Proc("client", cmd, dict(os.environ), self.tmp)
            procs.append(client)

            def drained() -> bool:
                t = get_json(f"{urls[0]}/api/v1/tasks/status/stats")["tasks"]
                return t["pending"] == 0 and t["running"] == 0 and t["completed"] >= count

            def last() -> tuple[float, int]:
                row = self.admin.execute(
                    f"SELECT max(finished_at), count(*) FROM {schema}.tasks"
                    " WHERE status = 'completed'"
                ).fetchone()
                assert row is not None
                return float(row[0]), int(row[1])

            return self.flow(procs[:instances], client, count, drained, last, expected)
        finally:
            stop_all(procs)
            self.drop(schema)

    def pgqueuer(self, count: int, expected: float) -> Result:
        schema = self.schema()
        procs: list[Proc] = []
        script = "pgqueuer_peer.py"
        try:
            install = self.peer(script, "install", schema)
            if install.popen.wait(timeout=START_TIMEOUT_S) != 0:
                raise RuntimeError(install.failure("install failed"))
            for i in (1, 2):
                procs.append(self.peer(script, "worker", schema, name=f"pgqueuer-{i}"))
                procs[-1].expect("ready", START_TIMEOUT_S)
            client = self.peer(script, "submit", schema, "--count", str(count), name="client")
            procs.append(client)

            def drained() -> bool:
                return bool(self.scalar(f"SELECT NOT EXISTS (SELECT 1 FROM {schema}.pgqueuer)"))

            def last() -> tuple[float, int]:
                row = self.admin.execute(
                    f"SELECT extract(epoch FROM max(created)), count(*) FROM {schema}.pgqueuer_log"
                    " WHERE status = 'successful'"
                ).fetchone()
                assert row is not None
                return float(row[0]), int(row[1])

            return self.flow(procs[:2], client, count, drained, last, expected)
        finally:
            stop_all(procs)
            self.drop(schema)

    def procrastinate(self, count: int, expected: float) -> Result:
        schema = self.schema()
        procs: list[Proc] = []
        script = "procrastinate_peer.py"
        try:
            self.admin.execute(f"CREATE SCHEMA {schema}")
            install = self.peer(script, "install", schema)
            if install.popen.wait(timeout=START_TIMEOUT_S) != 0:
                raise RuntimeError(install.failure("install failed"))
            for i in (1, 2):
                procs.append(self.peer(script, "worker", schema, name=f"procrastinate-{i}"))
                procs[-1].expect("ready", START_TIMEOUT_S)
            client = self.peer(script, "submit", schema, "--count", str(count), name="client")
            procs.append(client)

            def drained() -> bool:
                return bool(
                    self.scalar(
                        f"SELECT NOT EXISTS (SELECT 1 FROM {schema}.procrastinate_jobs"
                        " WHERE status IN ('todo', 'doing'))"
                    )
                )

            def last() -> tuple[float, int]:
                row = self.admin.execute(
                    f"SELECT extract(epoch FROM max(at)), count(*)"
                    f" FROM {schema}.procrastinate_events WHERE type = 'succeeded'"
                ).fetchone()
                assert row is not None
                return float(row[0]), int(row[1])

            return self.flow(procs[:2], client, count, drained, last, expected)
        finally:
            stop_all(procs)
            self.drop(schema)

    def latency(self, store: str = PG, seconds: float | None = None) -> Result:
        """The open-loop submit latency against one instance; ``store=""``: the same server
        on memory only, the floor this machine and load generator allow."""
        a = self.args
        schema = self.schema()
        procs: list[Proc] = []
        try:
            procs, urls = self.start_ours(schema, 1, a.workers, store=store)
            cmd = [PY, str(HERE / "cluster_load.py"), "openloop", "--url", urls[0]]
            seconds = a.latency_seconds if seconds is None else seconds
            cmd += ["--rate", str(a.rate), "--seconds", str(seconds)]
            client = Proc("client", cmd, dict(os.environ), self.tmp)
            procs.append(client)
            client.expect("ready", START_TIMEOUT_S)
            meter = CpuMeter(
                {"serve-1": procs[0].pid, "client": client.pid}, self.backends_of, self.pg_port
            )
            meter.start()
            client.send("go")
            deadline = time.monotonic() + seconds + 60
            while (line := client.poll_line("result ")) is None:
                if time.monotonic() > deadline or not client.alive():
                    raise RuntimeError(client.failure("no result"))
                meter.poll()
                time.sleep(0.25)
            meter.stop()
            client.send("quit")
            report = json.loads(line[len("result ") :])
            return Result(report["answered"], report["t1"] - report["t0"], meter.result(), report)
        finally:
            stop_all(procs)
            self.drop(schema)

    def close(self) -> None:
        for schema in self.schemas:
            self.drop(schema)
        self.admin.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_healthy(proc: Proc, url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not proc.alive():
            proc.drain_lines()
            raise RuntimeError(proc.failure(f"exited ({proc.popen.returncode}) at start"))
        try:
            if get_json(f"{url}/health").get("status") == "ok":
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(proc.failure(f"/health not ok within {START_TIMEOUT_S:g}s"))


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as r:
        result: dict[str, Any] = json.load(r)
        return result
