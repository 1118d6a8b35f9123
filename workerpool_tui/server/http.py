"""The HTTP/1.1 connection driver: h11's receive_data / next_event / send loop on an anyio
stream, with every limit of :class:`~.limits.Limits` enforced.

One :class:`HttpConnection` per accepted socket. It reads a request head under a deadline
(``keep_alive_timeout`` while idle, then ``header_timeout`` from the first byte), refuses an
oversize head (431) or a declared oversize body (413) before reading it, reads the body
under ``body_timeout``, hands a :class:`Request` to the application and writes the answer
in one send. Error responses are only sent while h11 allows one (our state ``IDLE`` or
``SEND_RESPONSE``); anything else just closes. Handler errors become a logged 500, never a
crashed server; cancellation is always re-raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus

import anyio
import h11
from anyio.abc import ByteStream, SocketAttribute

from .limits import Limits
from .responses import Headers, Response, Upgrade, error_response

access_log = logging.getLogger("workerpool_tui.access")
log = logging.getLogger("workerpool_tui.server")

SERVER_HEADER = (b"server", b"workerpool-tui")
LINGER_S = 1.0
"""After an error we half-close and read (and discard) for at most this long, so the
client sees our answer instead of a reset caused by its unread upload."""
LINGER_BYTES = 4 * 1024 * 1024
_STREAM_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError)


class Request:
    """One parsed request. Header names are lower case (h11 normalises them)."""

    __slots__ = ("body", "headers", "method", "path", "query", "target")

    def __init__(self, method: str, target: str, headers: Headers, body: bytes) -> None:
        self.method = method
        self.target = target
        path, _, query = target.partition("?")
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


Handler = Callable[[Request], Awaitable[Response]]


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


def _headers_too_large(limits: Limits) -> Response:
    return error_response(
        431,
        "headers_too_large",
        f"request head exceeds {limits.max_header_bytes} bytes",
        close=True,
    )


class _Closed(Exception):
    """The peer went away; nothing more to do on this connection."""


class HttpConnection:
    def __init__(
        self,
        stream: ByteStream,
        handler: Handler,
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
        self._peer: str | None = None

    # ------------------------------------------------------------------ the loop
    async def run(self) -> None:
        """Serve requests until the peer leaves, a limit is hit, or an error closes us."""
        try:
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
        except _Closed:
            return
        finally:
            with anyio.CancelScope(shield=True):
                await self.stream.aclose()

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
        idle = self.requests > 0 and not conn.trailing_data[0]
        started = not idle and bool(conn.trailing_data[0])
        timeout = limits.keep_alive_timeout_s if idle else limits.header_timeout_s
        event: h11.Event | type[h11.PAUSED] | type[h11.NEED_DATA] = h11.NEED_DATA
        try:
            with anyio.move_on_after(timeout) as scope:
                event = conn.next_event()
                while event is h11.NEED_DATA:
                    data = await self._receive()
                    if data and not started:
                        started = True
                        if idle:  # the head now has header_timeout from its first byte
                            scope.deadline = anyio.current_time() + limits.header_timeout_s
                    conn.receive_data(data)
                    event = conn.next_event()
        except h11.RemoteProtocolError as exc:
            await self._protocol_error(exc)
            return None
        if scope.cancelled_caught:
            if started:
                await self._send_error(
                    error_response(
                        408, "request_timeout", "request head not received in time", close=True
                    )
                )
            return None
        if not isinstance(event, h11.Request):
            return None  # ConnectionClosed, or PAUSED after a refused upgrade
        self.requests += 1
        method = event.method.decode("ascii", "replace")
        target = event.target.decode("ascii", "replace")
        headers = list(event.headers)
        # h11 caps a head that arrives in pieces; one that arrived whole is measured here.
        head_size = len(event.target) + sum(len(k) + len(v) + 4 for k, v in headers)
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
        body = await self._read_body(method, target, headers)
        if body is None:
            return None
        return Request(method, target, headers, body)

    async def _read_body(self, method: str, target: str, headers: Headers) -> bytes | None:
        limits, conn = self.limits, self.conn
        cap = limits.max_body_bytes
        for key, value in headers:
            if key == b"content-length" and int(value) > cap:
                await self._send_error(
                    error_response(
                        413,
                        "body_too_large",
                        f"request body of {int(value)} bytes exceeds the limit of {cap}",
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
        try:
            while True:
                with anyio.move_on_after(limits.body_timeout_s) as scope:
                    event = conn.next_event()
                    while event is h11.NEED_DATA:
                        conn.receive_data(await self._receive())
                        event = conn.next_event()
                if scope.cancelled_caught:
                    await self._send_error(
                        error_response(
                            408, "request_timeout", "request body not received in time", close=True
                        ),
                        method,
                        target,
                    )
                    return None
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
                    return b"".join(chunks)
                else:
                    return None  # ConnectionClosed mid-body
        except h11.RemoteProtocolError as exc:
            await self._protocol_error(exc)
            return None

    # ------------------------------------------------------------------ answering
    async def _respond(self, request: Request) -> Response:
        start = time.perf_counter()
        try:
            response = await self.handler(request)
        except Exception:
            log.exception("error while handling %s %s", request.method, request.target)
            response = error_response(500, "internal_error", "internal server error", close=True)
        if self.requests >= self.limits.max_requests_per_connection or self.is_draining():
            response.close = True
        await self._write(response, request.method == "HEAD")
        if access_log.isEnabledFor(logging.INFO):
            access_log.info(
                '%s "%s %s" %d %d %.1fms',
                self.peer,
                request.method,
                request.target,
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
            SERVER_HEADER,
            *response.headers,
        ]
        if response.close:
            headers.append((b"connection", b"close"))
        head = conn.send(
            h11.Response(
                status_code=response.status,
                headers=headers,
                reason=_REASONS.get(response.status, b""),
            )
        )
        if head_only or not response.body:
            end = conn.send(h11.EndOfMessage())
            await self._send(head + end if end else head)
            return
        data = conn.send(h11.Data(data=response.body))
        end = conn.send(h11.EndOfMessage())
        await self._send(b"".join((head, data, end)))

    async def _send(self, data: bytes | None) -> None:
        if not data:
            return
        try:
            with anyio.fail_after(self.limits.write_timeout_s):
                await self.stream.send(data)
        except (TimeoutError, *_STREAM_GONE):
            self.conn.send_failed()
            raise _Closed from None

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
    driver = HttpConnection(stream, _never, limits, is_draining=lambda: True)
    driver.conn = conn
    try:
        await driver._send_error(response)
    except _Closed:
        pass
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()


async def _never(request: Request) -> Response:  # pragma: no cover - never called
    raise AssertionError("refused connections have no handler")
