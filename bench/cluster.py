"""Cluster benchmark (issue #11): our cluster mode against PgQueuer and Procrastinate on the
same PostgreSQL, same machine, one run, interleaved rounds.

    .venv/bin/python bench/cluster.py [--rounds 3] [--min-seconds 5]
    .venv/bin/python bench/cluster.py --peers-only          # PgQueuer and Procrastinate only

Measurements (every one in a fresh schema of its own, dropped after it):

- **no-op end to end**: workers running; a client process submits N no-op tasks in batches
  of 1000 and the run lasts from its first submission to the last completion the database
  recorded. Ours: 1 and 2 real ``workerpool-tui serve`` processes (``--workers`` each),
  tasks through ``POST /api/v1/tasks/batch`` (batches spread over the instances, two
  connections each), drained when ``GET /api/v1/tasks/status/stats`` shows nothing pending
  or running and the target completed. PgQueuer 1.6: 2 worker processes, its default batch
  size. Procrastinate 3.10: 2 processes x concurrency 16. Peers: ``bench/baselines/``.
- **submit latency**: one instance; an open-loop generator (``bench/cluster_load.py``)
  sends ``POST /api/v1/tasks`` at ``--rate`` per second for ``--latency-seconds``;
  latency from each request's scheduled moment. The same against the same server on
  memory only is printed beside it: the floor this machine and generator allow.
- **I/O-bound**: ``default_task`` with ``{"sleep": 0.02}``, ``--io-workers`` workers per
  instance, 1 and 2 instances.

N is scaled so that a run lasts at least ``--min-seconds`` (from a calibration run of
``--calibrate`` tasks, not counted; a round that still ran shorter is marked so and raises
N for the next rounds), capped by ``--max-tasks``; every run is bounded by
``--run-timeout``. CPU per task: each of our processes (with its children), the client
process, and the PostgreSQL backends serving them (``bench/cluster_procs.py``); their sum
per no-op task is printed too, a cross-check that other load on the machine moves less
than throughput. Every process started here is stopped by its pid.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import traceback
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

# bench/http.py would shadow the standard library's http package; the helpers beside this
# file are imported by name.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.append(str(HERE))

from cluster_runs import IO, NOOP, PG, Bench, Result  # noqa: E402

NAMES = {
    "ours1": "ours, 1 instance",
    "ours2": "ours, 2 instances",
    "pgq": "PgQueuer 1.6, 2 processes",
    "proc": "Procrastinate 3.10, 2 x 16",
    "io1": "ours, 1 instance",
    "io2": "ours, 2 instances",
    "lat": "ours, 1 instance",
    "latmem": "ours, memory store (floor)",
}
PARTS = {
    "noop": ("ours1", "ours2", "pgq", "proc"),
    "io": ("io1", "io2"),
    "latency": ("lat", "latmem"),
}
OURS = {"ours1", "ours2", "io1", "io2", "lat", "latmem"}
LATENCY = {"lat", "latmem"}


def runner(bench: Bench, kind: str) -> Callable[[int, float], Result]:
    a = bench.args
    table: dict[str, Callable[[int, float], Result]] = {
        "ours1": lambda n, e: bench.ours(1, n, NOOP, a.workers, e),
        "ours2": lambda n, e: bench.ours(2, n, NOOP, a.workers, e),
        "pgq": bench.pgqueuer,
        "proc": bench.procrastinate,
        "io1": lambda n, e: bench.ours(1, n, IO, a.io_workers, e),
        "io2": lambda n, e: bench.ours(2, n, IO, a.io_workers, e),
        # For these the second argument is how long the generator runs.
        "lat": lambda n, e: bench.latency(seconds=e),
        "latmem": lambda n, e: bench.latency(store="", seconds=e),
    }
    return table[kind]


def us(cpu_s: float, tasks: int) -> float:
    return cpu_s * 1e6 / tasks


def cpu_text(r: Result) -> str:
    procs = r.cpu["procs"]
    parts = [f"{name} {us(cpu, r.tasks):,.0f}" for name, cpu in procs.items()]
    parts.append(f"postgres {us(r.cpu['postgres'], r.tasks):,.0f} ({r.cpu['backends']} backends)")
    return (
        "CPU us/task: "
        + ", ".join(parts)
        + f"  [all postgres processes {us(r.cpu['postgres_all'], r.tasks):,.0f}]"
    )


def run_line(tag: str, kind: str, r: Result, note: str = "") -> str:
    if kind in LATENCY:
        e = r.extra
        d, s = e["due_ms"], e["send_ms"]
        ok = e["statuses"].get("201", 0)
        return (
            f"{tag} {NAMES[kind]:<27} submit at {r.tasks / r.seconds:,.0f}/s: p50 {d['0.5']:.2f}"
            f" p99 {d['0.99']:.2f} p99.9 {d['0.999']:.2f} max {d['max']:.1f} ms from schedule"
            f" (from send p99 {s['0.99']:.2f}, waiting for a free connection p99"
            f" {e['waited_ms']['0.99']:.2f}, generator lag p99 {e['lag_ms']['0.99']:.2f});"
            f" {ok:,}/{e['scheduled']:,} answered 201,"
            f" {e['error_count']} errors, {e['connections']} connections\n      {cpu_text(r)}"
        )
    what = "sleep 20 ms" if kind in ("io1", "io2") else "no-op"
    return (
        f"{tag} {NAMES[kind]:<27} {what:<11} {r.rate:>9,.0f} tasks/s"
        f"  ({r.tasks:,} in {r.seconds:.2f} s){note}\n      {cpu_text(r)}"
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def header() -> None:
    import psycopg

    with psycopg.connect(PG, autocommit=True) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN"
                " ('server_version', 'synchronous_commit', 'shared_buffers', 'max_connections')"
            ).fetchall()
        )
    versions = []
    for dist in ("workerpool-tui", "pgqueuer", "procrastinate", "asyncpg", "psycopg"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} (not installed)")
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(load)}")
    print(
        f"PostgreSQL {settings['server_version']}: synchronous_commit"
        f" {settings['synchronous_commit']}, shared_buffers"
        f" {int(settings['shared_buffers']) * 8 // 1024} MB"
    )
    print("packages: " + ", ".join(versions))


def cpu_medians(rs: list[Result]) -> str:
    names = list(rs[0].cpu["procs"])
    parts = [f"{n} {median([us(r.cpu['procs'][n], r.tasks) for r in rs]):,.0f}" for n in names]
    parts.append(f"postgres {median([us(r.cpu['postgres'], r.tasks) for r in rs]):,.0f}")
    return ", ".join(parts)


def total_us(r: Result) -> float:
    return us(sum(r.cpu["procs"].values()) + r.cpu["postgres"], r.tasks)


def figure(kind: str, r: Result | None) -> float:
    if r is None:
        return math.nan
    return float(r.extra["due_ms"]["0.99"]) if kind in LATENCY else r.rate


def summary(
    args: argparse.Namespace, kinds: list[str], results: dict[str, list[Result | None]]
) -> None:
    rounds = max((len(v) for v in results.values()), default=0)
    print(f"\nsummary: median of {rounds} rounds [every round], CPU us/task medians")
    titles = {
        "noop": "no-op end to end (tasks/s)",
        "io": "I/O-bound, sleep 20 ms (tasks/s)",
        "latency": f"submit latency at {args.rate:,.0f}/s (p99 ms from schedule)",
    }
    med: dict[str, float] = {}
    for part, members in PARTS.items():
        shown = [k for k in members if k in kinds]
        if not shown:
            continue
        print(titles[part])
        for kind in shown:
            figs = [figure(kind, r) for r in results[kind]]
            done = [r for r in results[kind] if r is not None]
            if done:
                med[kind] = median([f for f in figs if not math.isnan(f)])
            spread = "  ".join(
                "failed" if math.isnan(f) else f"{f:,.{2 if kind in LATENCY else 0}f}" for f in figs
            )
            m = med.get(kind, math.nan)
            fmt = f"{m:>9.2f}" if kind in LATENCY else f"{m:>9,.0f}"
            cpu = cpu_medians(done) if done else "-"
            print(f"  {NAMES[kind]:<27}{fmt}  [{spread}]  CPU: {cpu}")

    def ratio(a: str, b: str, goal: float, label: str) -> None:
        if a not in med or b not in med:
            why = "ours not run" if a in OURS and not args.ours else "not run"
            print(f"  {label:<36} n/a ({why})   goal >= {goal:g}x")
            return
        value = med[a] / med[b]
        rounds_ = [
            f"{x.rate / y.rate:.2f}x"
            for x, y in zip(results[a], results[b], strict=True)
            if x is not None and y is not None
        ]
        verdict = "met" if value >= goal else "NOT met"
        print(
            f"  {label:<36} {value:6.2f}x  goal >= {goal:g}x  {verdict}"
            f"   per round: {' '.join(rounds_)}"
        )

    totals = {
        k: median([total_us(r) for r in results[k] if r is not None])
        for k in PARTS["noop"]
        if k in kinds and any(r is not None for r in results[k])
    }
    if totals:
        print("CPU per no-op task, every process of the run and its PostgreSQL backends (median)")
        cores = os.cpu_count() or 1
        for kind, total in totals.items():
            print(
                f"  {NAMES[kind]:<27}{total:>9,.0f} us   -> {cores * 1e6 / total:,.0f} tasks/s"
                f" if {cores} cores did nothing else"
            )
    print("goals")
    for peer, goal in (("pgq", 1.5), ("proc", 10.0)):
        ratio("ours2", peer, goal, f"ours 2 instances / {NAMES[peer].split(' ')[0]}")
        if "ours2" in totals and peer in totals:
            print(
                f"  {'  the same by CPU per task':<36} {totals[peer] / totals['ours2']:6.2f}x"
                "  (a cross-check that load on the machine moves less; not the goal)"
            )
    if "lat" in med:
        p99 = med["lat"]
        verdict = "met" if p99 < 10 else "NOT met"
        floor = f"   (memory-store floor {med['latmem']:.2f} ms)" if "latmem" in med else ""
        print(
            f"  {'submit p99 at ' + format(args.rate, ',.0f') + '/s':<36} {p99:6.2f} ms"
            f" goal < 10 ms  {verdict}{floor}"
        )
    else:
        print(
            f"  {'submit p99':<36} n/a ({'not run' if args.ours else 'ours not run'})"
            "   goal < 10 ms"
        )
    ratio("io2", "io1", 1.8, "I/O-bound 2 instances / 1 instance")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--min-seconds", type=float, default=5.0, help="shortest run (default 5)")
    parser.add_argument("--max-tasks", type=int, default=300_000, help="most tasks in a run")
    parser.add_argument("--calibrate", type=int, default=2000, help="tasks of the calibration run")
    parser.add_argument("--run-timeout", type=float, default=180.0, help="longest run, seconds")
    parser.add_argument("--workers", type=int, default=50, help="workers per instance, no-op")
    parser.add_argument("--io-workers", type=int, default=50, help="workers per instance, I/O")
    parser.add_argument("--rate", type=float, default=1000.0, help="submits/s, latency run")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument(
        "--parts", default="noop,io,latency", help="comma-separated: noop, io, latency"
    )
    parser.add_argument(
        "--ours",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run our cluster mode (default on)",
    )
    parser.add_argument("--peers-only", action="store_true", help="the same as --no-ours")
    args = parser.parse_args()
    if args.peers_only:
        args.ours = False
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if unknown := set(parts) - PARTS.keys():
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))}")
    kinds = [k for p in PARTS if p in parts for k in PARTS[p] if args.ours or k not in OURS]
    if not kinds:
        parser.error("nothing to run (the latency and I/O parts are ours only)")

    header()
    bench = Bench(args)
    counts: dict[str, int] = {}
    expected: dict[str, float] = {}
    results: dict[str, list[Result | None]] = {k: [] for k in kinds}
    try:
        print(
            f"\ncalibration ({args.calibrate:,} tasks each; sets N for {args.min_seconds:g} s runs)"
        )
        for kind in kinds:
            if kind in LATENCY:  # a short warm-up run, not counted
                counts[kind], expected[kind] = 0, args.latency_seconds
                try:
                    r = runner(bench, kind)(0, min(3.0, args.latency_seconds))
                except RuntimeError as exc:
                    print(f"  {NAMES[kind]}: warm-up failed: {exc}")
                    continue
                p99 = r.extra["due_ms"]["0.99"]
                print(f"  {NAMES[kind]:<27} submit p99 {p99:,.2f} ms (warm-up, not counted)")
                continue
            try:
                r = runner(bench, kind)(args.calibrate, args.calibrate / 100)
            except RuntimeError as exc:
                print(f"  {NAMES[kind]}: calibration failed: {exc}")
                continue
            n = math.ceil(r.rate * args.min_seconds / 1000) * 1000
            counts[kind] = max(1000, min(args.max_tasks, n))
            expected[kind] = counts[kind] / r.rate
            print(f"  {NAMES[kind]:<27} {r.rate:>9,.0f} tasks/s -> N = {counts[kind]:,}")
        for rnd in range(args.rounds):
            print(f"\nround {rnd + 1}")
            order = [k for k in kinds if k in counts]
            order = order[rnd % len(order) :] + order[: rnd % len(order)] if order else []
            for kind in order:
                n = counts[kind]
                try:
                    r = runner(bench, kind)(n, expected[kind])
                except RuntimeError as exc:
                    print(f"  {NAMES[kind]}: failed: {exc}")
                    results[kind].append(None)
                    continue
                results[kind].append(r)
                short = kind not in LATENCY and r.seconds < args.min_seconds
                note = f"  (shorter than {args.min_seconds:g} s)" if short else ""
                print(run_line(f"  [{rnd + 1}]", kind, r, note))
                if short:  # the calibration was slow: more work from the next round on
                    n = math.ceil(r.rate * args.min_seconds * 1.2 / 1000) * 1000
                    counts[kind] = max(counts[kind], min(args.max_tasks, n))
                    expected[kind] = counts[kind] / r.rate
    except KeyboardInterrupt:
        print("\ninterrupted: stopping", file=sys.stderr)
        traceback.print_exc(limit=1)
    finally:
        bench.close()
    summary(args, kinds, results)


if __name__ == "__main__":
    main()
