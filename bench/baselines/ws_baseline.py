"""The WebSocket baseline of ``bench/http.py``: a server on the ``websockets`` library that,
once a client sends ``go <count> <size>``, sends ``count`` messages of ``size`` bytes to
every connected client with ``broadcast()`` (benchmark only)."""

from __future__ import annotations

import asyncio
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

BATCH = 64
"""Messages broadcast between two turns of the loop (our server's bus batches are alike)."""


async def main(port: int) -> None:
    clients: set[ServerConnection] = set()
    done = asyncio.Event()

    async def blast(count: int, size: int) -> None:
        body = '{"type":"task","event":"completed","task":{"pad":"' + "x" * max(0, size - 48)
        message = body + '"}}'
        for i in range(count):
            broadcast(clients, message)
            if i % BATCH == BATCH - 1:
                await asyncio.sleep(0)

    async def handler(ws: ServerConnection) -> None:
        clients.add(ws)
        try:
            async for text in ws:
                if isinstance(text, str) and text.startswith("go "):
                    _, count, size = text.split()
                    await blast(int(count), int(size))
        finally:
            clients.discard(ws)

    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
        print("READY", flush=True)
        await done.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
