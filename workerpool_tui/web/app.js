/* workerpool monitor: the live page over the HTTP API and the WebSocket (SPEC §8).
 *
 * State lives in a few plain objects; the WebSocket, the HTTP answers and the controls change
 * it and ask for a render, which runs at most once per animation frame. The task list is a
 * page of the server's listing kept live by events (tasklist.js). Everything the server sends
 * is put into the page with textContent, never as HTML.
 */
import { BulkMarks, bulkSummary } from "./bulk.js";
import { drawChart } from "./charts.js";
import { setupFamily } from "./family.js";
import { setupSubmitForm } from "./form.js";
import { setupPanels } from "./panels.js";
import { setupSchedules } from "./schedules.js";
import { FINAL, SCHEDULED, TaskList } from "./tasklist.js";

const API = "/api/v1";
const TOKEN_KEY = "workerpool.token";
const THEME_KEY = "workerpool.theme";
const PARAMS = new URLSearchParams(location.search);
// tasks kept in memory (those on the list's page always are); `/?keep=N` changes it (100-50000)
const MAX_TASKS = clampInt(PARAMS.get("keep"), 100, 50000, 2000);
const PAGE_SIZES = [25, 50, 100, 200, 500];
const ROW_H = 33; // px; rows have a fixed height so the table can be virtual
const OVERSCAN = 12; // rows drawn above and below the visible ones
const MAX_LOG = 200; // event log lines
const SAMPLES = 120; // chart samples (one per stats message, about 1/s)
const BACKOFF = { first: 500, max: 10000 };
const NARROW = matchMedia("(max-width: 999px)"); // one column: the side panel is below the list
const NUM = new Intl.NumberFormat("en-US");

const $ = (id) => document.getElementById(id);

function clampInt(text, lo, hi, fallback) {
  const n = Number.parseInt(text || "", 10);
  return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : fallback;
}

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  selected: null,
  tab: "submit",
  stats: null,
  queueSamples: [],
  workerSamples: [],
  showProgress: false,
  ws: null,
  attempt: 0,
  reconnectTimer: null,
  countdownTimer: null,
  renderQueued: false,
  renders: 0, // for the tests: table renders
  lastStatsAt: 0,
  forceCharts: false,
};

// ---------------------------------------------------------------- HTTP

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError(0, "unreachable", "the server cannot be reached");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (err) {
    data = null;
  }
  if (!response.ok) {
    const e = (data && data.error) || {};
    if (response.status === 401) askToken("The token was refused.");
    throw new ApiError(response.status, e.code || "http_error", e.message || response.statusText);
  }
  return data;
}

const bulk = new BulkMarks({
  api,
  list: null,
  log: (kind, subject, detail) => logLine(kind, subject, detail),
  onChange: () => {
    for (const tr of rows.values()) tr._task = null; // redraw the checkboxes
    requestRender();
  },
});

const list = new TaskList({
  fetchPage: (params) => api("GET", `${API}/tasks?${params}`),
  onChange: () => requestRender(),
  pageSize: PAGE_SIZES.includes(Number(PARAMS.get("rows"))) ? Number(PARAMS.get("rows")) : 50,
  maxTasks: MAX_TASKS,
});

// ---------------------------------------------------------------- auth

let tokenWaiters = [];

function askToken(reason) {
  const dialog = $("token-dialog");
  $("token-error").textContent = state.token ? reason || "" : "";
  if (!dialog.open) {
    dialog.showModal();
    $("token-input").focus();
  }
  return new Promise((resolve) => tokenWaiters.push(resolve));
}

$("token-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const value = $("token-input").value.trim();
  if (!value) return;
  state.token = value;
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token-dialog").close();
  const waiters = tokenWaiters;
  tokenWaiters = [];
  waiters.forEach((resolve) => resolve(value));
  form.loadTypes();
  reconnectNow();
});
$("token-dialog").addEventListener("cancel", (ev) => ev.preventDefault());

// ---------------------------------------------------------------- WebSocket

function wsUrl() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const query = state.token ? "?token=" + encodeURIComponent(state.token) : "";
  return proto + "//" + location.host + API + "/ws/tasks" + query;
}

