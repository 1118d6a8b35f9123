"""Command line: the dashboard (default), ``serve``, and the API client commands.

A bad option or config value prints one line naming it and exits 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__
from .config import Config, ConfigError, load_config
from .core.handlers import HandlerLoadError
from .core.store import StoreError

CLIENT_COMMANDS = ("submit", "list", "get", "cancel", "stats", "watch")
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad command-line usage: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # Options accepted before or after the sub-command: sub-parsers must not reset them.
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: ./config.toml if present)",
    )
    parser.add_argument("--host", default=default, help="API host (server.host)")
    parser.add_argument("--port", type=int, default=default, help="API port (server.port)")
    parser.add_argument(
        "--no-server",
        action="store_true",
        default=default or False,
        help="do not start the API side-car",
    )
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning", "error", "critical"], default=default
    )
    parser.add_argument(
        "--url", default=default, help="client: server URL (default from host/port)"
    )
    parser.add_argument("--token", default=default, help="client: API token (or WORKERPOOL_TOKEN)")
    parser.add_argument(
        "--json", action="store_true", default=default or False, help="client: print JSON"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="workerpool-tui", description="A terminal-native task runner.")
    parser.add_argument("--version", action="version", version=f"workerpool-tui {__version__}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p, top=False)
        return p

    add("dashboard", "the Textual dashboard (the default)")
    add("serve", "headless: pool + API, until SIGINT/SIGTERM")
    p = add("submit", "submit tasks to a running server")
    p.add_argument("type", metavar="TYPE", help="a registered task type, e.g. example_task")
    p.add_argument("--payload", default="{}", help="JSON object, @FILE, or - for stdin")
    p.add_argument("--priority", type=int, default=0, help="higher runs first (default 0)")
    p.add_argument("--timeout", default=None, help="seconds or a duration such as 30s")
    p.add_argument("--max-retries", type=int, default=None, help="default task.default_max_retries")
    p.add_argument("--count", type=int, default=1, help="submit N copies in one batch")
    p.add_argument(
        "--wait", action="store_true", help="wait for the task(s) to finish; exit by outcome"
    )
    p = add("list", "list tasks")
    p.add_argument("--status", default=None)
    p.add_argument("--type", dest="type_", default=None)
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--offset", type=int, default=0)
    p = add("get", "show one task")
    p.add_argument("id")
    p = add("cancel", "cancel a task")
    p.add_argument("id")
    add("stats", "pool and task statistics")
    add("watch", "follow the live event stream until Ctrl+C")
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    overrides: dict[str, Any] = {}
    server: dict[str, Any] = {}
    if args.host is not None:
        server["host"] = args.host
    if args.port is not None:
        server["port"] = args.port
    if args.no_server:
        server["enabled"] = False
    if server:
        overrides["server"] = server
    if args.log_level is not None:
        overrides["logger"] = {"level": args.log_level}
    return load_config(args.config, overrides=overrides)


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    command = args.command or "dashboard"
    if command in CLIENT_COMMANDS:
        from .client import run_client

        return run_client(args, cfg, os.environ)
    if command == "serve":
        import anyio

        from .logging import setup_logging
        from .runtime import serve

        setup_logging(cfg.logger)
        return anyio.run(serve, cfg)
    from .tui.app import run_dashboard

    return run_dashboard(cfg)


EXIT_JOIN_S = 2.0
"""At exit, how long threads still running get before the process leaves without them."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _run(argv)
    except (UsageError, ConfigError, HandlerLoadError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    _leave_stuck_threads(code)
    return code


def _leave_stuck_threads(code: int) -> None:
    """Exit now if a thread outlives the run: only a sync handler that ignored its
    cancellation can (the engine abandoned it at shutdown), and the interpreter would
    otherwise wait for it forever at exit."""
    deadline = time.monotonic() + EXIT_JOIN_S
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            print(f"leaving a thread that did not stop: {thread.name}", file=sys.stderr)
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
