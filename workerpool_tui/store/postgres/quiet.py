"""Quiet writes: the statements of a bulk action announce no per-task changes.

While a bulk action runs (``PostgresStore.bulk``), :data:`QUIET` is set in its task's
context; the store's writes made from that context run with the transaction-local setting
``workerpool.quiet = 'on'``, which ``notify_changes`` (schema 5) obeys. The other
instances then hear one summary (``origin !bulk {json}`` on ``<schema>_changes``) instead
of every changed id.
"""

from __future__ import annotations

from contextvars import ContextVar

QUIET: ContextVar[bool] = ContextVar("workerpool_pg_quiet", default=False)
"""Whether the current task's writes are part of a bulk action."""
HUSH = "SET LOCAL workerpool.quiet = 'on'"
"""Run in a transaction: its later statements announce no changes."""
BULK_TAG = "!bulk "
"""What follows the origin in a bulk summary on the changes channel (ids never start
with ``!``)."""