function setConn(kind, text) {
  const el = $("conn");
  el.className = "conn conn-" + kind;
  $("conn-text").textContent = text;
  el.dataset.state = kind;
}

function connect() {
  clearTimeout(state.reconnectTimer);
  clearInterval(state.countdownTimer);
  setConn("connecting", state.attempt ? "reconnecting…" : "connecting…");
  let ws;
  try {
    ws = new WebSocket(wsUrl());
  } catch (err) {
    scheduleReconnect();
    return;
  }
  state.ws = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    const again = state.attempt > 0;
    state.attempt = 0;
    setConn("open", "live");
    logLine("info", "connected", location.host);
    if (again) form.loadTypes(); // a restarted server may know other task types
  };
  ws.onmessage = (ev) => {
    let msg;
    try {
      msg = JSON.parse(ev.data);
    } catch (err) {
      return;
    }
    onMessage(msg);
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (opened) logLine("warn", "disconnected", "the stream closed; reconnecting");
    scheduleReconnect(!opened);
  };
  ws.onerror = () => {
    /* onclose follows and decides */
  };
}

async function scheduleReconnect(neverOpened) {
  state.attempt += 1;
  if (neverOpened) {
    // A refused upgrade looks like any network error to a browser: ask the API why.
    try {
      await api("GET", API + "/tasks/status/stats");
    } catch (err) {
      if (err.status === 401) {
        setConn("closed", "token needed");
        return; // the token dialog reconnects
      }
    }
  }
  const base = Math.min(BACKOFF.max, BACKOFF.first * 2 ** Math.min(state.attempt - 1, 8));
  const delay = Math.round(base * (0.8 + Math.random() * 0.4));
  const due = Date.now() + delay;
  const tick = () => {
    const left = Math.max(0, Math.ceil((due - Date.now()) / 1000));
    setConn("closed", `offline · retry in ${left}s`);
  };
  tick();
  clearInterval(state.countdownTimer);
  state.countdownTimer = setInterval(tick, 1000);
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = setTimeout(connect, delay);
}

function reconnectNow() {
  if (state.ws) {
    const ws = state.ws;
    state.ws = null;
    ws.close();
  }
  state.attempt = 0;
  connect();
}

function onMessage(msg) {
  switch (msg.type) {
    case "snapshot":
      list.onSnapshot(msg.tasks || []);
      if (msg.stats) onStats(msg.stats);
      logLine("info", "snapshot", `${(msg.tasks || []).length} tasks`);
      break;
    case "task":
      onTask(msg.event, msg.task);
      break;
    case "stats":
      onStats(msg.stats);
      break;
    case "pool":
      logLine(
        "info",
        "pool",
        `${msg.action}: ${msg.current} workers (min ${msg.min_workers}, max ${msg.max_workers})` +
          (msg.paused ? ", paused" : "") +
          (msg.reason ? ` — ${msg.reason}` : ""),
      );
      break;
    case "resync":
      logLine("warn", "resync", "fell behind; a fresh snapshot follows");
      break;
    case "bulk": // many tasks changed at once: a snapshot follows; read the page again
      logLine("info", "bulk", bulkSummary(msg));
      list.refetch();
      break;
    default:
      return;
  }
  requestRender();
}

function onTask(event, task) {
  if (!task || !task.id) return;
  list.onEvent(event, task);
  if (task.id === state.selected) refreshSelected(FINAL.has(task.status));
  else if (event !== "progress" && family.shows(task.id)) refreshSelected(false); // a relative moved on
  if (event !== "progress" || state.showProgress) {
    let detail = task.type;
    if (event === "progress") detail += `  ${Math.round(task.progress)}%`;
    if ((event === "failed" || event === "retrying") && task.error) {
      detail += `  ${task.error.type}: ${task.error.message}`;
    }
    logLine(event, task.id, detail);
  }
}

