"""Configuration (SPEC §3, §11): precedence, durations, and one-line errors naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgspec
import pytest

from workerpool_tui.config import (
    Config,
    ConfigError,
    default_config,
    env_overrides,
    load_config,
    parse_duration,
    store_path,
)
from workerpool_tui.config_checks import MAX_RETRIES_MAX

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, body: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


# ------------------------------------------------------------------ precedence
def test_no_file_gives_the_defaults() -> None:
    cfg = load_config(None, environ={})
    assert cfg == default_config()
    assert cfg.source == "defaults"


def test_the_shipped_config_toml_documents_exactly_the_defaults() -> None:
    cfg = load_config(REPO / "config.toml", environ={})
    assert msgspec.structs.replace(cfg, source="defaults") == default_config()


def test_precedence_defaults_file_env_overrides(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        [worker]
        min_workers = 2
        max_workers = 20
        scale_check_interval = "5s"
        [task]
        queue_capacity = 50
        retry_backoff = "250ms"
        [server]
        port = 9001
        """.replace("        ", ""),
    )
    environ = {
        "WORKERPOOL__WORKER__MAX_WORKERS": "30",
        "WORKERPOOL__TASK__QUEUE_CAPACITY": "60",
        "WORKERPOOL__SERVER__HOST": "127.0.0.2",
        "WORKERPOOL__WORKER__ENABLE_AUTO_SCALING": "false",
        "OTHER_VARIABLE": "ignored",
    }
    overrides = {"worker": {"max_workers": 40}, "server": {"port": 9002}}
    cfg = load_config(path, environ=environ, overrides=overrides)
    assert cfg.source == str(path)
    assert cfg.worker.min_workers == 2  # file
    assert cfg.worker.scale_check_interval == 5.0  # file, duration parsed
    assert cfg.task.retry_backoff == 0.25
    assert cfg.task.queue_capacity == 60  # env beats file
    assert cfg.server.host == "127.0.0.2"  # env (a plain string)
    assert cfg.worker.enable_auto_scaling is False  # env (a TOML boolean)
    assert cfg.worker.max_workers == 40  # overrides beat env and file
    assert cfg.server.port == 9002
    assert cfg.worker.scale_up_threshold == 0.8  # default
    assert cfg.task.keep_failed_for == 86400.0
    # Each layer alone.
    assert load_config(path, environ={}).worker.max_workers == 20
    assert load_config(path, environ=environ).worker.max_workers == 30
    assert load_config(None, environ=environ).worker.max_workers == 30


def test_default_path_is_config_toml_in_the_working_directory(tmp_path: Path) -> None:
    write(tmp_path, "[worker]\nmin_workers = 3\n")
    cfg = load_config(None, environ={}, cwd=tmp_path)
    assert cfg.worker.min_workers == 3
    assert cfg.source == str(tmp_path / "config.toml")
    assert load_config(None, environ={}, cwd=tmp_path / "..").source == "defaults"


