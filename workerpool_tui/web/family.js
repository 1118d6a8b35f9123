/* The selected task's parents and children (issue 12): each a link that opens that task.
 *
 * Parents are the ids in the task's depends_on, children come from the server's index
 * (GET /api/v1/tasks?parent=ID). Fetched with the task itself (on select and its refreshes),
 * drawn with textContent only.
 */

const MAX_PARENTS = 50; // a task rarely has more; past it the ids alone are listed
const MAX_CHILDREN = 100;

export function setupFamily({ api, apiBase, $, select }) {
  let shown = { id: null, parents: [], children: [], more: 0 };

  /** Fetch the relatives of `task` (a task view): parents by id, children by the index. */
  async function load(task) {
    const parentIds = task.depends_on || [];
    const parents = await Promise.all(
      parentIds.map(async (id, i) => {
        if (i >= MAX_PARENTS) return { id };
        try {
          return await api("GET", `${apiBase}/tasks/${encodeURIComponent(id)}`);
        } catch {
          return { id }; // no longer tracked
        }
      }),
    );
    let children = [];
    let more = 0;
    try {
      const page = await api(
        "GET",
        `${apiBase}/tasks?parent=${encodeURIComponent(task.id)}&limit=${MAX_CHILDREN}`,
      );
      children = page.tasks.slice().reverse(); // oldest first, as submitted
      more = Math.max(0, page.total - page.tasks.length);
    } catch {
      children = [];
    }
    shown = { id: task.id, parents, children, more };
  }

  function item(relation, t) {
    const li = document.createElement("li");
    const rel = document.createElement("span");
    rel.className = "muted";
    rel.textContent = relation + " ";
    const link = document.createElement("a");
    link.href = "#";
    link.className = "mono";
    link.dataset.id = t.id;
    link.textContent = t.id;
    link.addEventListener("click", (ev) => {
      ev.preventDefault();
      select(t.id);
    });
    li.append(rel, link);
    const rest = document.createElement("span");
    if (t.status) {
      rest.textContent = ` ${t.type} `;
      const badge = document.createElement("span");
      badge.className = "badge st-" + t.status;
      badge.textContent = t.status;
      li.append(rest, badge);
    } else {
      rest.className = "muted";
      rest.textContent = " (no longer tracked)";
      li.append(rest);
    }
    return li;
  }

  /** Draw what was fetched for `id` (nothing for another task: its answer is on the way). */
  function render(id) {
    const wrap = $("d-family-wrap");
    const list = $("d-family");
    const mine = shown.id === id;
    const rows = mine ? shown.parents.length + shown.children.length : 0;
    wrap.hidden = rows === 0;
    const key = mine ? JSON.stringify(shown) : "";
    if (list.dataset.key === key) return;
    list.dataset.key = key;
    list.replaceChildren();
    if (!mine) return;
    for (const p of shown.parents) list.append(item("parent", p));
    for (const c of shown.children) list.append(item("child", c));
    if (shown.more) {
      const li = document.createElement("li");
      li.className = "muted";
      li.textContent = `… and ${shown.more} more children`;
      list.append(li);
    }
  }

  /** Whether `id` is one of the relatives listed (its events refresh the list). */
  function shows(id) {
    return shown.parents.some((t) => t.id === id) || shown.children.some((t) => t.id === id);
  }

  return { load, render, shows };
}
