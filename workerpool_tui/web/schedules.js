/* The Schedules panel: the server's recurring schedules (GET /api/v1/schedules once a
 * second while the tab is shown), drawn with textContent only: name, rule, next run
 * counting down (or "paused"), last run, last status (coloured), and buttons to pause or
 * resume, run now and delete (asks first). Schedules from config.toml (names in the
 * cancelled colour, say so on hover) are read-only: the
 * server answers 409 with the reason, which the panel shows.
 */

const POLL_MS = 1000;

function fmtSpan(s) {
  s = Math.max(0, s);
  if (s < 60) return `${Math.floor(s)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h ${String(m % 60).padStart(2, "0")}m` : `${Math.floor(h / 24)}d ${h % 24}h`;
}

function fmtEvery(s) {
  if (s % 3600 === 0) return `${s / 3600}h`;
  if (s % 60 === 0) return `${s / 60}m`;
  return `${s}s`;
}

export function rule(s) {
  if (s.cron) return s.timezone === "UTC" ? s.cron : `${s.cron} (${s.timezone})`;
  return `every ${fmtEvery(s.every)}`;
}

export function setupSchedules({ api }) {
  const $ = (id) => document.getElementById(id);
  const body = $("schedules-body");
  const result = $("schedules-result");
  const state = { timer: undefined, polls: 0 };

  function button(label, act, title) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "btn btn-mini";
    b.dataset.act = act;
    b.textContent = label;
    b.title = title;
    b.setAttribute("aria-label", title);
    return b;
  }

  function draw(list) {
    const now = Date.now();
    const paused = list.filter((s) => s.paused).length;
    $("schedules-summary").textContent = `${list.length} schedule${list.length === 1 ? "" : "s"}, ${paused} paused`;
    const old = new Map([...body.children].map((tr) => [tr.dataset.key, tr]));
    const rows = list.map((s) => {
      const tr = old.get(s.name) || document.createElement("tr");
      tr.dataset.key = s.name;
      tr.dataset.source = s.source;
      tr.dataset.paused = String(s.paused);
      const values = [
        ["name", s.name],
        ["rule", rule(s)],
        ["next", s.paused ? "paused" : s.next_run ? `in ${fmtSpan((Date.parse(s.next_run) - now) / 1000)}` : "–"],
        ["last", s.last_run ? `${fmtSpan((now - Date.parse(s.last_run)) / 1000)} ago` : "–"],
        ["status", s.last_status || "–"],
      ];
      while (tr.children.length < values.length) tr.appendChild(document.createElement("td"));
      values.forEach(([name, text], i) => {
        const td = tr.children[i];
        td.className = "c-" + name;
        if (td.textContent !== text) td.textContent = text;
      });
      const from = s.source === "config" ? " · from config.toml (read-only)" : "";
      tr.children[0].title = `${s.type} · overlap ${s.overlap} · catch_up ${s.catch_up}${from}`;
      tr.children[0].classList.toggle("st-cancelled", s.source === "config");
      tr.children[4].className = "c-status" + (s.last_status ? " st-" + s.last_status : "");
      if (tr.children.length === values.length) tr.appendChild(document.createElement("td"));
      const acts = tr.children[values.length];
      acts.className = "c-actions";
      const toggle = s.paused ? "resume" : "pause";
      if (!acts.firstChild || acts.firstChild.dataset.act !== toggle) {
        acts.replaceChildren(
          button(s.paused ? "▶" : "‖", toggle, s.paused ? "Resume the schedule" : "Pause the schedule"),
          button("Run", "run", "Submit one run now"),
          button("✕", "delete", "Delete the schedule (asks first)"),
        );
      }
      return tr;
    });
    body.replaceChildren(...rows);
    $("schedules-empty").hidden = list.length > 0;
  }

  async function poll() {
    try {
      draw((await api("GET", "/api/v1/schedules")).schedules);
      state.polls += 1;
    } catch (err) {
      $("schedules-summary").textContent = `cannot read the schedules: ${err.message}`;
    }
    if (state.timer !== undefined) state.timer = setTimeout(poll, POLL_MS);
  }

  function shown(tab) {
    if (tab === "schedules" && state.timer === undefined) {
      state.timer = null; // polling: the next turn is scheduled after each answer
      poll();
    } else if (tab !== "schedules" && state.timer !== undefined) {
      clearTimeout(state.timer);
      state.timer = undefined;
    }
  }

  async function act(name, what) {
    const path = `/api/v1/schedules/${encodeURIComponent(name)}`;
    try {
      if (what === "pause" || what === "resume") {
        await api("PATCH", path, { paused: what === "pause" });
        result.textContent = `${name}: ${what === "pause" ? "paused" : "resumed"}`;
      } else if (what === "run") {
        const r = await api("POST", `${path}/run`);
        result.textContent = r.task_id ? `${name}: submitted task ${r.task_id}` : `${name}: not submitted (see the log)`;
      } else if (what === "delete") {
        if (!window.confirm(`Delete schedule ${name}?`)) return;
        await api("DELETE", path);
        result.textContent = `${name}: deleted`;
      }
      result.classList.remove("error");
    } catch (err) {
      result.textContent = `${name}: ${err.message}`;
      result.classList.add("error");
    }
    if (state.timer !== undefined) {
      try {
        draw((await api("GET", "/api/v1/schedules")).schedules); // at once; the loop goes on
      } catch (err) {
        /* the next poll says why */
      }
    }
  }

  body.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-act]");
    if (b) act(b.closest("tr").dataset.key, b.dataset.act);
  });

  return { shown, state };
}