function onStats(stats) {
  if (!stats) return;
  state.stats = stats;
  const now = Date.now();
  // one sample per stats message; a snapshot right after a stats message would double up
  if (now - state.lastStatsAt > 400) {
    state.lastStatsAt = now;
    push(state.queueSamples, stats.queue ? stats.queue.depth : 0);
    push(state.workerSamples, stats.workers ? [stats.workers.current, stats.workers.busy] : [0, 0]);
  }
}

function push(samples, value) {
  samples.push(value);
  if (samples.length > SAMPLES) samples.shift();
}

// ---------------------------------------------------------------- rendering

function requestRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => {
    state.renderQueued = false;
    render();
  });
}

let drawnStats = null;
let drawnDetail = null;

function render() {
  if (drawnStats !== state.stats || state.forceCharts) {
    // stats arrive about once a second: the cards and charts change only then
    drawnStats = state.stats;
    state.forceCharts = false;
    renderStats();
    drawCharts();
  }
  renderTable();
  const shown = state.selected ? list.tasks.get(state.selected) : null;
  if (shown !== drawnDetail || (shown && shown.status === "running")) {
    drawnDetail = shown;
    renderDetail();
  }
  flushLog();
}

function redrawAll() {
  state.forceCharts = true;
  drawnDetail = undefined;
  requestRender();
}

function fmtSeconds(s) {
  if (s == null || isNaN(s)) return "–";
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** Local HH:MM:SS (toLocaleTimeString builds a formatter per call: far too slow here). */
function hms(d) {
  const two = (n) => (n < 10 ? "0" : "") + n;
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function fmtClock(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  return isNaN(d) ? "–" : hms(d);
}

function runSeconds(t) {
  if (!t.started_at) return null;
  const end = t.finished_at ? new Date(t.finished_at) : new Date();
  return Math.max(0, (end - new Date(t.started_at)) / 1000);
}

/** The line the list shows: the latest progress note, or a final failure's summary. */
function messageOf(t) {
  if (t.message) return t.message;
  if (t.status === "failed" && t.error) return `${t.error.type}: ${t.error.message}`;
  return "";
}

function renderStats() {
  const s = state.stats;
  if (!s) return;
  const w = s.workers || {};
  $("stat-workers").textContent = `${w.busy ?? 0} / ${w.current ?? 0}`;
  const toggle = $("pool-toggle");
  if (!toggle.dataset.busy) {
    toggle.disabled = false;
    toggle.textContent = w.paused ? "Resume" : "Pause";
    toggle.dataset.paused = w.paused ? "true" : "false";
  }
  $("stat-workers-sub").textContent =
    `busy / current · min ${w.min} · max ${w.max}` + (w.paused ? " · paused" : "");
  const q = s.queue || {};
  $("stat-queue").textContent = NUM.format(q.depth ?? 0);
  $("stat-queue-sub").textContent = `of ${NUM.format(q.capacity ?? 0)} capacity`;
  const tp = s.throughput || {};
  $("stat-throughput").textContent = `${Number(tp.completed_per_s || 0).toFixed(2)}/s`;
  $("stat-throughput-sub").textContent = `${tp.completed_last_s ?? 0} in the last second`;
  const counts = s.tasks || {};
  for (const el of document.querySelectorAll("[data-count]")) {
    el.textContent = NUM.format(counts[el.dataset.count] ?? 0);
  }
  const lat = s.latency || {};
  const wait = lat.queue_wait_s || {};
  const run = lat.run_s || {};
  // Pending counts only runnable tasks: those waiting for a time or for their parents
  // are said apart, or "4 tracked" would not add up.
  const waiting = [];
  if (counts.scheduled) waiting.push(`${NUM.format(counts.scheduled)} scheduled`);
  if (counts.blocked) waiting.push(`${NUM.format(counts.blocked)} waiting for parents`);
  $("stat-latency").textContent =
    `${NUM.format(counts.total ?? 0)} tracked` +
    (waiting.length ? ` (${waiting.join(", ")})` : "") +
    ` · wait p95 ${fmtSeconds(wait.p95)} · ` +
    `run p50 ${fmtSeconds(run.p50)}, p95 ${fmtSeconds(run.p95)}`;
  $("uptime").textContent = s.uptime_s != null ? `up ${fmtSeconds(s.uptime_s)}` : "";
}

const COLUMNS = ["sel", "id", "type", "status", "progress", "message", "priority", "created", "duration", "worker"];
const NUMERIC = new Set(["priority", "duration", "worker"]);
const rows = new Map(); // task id -> <tr>
let clusterShown = false;

function makeRow(id) {
  const tr = document.createElement("tr");
  tr.dataset.id = id;
  const cells = {};
  for (const name of COLUMNS) {
    const td = document.createElement("td");
    td.className = "c-" + name;
    if (NUMERIC.has(name)) td.classList.add("num");
    tr.appendChild(td);
    cells[name] = td;
  }
  cells.id.textContent = id;
  const mark = document.createElement("input");
  mark.type = "checkbox";
  mark.className = "mark";
  mark.setAttribute("aria-label", "mark " + id);
  mark.addEventListener("click", (ev) => ev.stopPropagation());
  mark.addEventListener("keydown", (ev) => ev.stopPropagation());
  mark.addEventListener("change", () => bulk.toggle(id, mark.checked));
  cells.sel.appendChild(mark);
  const badge = document.createElement("span");
  badge.className = "badge";
  cells.status.appendChild(badge);
  const bar = document.createElement("span");
  bar.className = "progress";
  const fill = document.createElement("span");
  fill.className = "progress-fill";
  fill.style.display = "block";
  bar.appendChild(fill);
  const pct = document.createElement("span");
  pct.className = "pct";
  cells.progress.append(bar, pct);
  tr._cells = cells;
  tr._parts = { badge, fill, pct, mark };
  tr.tabIndex = 0;
  tr.addEventListener("click", () => select(id));
  tr.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" || ev.key === " ") {
      ev.preventDefault();
      select(id);
    }
  });
  return tr;
}

