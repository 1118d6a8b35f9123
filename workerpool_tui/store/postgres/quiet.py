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

V5 = """
-- Issue 14 in a cluster: the statements of a bulk action run with the transaction-local
-- setting workerpool.quiet = 'on' and announce no per-task changes; the acting instance
-- then sends ONE summary on the changes channel (store.py, PostgresStore.bulk_done).
CREATE OR REPLACE FUNCTION {s}.notify_changes(ids text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    origin text := coalesce(current_setting('workerpool.instance', true), '');
    n integer := coalesce(array_length(ids, 1), 0);
    i integer := 1;
BEGIN
    IF coalesce(current_setting('workerpool.quiet', true), '') = 'on' THEN
        RETURN;
    END IF;
    -- Only while some live instance follows the changes (a dashboard, WebSocket clients).
    IF NOT EXISTS (
        SELECT 1 FROM {s}.instances WHERE following AND state IN ('running', 'stopping')
    ) THEN
        RETURN;
    END IF;
    WHILE i <= n LOOP
        PERFORM pg_notify('{s}_changes', origin || ' ' || array_to_string(ids[i:i + 399], ','));
        i := i + 400;
    END LOOP;
END $$;
"""
"""Schema 4 to 5 (``migrations.py``): ``notify_changes`` obeys ``workerpool.quiet``."""
