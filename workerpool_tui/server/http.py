"""The HTTP/1.1 connection driver: h11's receive_data / next_event / send loop on an anyio
stream, with every limit of :class:`~.limits.Limits` enforced.

One :class:`HttpConnection` per accepted socket. It reads a request head under a deadline
(``keep_alive_timeout`` while idle, then ``header_timeout`` from the first byte), refuses an
oversize head (431) or a declared oversize body (413) before reading it, lets the
application refuse the request on its head alone (:meth:`Application.refuse_head`: host,
token, route; the body is then never read and the connection closes if one was coming),
reads the body under one total deadline (``body_timeout`` plus what ``body_min_rate``
allows for the bytes received, at most ``body_max_time``), hands a :class:`Request` to the
application and writes the answer in one send. A request framed by both ``Content-Length``
and ``Transfer-Encoding`` is read by the latter and its connection closed after the answer
(RFC 9112 §6.1). Error responses are only sent while h11 allows one (our state ``IDLE`` or
``SEND_RESPONSE``); anything else just closes. Handler errors become a logged 500, never a
crashed server; cancellation is always re-raised.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable

import anyio
import h11
from anyio.abc import ByteStream

from .answering import (
    STREAM_GONE,
    Answering,
    Closed,
    access_log,
    headers_too_large,
    redact,
    refuse_connection,
)
from .limits import Limits
from .request import WAITING_ON_CLIENT, Application, Phase, Request
from .responses import Headers, Response, Upgrade, error_response

log = logging.getLogger("workerpool_tui.server")

__all__ = [
    "WAITING_ON_CLIENT",
    "Application",
    "HttpConnection",
    "Phase",
    "Request",
    "refuse_connection",
]


class HttpConnection(Answering):
    """One HTTP/1.1 connection. Timeouts are deadlines (``deadline``, monotonic seconds) that
    the server's reaper checks a few times a second and enforces with :meth:`expire`: a
    float per phase instead of a cancel scope per read or write, which keeps the hot path
    thin."""

    def __init__(
        self,
        stream: ByteStream,
        handler: Application,
        limits: Limits,
        *,
        is_draining: Callable[[], bool],
    ) -> None:
        super().__init__(
            stream,
            limits,
            h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes),
        )
        self.handler = handler
        self.is_draining = is_draining
        self.requests = 0
        now = time.monotonic()
        self.deadline = now + limits.header_timeout_s
        self.phase = Phase.WAIT
        self.waiting_since = now
        """When the connection last began waiting for its client (accept, or the end of
        the previous answer): at the cap, the longest waiting is cut first."""
        self._scope: anyio.CancelScope | None = None
        self._expired = False
        self._evicted = False
        self._must_close = False

    def expire(self) -> None:
        """The deadline passed: interrupt whatever the connection waits for."""
        self._expired = True
        self.deadline = math.inf
        if self._scope is not None:
            self._scope.cancel()

    def evict(self) -> None:
        """Cut this connection, which only waits for its client, to make room for a new one
        at the connection cap: a request it was receiving is answered 503."""
        self._evicted = True
        self.expire()

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        """Serve requests until the peer leaves, a limit is hit, or an error closes us."""
        try:
            with anyio.CancelScope() as self._scope:
                await self._serve()
            if self._evicted:
                await self._cut_for_room()
            elif self._expired:
                await self._timed_out()
        except Closed:
            return
        finally:
            self.deadline = math.inf
            with anyio.CancelScope(shield=True):
                await self.stream.aclose()

    async def _serve(self) -> None:
        while True:
            request = await self._read_request()
            if request is None:
                return
            response = await self._respond(request)
            if isinstance(response, Upgrade):
                data, _ = self.conn.trailing_data
                await response.run(self.stream, data)
                return
            if self.conn.our_state is h11.MUST_CLOSE or response.close:
                await self._close(linger=self.conn.their_state is not h11.DONE)
                return
            self.conn.start_next_cycle()
            self.waiting_since = time.monotonic()

    async def _cut_for_room(self) -> None:
        if self.phase is Phase.HEAD or self.phase is Phase.BODY:
            response = error_response(
                503,
                "too_many_connections",
                f"the server holds its limit of {self.limits.max_connections} connections"
                " and this request was the slowest to arrive",
                close=True,
            )
            with anyio.move_on_after(self.limits.write_timeout_s):
                if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    with contextlib.suppress(h11.LocalProtocolError):
                        await self._write(response)

    async def _timed_out(self) -> None:
        phase = self.phase
        if phase is Phase.HEAD or phase is Phase.BODY:
            with anyio.move_on_after(self.limits.write_timeout_s):
                await self._send_error(
                    error_response(408, "request_timeout", f"timed out {phase.value}", close=True)
                )
        elif phase is Phase.WRITE:
            self.conn.send_failed()

    async def _receive(self) -> bytes:
        try:
            return await self.stream.receive(self.limits.read_chunk_bytes)
        except anyio.EndOfStream:
            return b""
        except STREAM_GONE:
            raise Closed from None

    async def _read_request(self) -> Request | None:
        """The next complete request (head and body), or ``None`` when the connection ends."""
        limits, conn = self.limits, self.conn
        try:
            pending, closed = conn.trailing_data
            if pending or closed:
                # A pipelined request may be complete already: no deadline to set up then.
                event = conn.next_event()
                if event is not h11.NEED_DATA:
                    await anyio.lowlevel.checkpoint()  # other connections go first
            else:
                event = h11.NEED_DATA  # nothing buffered: h11 could only say so
            if event is h11.NEED_DATA:
                if pending:
                    self.phase = Phase.HEAD
                    self.deadline = time.monotonic() + limits.header_timeout_s
                elif self.requests:
                    self.phase = Phase.WAIT
                    self.deadline = time.monotonic() + limits.keep_alive_timeout_s
                # else: a fresh connection keeps its header deadline from the accept
                while event is h11.NEED_DATA:
                    data = await self._receive()
                    if data and self.phase is Phase.WAIT:
                        # The head has header_timeout from its first byte.
                        self.phase = Phase.HEAD
                        self.deadline = time.monotonic() + limits.header_timeout_s
                    conn.receive_data(data)
                    event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            await self._protocol_error(exc)
            return None
        self.phase = Phase.BUSY
        self.deadline = math.inf
        if not isinstance(event, h11.Request):
            return None  # ConnectionClosed, or PAUSED after a refused upgrade
        self.requests += 1
        method = event.method.decode("ascii", "replace")
        target = event.target.decode("ascii", "replace")
        # One pass: copy the headers, measure the head (h11 caps a head that arrives in
        # pieces; one that arrived whole is measured here) and find the body's framing.
        headers: Headers = []
        head_size = len(event.target)
        content_length = -1
        chunked = False
        for raw_name, value in event.headers.raw_items():  # a plain list, unlike iterating
            name = raw_name.lower()
            headers.append((name, value))
            head_size += len(name) + len(value) + 4
            if name == b"content-length":
                content_length = int(value)  # h11 has validated it
            elif name == b"transfer-encoding":
                chunked = True  # h11 accepts only "chunked"
        if chunked:
            # Framed by Transfer-Encoding alone; with a Content-Length too the connection
            # closes after the answer (RFC 9112 §6.1: request smuggling).
            self._must_close = content_length >= 0
            content_length = -1
        if head_size > limits.max_header_bytes:
            await self._send_error(headers_too_large(limits), method, target)
            return None
        if self.is_draining():
            await self._send_error(
                error_response(503, "shutting_down", "the server is shutting down", close=True),
                method,
                target,
            )
            return None
        request = Request(method, target, headers, b"", local_ip=self.local_ip)
        refusal = self.handler.refuse_head(request)
        if refusal is not None:
            if chunked or content_length > 0:
                refusal.close = True  # its body is never read
            elif not isinstance(conn.next_event(), h11.EndOfMessage):
                refusal.close = True  # pragma: no cover - h11 ends a bodiless request at once
            request.refusal = refusal
            return request
        body = await self._read_body(method, target, content_length)
        if body is None:
            return None
        request.body = body
        return request

    async def _read_body(self, method: str, target: str, content_length: int) -> bytes | None:
        limits, conn = self.limits, self.conn
        cap = limits.max_body_bytes
        if content_length > cap:
            await self._send_error(
                error_response(
                    413,
                    "body_too_large",
                    f"request body of {content_length} bytes exceeds the limit of {cap}",
                    close=True,
                ),
                method,
                target,
            )
            return None
        if conn.they_are_waiting_for_100_continue:
            await self._send(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        chunks: list[bytes] = []
        size = 0
        start = 0.0
        received = 0
        latest = math.inf
        try:
            while True:
                event = conn.next_event()  # a body that came with the head needs no wait
                if event is h11.NEED_DATA:
                    if not start:
                        start = time.monotonic()
                        latest = start + limits.body_max_time_s
                    self.phase = Phase.BODY
                    while event is h11.NEED_DATA:
                        # One deadline for the whole body, extended only by what arrives
                        # (a byte now and then earns next to nothing), never past latest.
                        self.deadline = min(
                            start + limits.body_timeout_s + received / limits.body_min_rate, latest
                        )
                        data = await self._receive()
                        received += len(data)
                        conn.receive_data(data)
                        event = conn.next_event()
                    self.phase = Phase.BUSY
                    self.deadline = math.inf
                if isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > cap:
                        await self._send_error(
                            error_response(
                                413,
                                "body_too_large",
                                f"request body exceeds the limit of {cap} bytes",
                                close=True,
                            ),
                            method,
                            target,
                        )
                        return None
                    chunks.append(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    return b"".join(chunks) if chunks else b""
                else:
                    return None  # ConnectionClosed mid-body
        except h11.RemoteProtocolError as exc:
            await self._protocol_error(exc)
            return None

    # ------------------------------------------------------------------ answering
    async def _respond(self, request: Request) -> Response:
        logging_on = access_log.isEnabledFor(logging.INFO)
        start = time.perf_counter() if logging_on else 0.0
        response = request.refusal
        if response is None:
            try:
                response = await self.handler(request)
            except Exception:
                log.exception("error while handling %s %s", request.method, request.target)
                response = error_response(
                    500, "internal_error", "internal server error", close=True
                )
        if (
            self._must_close
            or self.requests >= self.limits.max_requests_per_connection
            or self.is_draining()
        ):
            response.close = True
        await self._write(response, request.method == "HEAD")
        if logging_on:
            access_log.info(
                '%s "%s %s" %d %d %.1fms',
                self.peer,
                request.method,
                redact(request.target),
                response.status,
                len(response.body),
                (time.perf_counter() - start) * 1000,
            )
        return response