/** Write a cell only when its text changed: untouched cells cost no layout. */
function put(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** "runs in 4m 10s" for a pending task due later (docs/scheduling.md), else null. */
function dueText(t) {
  if (t.status !== "pending" || !t.run_at) return null;
  const s = (new Date(t.run_at) - Date.now()) / 1000;
  return s > 0 ? "runs in " + fmtSeconds(s) : null;
}

function updateRow(tr, t) {
  const selected = t.id === state.selected;
  const run = runSeconds(t);
  const duration = dueText(t) ?? (run == null ? "–" : fmtSeconds(run));
  if (tr._task === t && tr._selected === selected && tr._duration === duration) return;
  tr._task = t;
  tr._selected = selected;
  tr._duration = duration;
  const c = tr._cells;
  const p = tr._parts;
  put(c.type, t.type);
  if (tr.dataset.status !== t.status) {
    p.badge.textContent = t.status;
    p.badge.className = "badge st-" + t.status;
    p.fill.className = "progress-fill st-" + t.status;
    tr.dataset.status = t.status;
  }
  const pct = Math.max(0, Math.min(100, Number(t.progress) || 0));
  const width = pct + "%";
  if (p.fill.style.width !== width) p.fill.style.width = width;
  put(p.pct, Math.round(pct) + "%");
  const message = messageOf(t);
  put(c.message, message);
  if (c.message.title !== message) c.message.title = message;
  put(c.priority, String(t.priority));
  put(c.created, fmtClock(t.created_at));
  put(c.duration, duration);
  if (c.duration.title !== duration) c.duration.title = duration; // "runs in 4m 10s" whole
  const worker = t.worker == null ? "–" : String(t.worker);
  put(c.worker, t.instance ? `${t.instance}/${worker}` : worker);
  if (t.instance && !clusterShown) {
    clusterShown = true; // a cluster: the worker column makes room for the instance
    $("tasks-table").classList.add("cluster");
  }
  if (t.instance && c.worker.title !== c.worker.textContent) c.worker.title = c.worker.textContent;
  tr.classList.toggle("selected", selected);
  const marked = bulk.marked.has(t.id);
  if (p.mark.checked !== marked) p.mark.checked = marked;
}

/** A virtual table: only the rows in (or near) view exist; spacers stand for the rest. */
function renderTable() {
  state.renders += 1;
  const shownList = list.rows();
  const body = $("tasks-body");
  // geometry comes from the scroll and resize observers: reading it here would force a layout
  const view = Math.max(geometry.height, 400);
  const first = Math.max(0, Math.floor(geometry.scrollTop / ROW_H) - OVERSCAN);
  const last = Math.min(shownList.length, first + Math.ceil(view / ROW_H) + 2 * OVERSCAN);
  const top = spacer("top");
  const bottom = spacer("bottom");
  top.style.height = first * ROW_H + "px";
  bottom.style.height = (shownList.length - last) * ROW_H + "px";
  if (body.firstChild !== top) body.prepend(top);
  const keep = new Set();
  let prev = top;
  for (let i = first; i < last; i++) {
    const t = shownList[i];
    keep.add(t.id);
    let tr = rows.get(t.id);
    if (!tr) {
      tr = makeRow(t.id);
      rows.set(t.id, tr);
    }
    updateRow(tr, t);
    if (prev.nextSibling !== tr) body.insertBefore(tr, prev.nextSibling);
    prev = tr;
  }
  if (prev.nextSibling !== bottom) body.insertBefore(bottom, prev.nextSibling);
  for (const [id, tr] of rows) {
    if (!keep.has(id)) {
      tr.remove();
      rows.delete(id);
    }
  }
  renderFoot(shownList.length);
  renderBulkBar();
}

function renderBulkBar() {
  put($("bulk-scope"), bulk.scope());
}

function renderFoot(shown) {
  const empty = $("tasks-empty");
  empty.hidden = shown > 0 || list.total == null;
  put(empty, list.filtered ? "No task matches." : "No tasks yet. Submit one in the Submit tab.");
  const foot = $("tasks-foot");
  let text;
  if (list.total == null) text = list.error ? `Cannot list tasks: ${list.error}` : "loading…";
  else if (list.total === 0) text = list.filtered ? "no matching tasks" : "no tasks";
  else if (list.fresh && !list.error) {
    // A new page or query is on its way: the rows on screen are still the previous
    // ones, so the footer must not name the new range yet.
    text = `loading rows from ${NUM.format(list.offset + 1)} of ${NUM.format(list.total)}…`;
  } else if (shown === 0) text = `0 rows of ${NUM.format(list.total)}`;
  else text = `rows ${NUM.format(list.offset + 1)}–${NUM.format(list.offset + shown)} of ${NUM.format(list.total)}`;
  if (list.total != null && list.error) text += ` · not updated: ${list.error}`;
  put(foot, text);
  foot.classList.toggle("error", !!list.error);
  $("page-newest").disabled = list.offset === 0;
  $("page-newer").disabled = list.offset === 0;
  $("page-older").disabled = !list.hasOlder;
}

const geometry = { height: 0, scrollTop: 0 };

function measureTable() {
  const wrap = $("tasks-wrap");
  geometry.height = wrap.clientHeight;
  geometry.scrollTop = wrap.scrollTop;
}

const spacers = {};

function spacer(name) {
  if (!spacers[name]) {
    const tr = document.createElement("tr");
    tr.className = "spacer";
    tr.setAttribute("aria-hidden", "true");
    const td = document.createElement("td");
    td.colSpan = COLUMNS.length;
    tr.appendChild(td);
    spacers[name] = tr;
  }
  return spacers[name];
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

function renderDetail() {
  const t = state.selected ? list.tasks.get(state.selected) : null;
  $("detail-empty").hidden = !!t;
  $("detail-body").hidden = !t;
  $("d-cancel").disabled = !t || FINAL.has(t.status);
  $("d-retry").hidden = !t || !FINAL.has(t.status);
  $("d-title").textContent = t ? t.id : "";
  if (!t) return;
  const fields = [
    ["id", t.id, true],
    ["type", t.type],
    ["status", t.status],
    ["progress", `${Math.round(t.progress)}%`],
    ["message", messageOf(t) || "–"],
    ["priority", String(t.priority)],
    ["attempts", `${t.attempts} (max retries ${t.max_retries})`],
    ["timeout", fmtSeconds(t.timeout_s)],
    ["created", t.created_at || "–"],
    ["started", t.started_at || "–"],
    ["finished", t.finished_at || "–"],
    ["duration", fmtSeconds(runSeconds(t))],
    ["worker", t.worker == null ? "–" : String(t.worker)],
    ["instance", t.instance || "–"],
  ];
  if (t.retry_of) fields.push(["retry of", t.retry_of, true]);
  const dl = $("d-fields");
  dl.replaceChildren();
  for (const [k, v, mono] of fields) {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = v;
    if (mono) dd.className = "mono";
    if (k === "status") dd.className = "st-" + t.status;
    dl.append(dt, dd);
  }
  dl.dataset.status = t.status;
  const fill = $("d-progress");
  fill.style.width = Math.max(0, Math.min(100, t.progress)) + "%";
  fill.className = "progress-fill st-" + t.status;
  setText("d-payload", pretty(t.payload));
  $("d-result-wrap").hidden = t.status !== "completed";
  if (t.status === "completed") setText("d-result", pretty(t.result));
  $("d-error-wrap").hidden = !t.error;
  if (t.error) {
    setText("d-error", `${t.error.type}: ${t.error.message}` + (t.error.traceback ? "\n\n" + t.error.traceback : ""));
  }
  family.render(t.id);
  const logs = t.logs || [];
  $("d-logs-wrap").hidden = logs.length === 0;
  if (logs.length) setText("d-logs", logs.join("\n"));
}

function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}

function drawCharts() {
  const css = getComputedStyle(document.documentElement);
  const v = (name) => css.getPropertyValue(name).trim();
  const theme = { muted: v("--muted"), border: v("--border"), font: v("--mono") };
  const s = state.stats;
  const history =
    s && s.throughput && Array.isArray(s.throughput.history) ? s.throughput.history.slice(0, -1) : [];
  drawChart($("chart-throughput"), [{ values: history, color: v("--chart-1"), fill: true }], 60, theme);
  drawChart($("chart-queue"), [{ values: state.queueSamples, color: v("--pending"), fill: true }], SAMPLES, theme);
  drawChart(
    $("chart-workers"),
    [
      { values: state.workerSamples.map((p) => p[0]), color: v("--chart-1"), fill: false },
      { values: state.workerSamples.map((p) => p[1]), color: v("--chart-2"), fill: true },
    ],
    SAMPLES,
    theme,
  );
}

// ---------------------------------------------------------------- the selected task

let lastRefresh = 0;
let refreshTimer = null;

/** Events carry no log lines: fetch the selected task again, at most once a second. */
function refreshSelected(now) {
  const id = state.selected;
  const wait = now ? 0 : Math.max(0, lastRefresh + 1000 - Date.now());
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    if (state.selected === id) fetchSelected(id);
  }, wait);
}

