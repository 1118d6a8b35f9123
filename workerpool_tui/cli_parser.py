"""The command line's grammar: every command and its options, with their help.

Each sub-command takes only its own options, and its ``--help`` lists exactly those:
``--config``, ``--host`` and ``--port`` everywhere; ``--no-server``, ``--log-level`` and
``--store`` on ``dashboard`` and ``serve``; ``--url``, ``--token`` and ``--json`` on the
client commands (``attach``: ``--url`` and ``--token``). Options may also come before the
sub-command (SPEC §11: ``--url`` and ``--token`` are accepted on either side), so the top
parser takes them too and :data:`ENGINE_OPTIONS` / :data:`CLIENT_OPTIONS` name which
commands own them. Running what was parsed is :mod:`.cli`'s part.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from . import __version__

CLIENT_COMMANDS = (
    "submit", "list", "get", "cancel", "retry", "clean", "logs", "stats", "watch",
    "schedules", "schedule",
)  # fmt: skip
ENGINE_COMMANDS = ("dashboard", "serve")
ENGINE_OPTIONS = {"no_server": "--no-server", "log_level": "--log-level", "store": "--store"}
CLIENT_OPTIONS = {"url": "--url", "token": "--token", "json": "--json"}


class UsageError(Exception):
    """Bad command-line usage: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def _common(parser: argparse.ArgumentParser | Any, *, top: bool, client: bool) -> None:
    # Options accepted before or after the sub-command: sub-parsers must not reset them.
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--config",
        metavar="PATH",
        default=default,
        help="config file (default: ./config.toml if present)",
    )
    if top:
        host_help = "API host: where the API listens; clients connect there (server.host)"
        port_help = "API port: where the API listens; clients connect there (server.port)"
    elif client:
        host_help = "server host, for the default --url (server.host)"
        port_help = "server port, for the default --url (server.port)"
    else:
        host_help = "address the API listens on (server.host)"
        port_help = "port the API listens on; 0 picks a free one (server.port)"
    parser.add_argument("--host", metavar="HOST", default=default, help=host_help)
    parser.add_argument("--port", metavar="PORT", type=int, default=default, help=port_help)


def _engine_options(parser: argparse.ArgumentParser | Any, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--no-server",
        action="store_true",
        default=default,
        help="do not start the API side-car (server.enabled = false)",
    )
    parser.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error", "critical"],
        default=default,
        help="least severe log level written (logger.level)",
    )
    parser.add_argument(
        "--store",
        metavar="VALUE",
        default=default,
        help='the task store: a file path, "auto" (the data directory), "" for memory'
        " only (store.path), or postgresql://user@host/db for a cluster (store.url)",
    )


def _client_options(parser: argparse.ArgumentParser | Any, *, top: bool) -> None:
    default = None if top else argparse.SUPPRESS
    parser.add_argument(
        "--url", metavar="URL", default=default, help="server URL (default: from --host/--port)"
    )
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        default=default,
        help="API token (default: WORKERPOOL_TOKEN, else server.auth_token)",
    )
    parser.add_argument(
        "--json", action="store_true", default=default, help="print JSON instead of tables"
    )


