"""Client processes of ``bench/cluster.py`` for our HTTP API (one process each, so that
their CPU is measured apart from the servers'):

``submit``   submits N tasks as batches of at most 1000 (``POST /api/v1/tasks/batch``)
             over keep-alive connections, ``--per-url`` at once to each instance.
``openloop`` an open-loop load generator: ``POST /api/v1/tasks`` at a fixed rate for a
             fixed time, each request due at its scheduled moment whatever the earlier
             ones are doing, sent on the next free one of ``--connections`` keep-alive
             connections; latency is measured from the due moment (no coordinated
             omission) and from the actual send.

Both print ``ready`` once connected, start on a ``go`` line on stdin, print
``result {json}`` (with their own CPU time) and exit on ``quit`` or end of input, so that
their connections stay open until the caller has read the servers' CPU.

    python bench/cluster_load.py submit --url http://127.0.0.1:8080 --count 10000
    python bench/cluster_load.py openloop --url http://127.0.0.1:8080 --rate 1000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import resource
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

# bench/http.py would shadow the standard library's http package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]

import http.client  # noqa: E402

import h11  # noqa: E402

BATCH_MAX = 1000
RETRY_LIMIT = 200
"""How many 503 answers in a row a submitter thread accepts before it gives up."""


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def handshake(result: dict[str, object] | None = None) -> None:
    """``ready`` → wait for ``go``; or print the result and wait for ``quit``."""
    if result is None:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            raise SystemExit(0)
        return
    print("result " + json.dumps(result), flush=True)
    sys.stdin.readline()


# ------------------------------------------------------------------ submit
def submit(
    urls: list[str], count: int, batch: int, per_url: int, payload: dict[str, object]
) -> None:
    sizes = [min(batch, count - i) for i in range(0, count, batch)]
    bodies = {
        n: json.dumps({"tasks": [{"type": "default_task", "payload": payload}] * n}).encode()
        for n in set(sizes)
    }
    lock = threading.Lock()
    state = {"next": 0, "submitted": 0, "retried": 0}
    errors: list[str] = []
    conns = []
    for url in urls:
        parts = urlsplit(url)
        for _ in range(per_url):
            c = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            c.connect()
            conns.append(c)

    def worker(conn: http.client.HTTPConnection) -> None:
        refused = 0
        while True:
            with lock:
                if errors or state["next"] >= len(sizes):
                    return
                n = sizes[state["next"]]
                state["next"] += 1
            while True:
                conn.request(
                    "POST",
                    "/api/v1/tasks/batch",
                    body=bodies[n],
                    headers={"content-type": "application/json"},
                )
                resp = conn.getresponse()
                text = resp.read()
                if resp.status == 201:
                    with lock:
                        state["submitted"] += n
                    break
                if resp.status == 503 and refused < RETRY_LIMIT:
                    refused += 1
                    with lock:
                        state["retried"] += 1
                    time.sleep(min(0.2, float(resp.getheader("retry-after") or 0.05)))
                    continue
                with lock:
                    errors.append(f"{resp.status} {text[:200]!r}")
                return

    handshake()
    cpu0, t0 = cpu_now(), time.time()
    threads = [threading.Thread(target=worker, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t1, cpu1 = time.time(), cpu_now()
    for c in conns:
        c.close()
    handshake(
        {
            "t0": t0,
            "t1": t1,
            "cpu_s": cpu1 - cpu0,
            "submitted": state["submitted"],
            "retried": state["retried"],
            "errors": errors[:5],
        }
    )


# ------------------------------------------------------------------ open loop
class Conn:
    """One keep-alive HTTP/1.1 connection (h11 does the protocol)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(our_role=h11.CLIENT)

    async def post(self, head: h11.Request, body: bytes) -> int:
        h = self.h11
        self.writer.write(h.send(head) + h.send(h11.Data(data=body)) + h.send(h11.EndOfMessage()))
        status = 0
        while True:
            event = h.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(65536)
                h.receive_data(data)
                if not data:
                    raise ConnectionError("closed by the server")
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                h.start_next_cycle()
                return status
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("closed by the server")

    def close(self) -> None:
        self.writer.close()


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


