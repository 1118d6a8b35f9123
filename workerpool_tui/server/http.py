"""The HTTP/1.1 connection driver: llhttp (httptools, :mod:`.reading`) on an anyio stream,
with every limit of :class:`~.limits.Limits` enforced.

One :class:`HttpConnection` per accepted socket. It reads a request head under a deadline
(``keep_alive_timeout`` while idle, then ``header_timeout`` from the first byte), refuses an
oversize head (431) or a declared oversize body (413) before reading it, lets the
application refuse the request on its head alone (:meth:`Application.refuse_head`: host,
token, route; the body is then never read and the connection closes if one was coming),
reads the body under one total deadline (``body_timeout`` plus what ``body_min_rate``
allows for the bytes received, at most ``body_max_time``), hands a :class:`Request` to the
application and writes the answer in one send. Pipelined requests are answered in order.
A request framed by both ``Content-Length`` and ``Transfer-Encoding`` is read by the latter
and its connection closed after the answer (RFC 9112 §6.1); so is one after which llhttp
switched protocols (``Connection: upgrade``) unless it became a WebSocket. Error responses
are only sent while no answer to the current request has begun; anything else just closes.
Handler errors become a logged 500, never a crashed server; cancellation is always
re-raised.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import anyio
from anyio.abc import ByteStream

from .answering import (
    CONTINUE,
    STREAM_GONE,
    Answering,
    Closed,
    access_log,
    redact,
    refuse_connection,
)
from .limits import Limits
from .reading import Message, ProtocolError, RequestReader, head_error, origin_form
from .request import WAITING_ON_CLIENT, Application, Phase, Request
from .responses import Response, Upgrade, error_response

log = logging.getLogger("workerpool_tui.server")

CLOSED_MID_REQUEST = "malformed HTTP: the client closed mid-request"
_WAIT, _HEAD, _BODY, _BUSY = Phase.WAIT, Phase.HEAD, Phase.BODY, Phase.BUSY
"""(An enum class's attribute costs a call of ``EnumType.__getattr__``'s hook on 3.11:
module names are a dict lookup on the hot path.)"""
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")}
"""The usual methods, decoded once."""

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
        super().__init__(stream, limits)
        self.reader = RequestReader(limits.max_header_bytes, limits.max_body_bytes)
        self.message: Message | None = None
        """The request being served."""
        self._eof = False
        self.handler = handler
        self.is_draining = is_draining
        self.requests = 0
        now = time.monotonic()
        self.deadline = now + limits.header_timeout_s
        self.phase = _WAIT
        self.waiting_since = now
        """When the connection last began waiting for its client (accept, or the end of
        the previous answer): at the cap, the longest waiting is cut first."""
        self._scope: anyio.CancelScope | None = None
        self._expired = False
        self._evicted = False

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
            message = self.message
            assert message is not None
            response = await self._respond(request, message)
            if isinstance(response, Upgrade):
                await response.run(self.stream, message.trailing)
                return
            if response.close:
                await self._close(linger=not message.complete)
                return
            self.answering = False
            self.waiting_since = time.monotonic()

    async def _cut_for_room(self) -> None:
        if self.phase is _HEAD or self.phase is _BODY:
            response = error_response(
                503,
                "too_many_connections",
                f"the server holds its limit of {self.limits.max_connections} connections"
                " and this request was the slowest to arrive",
                close=True,
            )
            with anyio.move_on_after(self.limits.write_timeout_s):
                if not self.answering:
                    await self._send(self._framed(response))

    async def _timed_out(self) -> None:
        phase = self.phase
        if phase is _HEAD or phase is _BODY:
            with anyio.move_on_after(self.limits.write_timeout_s):
                await self._send_error(
                    error_response(408, "request_timeout", f"timed out {phase.value}", close=True)
                )

    async def _receive(self) -> bytes:
        """The next bytes from the client, ``b""`` at its end of stream."""
        if self._eof:
            return b""
        try:
            return await self.stream.receive(self.limits.read_chunk_bytes)
        except anyio.EndOfStream:
            self._eof = True
            return b""
        except STREAM_GONE:
            raise Closed from None

    async def _read_request(self) -> Request | None:
        """The next request (head, and body unless it was refused on its head), or ``None``
        when the connection ends."""
        limits, reader = self.limits, self.reader
        if reader.ready:
            await anyio.lowlevel.checkpoint()  # pipelined: other connections go first
        elif reader.error is None and not reader.upgraded:
            current = reader.current  # (reader.in_head, inlined: a property costs a call)
            if current is not None and not current.head_done:
                self.phase = _HEAD
                self.deadline = time.monotonic() + limits.header_timeout_s
            elif self.requests:  # idle since the end of the previous answer
                self.phase = _WAIT
                self.deadline = self.waiting_since + limits.keep_alive_timeout_s
            # else: a fresh connection keeps its header deadline from the accept
            while not reader.ready and reader.error is None:
                data = await self._receive()
                if not data:
                    if reader.current is not None:
                        reader.error = ProtocolError(400, CLOSED_MID_REQUEST)
                    break
                if self.phase is _WAIT:
                    # The head has header_timeout from its first byte.
                    self.phase = _HEAD
                    self.deadline = time.monotonic() + limits.header_timeout_s
                reader.feed(data)
        self.phase = _BUSY
        self.deadline = math.inf
        if not reader.ready:
            if reader.error is not None:
                await self._protocol_error(reader.error)
            return None
        message = self.message = reader.ready.popleft()
        self.requests += 1
        if not message.plain_head:
            error = head_error(message)
            if error is not None:
                await self._protocol_error(error)
                return None
        method = _METHODS.get(message.method) or message.method.decode("ascii", "replace")
        raw_target = message.target
        if raw_target[:1] != b"/":  # absolute form (or "*"): see origin_form
            raw_target = origin_form(message)
        target = raw_target.decode("ascii", "replace")
        if self.is_draining():
            await self._send_error(
                error_response(503, "shutting_down", "the server is shutting down", close=True),
                method,
                target,
            )
            return None
        # (All by position: a keyword makes CPython build a dict to call a class.)
        request = Request(method, target, message.headers, b"", self.local_ip)
        refusal = self.handler.refuse_head(request)
        if refusal is None and message.upgrade and message.has_body:
            # llhttp hands what follows an upgrade request over unread: its body too.
            refusal = error_response(
                400, "invalid_request", "a request that switches protocols has no body"
            )
        if refusal is not None:
            if not message.complete:
                refusal.close = True  # its body is never read
            request.refusal = refusal
            return request
        if (
            message.complete
            and not message.too_large
            and message.content_length <= self.limits.max_body_bytes
        ):  # the usual case: the body came with the head (what _read_body would answer)
            chunks = message.body
            request.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            return request
        body = await self._read_body(message, method, target)
        if body is None:
            return None
        request.body = body
        return request

    async def _read_body(self, message: Message, method: str, target: str) -> bytes | None:
        limits, reader = self.limits, self.reader
        cap = limits.max_body_bytes
        if message.content_length > cap:
            await self._send_error(
                error_response(
                    413,
                    "body_too_large",
                    f"request body of {message.content_length} bytes exceeds the limit of {cap}",
                    close=True,
                ),
                method,
                target,
            )
            return None
        if not message.complete and not message.too_large:  # else it came with the head
            if message.waits_for_continue and not message.body_size:
                await self._send(CONTINUE)
            start = time.monotonic()
            latest = start + limits.body_max_time_s
            received = 0
            self.phase = _BODY
            while not message.complete and not message.too_large and reader.error is None:
                # One deadline for the whole body, extended only by what arrives (a byte
                # now and then earns next to nothing), never past latest.
                self.deadline = min(
                    start + limits.body_timeout_s + received / limits.body_min_rate, latest
                )
                data = await self._receive()
                if not data:
                    reader.error = ProtocolError(400, CLOSED_MID_REQUEST)
                    break
                received += len(data)
                reader.feed(data)
            self.phase = _BUSY
            self.deadline = math.inf
        if message.too_large:
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
        if not message.complete:
            assert reader.error is not None
            await self._protocol_error(reader.error)
            return None
        body = message.body
        return body[0] if len(body) == 1 else b"".join(body)

    # ------------------------------------------------------------------ answering
    async def _respond(self, request: Request, message: Message) -> Response:
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
        if isinstance(response, Upgrade):
            if not message.upgrade:  # the application saw an upgrade that llhttp did not
                response = error_response(
                    400, "invalid_request", "expected a WebSocket upgrade request", close=True
                )
        elif (
            not message.keep_alive
            or message.framed_twice
            or message.upgrade  # what followed it is not HTTP
            or self.requests >= self.limits.max_requests_per_connection
            or self.is_draining()
        ):
            response.close = True
        await self._send(self._framed(response, request.method == "HEAD"))
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
