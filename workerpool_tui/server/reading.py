"""The reading half of an HTTP/1.1 connection: llhttp (through httptools) turns the bytes a
client sends into :class:`Message` objects, one per request, in order.

llhttp parses everything it is fed, pipelined requests included, and calls back as it goes;
:class:`RequestReader` collects those calls. A message is handed out (``ready``) as soon as
its head is complete, so that the connection can refuse it on its head alone; its body
keeps arriving into it (``complete`` once whole). The connection feeds more bytes only when
it needs them, so at most one read's worth of pipelined requests waits here.

Protocol rules llhttp leaves to us are checked in :meth:`RequestReader.head_error`: only
HTTP/1.0 and 1.1, exactly one ``Host`` on 1.1, ``Transfer-Encoding: chunked`` and nothing
else. llhttp is strict where h11 was lenient (obs-fold, bare LF, control characters in a
header value, a repeated ``Content-Length``: all 400); a request framed by both
``Content-Length`` and ``Transfer-Encoding`` is let through (read as chunked) so that the
connection can answer it and then close (RFC 9112 §6.1).
"""

from __future__ import annotations

from collections import deque

import httptools

from .responses import Headers


class ProtocolError(Exception):
    """The client broke HTTP/1.1: answered with ``status`` (if still possible), then closed."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _HeadTooLarge(Exception):
    pass


_FRAMING = frozenset({b"host", b"content-length", b"transfer-encoding", b"connection", b"expect"})
"""The header names :meth:`RequestReader.on_header` acts on."""


class Message:
    """One request as llhttp reports it."""

    __slots__ = (
        "body",
        "body_size",
        "complete",
        "content_length",
        "framed_twice",
        "head_done",
        "head_size",
        "headers",
        "host_count",
        "keep_alive",
        "method",
        "plain_head",
        "target",
        "too_large",
        "trailing",
        "transfer_encoding",
        "upgrade",
        "version",
        "waits_for_continue",
    )

    def __init__(self) -> None:
        self.method = b""
        self.target = b""
        self.version = ""
        self.headers: Headers = []
        self.head_size = 0
        self.head_done = False
        self.host_count = 0
        self.content_length = -1
        """The declared length, or -1 when the body is chunked or absent."""
        self.transfer_encoding: bytes | None = None
        self.framed_twice = False
        """Both ``Content-Length`` and ``Transfer-Encoding``: close after the answer."""
        self.keep_alive = True
        self.waits_for_continue = False
        self.body: list[bytes] = []
        self.body_size = 0
        self.too_large = False
        self.complete = False
        self.plain_head = False
        """HTTP/1.1, one ``Host``, no ``Transfer-Encoding``: :func:`head_error` has nothing
        to say (set with the head)."""
        self.upgrade = False
        """llhttp switched protocols after this request (``Connection: upgrade``, CONNECT):
        nothing after it is HTTP any more; ``trailing`` holds what followed it."""
        self.trailing = b""

    @property
    def has_body(self) -> bool:
        return self.transfer_encoding is not None or self.content_length > 0


class RequestReader:
    """llhttp's callbacks, collected into :class:`Message` objects (see the module doc)."""

    def __init__(self, max_head_bytes: int, max_body_bytes: int) -> None:
        self.max_head = max_head_bytes
        self.max_body = max_body_bytes
        self.ready: deque[Message] = deque()
        """Messages whose head is complete, not yet taken by the connection."""
        self.current: Message | None = None
        """The message llhttp is parsing (head or body), if any."""
        self.error: ProtocolError | None = None
        """Set when the bytes stopped being HTTP; what came before still counts."""
        self.upgraded = False
        self._head_fed = 0
        self._parser = httptools.HttpRequestParser(self)
        # Read a request with both Content-Length and Transfer-Encoding by the latter; the
        # connection then closes (its framing is ambiguous to whoever forwarded it).
        self._parser.set_dangerous_leniencies(lenient_chunked_length=True)

    @property
    def in_head(self) -> bool:
        """Part of a request head has arrived, not all of it."""
        return self.current is not None and not self.current.head_done

    def feed(self, data: bytes) -> None:
        """Parse ``data`` (never after an error or an upgrade)."""
        current = self.current
        if current is not None and not current.head_done:
            # A head (one header line, say) can grow across reads without a callback
            # telling us: what arrives while it is incomplete counts against the cap.
            self._head_fed += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self.upgraded = True
            message = self.ready[-1] if self.ready else self.current
            if message is not None:
                message.upgrade = True
                message.complete = True  # llhttp never reads the body of an upgrade
                message.trailing = data[upgrade.args[0] :]
            self.current = None
            return
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self.error = ProtocolError(431, "request head too large")
            else:  # pragma: no cover - our callbacks raise nothing else
                self.error = ProtocolError(400, f"malformed HTTP: {exc}")
            return
        except httptools.HttpParserError as exc:
            self.error = ProtocolError(400, f"malformed HTTP: {exc}")
            return
        current = self.current  # (self.in_head, inlined)
        if current is not None and not current.head_done and self._head_fed > self.max_head:
            self.error = ProtocolError(431, "request head too large")

    # ------------------------------------------------------------------ llhttp callbacks
    def on_message_begin(self) -> None:
        self.current = Message()
        self._head_fed = 0

    def on_url(self, piece: bytes) -> None:
        message = self.current
        assert message is not None
        message.target += piece
        message.head_size += len(piece)
        if message.head_size > self.max_head:
            raise _HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        message = self.current
        assert message is not None
        if message.head_done:
            # A trailer after a chunked body: dropped, but it counts as body.
            message.body_size += len(name) + len(value)
            if message.body_size > self.max_body:
                message.too_large = True
            return
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace; h11 did not
        message.headers.append((name, value))
        size = message.head_size = message.head_size + len(name) + len(value) + 4
        if size > self.max_head:
            raise _HeadTooLarge
        if name not in _FRAMING:
            return
        if name == b"host":
            message.host_count += 1
        elif name == b"content-length":
            message.content_length = int(value)  # llhttp has checked the digits (only one)
        elif name == b"transfer-encoding":
            message.transfer_encoding = value.lower()  # llhttp refuses a second one
        elif name == b"connection":
            if b"close" in value.lower():
                message.keep_alive = False
        elif name == b"expect":
            message.waits_for_continue = value.lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        message = self.current
        assert message is not None
        parser = self._parser
        message.head_done = True
        message.method = parser.get_method()
        message.version = parser.get_http_version()
        if message.version != "1.1":
            message.keep_alive = False  # HTTP/1.0 always closes, as before
            message.waits_for_continue = False
        elif message.transfer_encoding is None:
            message.plain_head = message.host_count == 1
        if message.transfer_encoding is not None and message.content_length >= 0:
            message.framed_twice = True
            message.content_length = -1
        self.ready.append(message)

    def on_body(self, data: bytes) -> None:
        message = self.current
        assert message is not None
        message.body_size += len(data)
        if message.body_size > self.max_body:
            message.too_large = True
            message.body.clear()
        elif not message.too_large:
            message.body.append(data)

    def on_message_complete(self) -> None:
        message = self.current
        assert message is not None
        message.complete = True
        self.current = None


