"""The writing half of an HTTP/1.1 connection: framing an answer (always ``Content-Length``)
and sending it under the write deadline, error answers only while no answer to the current
request has begun, closing with a linger, and the peer's and our own address for the log
and the Host rule."""

from __future__ import annotations

import logging
import math
import re
import time
from email.utils import formatdate
from http import HTTPStatus

import anyio
from anyio.abc import ByteStream, SocketAttribute

from .limits import Limits
from .reading import ProtocolError
from .request import Phase
from .responses import Headers, Response, Upgrade, error_response

_WRITE, _BUSY = Phase.WRITE, Phase.BUSY
"""(Module names: an enum class's attribute is slow on 3.11, see ``http.py``.)"""
access_log = logging.getLogger("workerpool_tui.access")
log = logging.getLogger("workerpool_tui.server")

LINGER_S = 1.0
"""After an error we half-close and read (and discard) for at most this long, so the
client sees our answer instead of a reset caused by its unread upload."""
LINGER_BYTES = 4 * 1024 * 1024
STREAM_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError)


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
_STATUS_LINES = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}


_HEADER_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NAMES_SEEN: set[bytes] = set()
"""Header names that passed :data:`_HEADER_NAME` (a handler uses a handful)."""
_NOT_IN_VALUE = bytes([*range(0x09), *range(0x0A, 0x20), 0x7F])
"""A header value is tab, visible ASCII and bytes 0x80-0xFF (RFC 9110 §5.5): none of
these control bytes (``bytes.translate`` deleting them changes its length)."""


def _checked(headers: Headers) -> bool:
    """Whether a handler's extra headers are well formed (a bad one becomes a 500)."""
    for name, value in headers:
        if name not in _NAMES_SEEN:
            if not _HEADER_NAME.fullmatch(name):
                return False
            if len(_NAMES_SEEN) < 256:
                _NAMES_SEEN.add(name)
        if len(value.translate(None, _NOT_IN_VALUE)) != len(value):
            return False
    return True


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


def frame(response: Response, head_only: bool = False) -> bytes:
    """The bytes of a complete answer: status line, headers, body (not for ``HEAD``)."""
    body = response.body
    head = b"%scontent-type: %s\r\ncontent-length: %d\r\ndate: %s\r\n" % (
        _STATUS_LINES.get(response.status) or _status_line(response.status),
        response.content_type,
        len(body),
        _date.get(),
    )
    for header in response.headers:  # (a few at most)
        head += b"%s: %s\r\n" % header
    return b"".join(
        (
            head,
            b"connection: close\r\n\r\n" if response.close else b"\r\n",
            b"" if head_only else body,
        )
    )


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


_TOKEN_IN_QUERY = re.compile(r"([?&]token=)[^&]*")


def redact(target: str) -> str:
    """The request target for the access log, without a ``?token=`` value."""
    return _TOKEN_IN_QUERY.sub(r"\1***", target) if "token=" in target else target


def headers_too_large(limits: Limits) -> Response:
    return error_response(
        431,
        "headers_too_large",
        f"request head exceeds {limits.max_header_bytes} bytes",
        close=True,
    )


class Closed(Exception):
    """The peer went away; nothing more to do on this connection."""


class Answering:
    """The connection state the writing side needs, and the writing side itself
    (:class:`~.http.HttpConnection` adds the loop and the reading)."""

    def __init__(self, stream: ByteStream, limits: Limits) -> None:
        self.stream = stream
        self.limits = limits
        self.deadline = math.inf
        self.phase = Phase.WAIT
        self.answering = False
        """An answer to the current request has begun: no error answer may follow."""
        self._peer: str | None = None
        self._local_ip: str | None = None

    def _framed(self, response: Response, head_only: bool = False) -> bytes:
        """The bytes of ``response``; from here on no error answer may follow."""
        self.answering = True
        if isinstance(response, Upgrade):
            parts = [_status_line(101)]
            parts.extend(b"%s: %s\r\n" % header for header in response.headers)
            parts.append(b"\r\n")
            return b"".join(parts)
        if response.headers and not _checked(response.headers):
            log.error("malformed response header from the handler: %r", response.headers)
            response = error_response(500, "internal_error", "internal server error", close=True)
        return frame(response, head_only)

    async def _send(self, data: bytes) -> None:
        """Send ``data`` under the write deadline."""
        self.phase = _WRITE
        self.deadline = time.monotonic() + self.limits.write_timeout_s
        try:
            await self.stream.send(data)
        except STREAM_GONE:
            raise Closed from None
        self.phase = _BUSY
        self.deadline = math.inf

    async def _send_error(self, response: Response, method: str = "-", target: str = "-") -> None:
        """An error answer, only while no answer has begun; then the connection is closed."""
        if self.answering:
            return
        await self._send(self._framed(response))
        if access_log.isEnabledFor(logging.INFO):
            access_log.info('%s "%s %s" %d', self.peer, method, target, response.status)
        await self._close(linger=True)

    async def _protocol_error(self, exc: ProtocolError) -> None:
        if exc.status == 431:
            response = headers_too_large(self.limits)
        else:
            response = error_response(exc.status, "invalid_request", str(exc), close=True)
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
            except (anyio.EndOfStream, NotImplementedError, *STREAM_GONE):
                pass
        raise Closed

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
    answering = Answering(stream, limits)
    try:
        with anyio.move_on_after(limits.write_timeout_s):
            await answering._send_error(response)
    except Closed:
        pass
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()
