"""Schema 3 (``migrations.py``): a failed or cancelled parent cancels its whole chain of
waiting descendants in one statement, and every ``depends_on`` is indexed.

Schema 2's ``cancel_children`` cancelled one level per UPDATE and let the update trigger
fire for the next, nesting one trigger per level: a chain a few hundred deep stopped on
PostgreSQL's ``max_stack_depth`` and every later write of the instance failed. The walk
here is recursive SQL instead (tests/postgres/test_pg_timeorder.py, a chain of 1,000).
"""

from __future__ import annotations

from .schema import NOW

V3 = f"""
-- A failed or cancelled parent cancels all its waiting descendants in ONE statement: the
-- descendants are found by a recursive walk over depends_on, instead of each level's
-- UPDATE firing the trigger for the next (which nests one trigger per level and, past a
-- few hundred levels, stops on max_stack_depth). Each one is cancelled naming its own
-- parent on the walk, as before. The UPDATE still fires the update trigger once more; by
-- then no descendant is pending, so the nesting ends there.
-- The children of a task whatever their status (GET /api/v1/tasks?parent=ID, the detail
-- views). It replaces tasks_children (pending children only): the triggers' lookups of
-- pending children use it as well.
DROP INDEX {{s}}.tasks_children;
CREATE INDEX tasks_parents ON {{s}}.tasks USING gin (depends_on) WHERE depends_on IS NOT NULL;

CREATE OR REPLACE FUNCTION {{s}}.cancel_children(ids text[], states text[]) RETURNS void
LANGUAGE sql AS $$
    WITH RECURSIVE walk(seq, id, parent, parent_state, depth) AS (
        SELECT c.seq, c.id, p.id COLLATE "C", p.st, 1
        FROM unnest(ids, states) AS p(id, st)
        JOIN {{s}}.tasks c
          ON c.depends_on @> ARRAY[p.id] AND c.status = 'pending' AND c.depends_on IS NOT NULL
        UNION
        SELECT c.seq, c.id, w.id, 'cancelled', w.depth + 1
        FROM walk w
        JOIN {{s}}.tasks c
          ON c.depends_on @> ARRAY[w.id] AND c.status = 'pending' AND c.depends_on IS NOT NULL
    ), doomed AS (
        SELECT DISTINCT ON (seq) seq, parent, parent_state FROM walk ORDER BY seq, depth
    )
    UPDATE {{s}}.tasks c SET
        status = 'cancelled', blocked = 0, owner = NULL, finished_at = {NOW},
        error = json_build_object('type', 'dependency_failed',
                                  'message', 'parent ' || d.parent || ' ended ' || d.parent_state,
                                  'traceback', NULL),
        message = 'cancelled: dependency_failed: parent ' || d.parent || ' ended '
                  || d.parent_state
    FROM doomed d
    WHERE c.seq = d.seq AND c.status = 'pending'
$$;
"""
