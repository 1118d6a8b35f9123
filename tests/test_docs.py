"""The docs stay true to the code: every setting and route is documented, links resolve, and
the README stays a one-screen front door.

The configuration check is deliberately strict: a key counts as documented only when
``docs/configuration.md`` names it as `` `section.key` `` (in backticks), so adding a field to
a config struct or a key to ``config.toml`` fails here until its row is written.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from workerpool_tui.config import Config
from workerpool_tui.server.routes import ROUTES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
README = REPO / "README.md"
README_MAX_BYTES = 12_000
PAGES = sorted([README, *DOCS.glob("*.md")])

_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


# ------------------------------------------------------------------ helpers
def _is_struct(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def struct_keys(struct: type[msgspec.Struct], prefix: str = "") -> Iterator[str]:
    """Every field of ``struct`` as a dotted path, descending into nested structs."""
    for field in msgspec.structs.fields(struct):
        path = f"{prefix}{field.encode_name}"
        if _is_struct(field.type):
            yield from struct_keys(field.type, f"{path}.")
        else:
            yield path


def toml_keys(tree: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Every table and key of a TOML document as a dotted path."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        yield path
        if isinstance(value, dict):
            yield from toml_keys(value, f"{path}.")


def documented(path: str, text: str) -> bool:
    """``a.b`` must appear as `` `a.b` ``; a top-level name may also appear as `` `[name]` ``
    (a section heading or a table such as ``[keymap]``) or, when it is not a table, `` `name` ``."""
    if f"`{path}`" in text:
        return True
    return "." not in path and f"`[{path}]`" in text


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    return {slug(h) for h in _HEADING.findall(text)}


def local_links(page: Path) -> Iterator[tuple[str, Path, str]]:
    """(link as written, file it points at, anchor or "") for each link to a local file."""
    text = _FENCE.sub("", page.read_text(encoding="utf-8"))
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        resolved = page if not file_part else (page.parent / file_part).resolve()
        yield target, resolved, anchor


# ------------------------------------------------------------------ 1. configuration
CONFIG_DOC = DOCS / "configuration.md"


def test_every_config_struct_field_is_documented() -> None:
    text = CONFIG_DOC.read_text(encoding="utf-8")
    keys = list(struct_keys(Config))
    assert "worker.min_workers" in keys  # the walk reaches into the sections
    missing = [k for k in keys if not documented(k, text)]
    assert not missing, f"not in docs/configuration.md as `section.key`: {missing}"


def test_every_key_of_the_shipped_config_toml_is_documented() -> None:
    text = CONFIG_DOC.read_text(encoding="utf-8")
    with (REPO / "config.toml").open("rb") as fh:
        keys = list(toml_keys(tomllib.load(fh)))
    assert "server.port" in keys and "task.handlers" in keys
    missing = [k for k in keys if not documented(k, text)]
    assert not missing, f"config.toml keys not in docs/configuration.md: {missing}"


class _Extra(msgspec.Struct):
    new_knob: int = 0


class _Grown(Config, kw_only=True):
    """The config with one more section, as a developer might add it."""

    extra: _Extra = msgspec.field(default_factory=_Extra)


def test_the_config_check_notices_an_undocumented_key() -> None:
    text = CONFIG_DOC.read_text(encoding="utf-8")
    missing = [k for k in struct_keys(_Grown) if not documented(k, text)]
    assert missing == ["extra.new_knob"]
    assert not documented("worker.min_worker", text)  # a near miss does not count


# ------------------------------------------------------------------ 2. routes
def test_every_route_is_in_the_api_page() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    assert len(ROUTES) >= 10
    missing = [f"{r.method} {r.path}" for r in ROUTES if f"`{r.method} {r.path}`" not in text]
    assert not missing, f"routes not in docs/api.md as `METHOD /path`: {missing}"


# ------------------------------------------------------------------ 3. links
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_local_links_resolve(page: Path) -> None:
    broken = []
    for target, resolved, anchor in local_links(page):
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{page.relative_to(REPO)}: {broken}"


def test_the_link_check_sees_links_and_anchors(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Top `code` here\n[ok](page.md#top-code-here) ![img](missing.svg) <https://x.org>\n"
        "[web](https://example.com) [self](#top-code-here)\n```\n[not a link](nope.md)\n```\n",
        encoding="utf-8",
    )
    found = [(t, r.exists()) for t, r, _ in local_links(page)]
    assert found == [
        ("page.md#top-code-here", True),
        ("missing.svg", False),
        ("#top-code-here", True),
    ]
    assert anchors(page) == {"top-code-here"}


# ------------------------------------------------------------------ 4. README
def test_readme_is_one_screen() -> None:
    size = len(README.read_bytes())
    assert size < README_MAX_BYTES, f"README.md is {size} bytes (limit {README_MAX_BYTES})"


def test_readme_keeps_the_two_commands_and_its_testing_section() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make run" in text and "make test" in text
    testing = text.split("## Testing", 1)
    assert len(testing) == 2, "README.md has no Testing section"
    assert "make test" in testing[1] and "docs/testing.md" in testing[1]
