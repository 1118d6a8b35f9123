"""`workerpool-tui` with no sub-command: the engine, the API side-car and the dashboard."""

from __future__ import annotations

import asyncio
import sys

from ..config import Config
from ..core.errors import StoreUnavailable
from .app import DashboardApp
from .cluster_views import EXIT_FATAL
from .view_model import ServerStatus


def run_dashboard(cfg: Config) -> int:
    """`workerpool-tui` with no sub-command: the engine, the API side-car, the dashboard."""
    from ..logging import setup_logging
    from ..runtime import Runtime

    records = setup_logging(cfg.logger, dashboard=True)

    fatal: list[str] = []
    """The engine's reason for stopping for good, once the dashboard saw it."""

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
            if app.fatal_error is not None:
                fatal.append(app.fatal_error)
                return EXIT_FATAL
            if rt.engine.pool_state().busy:
                print(f"workerpool-tui: stopping {rt.engine.pool_state().busy} running task(s)…")
            return app.return_code or 0

    # As `serve`: a component that failed for good is one line on stderr and exit status 1
    # (the store that broke may also fail the shutdown's last writes: still one line).
    try:
        code = asyncio.run(main())
    except StoreUnavailable as exc:
        fatal.append(f"{exc}; the last changes were not stored")
        code = EXIT_FATAL
    if fatal:
        print(f"error: {fatal[0]}; stopped", file=sys.stderr)
    return code
