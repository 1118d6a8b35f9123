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
import enum
import logging
import math
import re
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Protocol

import anyio
import h11
from anyio.abc import ByteStream, SocketAttribute

from .limits import Limits
from .responses import Headers, Response, Upgrade, error_response

access_log = logging.getLogger("workerpool_tui.access")
log = logging.getLogger("workerpool_tui.server")

LINGER_S = 1.0
"""After an error we half-close and read (and discard) for at most this long, so the
client sees our answer instead of a reset caused by its unread upload."""
LINGER_BYTES = 4 * 1024 * 1024
_STREAM_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError)


def _no_address() -> str | None:
    return None


class Request:
    """One parsed request. Header names are lower case (h11 normalises them)."""

    __slots__ = (
        "body",
        "headers",
        "local_ip",
        "method",
        "path",
        "query",
        "refusal",
        "route",
        "target",
    )

    def __init__(
        self,
        method: str,
        target: str,
        headers: Headers,
        body: bytes,
        *,
        local_ip: Callable[[], str | None] = _no_address,
    ) -> None:
        self.method = method
        self.target = target
        path, _, query = target.partition("?")
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.local_ip = local_ip
        """The address the client connected to (computed on demand)."""
        self.route: Any = None
        """What the application matched on the head, for its handler to reuse."""
        self.refusal: Response | None = None
        """The answer given on the head alone (the body was not read)."""

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Application(Protocol):
    def refuse_head(self, request: Request) -> Response | None:
        """An answer decided on the request head alone (its body is empty still), or
        ``None`` to read the body and call the application."""

    async def __call__(self, request: Request) -> Response:
        """The answer to a complete request."""


class _DateCache:
    """The ``Date`` header, formatted at most once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = formatdate(now, usegmt=True).encode()
        return self._value


_date = _DateCache()
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


_HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_HEADER_VALUE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_END = h11.EndOfMessage()


def _checked(headers: Headers) -> bool:
    """Whether a handler's extra headers are well formed. Ours are, and then h11 is told to
    skip its own (slower) validation of the whole head; a bad one still reaches h11's."""
    for name, value in headers:
        if not (_HEADER_NAME.fullmatch(name) and _HEADER_VALUE.fullmatch(value)):
            return False
    return True


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&]*")


def _redact(target: str) -> str:
    """The request target for the access log, without a ``?token=`` value."""
    return _TOKEN_IN_QUERY.sub(r"\1***", target) if "token=" in target else target


def _headers_too_large(limits: Limits) -> Response:
    return error_response(
        431,
        "headers_too_large",
        f"request head exceeds {limits.max_header_bytes} bytes",
        close=True,
    )


class _Closed(Exception):
    """The peer went away; nothing more to do on this connection."""


class Phase(enum.Enum):
    """What a connection waits for; the reaper's verdict on a missed deadline depends on it."""

    WAIT = "waiting for a request"
    HEAD = "receiving a request head"
    BODY = "receiving a request body"
    BUSY = "handling a request"
    WRITE = "sending a response"


WAITING_ON_CLIENT = frozenset({Phase.WAIT, Phase.HEAD, Phase.BODY})
"""Phases in which a connection only waits for its client: at the connection cap the one
that has waited longest is cut to make room (see ``ApiServer``)."""