def test_env_values_read_as_toml_else_as_strings() -> None:
    tree = env_overrides(
        {
            "WORKERPOOL__SERVER__ALLOWED_ORIGINS": '["http://a", "http://b"]',
            "WORKERPOOL__TASK__RETRY_BACKOFF": "2s",
            "WORKERPOOL__WORKER__SCALE_UP_THRESHOLD": "0.9",
            "WORKERPOOL__TASK__HANDLERS__MINE": "pkg.mod:fn",
        }
    )
    assert tree == {
        "server": {"allowed_origins": ["http://a", "http://b"]},
        "task": {"retry_backoff": "2s", "handlers": {"mine": "pkg.mod:fn"}},
        "worker": {"scale_up_threshold": 0.9},
    }
    cfg = load_config(None, environ={"WORKERPOOL__TASK__HANDLERS__MINE": "pkg.mod:fn"})
    assert cfg.task.handlers == {"mine": "pkg.mod:fn"}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (30, 30.0),
        (0, 0.0),
        (1.5, 1.5),
        ("250ms", 0.25),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        ("1.5s", 1.5),
        (" 10 ", 10.0),
    ],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value", ["-5s", "5 parsecs", "", "s", "1e3", True, None, [1], -1, float("nan")]
)
def test_bad_durations(value: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_store_path() -> None:
    assert store_path(default_config().store, {"XDG_DATA_HOME": "/x"}) == Path(
        "/x/workerpool-tui/tasks.db"
    )
    assert (
        store_path(load_config(None, environ={}, overrides={"store": {"path": ""}}).store) is None
    )


# ------------------------------------------------------------------ validation errors
BAD_FILES = [
    pytest.param("[worker]\nbogus = 1\n", "worker.bogus: unknown key", id="unknown-key"),
    pytest.param("[nope]\nx = 1\n", "nope: unknown key", id="unknown-section"),
    pytest.param("top = 1\n", "top: unknown key", id="unknown-top-level"),
    pytest.param(
        '[worker]\nmin_workers = "five"\n', "worker.min_workers: expected `int`", id="type"
    ),
    pytest.param("[server]\nenabled = 3\n", "server.enabled: expected `bool`", id="type-bool"),
    pytest.param('[logger]\nformat = "xml"\n', "logger.format", id="enum"),
    pytest.param(
        "[worker]\nmin_workers = 10\nmax_workers = 5\n",
        "worker.min_workers: 10 is greater than worker.max_workers (5)",
        id="min>max",
    ),
    pytest.param(
        "[worker]\nscale_up_threshold = 1.5\n",
        "worker.scale_up_threshold: must be within (0, 1]",
        id="up>1",
    ),
    pytest.param(
        "[worker]\nscale_down_threshold = 0\n",
        "worker.scale_down_threshold: must be within (0, 1]",
        id="down=0",
    ),
    pytest.param(
        "[worker]\nscale_down_threshold = 0.8\nscale_up_threshold = 0.8\n",
        "worker.scale_down_threshold: 0.8 must be below worker.scale_up_threshold",
        id="down>=up",
    ),
    pytest.param(
        "[task]\nqueue_capacity = -1\n", "task.queue_capacity: must not be negative", id="neg-size"
    ),
    pytest.param(
        "[worker]\nmin_workers = -1\n", "worker.min_workers: must not be negative", id="neg-count"
    ),
    pytest.param(
        "[task]\ndefault_max_retries = -2\n",
        "task.default_max_retries: must not be negative",
        id="neg-retries",
    ),
    pytest.param(
        "[task]\nretry_backoff = -1\n", "task.retry_backoff: duration must be", id="neg-dur"
    ),
    pytest.param(
        '[task]\nretry_backoff = "-1s"\n', "task.retry_backoff: invalid duration", id="neg-str"
    ),
    pytest.param(
        '[server]\nheader_timeout = "5 parsecs"\n',
        "server.header_timeout: invalid duration '5 parsecs'",
        id="bad-duration",
    ),
    pytest.param(
        '[worker]\nscale_check_interval = "0s"\n',
        "worker.scale_check_interval: must be greater than 0",
        id="zero-interval",
    ),
    pytest.param(
        "[task]\nmax_concurrent_tasks = 0\n",
        "task.max_concurrent_tasks: must be greater",
        id="zero",
    ),
    pytest.param(
        '[task]\ndefault_task_timeout = "0s"\n',
        "task.default_task_timeout: must be greater than 0",
        id="zero-task-timeout",
    ),
    pytest.param(
        "[task]\nmax_tracked_tasks = 1100\n",
        "task.max_tracked_tasks: 1100 must exceed"
        " task.queue_capacity + task.max_concurrent_tasks (1100)",
        id="tracked-too-small",
    ),
    pytest.param("[server]\nport = 70000\n", "server.port: must be within 0..65535", id="port"),
    pytest.param(
        "[server]\nheader_timeout = 0\n",
        "server.header_timeout: must be greater than 0",
        id="zero-header-timeout",
    ),
    pytest.param(
        '[server]\nkeep_alive_timeout = "0s"\n',
        "server.keep_alive_timeout: must be greater than 0",
        id="zero-keep-alive",
    ),
    pytest.param(
        "[server]\nmax_body_bytes = 0\n",
        "server.max_body_bytes: must be greater than 0",
        id="zero-body",
    ),
    pytest.param(
        "[worker]\nmax_workers = 0\nmin_workers = 0\n",
        "worker.max_workers: must be greater than 0",
        id="zero-max-workers",
    ),
    pytest.param(
        "[task]\ndefault_max_retries = 101\n",
        "task.default_max_retries: must be at most 100",
        id="retries-above-task-limit",
    ),
    pytest.param(
        '[server]\nauth_token = "two words"\n',
        "server.auth_token: must be visible ASCII characters, with no spaces",
        id="token-space",
    ),
    pytest.param(
        '[server]\nauth_token = "clé"\n',
        "server.auth_token: must be visible ASCII characters",
        id="token-non-ascii",
    ),
    pytest.param(
        '[task.handlers]\nmine = "no_colon"\n',
        "task.handlers.mine: expected 'package.module:function'",
        id="handler-target",
    ),
    pytest.param("[worker\nmin_workers = 1\n", "invalid TOML", id="bad-toml"),
    pytest.param("[worker]\nmin_workers = \n", "invalid TOML", id="bad-toml-value"),
]


@pytest.mark.parametrize(("body", "message"), BAD_FILES)
def test_each_bad_file_value_is_one_line_naming_file_and_key(
    tmp_path: Path, body: str, message: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    text = str(info.value)
    assert text.startswith(f"{path}: ")
    assert message in text
    assert "\n" not in text


def test_zero_is_allowed_where_it_means_something(tmp_path: Path) -> None:
    """The bounds in docs/configuration.md: 0 is a meaningful value for these keys."""
    path = write(
        tmp_path,
        "[server]\nport = 0\n[worker]\nmin_workers = 0\nshutdown_timeout = 0\n"
        "[task]\ncleanup_completed_tasks_after = 0\nkeep_failed_for = 0\nretry_backoff = 0\n"
        "default_max_retries = 100\n",
    )
    cfg = load_config(path, environ={})
    assert (cfg.server.port, cfg.worker.min_workers, cfg.worker.shutdown_timeout) == (0, 0, 0.0)
    assert cfg.task.default_max_retries == MAX_RETRIES_MAX


def test_the_retry_limit_is_the_engines() -> None:
    from workerpool_tui.core.admission import MAX_RETRIES_MAX as ENGINE_LIMIT

    assert ENGINE_LIMIT == MAX_RETRIES_MAX


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe[server]\n", "starts with a UTF-16 byte-order mark (0xff 0xfe)"),
        ("[server]".encode("utf-16"), "byte-order mark"),
        (b"\xff\xfe\x00\x00[", "starts with a UTF-32 byte-order mark"),
        (b'[server]\nhost = "caf\xe9"\n', "not UTF-8 text: byte 0xe9 at line 2 (offset 20)"),
    ],
    ids=["ff-fe", "utf-16", "utf-32", "latin-1"],
)
def test_a_file_that_is_not_utf8_is_one_line(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(data)
    with pytest.raises(ConfigError) as info:
        load_config(path, environ={})
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_utf8_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf[server]\nport = 9009\n")
    assert load_config(path, environ={}).server.port == 9009


@pytest.mark.parametrize(
    "environ",
    [
        {"WORKERPOOL__SERVER__AUTH_TOKEN": "\udcff\udcfe"},
        {"WORKERPOOL__SERVER__HOST": "caf\udce9"},
        {"WORKERPOOL__SERVER__\udcff": "1"},
    ],
    ids=["token", "host", "name"],
)
def test_undecodable_environment_bytes_are_one_line(environ: dict[str, str]) -> None:
    """Bytes that are not UTF-8 reach Python as lone surrogates (``surrogateescape``)."""
    with pytest.raises(ConfigError, match=r"^environment WORKERPOOL__SERVER__\S+: not valid UTF-8"):
        load_config(None, environ=environ)


def test_undecodable_command_line_values_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"^command line: store.path: not valid UTF-8 text$"):
        load_config(None, environ={}, overrides={"store": {"path": "x\udcff"}})


