"""Every limit of the API server in one frozen struct, each with a named default.

Built from ``[server]`` by :meth:`Limits.from_config`; tests build one directly with small
timeouts. Nothing in the server hard-codes a size, a count or a timeout elsewhere.
"""

from __future__ import annotations

import msgspec

from ..config import ServerConfig

MAX_HEADER_BYTES = 16 * 1024
"""A request head larger than this is refused with 431 (SPEC §8)."""
MAX_BODY_BYTES = 1_048_576
MAX_CONNECTIONS = 1000
HEADER_TIMEOUT_S = 10.0
"""Receiving one request head (from its first byte) must finish within this."""
BODY_TIMEOUT_S = 10.0
"""A request body must have arrived within this after its head, plus the time that
:data:`BODY_MIN_RATE` allows for what did arrive (mod_reqtimeout's rule): a client that
trickles a byte now and then is cut off here, whatever each wait took."""
BODY_MIN_RATE = 4096
"""Bytes per second: each byte of body received extends the body's deadline by
``1 / BODY_MIN_RATE`` seconds, so a client sending faster than this always keeps ahead."""
BODY_MAX_TIME_S = 60.0
"""No body, however fast it arrives, may take longer than this in all."""
KEEP_ALIVE_TIMEOUT_S = 5.0
"""An idle keep-alive connection is closed after this."""
MAX_REQUESTS_PER_CONNECTION = 10_000
WRITE_TIMEOUT_S = 10.0
"""A response (or WebSocket write) that the peer does not accept within this is dropped."""
READ_CHUNK_BYTES = 65_536
MAX_BATCH_TASKS = 1000
WS_MAX_MESSAGE_BYTES = 65_536
"""Clients only send control messages; a bigger message is closed with 1009."""
WS_QUEUE_BYTES = 4 * 1024 * 1024
"""Bytes queued for one WebSocket client before it is resynced (or dropped)."""
WS_SOCKET_SEND_BUFFER = 256 * 1024
"""The kernel send buffer of a WebSocket socket: without it the kernel would hold megabytes
for a client that does not read, on top of the queue above."""
WS_PING_INTERVAL_S = 20.0
"""A WebSocket client silent for this long is pinged..."""
WS_PING_TIMEOUT_S = 20.0
"""...and dropped when it has not answered within this."""
WS_CLOSE_TIMEOUT_S = 2.0
"""How long a closing handshake (ours or theirs) may take before the socket is cut."""
STATS_INTERVAL_S = 1.0
"""How often WebSocket clients receive a ``stats`` message."""


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    max_header_bytes: int = MAX_HEADER_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    max_connections: int = MAX_CONNECTIONS
    header_timeout_s: float = HEADER_TIMEOUT_S
    body_timeout_s: float = BODY_TIMEOUT_S
    body_min_rate: int = BODY_MIN_RATE
    body_max_time_s: float = BODY_MAX_TIME_S
    keep_alive_timeout_s: float = KEEP_ALIVE_TIMEOUT_S
    max_requests_per_connection: int = MAX_REQUESTS_PER_CONNECTION
    write_timeout_s: float = WRITE_TIMEOUT_S
    read_chunk_bytes: int = READ_CHUNK_BYTES
    max_batch_tasks: int = MAX_BATCH_TASKS
    ws_max_message_bytes: int = WS_MAX_MESSAGE_BYTES
    ws_queue_bytes: int = WS_QUEUE_BYTES
    ws_socket_send_buffer: int = WS_SOCKET_SEND_BUFFER
    ws_ping_interval_s: float = WS_PING_INTERVAL_S
    ws_ping_timeout_s: float = WS_PING_TIMEOUT_S
    ws_close_timeout_s: float = WS_CLOSE_TIMEOUT_S
    stats_interval_s: float = STATS_INTERVAL_S

    @classmethod
    def from_config(cls, cfg: ServerConfig, **overrides: float) -> Limits:
        """The limits ``[server]`` sets; the rest keep their defaults unless overridden."""
        values: dict[str, float] = {
            "max_body_bytes": cfg.max_body_bytes,
            "max_connections": cfg.max_connections,
            "header_timeout_s": cfg.header_timeout,
            "body_timeout_s": cfg.header_timeout,
            "keep_alive_timeout_s": cfg.keep_alive_timeout,
        }
        values.update(overrides)
        return msgspec.convert(values, cls)