class HttpConnection:
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
        self.stream = stream
        self.handler = handler
        self.limits = limits
        self.is_draining = is_draining
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limits.max_header_bytes)
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
        self._peer: str | None = None
        self._local_ip: str | None = None

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
        except _Closed:
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
        except _STREAM_GONE:
            raise _Closed from None

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
            await self._send_error(_headers_too_large(limits), method, target)
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
                _redact(request.target),
                response.status,
                len(response.body),
                (time.perf_counter() - start) * 1000,
            )
        return response

    async def _write(self, response: Response, head_only: bool = False) -> None:
        conn = self.conn
        if isinstance(response, Upgrade):
            await self._send(
                conn.send(
                    h11.InformationalResponse(
                        status_code=101, headers=response.headers, reason=b"Switching Protocols"
                    )
                )
            )
            return
        headers: Headers = [
            (b"content-type", response.content_type),
            (b"content-length", b"%d" % len(response.body)),
            (b"date", _date.get()),
            *response.headers,
        ]
        if response.close:
            headers.append((b"connection", b"close"))
        head = conn.send(
            h11.Response(
                status_code=response.status,
                headers=headers,
                reason=_REASONS.get(response.status, b""),
                # Our own headers are well formed by construction (see _checked).
                _parsed=not response.headers or _checked(response.headers),
            )
        )
        if head_only or not response.body:
            end = conn.send(_END)
            await self._send(head + end if end else head)
            return
        data = conn.send(h11.Data(data=response.body))
        end = conn.send(_END)
        await self._send(b"".join((head, data, end)))

    async def _send(self, data: bytes | None) -> None:
        if not data:
            return
        self.phase = Phase.WRITE
        self.deadline = time.monotonic() + self.limits.write_timeout_s
        try:
            await self.stream.send(data)
        except _STREAM_GONE:
            self.conn.send_failed()
            raise _Closed from None
        self.phase = Phase.BUSY
        self.deadline = math.inf

    async def _send_error(self, response: Response, method: str = "-", target: str = "-") -> None:
        """An error answer, only where h11 allows one; then the connection is closed."""
        if self.conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        try:
            await self._write(response)
        except h11.LocalProtocolError:
            return
        if access_log.isEnabledFor(logging.INFO):
            access_log.info('%s "%s %s" %d', self.peer, method, target, response.status)
        await self._close(linger=True)

    async def _protocol_error(self, exc: h11.RemoteProtocolError) -> None:
        if exc.error_status_hint == 431:
            response = _headers_too_large(self.limits)
        else:
            response = error_response(
                exc.error_status_hint, "invalid_request", f"malformed HTTP: {exc}", close=True
            )
        await self._send_error(response)

    async def _close(self, *, linger: bool) -> None:
        """Close; with ``linger``, half-close first and drain what the client still sends."""
        if linger:
            try:
                await self.stream.send_eof()
                with anyio.move_on_after(LINGER_S):
                    drained = 0
                    while drained < LINGER_BYTES:
                        data = await self.stream.receive(self.limits.read_chunk_bytes)
                        drained += len(data)
            except (anyio.EndOfStream, NotImplementedError, *_STREAM_GONE):
                pass
        raise _Closed

    def local_ip(self) -> str | None:
        """The address the client connected to (IPv4-mapped IPv6 as IPv4), once computed."""
        if self._local_ip is None:
            addr = self.stream.extra(SocketAttribute.local_address, None)
            ip = addr[0] if isinstance(addr, tuple) else ""
            if ip.startswith("::ffff:") and "." in ip:
                ip = ip[7:]
            self._local_ip = ip
        return self._local_ip or None

    @property
    def peer(self) -> str:
        if self._peer is None:
            addr = self.stream.extra(SocketAttribute.remote_address, None)
            if isinstance(addr, tuple):
                self._peer = f"{addr[0]}:{addr[1]}"
            else:
                self._peer = str(addr or "-")
        return self._peer


async def refuse_connection(stream: ByteStream, response: Response, limits: Limits) -> None:
    """Answer a connection we will not serve (``too_many_connections``) and close it."""
    conn = h11.Connection(h11.SERVER)
    driver = HttpConnection(stream, _Never(), limits, is_draining=lambda: True)
    driver.conn = conn
    try:
        with anyio.move_on_after(limits.write_timeout_s):
            await driver._send_error(response)
    except _Closed:
        pass
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()


class _Never:
    """The application of a refused connection: never asked anything."""

    def refuse_head(self, request: Request) -> Response | None:  # pragma: no cover
        raise AssertionError("refused connections have no application")

    async def __call__(self, request: Request) -> Response:  # pragma: no cover
        raise AssertionError("refused connections have no application")
