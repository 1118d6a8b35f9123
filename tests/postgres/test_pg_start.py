"""Starting against a cluster store that cannot be used: one line, exit 2 (issue #11)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import psycopg
import pytest
from cluster_procs import cluster, start, stop
from live_server import free_port, isolated_env

from workerpool_tui.store.postgres.schema import SCHEMA_VERSION

pytestmark = pytest.mark.anyio


def serve_once(home: Path, url: str, schema: str = "wp_never") -> subprocess.CompletedProcess[str]:
    env = isolated_env(home, WORKERPOOL__STORE__SCHEMA=f'"{schema}"')
    return subprocess.run(
        [sys.executable, "-m", "workerpool_tui", "serve", "--store", url, "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("postgresql://nobody@127.0.0.1:5432/test", 'role "nobody" does not exist'),
        ("postgresql://postgres@127.0.0.1:5432/no_such_db", 'database "no_such_db" does not exist'),
        ("postgresql://postgres:s3cret@127.0.0.1:{port}/test", "Connection refused"),
        ("postgresql://postgres@127.0.0.1:notaport/test", "invalid"),
    ],
)
def test_an_unusable_store_is_one_line_and_exit_2(
    tmp_path: Path, pg_url: str, url: str, words: str
) -> None:
    done = serve_once(tmp_path, url.format(port=free_port()))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: store postgresql://"), done.stderr
    assert words in lines[0]
    assert "s3cret" not in done.stderr  # the password is masked


async def test_two_instances_starting_at_once_both_set_up_the_schema(
    tmp_path: Path, pg_url: str, pg_schema: str
) -> None:
    async with cluster() as (tg, instances):
        async with anyio.create_task_group() as starting:

            async def one(name: str) -> None:
                instances.append(await start(tmp_path, pg_url, pg_schema, name, tg))

            starting.start_soon(one, "A")
            starting.start_soon(one, "B")
        assert len(instances) == 2
        for instance in instances:
            assert await stop(instance) == 0
    with psycopg.connect(pg_url) as conn:
        (version,) = conn.execute(f"SELECT value FROM {pg_schema}.meta").fetchone() or ("",)
    assert version == str(SCHEMA_VERSION)
