"""The DDL of each schema version, and the migrations from one to the next.

The layout they build is described in :mod:`.schema`; :func:`migration` gives the SQL that
takes a schema from version N to N + 1 (the store runs it in the transaction that records
the new version, see ``store.py``). A new version appends one more entry to
:data:`MIGRATIONS` and bumps ``schema.SCHEMA_VERSION``; released versions never change.
"""

from __future__ import annotations

from .cascade import V3 as _V3
from .quiet import V5 as _V5
from .schema import COUNT_SHARDS, NOW

_V1 = """
CREATE TABLE {s}.meta (key text PRIMARY KEY, value text NOT NULL);

CREATE TABLE {s}.instances (
    id            bigint PRIMARY KEY,
    name          text NOT NULL,
    host          text NOT NULL,
    pid           integer NOT NULL,
    version       text NOT NULL,
    started_at    float8 NOT NULL,
    heartbeat_at  float8 NOT NULL,
    state         text NOT NULL CHECK (state IN ('running', 'stopping', 'stopped', 'dead')),
    workers       integer NOT NULL DEFAULT 0,
    busy          integer NOT NULL DEFAULT 0,
    min_workers   integer NOT NULL DEFAULT 0,
    max_workers   integer NOT NULL DEFAULT 0,
    paused        boolean NOT NULL DEFAULT false,
    done          bigint NOT NULL DEFAULT 0,
    failed        bigint NOT NULL DEFAULT 0,
    following     boolean NOT NULL DEFAULT false  -- listens to <schema>_changes
);

CREATE TABLE {s}.tasks (
    seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               text COLLATE "C" NOT NULL UNIQUE,
    type             text NOT NULL,
    status           text NOT NULL
                     CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
    priority         integer NOT NULL,
    payload          json NOT NULL,
    progress         real NOT NULL DEFAULT 0,
    message          text,
    result           json,
    error            json,
    attempts         integer NOT NULL DEFAULT 0,
    max_retries      integer NOT NULL,
    timeout_s        float8 NOT NULL,
    created_at       float8 NOT NULL,
    started_at       float8,
    finished_at      float8,
    run_at           float8,
    worker           integer,
    instance         text,
    owner            bigint,
    retry_of         text,
    logs             json,
    cancel_requested boolean NOT NULL DEFAULT false
);
-- The next runnable tasks, in claim order.
CREATE INDEX tasks_runnable ON {s}.tasks (priority DESC, seq)
    WHERE status = 'pending' AND run_at IS NULL;
-- Tasks waiting for a time (retries, delayed tasks), by due time.
CREATE INDEX tasks_scheduled ON {s}.tasks (run_at) WHERE status = 'pending' AND run_at IS NOT NULL;
-- What each instance runs (recovery, cancel).
CREATE INDEX tasks_owner ON {s}.tasks (owner) WHERE owner IS NOT NULL;
-- Retention: final tasks by finish time.
CREATE INDEX tasks_finished ON {s}.tasks (finished_at)
    WHERE status IN ('completed', 'failed', 'cancelled');
-- Listing the rare final statuses newest first (the others walk the primary key from its
-- newest end: pending and running tasks are recent). Every index costs each status change
-- (no update of a task is HOT), so there are only these.
CREATE INDEX tasks_failed ON {s}.tasks (status, seq) WHERE status IN ('failed', 'cancelled');

CREATE TABLE {s}.counts (
    shard     smallint PRIMARY KEY,
    pending   bigint NOT NULL DEFAULT 0,
    scheduled bigint NOT NULL DEFAULT 0,
    running   bigint NOT NULL DEFAULT 0,
    completed bigint NOT NULL DEFAULT 0,
    failed    bigint NOT NULL DEFAULT 0,
    cancelled bigint NOT NULL DEFAULT 0
);
INSERT INTO {s}.counts (shard) SELECT generate_series(0, {shards} - 1);

CREATE FUNCTION {s}.notify_changes(ids text[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    origin text := coalesce(current_setting('workerpool.instance', true), '');
    n integer := coalesce(array_length(ids, 1), 0);
    i integer := 1;
BEGIN
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

CREATE FUNCTION {s}.add_counts(
    p bigint, sch bigint, r bigint, c bigint, f bigint, x bigint
) RETURNS void LANGUAGE sql AS $$
    UPDATE {s}.counts SET
        pending = pending + p, scheduled = scheduled + sch, running = running + r,
        completed = completed + c, failed = failed + f, cancelled = cancelled + x
    WHERE shard = pg_backend_pid() % {shards}
$$;

CREATE FUNCTION {s}.after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d record;
BEGIN
    SELECT
        count(*) FILTER (WHERE status = 'pending' AND run_at IS NULL) AS p,
        count(*) FILTER (WHERE status = 'pending' AND run_at IS NOT NULL) AS sch,
        count(*) FILTER (WHERE status = 'running') AS r,
        count(*) FILTER (WHERE status = 'completed') AS c,
        count(*) FILTER (WHERE status = 'failed') AS f,
        count(*) FILTER (WHERE status = 'cancelled') AS x
    INTO d FROM new_rows;
    PERFORM {s}.add_counts(d.p, d.sch, d.r, d.c, d.f, d.x);
    IF d.p > 0 THEN
        PERFORM pg_notify('{s}_wake', d.p::text);
    END IF;
    IF d.sch > 0 THEN
        PERFORM pg_notify('{s}_wake', 'at ' || (
            SELECT min(run_at) FROM new_rows WHERE status = 'pending' AND run_at IS NOT NULL
        )::text);
    END IF;
    PERFORM {s}.notify_changes(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION {s}.after_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d record;
BEGIN
    -- Only rows whose status or due time changed move between counts.
    SELECT
        count(*) FILTER (WHERE n.status = 'pending' AND n.run_at IS NULL)
          - count(*) FILTER (WHERE o.status = 'pending' AND o.run_at IS NULL) AS p,
        count(*) FILTER (WHERE n.status = 'pending' AND n.run_at IS NOT NULL)
          - count(*) FILTER (WHERE o.status = 'pending' AND o.run_at IS NOT NULL) AS sch,
        count(*) FILTER (WHERE n.status = 'running')
          - count(*) FILTER (WHERE o.status = 'running') AS r,
        count(*) FILTER (WHERE n.status = 'completed')
          - count(*) FILTER (WHERE o.status = 'completed') AS c,
        count(*) FILTER (WHERE n.status = 'failed')
          - count(*) FILTER (WHERE o.status = 'failed') AS f,
        count(*) FILTER (WHERE n.status = 'cancelled')
          - count(*) FILTER (WHERE o.status = 'cancelled') AS x,
        count(*) FILTER (WHERE n.status = 'pending' AND n.run_at IS NULL) AS woke,
        min(n.run_at) FILTER (WHERE n.status = 'pending' AND n.run_at IS NOT NULL) AS due
    INTO d
    FROM new_rows n JOIN old_rows o USING (seq)
    WHERE n.status <> o.status OR (n.run_at IS NULL) <> (o.run_at IS NULL);
    IF d.woke > 0 OR d.r <> 0 OR d.c <> 0 OR d.f <> 0 OR d.x <> 0 OR d.sch <> 0 THEN
        PERFORM {s}.add_counts(d.p, d.sch, d.r, d.c, d.f, d.x);
    END IF;
    IF d.woke > 0 THEN
        PERFORM pg_notify('{s}_wake', d.woke::text);
    END IF;
    IF d.due IS NOT NULL THEN
        PERFORM pg_notify('{s}_wake', 'at ' || d.due::text);
    END IF;
    PERFORM {s}.notify_changes(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;

CREATE FUNCTION {s}.after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d record;
BEGIN
    SELECT
        count(*) FILTER (WHERE status = 'pending' AND run_at IS NULL) AS p,
        count(*) FILTER (WHERE status = 'pending' AND run_at IS NOT NULL) AS sch,
        count(*) FILTER (WHERE status = 'running') AS r,
        count(*) FILTER (WHERE status = 'completed') AS c,
        count(*) FILTER (WHERE status = 'failed') AS f,
        count(*) FILTER (WHERE status = 'cancelled') AS x
    INTO d FROM old_rows;
    PERFORM {s}.add_counts(-d.p, -d.sch, -d.r, -d.c, -d.f, -d.x);
    PERFORM {s}.notify_changes(ARRAY(SELECT id FROM old_rows));
    RETURN NULL;
END $$;

CREATE TRIGGER tasks_inserted AFTER INSERT ON {s}.tasks
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {s}.after_insert();
CREATE TRIGGER tasks_updated AFTER UPDATE ON {s}.tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {s}.after_update();
CREATE TRIGGER tasks_deleted AFTER DELETE ON {s}.tasks
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {s}.after_delete();
"""

