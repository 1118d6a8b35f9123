"""``watch``: print the live event stream until Ctrl+C (exit 0) or the server goes (3)."""

from __future__ import annotations

import sys

from .context import EXIT_OK, EXIT_UNREACHABLE, Context
from .events import EventLines
from .stream import EventStream, StreamLost


def cmd_watch(ctx: Context) -> int:
    stream = EventStream(ctx.api.server, ctx.api.token)
    lines = EventLines()
    try:
        stream.connect()
        if not ctx.as_json:
            ctx.err.print(f"[dim]watching {ctx.api.server.url} — Ctrl+C to stop[/]")
        for message in stream.messages():
            if ctx.as_json:
                ctx.print_json(message)
                continue
            line = lines.line(message)
            if line is not None:
                ctx.out.print(line, soft_wrap=True)  # columns, never wrapped
                ctx.out.file.flush()
        why = f" ({stream.close_code}{' ' + stream.close_reason if stream.close_reason else ''})"
        print(f"the server closed the stream{why}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return EXIT_OK
    except StreamLost as exc:
        print(f"error: connection to {ctx.api.server.url} lost: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    finally:
        stream.close()
