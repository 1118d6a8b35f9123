/* workerpool monitor: the live page over the HTTP API and the WebSocket (SPEC §8).
 *
 * State lives in a few plain objects; the WebSocket and the forms change it and ask for a
 * render, which runs at most once per animation frame. Everything the server sends is put
 * into the page with textContent, never as HTML.
 */
"use strict";

(() => {
  const API = "/api/v1";
  const TOKEN_KEY = "workerpool.token";
  const THEME_KEY = "workerpool.theme";
  const FINAL = new Set(["completed", "failed", "cancelled"]);
  // tasks kept in the page, oldest final ones dropped first; `/?keep=N` changes it (100-50000)
  const MAX_TASKS = clampInt(new URLSearchParams(location.search).get("keep"), 100, 50000, 2000);
  const EVICT_SLACK = Math.ceil(MAX_TASKS / 8); // evict in batches, not on every event past the limit
  const ROW_H = 33;                // px; rows have a fixed height so the table can be virtual
  const OVERSCAN = 12;             // rows drawn above and below the visible ones
  const MAX_LOG = 200;             // event log lines
  const SAMPLES = 120;             // chart samples (one per stats message, about 1/s)
  const BACKOFF = { first: 500, max: 10000 };
  const DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/;

  const $ = (id) => document.getElementById(id);

  function clampInt(text, lo, hi, fallback) {
    const n = Number.parseInt(text || "", 10);
    return Number.isFinite(n) ? Math.min(hi, Math.max(lo, n)) : fallback;
  }

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || "",
    tasks: new Map(),
    order: new Map(), // task id -> arrival number: submission order among equal timestamps
    arrivals: 0,
    selected: null,
    filter: "",
    search: "",
    stats: null,
    types: [],
    queueSamples: [],
    workerSamples: [],
    showProgress: false,
    ws: null,
    attempt: 0,
    reconnectTimer: null,
    countdownTimer: null,
    renderQueued: false,
    lastStatsAt: 0,
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
    try { data = await response.json(); } catch (err) { data = null; }
    if (!response.ok) {
      const e = (data && data.error) || {};
      if (response.status === 401) askToken("The token was refused.");
      throw new ApiError(response.status, e.code || "http_error", e.message || response.statusText);
    }
    return data;
  }

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
    loadTypes();
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
      if (again) loadTypes(); // a restarted server may know other task types
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch (err) { return; }
      onMessage(msg);
    };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ws = null;
      if (opened) logLine("warn", "disconnected", "the stream closed; reconnecting");
      scheduleReconnect(!opened);
    };
    ws.onerror = () => { /* onclose follows and decides */ };
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
        state.tasks = new Map();
        state.order = new Map();
        for (const t of (msg.tasks || []).slice().reverse()) remember(t); // oldest first
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
            (msg.paused ? ", paused" : "") + (msg.reason ? ` — ${msg.reason}` : ""),
        );
        break;
      case "resync":
        logLine("warn", "resync", "fell behind; a fresh snapshot follows");
        break;
      default:
        return;
    }
    requestRender();
  }

  function onTask(event, task) {
    if (!task || !task.id) return;
    const known = state.tasks.get(task.id);
    if (known && (!task.logs || task.logs.length === 0) && known.logs && known.logs.length) {
      task.logs = known.logs; // events may omit log lines the detail view already fetched
    }
    remember(task);
    if (state.tasks.size > MAX_TASKS + EVICT_SLACK) evict();
    if (task.id === state.selected) refreshSelected(FINAL.has(task.status));
    if (event !== "progress" || state.showProgress) {
      let detail = task.type;
      if (event === "progress") detail += `  ${Math.round(task.progress)}%`;
      if ((event === "failed" || event === "retrying") && task.error) detail += `  ${task.error.type}: ${task.error.message}`;
      logLine(event, task.id, detail);
    }
  }

  function remember(task) {
    if (!state.order.has(task.id)) state.order.set(task.id, ++state.arrivals);
    state.tasks.set(task.id, task);
  }

  function evict() {
    const final = [...state.tasks.values()].filter((t) => FINAL.has(t.status) && t.id !== state.selected);
    final.sort(newestFirst).reverse();
    for (const t of final.slice(0, state.tasks.size - MAX_TASKS)) {
      state.tasks.delete(t.id);
      state.order.delete(t.id);
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

  function push(list, value) {
    list.push(value);
    if (list.length > SAMPLES) list.shift();
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
    const detailKey = state.selected ? state.tasks.get(state.selected) : null;
    if (detailKey !== drawnDetail || (detailKey && detailKey.status === "running")) {
      drawnDetail = detailKey;
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
    $("stat-queue").textContent = String(q.depth ?? 0);
    $("stat-queue-sub").textContent = `of ${q.capacity ?? 0} capacity`;
    const tp = s.throughput || {};
    $("stat-throughput").textContent = `${Number(tp.completed_per_s || 0).toFixed(2)}/s`;
    $("stat-throughput-sub").textContent = `${tp.completed_last_s ?? 0} in the last second`;
    const counts = s.tasks || {};
    for (const el of document.querySelectorAll("[data-count]")) {
      el.textContent = String(counts[el.dataset.count] ?? 0);
    }
    const lat = s.latency || {};
    const wait = lat.queue_wait_s || {};
    const run = lat.run_s || {};
    $("stat-latency").textContent =
      `${counts.total ?? 0} tracked · wait p95 ${fmtSeconds(wait.p95)} · run p50 ${fmtSeconds(run.p50)}, p95 ${fmtSeconds(run.p95)}`;
    $("uptime").textContent = s.uptime_s != null ? `up ${fmtSeconds(s.uptime_s)}` : "";
  }

  const rows = new Map(); // task id -> <tr>

  function makeRow(id) {
    const tr = document.createElement("tr");
    tr.dataset.id = id;
    const cells = {};
    for (const name of ["id", "type", "status", "progress", "priority", "created", "duration", "worker"]) {
      const td = document.createElement("td");
      td.className = "c-" + name;
      if (name === "priority" || name === "duration" || name === "worker") td.classList.add("num");
      tr.appendChild(td);
      cells[name] = td;
    }
    cells.id.textContent = id;
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
    tr._parts = { badge, fill, pct };
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

  function updateRow(tr, t) {
    const selected = t.id === state.selected;
    const run = runSeconds(t);
    const duration = run == null ? "–" : fmtSeconds(run);
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
    put(c.priority, String(t.priority));
    put(c.created, fmtClock(t.created_at));
    put(c.duration, duration);
    put(c.worker, t.worker == null ? "–" : String(t.worker));
    tr.classList.toggle("selected", selected);
  }

  function visibleTasks() {
    const needle = state.search.trim().toLowerCase();
    const out = [];
    for (const t of state.tasks.values()) {
      if (state.filter && t.status !== state.filter) continue;
      if (needle && !t.id.toLowerCase().includes(needle) && !String(t.type).toLowerCase().includes(needle)) continue;
      out.push(t);
    }
    out.sort(newestFirst);
    return out;
  }

  function newestFirst(a, b) {
    // RFC 3339 UTC with milliseconds compares correctly as plain strings (no locale rules)
    const ca = a.created_at || "";
    const cb = b.created_at || "";
    if (ca !== cb) return ca < cb ? 1 : -1;
    return (state.order.get(b.id) || 0) - (state.order.get(a.id) || 0);
  }

  /** A virtual table: only the rows in (or near) view exist; spacers stand for the rest. */
  function renderTable() {
    const list = visibleTasks();
    const body = $("tasks-body");
    // geometry comes from the scroll and resize handlers: reading it here would force a layout
    const view = Math.max(geometry.height, 400);
    const first = Math.max(0, Math.floor(geometry.scrollTop / rowHeight) - OVERSCAN);
    const last = Math.min(list.length, first + Math.ceil(view / rowHeight) + 2 * OVERSCAN);
    const shown = list.slice(first, last);
    const top = spacer("top");
    const bottom = spacer("bottom");
    top.style.height = first * rowHeight + "px";
    bottom.style.height = (list.length - last) * rowHeight + "px";
    if (body.firstChild !== top) body.prepend(top);
    const keep = new Set();
    let prev = top;
    for (const t of shown) {
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
    $("tasks-empty").hidden = list.length > 0;
    $("tasks-empty").textContent = state.tasks.size ? "No task matches the filter." : "No tasks yet. Submit one on the right.";
    let foot = `${list.length} shown`;
    if (list.length !== state.tasks.size) foot += ` of ${state.tasks.size} in this page`;
    else foot += " (all in this page)";
    if (state.stats && state.stats.tasks) foot += ` · ${state.stats.tasks.total} tracked by the server`;
    put($("tasks-foot"), foot);
  }

  const rowHeight = ROW_H; // fixed in style.css (.tasks tbody tr)
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
      td.colSpan = 8;
      tr.appendChild(td);
      spacers[name] = tr;
    }
    return spacers[name];
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  function renderDetail() {
    const t = state.selected ? state.tasks.get(state.selected) : null;
    $("detail-empty").hidden = !!t;
    $("detail-body").hidden = !t;
    $("d-cancel").disabled = !t || FINAL.has(t.status);
    $("d-retry").hidden = !t || !FINAL.has(t.status);
    if (!t) return;
    const fields = [
      ["id", t.id, true],
      ["type", t.type],
      ["status", t.status],
      ["progress", `${Math.round(t.progress)}%` + (t.message ? ` — ${t.message}` : "")],
      ["priority", String(t.priority)],
      ["attempts", `${t.attempts} (max retries ${t.max_retries})`],
      ["timeout", fmtSeconds(t.timeout_s)],
      ["created", t.created_at || "–"],
      ["started", t.started_at || "–"],
      ["finished", t.finished_at || "–"],
      ["duration", fmtSeconds(runSeconds(t))],
      ["worker", t.worker == null ? "–" : String(t.worker)],
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
    const logs = t.logs || [];
    $("d-logs-wrap").hidden = logs.length === 0;
    if (logs.length) setText("d-logs", logs.join("\n"));
  }

  function setText(id, text) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }

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

  async function select(id) {
    state.selected = id;
    $("d-action-result").textContent = "";
    requestRender();
    await fetchSelected(id);
  }

  async function fetchSelected(id) {
    lastRefresh = Date.now();
    try {
      const fresh = await api("GET", `${API}/tasks/${encodeURIComponent(id)}`);
      const known = state.tasks.get(id);
      // keep whichever is newer: a WebSocket event may have overtaken this answer
      if (!known || !FINAL.has(known.status) || FINAL.has(fresh.status)) state.tasks.set(id, fresh);
      requestRender();
    } catch (err) {
      if (err.status === 404) $("d-action-result").textContent = "The server no longer tracks this task.";
    }
  }

  // ---------------------------------------------------------------- charts

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function drawCharts() {
    const s = state.stats;
    const history = s && s.throughput && Array.isArray(s.throughput.history) ? s.throughput.history.slice(0, -1) : [];
    drawChart($("chart-throughput"), [{ values: history, color: cssVar("--chart-1"), fill: true }], 60);
    drawChart($("chart-queue"), [{ values: state.queueSamples, color: cssVar("--pending"), fill: true }], SAMPLES);
    drawChart(
      $("chart-workers"),
      [
        { values: state.workerSamples.map((p) => p[0]), color: cssVar("--chart-1"), fill: false },
        { values: state.workerSamples.map((p) => p[1]), color: cssVar("--chart-2"), fill: true },
      ],
      SAMPLES,
    );
  }

  function niceMax(v) {
    if (v <= 1) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function drawChart(canvas, series, slots) {
    const dpr = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (!width || !height) return;
    if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
      canvas.width = Math.round(width * dpr);
      canvas.height = Math.round(height * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const pad = { l: 34, r: 6, t: 6, b: 6 };
    const w = width - pad.l - pad.r;
    const h = height - pad.t - pad.b;
    let top = 0;
    for (const s of series) for (const v of s.values) top = Math.max(top, Number(v) || 0);
    top = niceMax(top);
    ctx.font = `11px ${cssVar("--mono") || "monospace"}`;
    ctx.fillStyle = cssVar("--muted");
    ctx.strokeStyle = cssVar("--border");
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const frac of [0, 0.5, 1]) {
      const y = Math.round(pad.t + h - frac * h) + 0.5;
      ctx.beginPath();
      ctx.moveTo(pad.l, y);
      ctx.lineTo(pad.l + w, y);
      ctx.stroke();
      const label = top * frac;
      ctx.fillText(Number.isInteger(label) ? String(label) : label.toFixed(1), pad.l - 5, y);
    }
    const step = w / Math.max(1, slots - 1);
    for (const s of series) {
      const vals = s.values;
      if (vals.length === 0) continue;
      const x0 = pad.l + (slots - vals.length) * step;
      const pt = (i) => [x0 + i * step, pad.t + h - ((Number(vals[i]) || 0) / top) * h];
      ctx.beginPath();
      vals.forEach((_, i) => {
        const [x, y] = pt(i);
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.6;
      ctx.lineJoin = "round";
      ctx.stroke();
      if (s.fill) {
        const [xl] = pt(vals.length - 1);
        ctx.lineTo(xl, pad.t + h);
        ctx.lineTo(x0, pad.t + h);
        ctx.closePath();
        ctx.globalAlpha = 0.14;
        ctx.fillStyle = s.color;
        ctx.fill();
        ctx.globalAlpha = 1;
      }
    }
  }

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

  function logItem(at, kind, subject, detail) {
    const li = document.createElement("li");
    const t = document.createElement("span");
    t.className = "t";
    t.textContent = hms(at);
    const ev = document.createElement("span");
    ev.className = "ev";
    if (["created", "started", "progress", "completed", "failed", "cancelled", "retrying"].includes(kind)) {
      ev.classList.add("st-" + ({ created: "pending", started: "running", progress: "running", retrying: "pending" }[kind] || kind));
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

  // ---------------------------------------------------------------- submit form

  async function loadTypes() {
    try {
      const data = await api("GET", `${API}/types`);
      state.types = (data && data.types) || [];
    } catch (err) {
      if (err.status !== 401) $("f-result").textContent = "Cannot load task types: " + err.message;
      return;
    }
    const select = $("f-type");
    const current = select.value;
    select.replaceChildren();
    for (const t of state.types) {
      const opt = document.createElement("option");
      opt.value = t.name;
      opt.textContent = t.name;
      select.appendChild(opt);
    }
    if (state.types.some((t) => t.name === current)) select.value = current;
    else if (state.types.some((t) => t.name === "example_task")) select.value = "example_task";
    onTypeChange();
  }

  let prefilled = "{}";

  function resolveRef(schema, root) {
    let s = schema;
    for (let i = 0; s && s.$ref && i < 10; i++) {
      const name = s.$ref.split("/").pop();
      s = (root.$defs || root.definitions || {})[name];
    }
    return s || {};
  }

  function currentType() {
    return state.types.find((t) => t.name === $("f-type").value) || null;
  }

  function onTypeChange() {
    const t = currentType();
    $("f-type-desc").textContent = t ? t.description || "" : "";
    const payload = $("f-payload");
    if (payload.value.trim() === prefilled.trim() || payload.value.trim() === "") {
      const example = {};
      if (t && t.payload_schema) {
        const schema = resolveRef(t.payload_schema, t.payload_schema);
        for (const [k, p] of Object.entries(schema.properties || {})) {
          if (p && "default" in p) example[k] = p.default;
        }
      }
      prefilled = Object.keys(example).length ? JSON.stringify(example, null, 2) : "{}";
      payload.value = prefilled;
    }
    validatePayload();
  }

  const JSON_TYPES = {
    object: (v) => v !== null && typeof v === "object" && !Array.isArray(v),
    array: Array.isArray,
    string: (v) => typeof v === "string",
    integer: Number.isInteger,
    number: (v) => typeof v === "number",
    boolean: (v) => typeof v === "boolean",
    null: (v) => v === null,
  };

  /** The payload as an object, or throws an Error whose message says what is wrong. */
  function parsePayload() {
    const text = $("f-payload").value.trim() || "{}";
    let value;
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new Error("Not valid JSON: " + err.message);
    }
    if (!JSON_TYPES.object(value)) throw new Error("The payload must be a JSON object, like {}.");
    const t = currentType();
    if (t && t.payload_schema) {
      const schema = resolveRef(t.payload_schema, t.payload_schema);
      const props = schema.properties || {};
      for (const key of schema.required || []) {
        if (!(key in value)) throw new Error(`Missing field "${key}".`);
      }
      for (const [k, v] of Object.entries(value)) {
        const p = props[k];
        if (!p) {
          if (schema.additionalProperties === false) throw new Error(`Unknown field "${k}" for ${t.name}.`);
          continue;
        }
        const allowed = [].concat(resolveRef(p, t.payload_schema).type || []);
        if (allowed.length && !allowed.some((ty) => JSON_TYPES[ty] && JSON_TYPES[ty](v))) {
          throw new Error(`"${k}" must be ${allowed.join(" or ")}.`);
        }
      }
    }
    return value;
  }

  function validatePayload() {
    try {
      parsePayload();
      $("f-payload-error").textContent = "";
      $("f-payload").classList.remove("invalid");
      return true;
    } catch (err) {
      $("f-payload-error").textContent = err.message;
      $("f-payload").classList.add("invalid");
      return false;
    }
  }

  function readOptions() {
    const priority = Number($("f-priority").value || "0");
    if (!Number.isInteger(priority)) throw new Error("Priority must be a whole number.");
    const count = Number($("f-count").value || "1");
    if (!Number.isInteger(count) || count < 1 || count > 1000) throw new Error("Count must be between 1 and 1000.");
    const timeout = $("f-timeout").value.trim();
    if (timeout && !DURATION_RE.test(timeout)) throw new Error("Timeout: seconds, or a duration such as 300ms, 30s, 5m.");
    return { priority, count, timeout };
  }

  $("f-type").addEventListener("change", onTypeChange);
  $("f-payload").addEventListener("input", validatePayload);

  $("submit-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const result = $("f-result");
    result.textContent = "";
    $("f-options-error").textContent = "";
    if (!validatePayload()) return;
    let opts;
    try {
      opts = readOptions();
    } catch (err) {
      $("f-options-error").textContent = err.message;
      return;
    }
    const spec = { type: $("f-type").value, payload: parsePayload(), priority: opts.priority };
    if (opts.timeout) spec.timeout = /^\s*\d+(\.\d+)?\s*$/.test(opts.timeout) ? Number(opts.timeout) : opts.timeout;
    const button = $("f-submit");
    button.disabled = true;
    try {
      let created;
      if (opts.count === 1) created = [await api("POST", `${API}/tasks`, spec)];
      else created = (await api("POST", `${API}/tasks/batch`, { tasks: Array(opts.count).fill(spec) })).tasks;
      for (const t of created) if (!state.tasks.has(t.id)) remember(t);
      result.textContent = created.length === 1 ? `Submitted ${created[0].id}` : `Submitted ${created.length} tasks`;
      select(created[0].id);
    } catch (err) {
      $("f-options-error").textContent = `${err.message}` + (err.code && err.code !== "http_error" ? ` (${err.code})` : "");
    } finally {
      button.disabled = false;
    }
  });

  // ---------------------------------------------------------------- detail actions

  $("d-cancel").addEventListener("click", async () => {
    const id = state.selected;
    if (!id) return;
    const button = $("d-cancel");
    button.disabled = true;
    $("d-action-result").textContent = "Cancelling…";
    try {
      const t = await api("DELETE", `${API}/tasks/${encodeURIComponent(id)}`);
      state.tasks.set(t.id, Object.assign({}, state.tasks.get(t.id) || {}, t));
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
      if (!state.tasks.has(t.id)) remember(t);
      await select(t.id);
      $("d-action-result").textContent = `Retry of ${id}.`;
    } catch (err) {
      $("d-action-result").textContent = `Not retried: ${err.message}`;
    } finally {
      button.disabled = false;
    }
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

  $("d-close").addEventListener("click", () => {
    state.selected = null;
    requestRender();
  });

  // ---------------------------------------------------------------- filters, theme, misc

  $("status-filter").addEventListener("click", (ev) => {
    const chip = ev.target.closest(".chip");
    if (!chip) return;
    state.filter = chip.dataset.status;
    for (const c of document.querySelectorAll("#status-filter .chip")) c.classList.toggle("active", c === chip);
    requestRender();
  });
  $("search").addEventListener("input", (ev) => {
    state.search = ev.target.value;
    requestRender();
  });
  $("log-progress").addEventListener("change", (ev) => { state.showProgress = ev.target.checked; });
  $("log-clear").addEventListener("click", () => $("eventlog").replaceChildren());

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
  window.addEventListener("resize", () => {
    measureTable();
    redrawAll();
  });
  $("tasks-wrap").addEventListener(
    "scroll",
    () => {
      measureTable();
      requestRender();
    },
    { passive: true },
  );
  // durations of running tasks tick even when no event arrives
  setInterval(() => { if (state.tasks.size) requestRender(); }, 1000);

  // ---------------------------------------------------------------- start

  window.workerpool = { state, maxTasks: MAX_TASKS }; // for the browser tests and curious people
  measureTable();
  loadTypes();
  connect();
})();
