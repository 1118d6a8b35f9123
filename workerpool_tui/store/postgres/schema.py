"""The cluster's tables in PostgreSQL: the schema, its version, and migrations.

Everything lives in one PostgreSQL schema (``[store] schema``, default ``workerpool``), so
that tests and several clusters can share a database. Schema 1::

    meta       key/value: schema_version
    instances  one row per process that ever joined: name, host, pid, version, heartbeat,
               state, pool figures (the Instances view)
    tasks      one row per task, keyed by ``seq`` (cluster-wide submission order, from an
               identity column); ``id`` is unique and "C"-collated so that an id prefix is
               an index range; ``owner`` is the instance running it now (the fence every
               write of a running task checks), ``instance`` the name of the last one
    counts     per-status task counts, kept by statement-level triggers, in 64 rows picked
               by backend so that two instances never wait for one hot row

Schema 2 (issue 12) adds to ``tasks`` ``depends_on``, ``blocked`` (parents not completed
yet: the claim skips such tasks), ``unique_key`` and ``unique_until``; ``unique_keys`` (a
key's holder, taken atomically) and ``schedules`` (API schedules and every schedule's last
run); ``counts.blocked``. The update trigger also releases the children of completed
parents and cancels those of failed or cancelled ones (recursively: that cancel fires it
again).

Schema 3 cancels all the waiting descendants of a failed or cancelled parent in one
statement (a recursive walk), so a chain of any depth ends at once instead of nesting one
trigger per level up to ``max_stack_depth``.
It also indexes every task's ``depends_on`` (``tasks_parents``, GIN), so the
children of a task are found by the index whatever their status (``?parent=ID``).
Schema 4 adds ``type_settings``: the types' run-time settings (``PATCH
/api/v1/types/{name}``, ``core/type_settings.py``), one row per type with an override.
Schema 5 lets a bulk action's statements be quiet: ``notify_changes`` sends nothing while
the transaction-local setting ``workerpool.quiet`` is ``on``; the acting instance sends one
summary instead (``origin !bulk {json}`` on ``<schema>_changes``).

Statement-level triggers (one run per statement, not per row) keep ``counts`` and send
the notifications instances listen to: ``<schema>_wake`` when tasks become runnable (the
count), or wait for a time (``at <epoch>``, the earliest),
``<schema>_changes`` with the origin instance and the changed ids (what WebSocket clients
and dashboards of every instance follow; sent only while an instance follows, as its
``instances.following`` says). ``<schema>_cancel`` is sent by a cancel.

Timestamps are epoch seconds (``double precision``), as the engine keeps them; lease and
heartbeat comparisons use the database's clock only.
"""

from __future__ import annotations

import re

SCHEMA_VERSION = 5
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
COUNT_SHARDS = 64


def check_schema_name(name: str) -> str:
    """``name`` if it is a plain lower-case identifier (it is put into SQL as such)."""
    if not _NAME.match(name):
        raise ValueError(
            f"invalid schema name {name!r}: lower-case letters, digits and _, at most 40,"
            " not starting with a digit"
        )
    return name


def channels(schema: str) -> tuple[str, str, str]:
    """The wake, changes and cancel notification channels of a schema."""
    return f"{schema}_wake", f"{schema}_changes", f"{schema}_cancel"


def types_channel(schema: str) -> str:
    """The channel a change of ``type_settings`` is announced on (its type's name)."""
    return f"{schema}_types"


NOW = "extract(epoch from clock_timestamp())::float8"
"""The database's clock, in epoch seconds (leases and heartbeats are judged by it)."""
