"""`workerpool-tui` with no sub-command: the engine, the API side-car and the dashboard."""

from __future__ import annotations

import asyncio

from ..config import Config
from .app import DashboardApp
from .bridge import ServerStatus


def run_dashboard(cfg: Config) -> int:
    """`workerpool-tui` with no sub-command: the engine, the API side-car, the dashboard."""
    from ..logging import setup_logging
    from ..runtime import Runtime

    records = setup_logging(cfg.logger, dashboard=True)

    async def main() -> int:
        async with Runtime(cfg) as rt:

            def server_status() -> ServerStatus:
                server = rt.server
                if server is None:
                    return ServerStatus(error=rt.server_error or "not running")
                return ServerStatus(address=str(server.address), ws_clients=int(server.ws_clients))

            app = DashboardApp(
                rt.engine, records=records, server_status=server_status, keymap=dict(cfg.keymap)
            )
            try:
                await app.run_async()
            finally:
                app.bridge.close()
            if rt.engine.pool_state().busy:
                print(f"workerpool-tui: stopping {rt.engine.pool_state().busy} running task(s)…")
            return app.return_code or 0

    return asyncio.run(main())
