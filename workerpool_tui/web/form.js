/* The submit form: task types from GET /api/v1/types, the payload checked as you type
 * against the type's JSON Schema (fields, types), options checked before anything is sent. */

const API = "/api/v1";
const DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/;
const $ = (id) => document.getElementById(id);

let types = [];
const hooks = { api: null, onSubmitted: null };

/** Wire the form: `api(method, path, body)` sends requests, `onSubmitted(tasks)` hears of
 * created tasks. Returns `loadTypes`, to call again when the server may have changed. */
export function setupSubmitForm({ api, onSubmitted }) {
  hooks.api = api;
  hooks.onSubmitted = onSubmitted;
  return { loadTypes };
}

async function loadTypes() {
  try {
    const data = await hooks.api("GET", `${API}/types`);
    types = (data && data.types) || [];
  } catch (err) {
    if (err.status !== 401) $("f-result").textContent = "Cannot load task types: " + err.message;
    return;
  }
  const select = $("f-type");
  const current = select.value;
  select.replaceChildren();
  for (const t of types) {
    const opt = document.createElement("option");
    opt.value = t.name;
    opt.textContent = t.name;
    select.appendChild(opt);
  }
  if (types.some((t) => t.name === current)) select.value = current;
  else if (types.some((t) => t.name === "example_task")) select.value = "example_task";
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
  return types.find((t) => t.name === $("f-type").value) || null;
}

/* A type's isolation and gates as GET /api/v1/types gave them ("" without any). */
function limitsText(t) {
  const parts = [];
  if (t.isolation === "process") parts.push("process");
  if (t.concurrency) parts.push(`running ${t.running}/${t.concurrency}`);
  if (t.rate_limit) parts.push(`rate ${t.rate_limit}${t.rate_limited ? " (holding tasks back)" : ""}`);
  if (t.paused) parts.push("paused");
  if (t.held) parts.push(`${t.held} waiting`);
  return parts.length ? ` (${parts.join(" · ")})` : "";
}

function onTypeChange() {
  const t = currentType();
  $("f-type-desc").textContent = t ? (t.description || "") + limitsText(t) : "";
  // the type's defaults, greyed in the empty fields; left empty, the server applies them
  $("f-priority").placeholder = t && t.priority != null ? String(t.priority) : "0";
  $("f-timeout").placeholder = t && t.timeout != null ? `${t.timeout}s` : "default";
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
  const raw = $("f-priority").value.trim();
  const priority = raw === "" ? null : Number(raw); // null: the type's default
  if (priority !== null && !Number.isInteger(priority)) throw new Error("Priority must be a whole number.");
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
  const spec = { type: $("f-type").value, payload: parsePayload() };
  if (opts.priority !== null) spec.priority = opts.priority;
  if (opts.timeout) spec.timeout = /^\s*\d+(\.\d+)?\s*$/.test(opts.timeout) ? Number(opts.timeout) : opts.timeout;
  const button = $("f-submit");
  button.disabled = true;
  try {
    let created;
    if (opts.count === 1) created = [await hooks.api("POST", `${API}/tasks`, spec)];
    else created = (await hooks.api("POST", `${API}/tasks/batch`, { tasks: Array(opts.count).fill(spec) })).tasks;
    result.textContent = created.length === 1 ? `Submitted ${created[0].id}` : `Submitted ${created.length} tasks`;
    hooks.onSubmitted(created);
  } catch (err) {
    $("f-options-error").textContent = `${err.message}` + (err.code && err.code !== "http_error" ? ` (${err.code})` : "");
  } finally {
    button.disabled = false;
  }
});
