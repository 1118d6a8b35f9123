/* The task list as the server sees it (no DOM here).
 *
 * The table shows one page of `GET /api/v1/tasks?status=&q=&limit=&offset=` and the
 * server's `total`: a filter or a search asks the server, so it sees every tracked task,
 * not only those this page happens to hold. Between fetches, WebSocket events patch the
 * page at once — a task that starts matching enters (at the top of the first page), one
 * that stops matching leaves, the total moves by one — and mark it dirty; a dirty page is
 * fetched again, at most once per `interval` (0.5 s, or ten times the last fetch's
 * duration, up to 5 s) and never twice at a time, so thousands of events a second cost
 * a few requests a second and one redraw per frame. A page deeper than the first keeps its
 * rows while new tasks arrive above it: its offset moves down with them, and each answer
 * is checked against the rows on screen (applyPage).
 */

export const FINAL = new Set(["completed", "failed", "cancelled"]);
export const MIN_INTERVAL_MS = 500;
const MAX_INTERVAL_MS = 5000;
const MAX_REALIGN = 8; // answers in a row that may only move a deeper page's offset
const STEP = { running: 0, pending: 1 }; // final: 2

/** How far a task has got: each run adds an attempt; within one, running comes before a
 * retry's pending, and both before final. Tasks carry no version number, and an HTTP answer
 * may overtake a WebSocket event or be overtaken by one: the further version wins. */
function stage(t) {
  return 3 * (Number(t.attempts) || 0) + (FINAL.has(t.status) ? 2 : STEP[t.status] ?? 0);
}

/** The newer of two versions of one task (`b`, the later arrival, on a tie). */
export function fresher(a, b) {
  if (!a) return b;
  if (!b) return a;
  const sa = stage(a);
  const sb = stage(b);
  if (sa !== sb) return sa > sb ? a : b;
  return (Number(a.progress) || 0) > (Number(b.progress) || 0) ? a : b;
}

/** The status a task had before `event`, when this page never saw it (null: it is new). */
function previousStatus(event, t) {
  switch (event) {
    case "created":
      return null;
    case "started":
      return "pending";
    case "cancelled":
      return t.started_at ? "running" : "pending";
    case "progress":
      return t.status;
    default: // completed, failed, retrying
      return "running";
  }
}

/** The "scheduled" chip: not a status, the pending tasks that wait for a time. */
export const SCHEDULED = "scheduled";

/** The server's `q` (lower case): an id prefix, or part of the type or of the message. */
export function matchesQuery(t, statuses, needle) {
  if (statuses.has(SCHEDULED)) {
    // waiting for a time: pending with a run_at still ahead (the server's waiting=time)
    if (t.status !== "pending" || !t.run_at || new Date(t.run_at) <= Date.now()) return false;
  } else if (statuses.size && !statuses.has(t.status)) return false;
  if (!needle) return true;
  return (
    String(t.id).startsWith(needle) ||
    String(t.type).toLowerCase().includes(needle) ||
    (t.message != null && String(t.message).toLowerCase().includes(needle))
  );
}

export class TaskList {
  /**
   * @param {(params: URLSearchParams) => Promise<{tasks: object[], total: number}>} fetchPage
   * @param {() => void} onChange  asks for a redraw (batched per frame by the caller)
   * @param {number} pageSize
   * @param {number} maxTasks  tasks kept in memory (those on the page always are)
   */
  constructor({ fetchPage, onChange, pageSize, maxTasks }) {
    this.fetchPage = fetchPage;
    this.onChange = onChange;
    this.maxTasks = maxTasks;
    this.tasks = new Map(); // id -> newest known version
    this.order = new Map(); // id -> arrival number: submission order among equal timestamps
    this.arrivals = 0;
    this.pinned = new Set(); // ids never evicted (the selected task)
    // the query
    this.statuses = new Set();
    this.q = "";
    this.offset = 0;
    this.limit = pageSize;
    // the page
    this.ids = [];
    this.idSet = new Set();
    this.total = null; // null: not known yet (loading)
    this.error = "";
    // fetching
    this.generation = 0; // bumped by every change of the query: older answers are dropped
    this.fresh = true; // the next answer defines the rows (a new query or page)
    this.realigned = 0; // answers in a row that only moved the offset (applyPage)
    this.inflight = false;
    this.again = false;
    this.dirty = false;
    this.timer = null;
    this.touched = new Map(); // id -> event, for events that arrived while a fetch was out
    this.lastFetchAt = 0;
    this.lastFetchMs = 0;
    this.failures = 0;
    this.fetches = 0; // for the tests: requests sent
  }

  // ------------------------------------------------------------ the query

  get needle() {
    return this.q.trim().toLowerCase();
  }

  matches(t) {
    return matchesQuery(t, this.statuses, this.needle);
  }

  get filtered() {
    return this.statuses.size > 0 || this.needle !== "";
  }