ID_HELP = "a task id, or a unique prefix of it (4+ characters, e.g. the dashboard's 8)"
COUNT_HELP = (
    "submit N copies (1-10000, default 1); more than 1000 go as several batches of"
    " at most 1000, each all or nothing: a refused batch stops the rest, the tasks"
    " already created stay, and the exit status is 1"
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="workerpool-tui",
        description="A terminal-native task runner. Without a COMMAND: the dashboard.",
    )
    parser.add_argument("--version", action="version", version=f"workerpool-tui {__version__}")
    _common(parser, top=True, client=False)
    _engine_options(parser.add_argument_group("dashboard and serve options"), top=True)
    _client_options(
        parser.add_argument_group("client options (also accepted after the COMMAND)"), top=True
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def add(name: str, help_: str, *, client: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        if client:  # its own options first, then these
            group = p.add_argument_group("server and output options")
            _common(group, top=False, client=True)
            _client_options(group, top=False)
        else:
            _common(p, top=False, client=False)
            _engine_options(p, top=False)
        return p

    add("dashboard", "the Textual dashboard (the default)", client=False)
    add("serve", "headless: pool + API, until SIGINT/SIGTERM", client=False)

    p = add("submit", "submit tasks to a running server")
    p.add_argument("type", metavar="TYPE", help="a registered task type, e.g. example_task")
    p.add_argument(
        "--payload", metavar="JSON", default="{}", help="a JSON object, @FILE, or - for stdin"
    )
    p.add_argument(
        "--priority",
        metavar="N",
        type=int,
        default=None,
        help="higher runs first (default: the type's [task.types.NAME] priority, else 0)",
    )
    p.add_argument(
        "--timeout",
        metavar="DURATION",
        default=None,
        help="seconds or a duration such as 30s (default task.default_task_timeout)",
    )
    p.add_argument(
        "--max-retries",
        metavar="N",
        type=int,
        default=None,
        help="retries after a failure (default task.default_max_retries)",
    )
    p.add_argument("--count", metavar="N", type=int, default=1, help=COUNT_HELP)
    p.add_argument(
        "--wait", action="store_true", help="wait for the task(s) to finish; exit by outcome"
    )

    p = add("list", "list tasks, newest first")
    p.add_argument(
        "--status",
        metavar="STATUS",
        default=None,
        help="only these statuses, comma-separated: pending, running, completed, failed, cancelled",
    )
    p.add_argument(
        "--type", metavar="TYPE", dest="type_", default=None, help="only tasks of this type"
    )
    p.add_argument(
        "--search",
        metavar="TEXT",
        default=None,
        help="an id prefix, or part of the type or of the message (case-insensitive)",
    )
    p.add_argument(
        "--limit", metavar="N", type=int, default=100, help="show at most N (1-1000, default 100)"
    )
    p.add_argument(
        "--offset", metavar="N", type=int, default=0, help="skip the N newest matches (default 0)"
    )

    p = add("get", "show one task: payload, result or error, logs")
    p.add_argument("id", metavar="ID", help=ID_HELP)
    p = add("cancel", "cancel a task, or every task a filter matches (--status, --type, ...)")
    p.add_argument("id", metavar="ID", nargs="?", help=ID_HELP + "; or a filter instead")
    _bulk_options(p)
    p = add("retry", "submit a finished task again (a new task, linked by retry_of), or many")
    p.add_argument("id", metavar="ID", nargs="?", help=ID_HELP + "; or a filter instead")
    p.add_argument(
        "--wait", action="store_true", help="wait for the new task to finish; exit by outcome"
    )
    _bulk_options(p)
    p = add("clean", "delete finished tasks (memory and store) that a filter matches")
    _bulk_options(p, clean=True)
    p = add("logs", "print a task's log lines; -f follows them until the task ends")
    p.add_argument("id", metavar="ID", help=ID_HELP)
    p.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="follow new lines until the task ends; exit 0 if it completed, else 1",
    )
    add("schedules", "list the recurring schedules, with next and last runs")
    p = add("schedule", "add, pause, resume, delete or run a recurring schedule")
    p.add_argument(
        "action",
        metavar="ACTION",
        choices=("add", "pause", "resume", "delete", "run"),
        help="add | pause | resume | delete | run",
    )
    p.add_argument("name", metavar="NAME", help="the schedule's name")
    p.add_argument(
        "type", metavar="TYPE", nargs="?", default=None, help="add: the task type to submit"
    )
    p.add_argument(
        "--cron",
        metavar="EXPR",
        default=None,
        help='add: a 5-field cron expression such as "*/5 * * * *"',
    )
    p.add_argument("--every", metavar="DURATION", default=None, help="add: e.g. 30s, 5m, 1h")
    p.add_argument("--timezone", metavar="ZONE", default="UTC", help="add: default UTC")
    p.add_argument(
        "--payload", metavar="JSON", default="{}", help="add: a JSON object, @FILE, or - for stdin"
    )
    p.add_argument("--priority", metavar="N", type=int, default=0, help="add: default 0")
    p.add_argument("--timeout", metavar="DURATION", default=None, help="add: per run")
    add("stats", "pool and task statistics")
    add("watch", "follow the live event stream until Ctrl+C")
    p = sub.add_parser(
        "attach",
        help="the dashboard over a running server's API (reconnects when it restarts)",
        description="the dashboard over a running server's HTTP + WebSocket API",
    )
    p.add_argument(
        "target", metavar="URL", nargs="?", default=None, help="server URL (same as --url)"
    )
    group = p.add_argument_group("server options")
    _common(group, top=False, client=True)
    group.add_argument(
        "--url",
        metavar="URL",
        default=argparse.SUPPRESS,
        help="server URL (default: from --host/--port)",
    )
    group.add_argument(
        "--token",
        metavar="TOKEN",
        default=argparse.SUPPRESS,
        help="API token (default: WORKERPOOL_TOKEN, else server.auth_token)",
    )
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash, zsh or fish)",
        description="print a shell completion script: source <(workerpool-tui completion bash)",
    )
    p.add_argument(
        "shell", metavar="SHELL", choices=["bash", "zsh", "fish"], help="bash, zsh or fish"
    )
    p.add_argument(
        "--config", metavar="PATH", default=argparse.SUPPRESS, help="config (its task types)"
    )
    return parser


def _bulk_options(p: argparse.ArgumentParser, *, clean: bool = False) -> None:
    """The filter of a bulk action (``POST /api/v1/tasks/bulk``) and its confirmation."""
    g = p.add_argument_group("bulk: every task the filter matches (confirmed unless --yes)")
    status_help = "comma-separated statuses" + (
        " (default: completed,failed,cancelled)" if clean else ", e.g. pending or failed"
    )
    g.add_argument("--status", metavar="STATUS", default=None, help=status_help)
    g.add_argument("--type", metavar="TYPE", dest="type_", default=None, help="of this type")
    g.add_argument(
        "--search", metavar="TEXT", default=None, help="an id prefix, or part of type or message"
    )
    g.add_argument(
        "--older-than",
        metavar="DURATION",
        default=None,
        help="finished (final tasks) or created (others) longer ago, e.g. 1h",
    )
    g.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