def head_error(message: Message) -> ProtocolError | None:
    """What llhttp accepts but this server refuses, checked on a complete head."""
    if message.version not in ("1.1", "1.0"):
        return ProtocolError(505, f"HTTP/{message.version} is not supported")
    if message.version == "1.1" and message.host_count != 1:
        if message.host_count:
            return ProtocolError(400, "malformed HTTP: more than one Host header")
        return ProtocolError(400, "malformed HTTP: missing Host header")
    if message.transfer_encoding is not None and message.transfer_encoding != b"chunked":
        return ProtocolError(501, "only Transfer-Encoding: chunked is supported")
    return None


def origin_form(message: Message) -> bytes:
    """The request target as a path. An absolute-form target (``http://host/path``, which
    a client may send to any server, RFC 9112 §3.2.2) is cut to its path, and its authority
    replaces the ``Host`` header."""
    target = message.target
    scheme, sep, rest = target.partition(b"://")
    if not sep or scheme.lower() not in (b"http", b"https"):
        return target
    cut = len(rest)
    for mark in (b"/", b"?"):
        at = rest.find(mark)
        if 0 <= at < cut:
            cut = at
    authority, path = rest[:cut], rest[cut:]
    message.headers = [(k, v) for k, v in message.headers if k != b"host"]
    message.headers.append((b"host", authority))
    return path if path.startswith(b"/") else b"/" + path