  /** Change the filter and/or search; back to the first page. */
  setQuery({ statuses = this.statuses, q = this.q }) {
    this.statuses = new Set(statuses);
    this.q = q;
    this.offset = 0;
    this.ids = this.ids.filter((id) => this.tasks.has(id) && this.matches(this.tasks.get(id)));
    this.idSet = new Set(this.ids);
    this.total = null;
    this.refetch();
  }

  setLimit(limit) {
    this.limit = limit;
    this.offset = Math.floor(this.offset / limit) * limit;
    this.refetch();
  }

  newest() {
    this.goTo(0);
  }

  newer() {
    this.goTo(Math.max(0, this.offset - this.limit));
  }

  older() {
    if (this.hasOlder) this.goTo(this.offset + this.limit);
  }

  get hasOlder() {
    return this.total != null && this.offset + this.ids.length < this.total;
  }

  goTo(offset) {
    if (offset === this.offset && this.total != null) return;
    this.offset = offset;
    this.refetch();
  }

  /** Fetch the page now: an answer to an older query is dropped. `keepRows`: the same
   * page, so its answer is aligned with the rows on screen (see applyPage). */
  refetch(keepRows = false) {
    if (!keepRows) this.fresh = true;
    this.generation += 1;
    clearTimeout(this.timer);
    this.timer = null;
    this.onChange();
    this.fetch();
  }

  // ------------------------------------------------------------ what the page holds

  rows() {
    const out = [];
    for (const id of this.ids) {
      const t = this.tasks.get(id);
      if (t) out.push(t);
    }
    return out;
  }

  /** Newest first, as the server lists them: by creation, then by arrival here. */
  newerThan(a, b) {
    const ca = a.created_at || "";
    const cb = b.created_at || "";
    if (ca !== cb) return ca > cb; // RFC 3339 UTC with milliseconds sorts as text
    return (this.order.get(a.id) || 0) > (this.order.get(b.id) || 0);
  }

  /** Keep the newer of what we know and `task`; returns [before, now]. */
  remember(task) {
    const before = this.tasks.get(task.id);
    const now = fresher(before, task);
    if (now === task && before && before.logs && before.logs.length && !(task.logs && task.logs.length)) {
      task.logs = before.logs; // events carry no log lines; the detail fetched them
    }
    if (!this.order.has(task.id)) this.order.set(task.id, ++this.arrivals);
    this.tasks.set(task.id, now);
    return [before, now];
  }

  // ------------------------------------------------------------ live updates

  /** A snapshot (on every (re)connect): what we hold may be stale, ask again now. */
  onSnapshot(tasks) {
    for (const t of tasks.slice().reverse()) this.remember(t); // oldest first
    this.evict();
    this.refetch(true);
  }

  /** A WebSocket task event. */
  onEvent(event, task) {
    const [before, now] = this.remember(task);
    if (now !== task) return; // older than what an HTTP answer already told us
    let prev = before;
    if (!prev) {
      const status = previousStatus(event, task);
      prev = status ? { ...task, status } : null;
    }
    this.apply(prev, now);
    if (this.inflight) this.touched.set(task.id, true);
    if (this.tasks.size > this.maxTasks * 1.125) this.evict();
  }

  /** A task this page created (a submission, a retry): counted as new if it matches. */
  onCreated(task) {
    const known = this.tasks.has(task.id);
    const [, now] = this.remember(task);
    if (!known) this.apply(null, now);
  }

  /** A task read over HTTP (the detail, a cancel): same as an event of unknown kind. */
  onFetched(task) {
    const [before, now] = this.remember(task);
    if (now === task) this.apply(before || task, now);
  }

  apply(prev, t) {
    const now = this.matches(t);
    if (this.idSet.has(t.id)) {
      if (!now) {
        this.removeRow(t.id);
        this.count(-1);
        this.markDirty(); // refill the page
      }
      this.onChange();
      return;
    }
    const was = prev ? this.matches(prev) : false;
    if (now && !was) {
      this.count(+1);
      this.place(t);
      this.markDirty();
    } else if (was && !now) {
      this.count(-1);
      if (this.offset > 0 && this.ids.length && this.newerThan(t, this.tasks.get(this.ids[0]))) {
        this.offset -= 1; // a task above this page left: the page moved up by one
      }
      this.markDirty();
    }
  }

  count(delta) {
    if (this.total != null) this.total = Math.max(0, this.total + delta);
  }

  /** A task that starts matching: into the page where the server would list it. */
  place(t) {
    const first = this.ids.length ? this.tasks.get(this.ids[0]) : null;
    if (this.offset > 0 && (!first || this.newerThan(t, first))) {
      this.offset += 1; // it sits above this page, whose rows all moved down by one
      this.onChange();
      return;
    }
    let i = this.ids.length;
    while (i > 0 && this.newerThan(t, this.tasks.get(this.ids[i - 1]))) i -= 1;
    if (i >= this.limit) return; // below this page
    this.ids.splice(i, 0, t.id);
    this.idSet.add(t.id);
    while (this.ids.length > this.limit) this.idSet.delete(this.ids.pop()); // moved to the next page
    this.onChange();
  }

  removeRow(id) {
    const i = this.ids.indexOf(id);
    if (i >= 0) this.ids.splice(i, 1);
    this.idSet.delete(id);
  }

