"""``workerpool-tui completion bash|zsh|fish``: a shell completion script, written from the
same argparse parser the command line uses (so it lists exactly its sub-commands and each
one's options) and from the task types known to the configuration.

Task types are those of the config when the script is made: the built-ins, ``shell_task``
when ``task.allow_shell``, and the names under ``[task.handlers]`` (not imported here).
Values the script completes: task types (``submit TYPE``, ``--type``), statuses
(``--status``), ``--log-level``'s levels, the shells, and file names (``--config``,
``--payload @FILE``, ``--store``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from .config import Config

SHELLS = ("bash", "zsh", "fish")
STATUSES = ("pending", "running", "completed", "failed", "cancelled")
BUILTIN_TYPES = ("example_task", "long_running_task", "default_task")
PROG = "workerpool-tui"


def task_types(cfg: Config) -> list[str]:
    names = list(BUILTIN_TYPES)
    if cfg.task.allow_shell:
        names.append("shell_task")
    names.extend(n for n in cfg.task.handlers if n not in names)
    return names


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> Iterator[tuple[list[str], str, bool]]:
    """``(option strings, help, takes a value)`` of each option of ``parser``."""
    for action in parser._actions:
        if action.option_strings and action.help != argparse.SUPPRESS:
            takes = action.nargs != 0
            yield list(action.option_strings), (action.help or "").replace("%%", "%"), takes


def _help(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def completion_script(shell: str, parser: argparse.ArgumentParser, cfg: Config) -> str:
    if shell not in SHELLS:
        raise ValueError(f"unknown shell {shell!r}: one of {', '.join(SHELLS)}")
    return {"bash": _bash, "zsh": _zsh, "fish": _fish}[shell](parser, task_types(cfg))


def _q(text: str) -> str:
    """Single-quoted for a POSIX shell."""
    return "'" + text.replace("'", "'\\''") + "'"


def _value_cases(types: list[str], indent: str) -> str:
    words = {
        "--status": " ".join(STATUSES),
        "--type": " ".join(types),
        "--log-level": "debug info warning error critical",
    }
    lines = [
        f'{indent}{opt}) COMPREPLY=($(compgen -W {_q(w)} -- "$cur")); return 0;;'
        for opt, w in words.items()
    ]
    lines.append(
        f'{indent}--config|--payload|--store) COMPREPLY=($(compgen -f -- "$cur")); return 0;;'
    )
    return "\n".join(lines)


def _bash(parser: argparse.ArgumentParser, types: list[str]) -> str:
    commands = _commands(parser)
    top = [o for opts, _, _ in _options(parser) for o in opts]
    valued = sorted(
        {o for p in (parser, *commands.values()) for opts, _, v in _options(p) if v for o in opts}
    )
    cases = []
    for name, sub in commands.items():
        opts = " ".join(o for opts, _, _ in _options(sub) for o in opts)
        if name == "submit":
            extra = f"{_q(' '.join(types))}"
        elif name == "completion":
            extra = _q(" ".join(SHELLS))
        else:
            extra = "''"
        cases.append(
            f"        {name})\n"
            f'            if [[ "$cur" == -* ]]; then words={_q(opts)}; else words={extra}; fi;;'
        )
    return f"""# bash completion for {PROG} (workerpool-tui completion bash)