function showTab(name) {
  state.tab = name;
  for (const tab of document.querySelectorAll("#side-tabs .tab")) {
    const on = tab.dataset.tab === name;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    $(tab.getAttribute("aria-controls")).hidden = !on;
  }
  panels.shown(name);
  schedules.shown(name);
}

async function select(id) {
  list.pinned.delete(state.selected);
  state.selected = id;
  list.pinned.add(id);
  $("d-action-result").textContent = "";
  showTab("task");
  if (NARROW.matches) $("detail").scrollIntoView({ block: "nearest" });
  requestRender();
  await fetchSelected(id);
}

async function fetchSelected(id) {
  lastRefresh = Date.now();
  try {
    const task = await api("GET", `${API}/tasks/${encodeURIComponent(id)}`);
    list.onFetched(task);
    requestRender();
    await family.load(task);
    if (state.selected === id) family.render(id);
  } catch (err) {
    if (err.status === 404) $("d-action-result").textContent = "The server no longer tracks this task.";
  }
}

$("d-cancel").addEventListener("click", async () => {
  const id = state.selected;
  if (!id) return;
  $("d-cancel").disabled = true;
  $("d-action-result").textContent = "Cancelling…";
  try {
    list.onFetched(await api("DELETE", `${API}/tasks/${encodeURIComponent(id)}`));
    $("d-action-result").textContent = "Cancelled.";
  } catch (err) {
    $("d-action-result").textContent = `Not cancelled: ${err.message}`;
  }
  redrawAll();
});

