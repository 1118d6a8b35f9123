"""The container files stay true to the program (Docker itself cannot run on these machines).

- ``compose.yaml`` parses; ``worker`` scales (no fixed host port); ``single`` is a profile
  with its store on a volume.
- Every ``WORKERPOOL__SECTION__KEY`` the ``Dockerfile`` and ``compose.yaml`` set is a
  setting (``section.key`` of the structs in ``workerpool_tui.config``), and each
  container's environment loads as a configuration.
- Every command line they run parses with ``workerpool_tui.cli_parser.build_parser()``.
- The image's entry command works from a wheel of this checkout in a fresh virtualenv:
  ``--help``, then ``serve`` on a loopback port, ``/health`` (also through the image's own
  ``HEALTHCHECK`` command), SIGTERM and exit 0. That needs pip and the package index;
  without them it skips, saying why, except under ``CI=true`` where it fails.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from workerpool_tui.cli_parser import UsageError, build_parser
from workerpool_tui.config import Config, ConfigError, load_config

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = REPO / "compose.yaml"
DOCKERIGNORE = REPO / ".dockerignore"
ENV_PREFIX = "WORKERPOOL__"
IMAGE = "workerpool-tui:local"
# Captured before the tests' isolated HOME: the wheel test reuses the developer's pip cache.
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pip"
)


# ------------------------------------------------------------------ the Dockerfile
def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        word, _, rest = full.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def one(word: str) -> str:
    found = [args for w, args in final_stage() if w == word]
    assert len(found) == 1, f"the runtime stage has {len(found)} {word} instructions"
    return found[0]


def exec_form(args: str) -> list[str]:
    """A JSON array (exec form): the program is PID 1 and gets SIGTERM itself."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in final_stage():
        if word != "ENV":
            continue
        tokens = shlex.split(args)
        if "=" not in tokens[0]:  # the legacy form: ENV KEY value
            env[tokens[0]] = " ".join(tokens[1:])
            continue
        for token in tokens:
            key, _, value = token.partition("=")
            env[key] = value
    return env


def image_command() -> list[str]:
    return exec_form(one("ENTRYPOINT")) + exec_form(one("CMD"))


def healthcheck() -> list[str]:
    _options, sep, command = one("HEALTHCHECK").partition("CMD ")
    assert sep, "HEALTHCHECK must run a command"
    return exec_form(command)


# ------------------------------------------------------------------ compose.yaml
def compose() -> dict[str, Any]:
    doc = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def our_services() -> dict[str, dict[str, Any]]:
    """The services that run this image."""
    return {
        name: svc
        for name, svc in compose()["services"].items()
        if svc.get("image") == IMAGE or "build" in svc
    }


_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


