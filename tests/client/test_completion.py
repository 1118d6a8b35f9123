"""``workerpool-tui completion bash|zsh|fish``: the scripts parse, and bash's completes
sub-commands, options and task types when its function is run as bash would run it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cli_helpers import run
from live_server import isolated_env

from workerpool_tui.cli_parser import CLIENT_COMMANDS, build_parser
from workerpool_tui.completion import SHELLS

COMMANDS = [*CLIENT_COMMANDS, "dashboard", "serve", "attach", "completion"]


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    home = tmp_path_factory.mktemp("completion")
    (home / "config.toml").write_text('[task.handlers]\nresize_images = "mypkg.jobs:resize"\n')
    out = {}
    for shell in SHELLS:
        done = run("completion", shell, "--config", str(home / "config.toml"), home=home)
        assert done.returncode == 0, done.stderr
        path = home / f"completion.{shell}"
        path.write_text(done.stdout)
        out[shell] = path
    return out


def complete_bash(script: Path, *words: str) -> list[str]:
    """What the completion function offers for ``workerpool-tui WORDS...`` (the last word
    being completed)."""
    line = " ".join(f"'{w}'" for w in ("workerpool-tui", *words))
    program = (
        f"source '{script}'\n"
        f"COMP_WORDS=({line}); COMP_CWORD={len(words)}\n"
        "_workerpool_tui\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        timeout=30,
        env=isolated_env(script.parent),
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_script_parses(scripts: dict[str, Path]) -> None:
    done = subprocess.run(["bash", "-n", str(scripts["bash"])], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_bash_completes_commands_options_and_types(scripts: dict[str, Path]) -> None:
    bash = scripts["bash"]
    assert sorted(complete_bash(bash, "")) == sorted(COMMANDS)
    assert complete_bash(bash, "su") == ["submit"]
    types = complete_bash(bash, "submit", "")
    assert {"example_task", "default_task", "resize_images"} <= set(types)
    assert "shell_task" not in types  # task.allow_shell is off
    assert complete_bash(bash, "list", "--status", "fa") == ["failed"]
    assert complete_bash(bash, "--url", "http://x", "cancel", "--ye") == ["--yes"]
    assert set(complete_bash(bash, "logs", "-")) >= {"-f", "--follow", "--url"}
    assert set(complete_bash(bash, "completion", "")) == set(SHELLS)


def test_every_option_of_every_command_is_in_each_script(scripts: dict[str, Path]) -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    texts = {shell: path.read_text() for shell, path in scripts.items()}
    for name, command in sub.choices.items():
        for action in command._actions:
            for option in action.option_strings:
                if option.startswith("--"):
                    for shell, text in texts.items():
                        needle = f"-l {option[2:]}" if shell == "fish" else option
                        assert needle in text, (shell, name, option)
        for shell, text in texts.items():
            assert name in text, (shell, name)


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_other_shells_parse_when_installed(scripts: dict[str, Path], shell: str) -> None:
    exe = shutil.which(shell)
    if exe is None:
        pytest.skip(f"{shell} is not installed")
    done = subprocess.run([exe, "-n", str(scripts[shell])], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_an_unknown_shell_is_bad_usage() -> None:
    done = run("completion", "tcsh")
    assert done.returncode == 2 and "invalid choice" in done.stderr
