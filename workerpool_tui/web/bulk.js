/* Bulk actions on the page: a checkbox per row marks tasks; the bulk bar cancels, retries or
 * deletes the marked tasks, or (none marked) every task of the current filter and search
 * (POST /api/v1/tasks/bulk). It first asks the server what would change (dry_run) and has
 * the user confirm that. The list refreshes on the `bulk` message the server broadcasts.
 */

export class BulkMarks {
  constructor({ api, list, log, onChange }) {
    this.api = api;
    this.list = list;
    this.log = log;
    this.onChange = onChange;
    this.marked = new Set();
  }

  toggle(id, on) {
    if (on) this.marked.add(id);
    else this.marked.delete(id);
    this.onChange();
  }

  clear() {
    this.marked.clear();
    this.onChange();
  }

  /** What the bar says it acts on. */
  scope() {
    if (this.marked.size) return `${this.marked.size} marked`;
    const parts = [];
    if (this.list.statuses.size) parts.push([...this.list.statuses].join(","));
    if (this.list.q && this.list.q.trim()) parts.push(`“${this.list.q.trim()}”`);
    return parts.length ? "filter: " + parts.join(" ") : "all tasks";
  }

  filter() {
    if (this.marked.size) return { ids: [...this.marked] };
    const f = {};
    if (this.list.statuses.size) f.status = [...this.list.statuses];
    if (this.list.q && this.list.q.trim()) f.q = this.list.q.trim();
    return f;
  }

  /** Dry run, confirmation, then the action. Returns the result, or null if not done. */
  async run(action, confirmFn = (text) => window.confirm(text)) {
    const filter = this.filter();
    const path = "/api/v1/tasks/bulk";
    const plan = await this.api("POST", path, { action, filter, dry_run: true });
    if (!plan.changed) {
      this.log("warn", "bulk", `nothing to ${action} (${plan.matched} matched, ${this.scope()})`);
      return null;
    }
    const what = `${action} ${plan.changed} of ${plan.matched} task(s) (${this.scope()})?`;
    if (!confirmFn(what.charAt(0).toUpperCase() + what.slice(1))) return null;
    const result = await this.api("POST", path, { action, filter });
    this.clear();
    return result;
  }
}

export function bulkSummary(msg) {
  const skipped = Object.entries(msg.skipped || {})
    .map(([why, n]) => `${n} ${why}`)
    .join(", ");
  return `${msg.action}: ${msg.changed} of ${msg.matched} matched` + (skipped ? ` (${skipped})` : "");
}
