"""The schedules made through the API, for the SQLite store: a JSON file beside the
database (``tasks.db.schedules.json``), replaced whole on each change (write, fsync,
rename). The runs themselves need no file: their tasks carry the due time in their unique
key (``core/schedules.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import msgspec

from ..core.schedules import ScheduleSpec

_decode = msgspec.json.Decoder(list[ScheduleSpec]).decode
_encode = msgspec.json.Encoder().encode


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
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(_encode(list(self._specs.values())))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
