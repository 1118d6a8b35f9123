"""Run-time changes of the types' limits (``PATCH /api/v1/types/{name}``), kept by the store.

``concurrency``, ``rate_limit`` and ``paused`` start from ``[task.types.NAME]`` (the
config is the default). A PATCH changes them at once (:class:`~.typelimits.TypeGates`)
and is written down as an override: only the fields it set, and only while they differ
from the config (PATCHing a field back to the config's value drops its override, so a
later config change applies again). At start the overrides are applied over the config
before any task is dispatched, so a durable store (SQLite, PostgreSQL) keeps them across
restarts; the memory store forgets them with the process.

In a cluster a change is announced to every instance (the store's listener calls
:meth:`RuntimeTypeSettings.poke`), which reads the overrides again, so a PATCH on one
instance reaches the others at once; each also reads them every :data:`REFRESH_S`, in
case a notification was missed (``concurrency`` stays a cap per instance).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol, TypeVar

import anyio
import msgspec

from ..config_types import TypeSettings as ConfigTypeSettings
from .errors import InvalidRequest, StoreUnavailable
from .typelimits import TypeGates, TypeLimit

REFRESH_S = 60.0
"""Cluster: an instance reads the overrides again at least this often (besides when a
change is announced)."""
_logger = logging.getLogger("workerpool_tui.engine")
_T = TypeVar("_T")


def _keep(new: _T | None, was: _T | None, config: _T) -> _T | None:
    """The override of one field after a PATCH: none where it says what the config says."""
    value = was if new is None else new
    return None if value == config else value


class TypeOverride(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """What a PATCH set and the config does not say (``None``: the config's value)."""

    concurrency: int | None = None
    rate_limit: str | None = None
    paused: bool | None = None

    def empty(self) -> bool:
        return self.concurrency is None and self.rate_limit is None and self.paused is None


class TypeSettingsStore(Protocol):
    async def load(self) -> dict[str, TypeOverride]:
        """Every type's override."""
        ...

    async def save(self, name: str, override: TypeOverride | None) -> None:
        """Write ``name``'s override (``None``: it has none any more)."""
        ...


class MemoryTypeSettings:
    """The memory store's: kept as long as the process."""

    def __init__(self) -> None:
        self._overrides: dict[str, TypeOverride] = {}

    async def load(self) -> dict[str, TypeOverride]:
        return dict(self._overrides)

    async def save(self, name: str, override: TypeOverride | None) -> None:
        if override is None:
            self._overrides.pop(name, None)
        else:
            self._overrides[name] = override


class RuntimeTypeSettings:
    def __init__(
        self,
        config: Mapping[str, ConfigTypeSettings],
        gates: TypeGates,
        store: TypeSettingsStore,
    ) -> None:
        self._config = config
        self._gates = gates
        self._store = store
        self.overrides: dict[str, TypeOverride] = {}
        """The overrides applied here now."""
        self._lock = anyio.Lock()
        self._poked = anyio.Event()

    def _default(self, name: str) -> ConfigTypeSettings:
        return self._config.get(name) or ConfigTypeSettings()

    async def load(self) -> None:
        """Apply the stored overrides over the config (at start, and each cluster refresh)."""
        async with self._lock:
            found = await self._store.load()
            for name in set(found) | set(self.overrides):
                override = found.get(name)
                if override == self.overrides.get(name):
                    continue
                try:
                    self._apply(name, override)
                except InvalidRequest as exc:  # a value this version no longer accepts
                    _logger.warning("type %s: stored setting ignored: %s", name, exc)
                    continue
                if override is None:
                    self.overrides.pop(name, None)
                else:
                    self.overrides[name] = override

    def _apply(self, name: str, override: TypeOverride | None) -> None:
        base = self._default(name)
        o = override or TypeOverride()
        self._gates.update(
            name,
            concurrency=base.concurrency if o.concurrency is None else o.concurrency,
            rate_limit=base.rate_limit if o.rate_limit is None else o.rate_limit,
            paused=base.paused if o.paused is None else o.paused,
        )

    async def patch(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        rate_limit: str | None = None,
        paused: bool | None = None,
    ) -> TypeLimit:
        """Change ``name``'s limits now (all or nothing, ``InvalidRequest`` naming the
        field) and write the override down."""
        async with self._lock:
            limit = self._gates.update(
                name, concurrency=concurrency, rate_limit=rate_limit, paused=paused
            )
            base = self._default(name)
            old = self.overrides.get(name) or TypeOverride()

            override = TypeOverride(
                concurrency=_keep(concurrency, old.concurrency, base.concurrency),
                rate_limit=_keep(rate_limit, old.rate_limit, base.rate_limit),
                paused=_keep(paused, old.paused, base.paused),
            )
            stored = None if override.empty() else override
            if stored != self.overrides.get(name):
                await self._store.save(name, stored)
                if stored is None:
                    self.overrides.pop(name, None)
                else:
                    self.overrides[name] = stored
            return limit

    def poke(self) -> None:
        """A change was announced (or may have been missed): read the overrides again."""
        self._poked.set()

    async def follow(self) -> None:
        """Cluster: take in other instances' changes when announced, and every
        :data:`REFRESH_S`."""
        while True:
            with anyio.move_on_after(REFRESH_S):
                await self._poked.wait()
            self._poked = anyio.Event()
            try:
                await self.load()
            except StoreUnavailable as exc:
                # An outage is not this job failing: the listener's reconnection (or the
                # next refresh) asks again. Letting it fail would count towards the
                # supervisor's limit and stop the instance during a storm of killed
                # connections (tests/postgres/test_pg_outage.py).
                _logger.warning("type settings: %s; reading again once the store is back", exc)