def interpolate(value: str, environ: Mapping[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``$$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        got = environ.get(name)
        if op == ":-":
            return got if got else arg
        if op == "-":
            return arg if got is None else got
        if op in (":?", "?"):
            assert got, f"${{{name}}} must be set: {arg}"
        return got or ""

    return _VAR.sub(sub, value)


def service_env(svc: dict[str, Any], environ: Mapping[str, str]) -> dict[str, str]:
    raw = svc.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: interpolate(str(v), environ) for k, v in raw.items()}


def service_command(svc: dict[str, Any]) -> list[str]:
    entry = svc.get("entrypoint") or exec_form(one("ENTRYPOINT"))
    cmd = svc.get("command") or exec_form(one("CMD"))
    as_list = [shlex.split(x) if isinstance(x, str) else x for x in (entry, cmd)]
    return [*as_list[0], *as_list[1]]


# ------------------------------------------------------------------ the program's names
def setting_paths(struct: type[msgspec.Struct] = Config, prefix: str = "") -> Iterator[str]:
    """Every setting as ``section.key``; a table of free keys (``task.handlers``) as ``path.*``."""
    for field in msgspec.structs.fields(struct):
        path = f"{prefix}{field.encode_name}"
        tp = field.type
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            yield from setting_paths(tp, f"{path}.")
        elif getattr(tp, "__origin__", None) is dict or tp is dict:
            yield f"{path}.*"
        elif path != "source":
            yield path


def env_path(name: str) -> str:
    return ".".join(p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p)


def is_setting(path: str) -> bool:
    known = set(setting_paths())
    return path in known or any(
        k.endswith(".*") and path.startswith(k[:-1]) and path.count(".") == k.count(".")
        for k in known
    )


def script_name() -> str:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    (name,) = [n for n, target in scripts.items() if target == "workerpool_tui.cli:main"]
    return str(name)


def every_environment() -> Iterator[tuple[str, dict[str, str]]]:
    """Where each environment comes from, and the environment a container of it gets."""
    yield "Dockerfile ENV", image_env()
    for name, svc in our_services().items():
        yield f"compose.yaml services.{name}", {**image_env(), **service_env(svc, {})}


# ------------------------------------------------------------------ tests: the files
def test_compose_yaml_parses_into_the_two_variants() -> None:
    services = compose()["services"]
    assert {"postgres", "worker", "single"} <= set(services)
    assert services["worker"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "profiles" not in services["worker"], "`docker compose up` starts the cluster"
    assert services["single"]["profiles"] == ["single"]


def test_the_worker_service_scales_without_a_fixed_host_port() -> None:
    """``docker compose up --scale worker=3`` needs each replica to get its own host port:
    the mapping names the container port only, and binds the host's loopback."""
    ports = compose()["services"]["worker"].get("ports", [])
    assert ports
    for spec in ports:
        assert isinstance(spec, str), "short syntax, quoted"
        parts = spec.split("/")[0].split(":")
        assert len(parts) == 3, spec
        host_ip, host_port, container_port = parts
        assert host_ip == "127.0.0.1", f"{spec}: the API is published on the loopback only"
        assert host_port == "", f"{spec}: a fixed host port would let one replica start"
        assert container_port == image_env()["WORKERPOOL__SERVER__PORT"]


def test_single_keeps_its_store_on_a_volume() -> None:
    doc = compose()
    svc = doc["services"]["single"]
    store = (
        service_env(svc, {}).get("WORKERPOOL__STORE__PATH")
        or image_env()["WORKERPOOL__STORE__PATH"]
    )
    mounts = {m.split(":")[1]: m.split(":")[0] for m in svc["volumes"]}
    directory = str(Path(store).parent)
    assert directory in mounts, f"{store} is not on a volume"
    assert mounts[directory] in doc["volumes"], "a named volume, kept across `up` and `down`"


def test_every_environment_key_is_a_setting() -> None:
    unknown = [
        f"{origin}: {key} (= {env_path(key)})"
        for origin, env in every_environment()
        for key in env
        if key.startswith(ENV_PREFIX) and not is_setting(env_path(key))
    ]
    assert not unknown, "not settings of workerpool_tui.config:\n" + "\n".join(unknown)


@pytest.mark.parametrize("origin", [origin for origin, _ in every_environment()])
def test_each_container_environment_loads(origin: str, tmp_path: Path) -> None:
    env = dict(every_environment())[origin]
    try:
        cfg = load_config(environ=env, cwd=tmp_path)
    except ConfigError as exc:
        pytest.fail(f"{origin}: {exc}")
    assert cfg.server.host == "0.0.0.0", "a container is reached through its interfaces"
    if origin.startswith("compose"):
        # Off the loopback, only a token lets requests naming the service in Host through.
        assert cfg.server.auth_token, f"{origin}: no server.auth_token"
    if origin.endswith("worker"):
        assert cfg.store.url.startswith("postgresql://"), "the worker is a cluster instance"


def test_every_command_line_parses() -> None:
    lines = [("Dockerfile ENTRYPOINT + CMD", image_command())]
    lines += [(f"compose.yaml services.{n}", service_command(s)) for n, s in our_services().items()]
    for origin, argv in lines:
        assert argv[0] == script_name(), f"{origin}: {argv[0]} is not the installed command"
        try:
            args = build_parser().parse_args(argv[1:])
        except (UsageError, SystemExit) as exc:
            pytest.fail(f"{origin}: {shlex.join(argv)}: {exc}")
        assert args.command == "serve", f"{origin}: a container runs `serve`"


def test_the_healthcheck_asks_health_with_python() -> None:
    argv = healthcheck()
    assert argv[:2] == ["python", "-c"], "the slim image has Python, not curl"
    code = argv[2]
    compile(code, "HEALTHCHECK", "exec")
    assert "urllib.request" in code and "/health" in code
    assert "WORKERPOOL__SERVER__PORT" in code, "follows the port the server listens on"


def test_the_runtime_stage_runs_unprivileged() -> None:
    user = one("USER").split(":")[0]
    assert user not in ("root", "0")
    stage = [w for w, _ in final_stage()]
    assert stage.index("USER") < stage.index("ENTRYPOINT")


def test_the_build_context_holds_what_the_dockerfile_copies() -> None:
    ignored = [
        p.strip()
        for p in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if p.strip() and not p.startswith("#")
    ]

    def excluded(path: str) -> bool:
        return any(
            fnmatch.fnmatch(path, pat.lstrip("/")) or path.startswith(pat.rstrip("/") + "/")
            for pat in ignored
            if not pat.startswith("!")
        )

    steps = instructions(DOCKERFILE.read_text(encoding="utf-8"))
    copies = [args.split() for word, args in steps if word == "COPY" and "--from" not in args]
    assert copies
    for args in copies:
        for source in args[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"
            assert not excluded(source), f"COPY {source}: excluded by .dockerignore"
    assert excluded(".venv") and excluded(".git"), "the context stays small"


# ------------------------------------------------------------------ the entry command, for real
NETWORK_TROUBLE = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "No route to host",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ProxyError",
)


def unavailable(why: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{why} (CI=true: this test never skips)")
    pytest.skip(why)


def pip(*args: str, what: str, timeout: float) -> None:
    env = {
        # Not PYTHONPATH: a checkout on it (a git worktree's tests) looks installed to
        # pip, which then installs the wheel's dependencies and not its command.
        **{k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        "PIP_CACHE_DIR": PIP_CACHE,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
    }
    cmd = [sys.executable, "-m", "pip", *args, "--retries", "1", "--timeout", "15"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        out = done.stdout + done.stderr
        if any(marker in out for marker in NETWORK_TROUBLE):
            unavailable(f"{what}: pip cannot reach the package index")
        pytest.fail(f"{what} failed ({done.returncode}):\n{out[-3000:]}")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with this checkout installed from its wheel, as the image is."""
    probe = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True)
    if probe.returncode != 0:
        unavailable(f"pip is not installed for {sys.executable}")
    root = tmp_path_factory.mktemp("docker-entry")
    wheels = root / "wheels"
    pip("wheel", "--no-deps", "--wheel-dir", str(wheels), str(REPO), what="pip wheel", timeout=240)
    (wheel,) = wheels.glob("workerpool_tui-*.whl")
    target = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    python = target / "bin" / "python"
    pip("--python", str(python), "install", f"{wheel}[postgres]", what="install", timeout=240)
    return target


def run_env(home: Path, **settings: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    return {**keep, "HOME": str(home), "XDG_DATA_HOME": str(home / "data"), **settings}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(300)
def test_the_entry_command_answers_help_from_a_wheel(venv: Path, tmp_path: Path) -> None:
    argv = image_command()
    exe = venv / "bin" / argv[0]
    assert exe.is_file(), f"the wheel installs no {argv[0]} command"
    done = subprocess.run(
        [str(exe), *argv[1:], "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        env=run_env(tmp_path),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "--store" in done.stdout and "--port" in done.stdout


def get(url: str, token: str = "") -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.mark.timeout(300)
def test_the_entry_command_serves_health_and_stops_on_sigterm(venv: Path, tmp_path: Path) -> None:
    """The image's command and environment, with the host and port swapped for a free
    loopback port, a memory store, and the token compose sets."""
    port = str(free_port())
    token = "a-test-token"
    env = run_env(
        tmp_path,
        **{
            **image_env(),
            "WORKERPOOL__SERVER__HOST": "127.0.0.1",
            "WORKERPOOL__SERVER__PORT": port,
            "WORKERPOOL__STORE__PATH": '""',
            "WORKERPOOL__SERVER__AUTH_TOKEN": token,
        },
    )
    check = healthcheck()
    check[0] = str(venv / "bin" / "python")

    def healthy() -> bool:
        done = subprocess.run(check, env=env, cwd=tmp_path, capture_output=True, timeout=30)
        return done.returncode == 0

    assert not healthy(), "the health check passes with nothing listening"
    argv = image_command()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / argv[0]), *argv[1:]],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, f"serve exited {proc.returncode}: {log.read_text()}"
            try:
                status, body = get(f"{url}/health")
                break
            except OSError:
                assert time.monotonic() < deadline, f"no answer within 30 s: {log.read_text()}"
                time.sleep(0.1)
        assert status == 200 and json.loads(body)["status"] == "ok"
        assert healthy()
        status, body = get(f"{url}/")
        assert status == 200 and b"<html" in body.lower(), "the web page is in the wheel"
        assert get(f"{url}/api/v1/tasks")[0] == 401
        assert get(f"{url}/api/v1/tasks", token)[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert not healthy()