def test_store_path_that_is_a_directory(tmp_path: Path) -> None:
    path = write(tmp_path, f'[store]\npath = "{tmp_path}"\n')
    with pytest.raises(ConfigError, match=r"store\.path: .* is a directory"):
        load_config(path, environ={})


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.toml", environ={})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"WORKERPOOL__WORKER__MIN_WORKERS": "abc"}, "worker.min_workers: expected `int`"),
        ({"WORKERPOOL__WORKER__NOPE": "1"}, "worker.nope: unknown key"),
        ({"WORKERPOOL__TASK__RETRY_BACKOFF": "soon"}, "task.retry_backoff: invalid duration"),
        ({"WORKERPOOL__WORKER__MAX_WORKERS": "1"}, "worker.min_workers: 5 is greater"),
        ({"WORKERPOOL__WORKER": "1"}, "expected WORKERPOOL__SECTION__KEY"),
    ],
)
def test_environment_errors_name_the_environment_and_key(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, environ=environ)
    text = str(info.value)
    assert "environment" in text
    assert message in text
    assert "\n" not in text


def test_environment_error_over_a_file_names_both(tmp_path: Path) -> None:
    path = write(tmp_path, "[worker]\nmin_workers = 2\n")
    with pytest.raises(ConfigError, match=rf"^{path} \+ environment: worker.max_workers"):
        load_config(path, environ={"WORKERPOOL__WORKER__MAX_WORKERS": "-1"})