_PEND = "status = 'pending' AND blocked = 0"


def _pend(alias: str) -> str:
    return f"{alias}.status = 'pending' AND {alias}.blocked = 0"


_V2 = f"""
-- Issue 12: dependencies, unique keys, schedules. Additive: existing rows wait for nothing.
ALTER TABLE {{s}}.tasks
    ADD COLUMN depends_on   text[],
    ADD COLUMN blocked      integer NOT NULL DEFAULT 0,  -- parents not completed yet
    ADD COLUMN unique_key   text,
    ADD COLUMN unique_until float8;
DROP INDEX {{s}}.tasks_runnable;
CREATE INDEX tasks_runnable ON {{s}}.tasks (priority DESC, seq)
    WHERE status = 'pending' AND run_at IS NULL AND blocked = 0;
-- The children of a parent (its end releases or cancels them).
CREATE INDEX tasks_children ON {{s}}.tasks USING gin (depends_on)
    WHERE status = 'pending' AND depends_on IS NOT NULL;
ALTER TABLE {{s}}.counts ADD COLUMN blocked bigint NOT NULL DEFAULT 0;

-- A unique key's holder; taken by an INSERT ... ON CONFLICT that only replaces a holder
-- which no longer holds it (final and past its window), so two instances cannot both win.
CREATE TABLE {{s}}.unique_keys (
    key        text PRIMARY KEY,
    task_id    text NOT NULL,
    until      float8,
    claimed_at float8 NOT NULL
);

-- Schedules: those made through the API (spec), and every schedule's last run (the
-- instance whose conditional update advances last_run is the one that fired it).
CREATE TABLE {{s}}.schedules (
    name         text PRIMARY KEY,
    spec         json,
    last_run     float8,
    last_task_id text
);

CREATE FUNCTION {{s}}.add_counts(
    p bigint, sch bigint, r bigint, c bigint, f bigint, x bigint, b bigint
) RETURNS void LANGUAGE sql AS $$
    UPDATE {{s}}.counts SET
        pending = pending + p, scheduled = scheduled + sch, running = running + r,
        completed = completed + c, failed = failed + f, cancelled = cancelled + x,
        blocked = blocked + b
    WHERE shard = pg_backend_pid() % {{shards}}
$$;

CREATE FUNCTION {{s}}.cancel_children(ids text[], states text[]) RETURNS void
LANGUAGE sql AS $$
    -- Children of failed or cancelled parents end at once; this UPDATE fires the update
    -- trigger again, which cancels their own children.
    UPDATE {{s}}.tasks c SET
        status = 'cancelled', blocked = 0, owner = NULL, finished_at = {NOW},
        error = json_build_object('type', 'dependency_failed',
                                  'message', 'parent ' || p.id || ' ended ' || p.st,
                                  'traceback', NULL),
        message = 'cancelled: dependency_failed: parent ' || p.id || ' ended ' || p.st
    FROM unnest(ids, states) AS p(id, st)
    WHERE c.depends_on @> ARRAY[p.id] AND c.status = 'pending' AND c.depends_on IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION {{s}}.after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d record;
BEGIN
    SELECT
        count(*) FILTER (WHERE {_PEND} AND run_at IS NULL) AS p,
        count(*) FILTER (WHERE {_PEND} AND run_at IS NOT NULL) AS sch,
        count(*) FILTER (WHERE status = 'pending' AND blocked > 0) AS b,
        count(*) FILTER (WHERE status = 'running') AS r,
        count(*) FILTER (WHERE status = 'completed') AS c,
        count(*) FILTER (WHERE status = 'failed') AS f,
        count(*) FILTER (WHERE status = 'cancelled') AS x,
        bool_or(depends_on IS NOT NULL) AS deps
    INTO d FROM new_rows;
    PERFORM {{s}}.add_counts(d.p, d.sch, d.r, d.c, d.f, d.x, d.b);
    IF d.p > 0 THEN
        PERFORM pg_notify('{{s}}_wake', d.p::text);
    END IF;
    IF d.sch > 0 THEN
        PERFORM pg_notify('{{s}}_wake', 'at ' || (
            SELECT min(run_at) FROM new_rows WHERE {_PEND} AND run_at IS NOT NULL
        )::text);
    END IF;
    IF d.deps THEN  -- children of parents that had already failed
        PERFORM {{s}}.cancel_children(array_agg(p.id), array_agg(p.status))
        FROM {{s}}.tasks p
        WHERE p.status IN ('failed', 'cancelled')
          AND p.id IN (SELECT unnest(depends_on) FROM new_rows);
    END IF;
    PERFORM {{s}}.notify_changes(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {{s}}.after_update() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d record;
    done text[];
    bad text[];
    bad_states text[];
BEGIN
    -- Only rows whose status, due time or wait for parents changed move between counts.
    SELECT
        count(*) FILTER (WHERE {_pend("n")} AND n.run_at IS NULL)
          - count(*) FILTER (WHERE {_pend("o")} AND o.run_at IS NULL) AS p,
        count(*) FILTER (WHERE {_pend("n")} AND n.run_at IS NOT NULL)
          - count(*) FILTER (WHERE {_pend("o")} AND o.run_at IS NOT NULL) AS sch,
        count(*) FILTER (WHERE n.status = 'pending' AND n.blocked > 0)
          - count(*) FILTER (WHERE o.status = 'pending' AND o.blocked > 0) AS b,
        count(*) FILTER (WHERE n.status = 'running')
          - count(*) FILTER (WHERE o.status = 'running') AS r,
        count(*) FILTER (WHERE n.status = 'completed')
          - count(*) FILTER (WHERE o.status = 'completed') AS c,
        count(*) FILTER (WHERE n.status = 'failed')
          - count(*) FILTER (WHERE o.status = 'failed') AS f,
        count(*) FILTER (WHERE n.status = 'cancelled')
          - count(*) FILTER (WHERE o.status = 'cancelled') AS x,
        count(*) FILTER (WHERE {_pend("n")} AND n.run_at IS NULL) AS woke,
        min(n.run_at) FILTER (WHERE {_pend("n")} AND n.run_at IS NOT NULL) AS due
    INTO d
    FROM new_rows n JOIN old_rows o USING (seq)
    WHERE n.status <> o.status OR (n.run_at IS NULL) <> (o.run_at IS NULL)
       OR (n.blocked > 0) <> (o.blocked > 0);
    IF d.woke > 0 OR d.r <> 0 OR d.c <> 0 OR d.f <> 0 OR d.x <> 0 OR d.sch <> 0 OR d.b <> 0
    THEN
        PERFORM {{s}}.add_counts(d.p, d.sch, d.r, d.c, d.f, d.x, d.b);
    END IF;
    IF d.woke > 0 THEN
        PERFORM pg_notify('{{s}}_wake', d.woke::text);
    END IF;
    IF d.due IS NOT NULL THEN
        PERFORM pg_notify('{{s}}_wake', 'at ' || d.due::text);
    END IF;
    -- Parents that ended: their waiting children are released or cancelled now.
    IF d.c > 0 OR d.f <> 0 OR d.x <> 0 THEN
        SELECT
            array_agg(n.id) FILTER (WHERE n.status = 'completed'),
            array_agg(n.id) FILTER (WHERE n.status IN ('failed', 'cancelled')),
            array_agg(n.status) FILTER (WHERE n.status IN ('failed', 'cancelled'))
        INTO done, bad, bad_states
        FROM new_rows n JOIN old_rows o USING (seq)
        WHERE n.status <> o.status AND n.status IN ('completed', 'failed', 'cancelled');
        IF done IS NOT NULL THEN
            UPDATE {{s}}.tasks c SET blocked = c.blocked - h.k
            FROM (
                SELECT c2.seq, count(*)::int AS k
                FROM {{s}}.tasks c2 JOIN unnest(done) AS p(id) ON c2.depends_on @> ARRAY[p.id]
                WHERE c2.status = 'pending' AND c2.blocked > 0 AND c2.depends_on IS NOT NULL
                GROUP BY c2.seq
            ) h
            WHERE c.seq = h.seq;
        END IF;
        IF bad IS NOT NULL THEN
            PERFORM {{s}}.cancel_children(bad, bad_states);
        END IF;
    END IF;
    PERFORM {{s}}.notify_changes(ARRAY(SELECT id FROM new_rows));
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION {{s}}.after_delete() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d record;
BEGIN
    SELECT
        count(*) FILTER (WHERE {_PEND} AND run_at IS NULL) AS p,
        count(*) FILTER (WHERE {_PEND} AND run_at IS NOT NULL) AS sch,
        count(*) FILTER (WHERE status = 'pending' AND blocked > 0) AS b,
        count(*) FILTER (WHERE status = 'running') AS r,
        count(*) FILTER (WHERE status = 'completed') AS c,
        count(*) FILTER (WHERE status = 'failed') AS f,
        count(*) FILTER (WHERE status = 'cancelled') AS x
    INTO d FROM old_rows;
    PERFORM {{s}}.add_counts(-d.p, -d.sch, -d.r, -d.c, -d.f, -d.x, -d.b);
    PERFORM {{s}}.notify_changes(ARRAY(SELECT id FROM old_rows));
    RETURN NULL;
END $$;
"""

_V4 = """
-- Run-time settings of task types (PATCH /api/v1/types/NAME): one row per type with an
-- override of its config (core/type_settings.py); every instance reads it again often.
CREATE TABLE {s}.type_settings (
    name     text PRIMARY KEY,
    settings json NOT NULL  -- the set ones of concurrency, rate_limit, paused
);
"""

MIGRATIONS: dict[int, str] = {0: _V1, 1: _V2, 2: _V3, 3: _V4, 4: _V5}
"""From version N to N + 1 (SQL with ``{s}`` for the schema); each runs in the
transaction that also records the new version."""


def migration(version: int, schema: str) -> str:
    return MIGRATIONS[version].format(s=schema, shards=COUNT_SHARDS)