$("d-retry").addEventListener("click", async () => {
  const id = state.selected;
  if (!id) return;
  const button = $("d-retry");
  button.disabled = true;
  try {
    const t = await api("POST", `${API}/tasks/${encodeURIComponent(id)}/retry`);
    list.onCreated(t);
    await select(t.id);
    $("d-action-result").textContent = `Retry of ${id}.`;
  } catch (err) {
    $("d-action-result").textContent = `Not retried: ${err.message}`;
  } finally {
    button.disabled = false;
  }
});

$("d-close").addEventListener("click", () => {
  list.pinned.delete(state.selected);
  state.selected = null;
  showTab("submit");
  requestRender();
});

$("side-tabs").addEventListener("click", (ev) => {
  const tab = ev.target.closest(".tab");
  if (tab) showTab(tab.dataset.tab);
});
$("side-tabs").addEventListener("keydown", (ev) => {
  if (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight") return;
  const tabs = [...document.querySelectorAll("#side-tabs .tab")];
  const at = tabs.findIndex((t) => t.dataset.tab === state.tab);
  const next = tabs[(at + (ev.key === "ArrowRight" ? 1 : tabs.length - 1)) % tabs.length];
  showTab(next.dataset.tab);
  next.focus();
});

$("pool-toggle").addEventListener("click", async () => {
  const button = $("pool-toggle");
  const paused = button.dataset.paused === "true";
  button.disabled = true;
  button.dataset.busy = "1";
  try {
    const pool = await api("PATCH", `${API}/pool`, { paused: !paused });
    if (state.stats && state.stats.workers && pool && "paused" in pool) state.stats.workers.paused = pool.paused;
    logLine("info", "pool", pool && pool.paused ? "paused from this page" : "resumed from this page");
  } catch (err) {
    logLine("warn", "pool", `not changed: ${err.message}`);
  } finally {
    delete button.dataset.busy;
    redrawAll();
  }
});

// ---------------------------------------------------------------- event log

const pendingLog = [];

/** Queue one line for the event log; lines reach the DOM in batches, once per frame. */
function logLine(kind, subject, detail) {
  pendingLog.push([new Date(), kind, subject, detail]);
  if (pendingLog.length > MAX_LOG) pendingLog.splice(0, pendingLog.length - MAX_LOG);
  requestRender();
}

function flushLog() {
  if (pendingLog.length === 0) return;
  const fragment = document.createDocumentFragment();
  for (let i = pendingLog.length - 1; i >= 0; i--) fragment.appendChild(logItem(...pendingLog[i]));
  const log = $("eventlog");
  if (pendingLog.length >= MAX_LOG) log.replaceChildren(fragment);
  else {
    log.prepend(fragment);
    while (log.childElementCount > MAX_LOG) log.lastElementChild.remove();
  }
  pendingLog.length = 0;
}

const EVENT_STATUS = { created: "pending", started: "running", progress: "running", retrying: "pending" };

function logItem(at, kind, subject, detail) {
  const li = document.createElement("li");
  const t = document.createElement("span");
  t.className = "t";
  t.textContent = hms(at);
  const ev = document.createElement("span");
  ev.className = "ev";
  if (["created", "started", "progress", "completed", "failed", "cancelled", "retrying"].includes(kind)) {
    ev.classList.add("st-" + (EVENT_STATUS[kind] || kind));
    ev.textContent = kind;
  } else {
    ev.classList.add(kind === "warn" ? "ev-warn" : "ev-info");
    ev.textContent = subject;
    subject = "";
  }
  const rest = document.createElement("span");
  rest.textContent = [subject, detail].filter(Boolean).join("  ");
  li.append(t, ev, rest);
  li.dataset.kind = kind;
  return li;
}

$("log-progress").addEventListener("change", (ev) => {
  state.showProgress = ev.target.checked;
});
$("log-clear").addEventListener("click", () => $("eventlog").replaceChildren());

// ---------------------------------------------------------------- filter, search, pages

function setStatuses(statuses) {
  for (const c of document.querySelectorAll("#status-filter .chip")) {
    const on = c.dataset.status === "" ? statuses.size === 0 : statuses.has(c.dataset.status);
    c.classList.toggle("active", on);
    c.setAttribute("aria-pressed", on ? "true" : "false");
  }
  $("tasks-wrap").scrollTop = 0;
  list.setQuery({ statuses });
}

$("status-filter").addEventListener("click", (ev) => {
  const chip = ev.target.closest(".chip");
  if (!chip) return;
  const status = chip.dataset.status;
  let next;
  if (!status) next = new Set();
  else if (status !== SCHEDULED && (ev.ctrlKey || ev.metaKey || ev.shiftKey)) {
    next = new Set(list.statuses); // several statuses at once (scheduled goes alone)
    next.delete(SCHEDULED);
    if (next.has(status)) next.delete(status);
    else next.add(status);
  } else next = new Set([status]);
  setStatuses(next);
});
$("stat-counts").addEventListener("click", (ev) => {
  const count = ev.target.closest(".count");
  if (count) setStatuses(new Set([count.dataset.status]));
});

let searchTimer = null;

function applySearch() {
  clearTimeout(searchTimer);
  const q = $("search").value;
  if (q.trim().toLowerCase() === list.needle) return;
  $("tasks-wrap").scrollTop = 0;
  list.setQuery({ q });
}

$("search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(applySearch, 250); // one request when the typing stops
});
$("search").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter") applySearch();
  if (ev.key === "Escape" && $("search").value) {
    $("search").value = "";
    applySearch();
  }
});