async def openloop(
    url: str, rate: float, seconds: float, payload: dict[str, object], conns: int
) -> None:
    """A scheduler puts each request's due time on a queue at that moment; ``conns``
    keep-alive connections take them in turn. A request waiting for a free connection
    waits on the clock: its latency counts from when it was due."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = json.dumps({"type": "default_task", "payload": payload}).encode()
    head = h11.Request(
        method="POST",
        target="/api/v1/tasks",
        headers=[
            ("host", f"{host}:{port}"),
            ("content-type", "application/json"),
            ("content-length", str(len(body))),
        ],
    )
    n = max(1, round(rate * seconds))
    due_q: asyncio.Queue[tuple[float, float] | None] = asyncio.Queue()
    from_due: list[float] = []
    from_send: list[float] = []
    waited: list[float] = []
    lag: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    loop = asyncio.get_running_loop()

    async def connection(conn: Conn) -> None:
        while (item := await due_q.get()) is not None:
            due, queued = item
            sent = loop.time()
            try:
                status = await conn.post(head, body)
            except (OSError, ConnectionError, h11.ProtocolError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                conn.close()
                try:  # a keep-alive connection the server closed: open another
                    conn = Conn(*await asyncio.open_connection(host, port))
                except OSError as exc2:
                    errors.append(f"connect: {exc2}")
                    return
                continue
            done = loop.time()
            from_due.append(done - due)
            from_send.append(done - sent)
            waited.append(sent - queued)
            lag.append(queued - due)
            statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    pool = [Conn(*await asyncio.open_connection(host, port)) for _ in range(conns)]
    handshake()
    cpu0, t0 = cpu_now(), time.time()
    workers = [loop.create_task(connection(c)) for c in pool]
    start = loop.time() + 0.01
    for i in range(n):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        due_q.put_nowait((due, loop.time()))
    for _ in workers:
        due_q.put_nowait(None)
    _, pending = await asyncio.wait(workers, timeout=30)
    for task in pending:
        task.cancel()
        errors.append("a connection had not finished 30 s after the last request was due")
    t1, cpu1 = time.time(), cpu_now()
    from_due.sort()
    from_send.sort()
    waited.sort()
    lag.sort()
    ms = 1000.0
    handshake(
        {
            "t0": t0,
            "t1": t1,
            "cpu_s": cpu1 - cpu0,
            "scheduled": n,
            "answered": len(from_due),
            "statuses": statuses,
            "errors": errors[:5],
            "error_count": len(errors),
            "connections": conns,
            "due_ms": {q: percentile(from_due, float(q)) * ms for q in ("0.5", "0.99", "0.999")}
            | {"max": (from_due[-1] if from_due else math.nan) * ms},
            "send_ms": {q: percentile(from_send, float(q)) * ms for q in ("0.5", "0.99")},
            # waited: queued until a connection took it; lag: the generator running late
            "waited_ms": {q: percentile(waited, float(q)) * ms for q in ("0.5", "0.99")},
            "lag_ms": {q: percentile(lag, float(q)) * ms for q in ("0.5", "0.99")},
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="role", required=True)
    s = sub.add_parser("submit")
    s.add_argument("--url", action="append", required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--batch", type=int, default=BATCH_MAX)
    s.add_argument("--per-url", type=int, default=2)
    s.add_argument("--payload", default="{}")
    o = sub.add_parser("openloop")
    o.add_argument("--url", required=True)
    o.add_argument("--rate", type=float, default=1000.0)
    o.add_argument("--seconds", type=float, default=10.0)
    o.add_argument("--connections", type=int, default=32)
    o.add_argument("--payload", default="{}")
    args = parser.parse_args()
    payload = json.loads(args.payload)
    if args.role == "submit":
        if not 1 <= args.batch <= BATCH_MAX:
            parser.error(f"--batch must be within 1..{BATCH_MAX}")
        submit(args.url, args.count, args.batch, args.per_url, payload)
    else:
        asyncio.run(openloop(args.url, args.rate, args.seconds, payload, args.connections))


if __name__ == "__main__":
    main()
