"""The schedules made through the API, for the SQLite store: a JSON file beside the
database (``tasks.db.schedules.json``), replaced whole on each change (write, fsync,
rename). The runs themselves need no file: their tasks carry the due time in their unique
key (``core/schedules.py``). The types' run-time settings (``PATCH /api/v1/types``) are
kept the same way, in ``tasks.db.types.json`` (``core/type_settings.py``): both change
rarely and are small, and the database belongs to its writer process."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import msgspec

from ..core.schedule_rules import ScheduleSpec
from ..core.type_settings import MemoryTypeSettings, TypeOverride

_decode = msgspec.json.Decoder(list[ScheduleSpec]).decode
_decode_types = msgspec.json.Decoder(dict[str, TypeOverride]).decode
_encode = msgspec.json.Encoder().encode


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file, fsync it, and rename it over ``path``."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class FileSchedules:
    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + ".schedules.json")
        self._specs: dict[str, ScheduleSpec] = {}

    async def load(self) -> tuple[list[ScheduleSpec], dict[str, tuple[float, str]]]:
        path = anyio.Path(self.path)
        if await path.exists():
            self._specs = {s.name: s for s in _decode(await path.read_bytes())}
        return list(self._specs.values()), {}

    async def save(self, spec: ScheduleSpec) -> None:
        self._specs[spec.name] = spec
        await anyio.to_thread.run_sync(self._write)

    async def delete(self, name: str) -> None:
        self._specs.pop(name, None)
        await anyio.to_thread.run_sync(self._write)

    async def claim(self, name: str, due: float, task_id: str) -> bool:
        return True

    def _write(self) -> None:
        _replace(self.path, _encode(list(self._specs.values())))


class FileTypeSettings(MemoryTypeSettings):
    """The ``TypeSettingsStore`` of the SQLite store (see the module doc): the memory
    store's overrides, written to a side file on each change and read back at start."""

    def __init__(self, db: Path) -> None:
        super().__init__()
        self.path = db.with_name(db.name + ".types.json")

    async def load(self) -> dict[str, TypeOverride]:
        path = anyio.Path(self.path)
        if await path.exists():
            self._overrides = _decode_types(await path.read_bytes())
        return await super().load()

    async def save(self, name: str, override: TypeOverride | None) -> None:
        await super().save(name, override)
        await anyio.to_thread.run_sync(_replace, self.path, _encode(self._overrides))
