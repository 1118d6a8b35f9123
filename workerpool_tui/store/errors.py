"""The store errors, defined by the engine's protocol (``workerpool_tui.core.errors``)."""

from __future__ import annotations

from ..core.errors import StoreError, StoreLocked, StoreUnavailable

__all__ = ["StoreError", "StoreLocked", "StoreUnavailable"]