  /** Drop tasks beyond `maxTasks`, oldest final ones first; never the page's or pinned ones. */
  evict() {
    const excess = this.tasks.size - this.maxTasks;
    if (excess <= 0) return;
    const candidates = [];
    for (const t of this.tasks.values()) {
      if (FINAL.has(t.status) && !this.idSet.has(t.id) && !this.pinned.has(t.id)) candidates.push(t);
    }
    candidates.sort((a, b) => (this.newerThan(a, b) ? 1 : -1)); // oldest first
    for (const t of candidates.slice(0, excess)) {
      this.tasks.delete(t.id);
      this.order.delete(t.id);
    }
  }

  // ------------------------------------------------------------ fetching

  markDirty() {
    this.dirty = true;
    if (!this.inflight) this.schedule();
  }

  get interval() {
    const base = Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, 10 * this.lastFetchMs));
    return Math.min(10000, base * 2 ** Math.min(this.failures, 4));
  }

  schedule(delay) {
    if (this.timer) return;
    const wait = delay ?? Math.max(0, this.lastFetchAt + this.interval - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.fetch();
    }, wait);
  }

  async fetch() {
    if (this.inflight) {
      this.again = true;
      return;
    }
    const generation = this.generation;
    const params = new URLSearchParams();
    if (this.statuses.has(SCHEDULED)) params.set("waiting", "time");
    else if (this.statuses.size) params.set("status", [...this.statuses].join(","));
    if (this.needle) params.set("q", this.needle);
    params.set("limit", String(this.limit));
    params.set("offset", String(this.offset));
    const sentOffset = this.offset;
    this.inflight = true;
    this.again = false;
    this.dirty = false;
    this.touched = new Map();
    this.fetches += 1;
    const started = performance.now();
    let data = null;
    try {
      data = await this.fetchPage(params);
      this.failures = 0;
      this.error = "";
    } catch (err) {
      this.failures += 1;
      this.error = err && err.message ? err.message : String(err);
      // try again later; a refused token waits for the token dialog, which reconnects
      this.dirty = !(err && err.status === 401);
    } finally {
      this.inflight = false;
      this.lastFetchMs = performance.now() - started;
      this.lastFetchAt = Date.now();
    }
    if (generation !== this.generation) {
      this.schedule(0); // the query changed while this was out: ask the new one now
    } else {
      if (data) this.applyPage(data, sentOffset);
      if (this.again || this.dirty) this.schedule();
    }
    this.onChange();
  }

  /** The offset that keeps the first row on screen that `answer` (fetched at `sentOffset`)
   * also holds at the same place on screen; null when they share no row. */
  alignedOffset(answer, sentOffset) {
    const at = new Map(answer.map((id, j) => [id, j]));
    for (let i = 0; i < this.ids.length; i++) {
      const j = at.get(this.ids[i]);
      if (j !== undefined) return Math.max(0, sentOffset + j - i);
    }
    return null;
  }

  applyPage(data, sentOffset) {
    const tasks = Array.isArray(data.tasks) ? data.tasks : [];
    for (const t of tasks.slice().reverse()) this.remember(t);
    this.total = Number(data.total) || 0;
    const answer = tasks.map((t) => t.id);
    if (!this.fresh && sentOffset > 0) {
      // A deeper page follows its rows. Events moved the offset as tasks arrived above it,
      // but an event may reach us before or after the answer that already counts it: the
      // answer itself says where the rows on screen are now. Misaligned: keep the rows,
      // move the offset there, and ask again. Once rows have left the page (a busy
      // "running" filter) the answer is taken as it is, to fill the page again.
      const want = this.alignedOffset(answer, sentOffset);
      const full = this.ids.length >= Math.min(this.limit, answer.length);
      if (want != null && want !== sentOffset && full && this.realigned < MAX_REALIGN) {
        this.realigned += 1;
        this.offset = want;
        this.dirty = true;
        this.touched = new Map();
        return;
      }
    }
    this.fresh = false;
    this.realigned = 0;
    this.offset = sentOffset;
    this.ids = answer;
    this.idSet = new Set(this.ids);
    if (this.ids.length === 0 && this.offset > 0 && this.total > 0) {
      // the list shrank under this page: show its last page instead
      this.offset = Math.floor((this.total - 1) / this.limit) * this.limit;
      this.dirty = true;
      this.schedule(0);
      return;
    }
    // Events that arrived while the request was out may or may not be in its answer.
    for (const id of this.touched.keys()) {
      const t = this.tasks.get(id);
      if (!t) continue;
      if (this.idSet.has(id)) {
        if (!this.matches(t)) {
          this.removeRow(id);
          this.count(-1);
        }
      } else if (this.matches(t) && this.offset === 0) {
        const first = this.ids.length ? this.tasks.get(this.ids[0]) : null;
        // newer than the answer's first row: the server had not seen it match yet
        if (!first || this.newerThan(t, first)) {
          this.count(+1);
          this.place(t);
        }
      }
    }
    this.touched = new Map();
    this.evict();
  }
}
