/* The Instances and Workers panels: polled while their tab is shown (GET /api/v1/instances
 * once a second, GET /api/v1/workers twice a second), drawn with textContent only.
 *
 * Instances: every instance of the cluster (or this server alone outside cluster mode, and
 * the panel says so). Workers: the workers of the server the page talks to; a click (or
 * Enter) on a busy worker opens its task.
 */

const POLL_MS = { instances: 1000, workers: 500 };

function fmtAge(s) {
  if (s == null) return "–";
  if (s < 0.05) return "now";
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.floor(s % 60)).padStart(2, "0")}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`;
}

function fmtRun(s) {
  if (s == null) return "–";
  if (s < 1) return `${Math.round(s * 1000)}ms`;
  if (s < 60) return `${s.toFixed(1)}s`;
  return `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, "0")}s`;
}

function cells(tr, values) {
  while (tr.children.length < values.length) tr.appendChild(document.createElement("td"));
  values.forEach(([name, text], i) => {
    const td = tr.children[i];
    td.className = "c-" + name;
    if (td.textContent !== text) td.textContent = text;
  });
}

/** Keep one <tr> per key, in order; returns the rows by key. */
function syncRows(body, items, keyOf, fill) {
  const old = new Map([...body.children].map((tr) => [tr.dataset.key, tr]));
  const rows = items.map((item) => {
    const key = String(keyOf(item));
    const tr = old.get(key) || document.createElement("tr");
    tr.dataset.key = key;
    fill(tr, item);
    return tr;
  });
  body.replaceChildren(...rows);
}

export function setupPanels({ api, openTask }) {
  const $ = (id) => document.getElementById(id);
  const timers = {};
  const polls = { instances: 0, workers: 0 }; // answers drawn (the tests read them)

  function drawInstances(data) {
    const list = data.instances;
    let summary;
    if (!data.cluster) {
      summary = "Not in cluster mode: this server only (serve --store postgresql://… to join a cluster).";
    } else {
      const up = list.filter((i) => i.state === "running");
      const workers = up.reduce((n, i) => n + i.workers, 0);
      const busy = up.reduce((n, i) => n + i.busy, 0);
      summary = `Cluster: ${list.length} instance${list.length === 1 ? "" : "s"}, ${up.length} running · ${workers} workers, ${busy} busy · ★ = this server`;
    }
    $("instances-summary").textContent = summary;
    syncRows($("instances-body"), list, (i) => i.id, (tr, i) => {
      tr.dataset.name = i.name;
      tr.dataset.state = i.state;
      cells(tr, [
        ["name", i.this ? `${i.name} ★` : i.name],
        ["host", i.host],
        ["pid", String(i.pid)],
        ["version", i.version],
        ["workers", `${i.workers}/${i.busy}`],
        ["done", String(i.done)],
        ["heartbeat", fmtAge(i.heartbeat_age_s)],
        ["state", i.state],
      ]);
      tr.lastChild.className = "c-state st-" + (i.state === "running" ? "completed" : i.state === "stopped" ? "cancelled" : "failed");
    });
  }

  function drawWorkers(data) {
    const list = data.workers;
    const busy = list.filter((w) => w.state === "busy").length;
    const where = data.instance ? ` of instance ${data.instance}` : "";
    const procs = data.processes || [];
    let inProcs = "";
    if (procs.length) {
      const working = procs.filter((p) => p.task_id).length;
      const restarts = procs.reduce((n, p) => n + p.restarts, 0);
      const mib = procs.reduce((n, p) => n + p.rss_bytes, 0) / 1048576;
      inProcs = ` · ${procs.length} worker process${procs.length === 1 ? "" : "es"} (pid ${procs.map((p) => p.pid).join(", ")}), ${working} busy, ${restarts} restart${restarts === 1 ? "" : "s"}, ${mib.toFixed(1)} MiB`;
    }
    $("workers-summary").textContent = `${list.length} worker${list.length === 1 ? "" : "s"}${where}, ${busy} busy${inProcs} · click a busy worker to open its task`;
    syncRows($("workers-body"), list, (w) => w.id, (tr, w) => {
      tr.dataset.state = w.state;
      tr.dataset.task = w.task_id || "";
      tr.title = w.task_id ? `task ${w.task_id}` : "";
      tr.tabIndex = w.task_id ? 0 : -1;
      tr.classList.toggle("clickable", !!w.task_id);
      cells(tr, [
        ["id", String(w.id)],
        ["state", w.state],
        ["task", w.task_id ? w.task_id.slice(0, 8) : "–"],
        ["type", w.task_type || "–"],
        ["running", fmtRun(w.running_s)],
        ["done", String(w.done)],
        ["failed", String(w.failed)],
      ]);
    });
  }

  const draw = { instances: drawInstances, workers: drawWorkers };

  async function poll(name) {
    try {
      draw[name](await api("GET", `/api/v1/${name}`));
      polls[name] += 1;
    } catch (err) {
      $(`${name}-summary`).textContent = `cannot read the ${name}: ${err.message}`;
    }
    if (timers[name] !== undefined) timers[name] = setTimeout(() => poll(name), POLL_MS[name]);
  }

  function shown(tab) {
    for (const name of Object.keys(POLL_MS)) {
      if (name === tab && timers[name] === undefined) {
        timers[name] = null; // polling: the next turn is scheduled after each answer
        poll(name);
      } else if (name !== tab && timers[name] !== undefined) {
        clearTimeout(timers[name]);
        delete timers[name];
      }
    }
  }

  function open(ev) {
    const tr = ev.target.closest("tr");
    if (tr && tr.dataset.task) openTask(tr.dataset.task);
  }
  $("workers-body").addEventListener("click", open);
  $("workers-body").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") open(ev);
  });

  return { shown, polls };
}