# Load it: source <({PROG} completion bash), or save it under
# ~/.local/share/bash-completion/completions/{PROG}
_workerpool_tui() {{
    local cur prev cmd="" i words
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    case "$prev" in
{_value_cases(types, "        ")}
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            {"|".join(commands)}) cmd="${{COMP_WORDS[i]}}"; break;;
            {"|".join(valued)}) ((i++));;
        esac
    done
    case "$cmd" in
        "")
            if [[ "$cur" == -* ]]; then words={_q(" ".join(top))}
            else words={_q(" ".join(commands))}; fi;;
{chr(10).join(cases)}
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
    return 0
}}
complete -o default -F _workerpool_tui {PROG}
"""


def _zsh_spec(opts: list[str], help_: str, takes: bool) -> str:
    text = help_.replace("[", "(").replace("]", ")").replace(":", ";").replace("'", "")
    value = ""
    if takes:
        if "--status" in opts:
            value = ":status:(" + " ".join(STATUSES) + ")"
        elif "--type" in opts:
            value = ":type:_workerpool_tui_types"
        elif "--log-level" in opts:
            value = ":level:(debug info warning error critical)"
        elif set(opts) & {"--config", "--payload", "--store"}:
            value = ":file:_files"
        else:
            value = ":value: "
    if len(opts) == 1:
        return f"'{opts[0]}[{text}]{value}'"
    return f"'({' '.join(opts)})'{{{','.join(opts)}}}'[{text}]{value}'"


def _zsh(parser: argparse.ArgumentParser, types: list[str]) -> str:
    commands = _commands(parser)
    described = " ".join(_q(f"{name}:{_help(parser, name).replace(':', ';')}") for name in commands)
    cases = []
    for name, sub in commands.items():
        specs = [_zsh_spec(o, h, t) for o, h, t in _options(sub)]
        if name == "submit":
            specs.append("'1:task type:_workerpool_tui_types'")
        elif name == "completion":
            specs.append("'1:shell:(" + " ".join(SHELLS) + ")'")
        elif name in ("get", "cancel", "retry", "logs"):
            specs.append("'1:task id: '")
        body = " \\\n                ".join(specs)
        cases.append(f"        {name})\n            _arguments -s \\\n                {body} ;;")
    top = " \\\n        ".join(_zsh_spec(o, h, t) for o, h, t in _options(parser))
    return f"""#compdef {PROG}
# zsh completion for {PROG} (workerpool-tui completion zsh)
# Load it: source <({PROG} completion zsh), or save it as _{PROG} in your $fpath
_workerpool_tui_types() {{
    local -a types
    types=({" ".join(types)})
    compadd -a types
}}

_workerpool_tui() {{
    local curcontext="$curcontext" state line
    local -a commands
    commands=({described})
    _arguments -C \\
        {top} \\
        '1:command:->command' \\
        '*::argument:->argument'
    case $state in
    command)
        _describe -t commands 'workerpool-tui command' commands ;;
    argument)
        case $line[1] in
{chr(10).join(cases)}
        esac ;;
    esac
}}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    _workerpool_tui "$@"
else
    compdef _workerpool_tui {PROG}
fi
"""


def _fish_opt(opts: list[str], help_: str, takes: bool, cond: str) -> str:
    parts = [f"complete -c {PROG} -n {_q(cond)}"]
    for o in opts:
        parts.append(f"-l {o[2:]}" if o.startswith("--") else f"-s {o[1:]}")
    if takes:
        parts.append("-r")
        if "--status" in opts:
            parts.append("-f -a " + _q(" ".join(STATUSES)))
        elif "--log-level" in opts:
            parts.append("-f -a 'debug info warning error critical'")
        elif "--type" in opts:
            parts.append("-f -a '(__workerpool_tui_types)'")
    parts.append("-d " + _q(help_))
    return " ".join(parts)


def _fish(parser: argparse.ArgumentParser, types: list[str]) -> str:
    commands = _commands(parser)
    names = " ".join(commands)
    lines = [
        f"# fish completion for {PROG} (workerpool-tui completion fish)",
        f"# Load it: {PROG} completion fish | source, or save it as"
        f" ~/.config/fish/completions/{PROG}.fish",
        f"function __workerpool_tui_types; printf '%s\\n' {' '.join(types)}; end",
        f"complete -c {PROG} -f",
    ]
    first = f"not __fish_seen_subcommand_from {names}"
    for name in commands:
        lines.append(f"complete -c {PROG} -n {_q(first)} -a {name} -d {_q(_help(parser, name))}")
    lines.extend(_fish_opt(o, h, t, first) for o, h, t in _options(parser))
    for name, sub in commands.items():
        cond = f"__fish_seen_subcommand_from {name}"
        lines.extend(_fish_opt(o, h, t, cond) for o, h, t in _options(sub))
        if name == "submit":
            lines.append(f"complete -c {PROG} -n {_q(cond)} -a '(__workerpool_tui_types)'")
        elif name == "completion":
            lines.append(f"complete -c {PROG} -n {_q(cond)} -a {_q(' '.join(SHELLS))}")
    return "\n".join(lines) + "\n"