def test_command_line_override_errors_name_the_command_line() -> None:
    with pytest.raises(ConfigError, match=r"^command line: server.port: must be within"):
        load_config(None, environ={}, overrides={"server": {"port": 99999}})


def test_config_structs_are_frozen() -> None:
    cfg = Config()
    with pytest.raises(AttributeError):
        cfg.worker.min_workers = 3  # type: ignore[misc]


# ------------------------------------------------------------------ the command line
def run_cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WORKERPOOL")}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "workerpool_tui", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environ,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )


def _assert_one_line_exit_2(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("[worker]\nbogus = 1\n", ("bad.toml", "worker.bogus", "unknown key")),
        ("[worker\n", ("bad.toml", "invalid TOML")),
        ("[worker]\nscale_down_threshold = 0.9\n", ("worker.scale_down_threshold",)),
        (
            '[task.handlers]\nmine = "no_such_module_cli:f"\n',
            ("task.handlers.mine", "cannot import"),
        ),
    ],
    ids=["unknown-key", "bad-toml", "thresholds", "bad-handler"],
)
def test_cli_bad_config_exits_2_with_one_line(
    tmp_path: Path, body: str, words: tuple[str, ...]
) -> None:
    write(tmp_path, body, "bad.toml")
    proc = run_cli(tmp_path, "--config", "bad.toml", "--no-server", "serve")
    _assert_one_line_exit_2(proc, *words)


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (("--port", "eighty", "serve"), {}, ("--port",)),
        (("--bogus-option", "serve"), {}, ("--bogus-option",)),
        (("--config", "absent.toml", "serve"), {}, ("absent.toml", "no such config file")),
        (("serve",), {"WORKERPOOL__WORKER__MIN_WORKERS": "many"}, ("worker.min_workers",)),
        (("--log-level", "loud", "serve"), {}, ("--log-level",)),
    ],
    ids=["port-type", "unknown-option", "missing-file", "env", "log-level"],
)
def test_cli_bad_option_exits_2_with_one_line(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], words: tuple[str, ...]
) -> None:
    proc = run_cli(tmp_path, *args, env=env)
    _assert_one_line_exit_2(proc, *words)
