"""Each sub-command shows and takes only its own options, each with a help line
(issue #10 §5); ``--url``/``--token`` still go before or after the sub-command (SPEC §11)."""

from __future__ import annotations

import argparse

import pytest
from cli_helpers import Cli
from live_server import LiveServer

from workerpool_tui.cli_parser import CLIENT_COMMANDS, ENGINE_COMMANDS, build_parser

ENGINE_ONLY = ("--no-server", "--log-level", "--store")
CLIENT_ONLY = ("--url", "--token", "--json")


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no sub-commands")


def help_of(cli: Cli, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli(*argv, "--help")
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_every_option_of_every_command_has_a_help_line() -> None:
    for name, parser in {"(top)": build_parser(), **subparsers()}.items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            assert action.help, (name, action.option_strings or action.dest)


@pytest.mark.parametrize("command", CLIENT_COMMANDS)
def test_client_commands_show_only_client_options(
    cli: Cli, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    text = help_of(cli, capsys, command)
    for flag in CLIENT_ONLY:
        assert flag in text, (command, flag)
    for flag in ENGINE_ONLY:
        assert flag not in text, (command, flag)


@pytest.mark.parametrize("command", ENGINE_COMMANDS)
def test_serve_and_dashboard_show_only_their_options(
    cli: Cli, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    text = help_of(cli, capsys, command)
    for flag in ENGINE_ONLY:
        assert flag in text, (command, flag)
    for flag in CLIENT_ONLY:
        assert flag not in text, (command, flag)


def test_list_help_names_its_filters(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(cli, capsys, "list")
    assert "TYPE_" not in text
    flat = " ".join(text.split())
    for phrase in (
        "--status STATUS only these statuses",
        "--type TYPE only tasks of this type",
        "--limit N show at most N",
        "--offset N skip the N newest",
        "--search TEXT an id prefix",
    ):
        assert phrase in flat


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["serve", "--url", "http://127.0.0.1:9"], "unrecognized arguments: --url"),
        (["--url", "http://127.0.0.1:9", "serve"], "--url: applies to the client commands only"),
        (["--token", "t", "serve"], "--token: applies to the client commands only"),
        (["--json"], "--json: applies to the client commands only, not to dashboard"),
        (["list", "--no-server"], "unrecognized arguments: --no-server"),
        (["--no-server", "list"], "--no-server: applies to dashboard and serve only"),
        (["--log-level", "info", "stats"], "--log-level: applies to dashboard and serve only"),
        (["--store", "", "get", "abcd"], "--store: applies to dashboard and serve only"),
    ],
)
def test_an_option_of_another_command_is_a_usage_error(
    cli: Cli, argv: list[str], message: str
) -> None:
    done = cli(*argv)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_url_and_token_before_or_after_the_command(cli: Cli, auth_server: LiveServer) -> None:
    url, token = auth_server.url, auth_server.token
    for argv in (
        ["--url", url, "--token", token, "stats"],
        ["stats", "--url", url, "--token", token],
        ["--url", url, "stats", "--token", token],
        ["--token", token, "list", "--url", url, "--json"],
    ):
        done = cli(*argv)
        assert done.returncode == 0, (argv, done.stderr)