function turnPage(move) {
  move();
  $("tasks-wrap").scrollTop = 0;
}

bulk.list = list;
$("bulk-go").addEventListener("click", async () => {
  try {
    const result = await bulk.run($("bulk-action").value);
    if (result) logLine("info", "bulk", bulkSummary({ action: $("bulk-action").value, ...result }));
  } catch (err) {
    logLine("error", "bulk", err.message || String(err));
  }
});
$("mark-shown").addEventListener("change", (ev) => {
  for (const t of list.rows()) bulk.marked[ev.target.checked ? "add" : "delete"](t.id);
  bulk.onChange();
});

$("page-newest").addEventListener("click", () => turnPage(() => list.newest()));
$("page-newer").addEventListener("click", () => turnPage(() => list.newer()));
$("page-older").addEventListener("click", () => turnPage(() => list.older()));
$("page-size").value = String(list.limit);
$("page-size").addEventListener("change", (ev) => list.setLimit(Number(ev.target.value)));

// ---------------------------------------------------------------- theme, size, start

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}
applyTheme(localStorage.getItem(THEME_KEY));
$("theme-toggle").addEventListener("click", () => {
  const dark = document.documentElement.dataset.theme
    ? document.documentElement.dataset.theme === "dark"
    : matchMedia("(prefers-color-scheme: dark)").matches;
  const next = dark ? "light" : "dark";
  localStorage.setItem(THEME_KEY, next);
  applyTheme(next);
  redrawAll();
});
new ResizeObserver(() => {
  measureTable();
  redrawAll();
}).observe($("tasks-wrap"));
window.addEventListener("resize", redrawAll); // the charts follow their cards
$("tasks-wrap").addEventListener(
  "scroll",
  () => {
    measureTable();
    requestRender();
  },
  { passive: true },
);
// durations of running tasks tick even when no event arrives
setInterval(() => {
  if (list.ids.length) requestRender();
}, 1000);

const panels = setupPanels({ api, openTask: (id) => select(id) });
const schedules = setupSchedules({ api });
const family = setupFamily({ api, apiBase: API, $, select });

const form = setupSubmitForm({
  api,
  onSubmitted: (created) => {
    for (const t of created) list.onCreated(t);
    select(created[0].id);
  },
});

window.workerpool = { state, list, maxTasks: MAX_TASKS, panels, schedules }; // for the browser tests and curious people
showTab("submit");
measureTable();
form.loadTypes();
connect();
list.refetch();
