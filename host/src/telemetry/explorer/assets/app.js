// The explorer's pages: search, trace, compare, services.
//
// Every value that came from a span reaches the page through `el()`, which
// makes text nodes (textContent), never HTML: a `<script>` in an attribute
// is shown as text. Links are built only from hex ids.
"use strict";

const app = document.getElementById("app");
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac", "#e15759"];
let pollTimer = null;
let lastReceived = null;

// ---- helpers -------------------------------------------------------------

/** An element with attributes and children (strings become text nodes). */
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const isHex = (s) => typeof s === "string" && /^[0-9a-f]{1,32}$/.test(s);

function link(path, ...children) {
  return el("a", { href: path, "data-nav": true }, ...children);
}

async function api(path) {
  const response = await fetch(path, { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (body.errors && body.errors[0] && body.errors[0].msg) || response.statusText;
    throw new Error(message);
  }
  return body;
}

function fmtDuration(us) {
  if (us >= 1e6) return (us / 1e6).toFixed(2) + " s";
  if (us >= 1e3) return (us / 1e3).toFixed(2) + " ms";
  return Math.round(us) + " µs";
}

function fmtTime(us) {
  const d = new Date(us / 1000);
  return d.toLocaleString(undefined, { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0");
}

function ago(us) {
  const s = Math.max(0, (Date.now() * 1000 - us) / 1e6);
  if (s < 60) return Math.round(s) + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return Math.round(s / 3600) + " h ago";
}

function serviceColor(name) {
  let h = 0;
  for (const c of name) h = (h * 31 + c.codePointAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

function tagValue(tags, key) {
  const t = (tags || []).find((t) => t.key === key);
  return t ? t.value : undefined;
}

/** Microseconds since the epoch (a URL's `start`/`end`) as a datetime-local
 *  input's value: local time, to the second; "" when not a number. */
function toLocalInput(us) {
  if (!/^[0-9]{1,17}$/.test(us || "")) return "";
  const d = new Date(Number(us) / 1000);
  const p = (n) => String(n).padStart(2, "0");
  return `${String(d.getFullYear()).padStart(4, "0")}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** A datetime-local input's value (local time) as microseconds since the
 *  epoch, plus `extraUs` (the end of a window takes its whole last second);
 *  "" when empty or not a time. */
function fromLocalInput(value, extraUs) {
  const ms = value ? new Date(value).getTime() : NaN;
  return Number.isFinite(ms) ? String(ms * 1000 + extraUs) : "";
}

function showError(where, error) {
  where.replaceChildren(el("p", { class: "error-text" }, "Error: ", error.message || String(error)));
}

// ---- the trace model -----------------------------------------------------

/** A Jaeger trace as a tree with times relative to its start. */
function model(trace) {
  const byId = new Map();
  for (const span of trace.spans) {
    const process = trace.processes[span.processID] || { serviceName: "?", tags: [] };
    byId.set(span.spanID, {
      span, process, service: process.serviceName, children: [], parent: null,
      error: tagValue(span.tags, "error") === true,
      start: span.startTime, end: span.startTime + span.duration,
    });
  }
  const roots = [];
  for (const node of byId.values()) {
    const ref = (node.span.references || []).find((r) => r.refType === "CHILD_OF");
    const parent = ref && byId.get(ref.spanID);
    if (parent) { node.parent = parent; parent.children.push(node); } else roots.push(node);
  }
  const sortKids = (n) => { n.children.sort((a, b) => a.start - b.start); n.children.forEach(sortKids); };
  roots.sort((a, b) => a.start - b.start);
  roots.forEach(sortKids);
  const nodes = [...byId.values()];
  const start = Math.min(...nodes.map((n) => n.start));
  const end = Math.max(...nodes.map((n) => n.end));
  // Self time: a span's duration not covered by its children.
  for (const n of nodes) {
    const spans = n.children.map((c) => [Math.max(c.start, n.start), Math.min(c.end, n.end)]).filter(([a, b]) => b > a).sort((a, b) => a[0] - b[0]);
    let covered = 0, cursor = n.start;
    for (const [a, b] of spans) { if (b > cursor) { covered += b - Math.max(a, cursor); cursor = b; } }
    n.self = Math.max(0, n.span.duration - covered);
  }
  const dominant = nodes.reduce((best, n) => (!best || n.self > best.self ? n : best), null);
  // The critical path: from the root, the child that ends last, down.
  const critical = new Set();
  let cursor = roots[0];
  while (cursor) { critical.add(cursor); cursor = cursor.children.reduce((last, c) => (!last || c.end > last.end ? c : last), null); }
  const services = [...new Set(nodes.map((n) => n.service))];
  const root = roots[0];
  return { trace, byId, roots, nodes, start, end, duration: end - start, dominant, critical, services, root, errors: nodes.filter((n) => n.error).length };
}

// ---- router --------------------------------------------------------------

function navigate(path) {
  history.pushState(null, "", path);
  render();
}

document.addEventListener("click", (event) => {
  const a = event.target.closest && event.target.closest("a[data-nav]");
  if (!a || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(a.getAttribute("href"));
});
window.addEventListener("popstate", render);

function render() {
  clearInterval(pollTimer);
  pollTimer = null;
  const path = location.pathname;
  const parts = path.split("/").filter(Boolean);
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", path.startsWith(a.getAttribute("href")));
  if (parts[0] === "trace" && parts[1]) return tracePage(parts[1].toLowerCase());
  if (parts[0] === "compare") return comparePage(parts[1], parts[2]);
  if (parts[0] === "services") return servicesPage();
  return searchPage();
}

async function refreshStats() {
  try {
    const s = await api("/api/explorer/stats");
    const mib = (b) => (b / 1048576).toFixed(1);
    document.getElementById("stats").textContent =
      `${s.traces} traces · ${s.spans} spans · ${mib(s.bytes)} / ${mib(s.max_bytes)} MiB · ${s.traces_evicted} evicted · ${s.spans_rejected + s.otlp_rejected} rejected`;
    return s;
  } catch (e) {
    document.getElementById("stats").textContent = "explorer unreachable";
    return null;
  }
}

// ---- search --------------------------------------------------------------

async function searchPage() {
  const params = new URLSearchParams(location.search);
  const form = el("form", { class: "search", id: "search-form" });
  const field = (label, input) => el("label", {}, el("span", {}, label), input);
  const service = el("select", { name: "service" }, el("option", { value: "" }, "All services"));
  const operation = el("select", { name: "operation" }, el("option", { value: "" }, "All operations"));
  const tags = el("input", { name: "tags", placeholder: "http.response.status_code=201 error=true", value: params.get("tagsText") || "" });
  const status = el("select", { name: "status" }, ...[["", "Any status"], ["error", "Errors"], ["ok", "No errors"]].map(([v, t]) => el("option", { value: v }, t)));
  const minDuration = el("input", { name: "minDuration", placeholder: "e.g. 5ms", size: 7, value: params.get("minDuration") || "" });
  const maxDuration = el("input", { name: "maxDuration", placeholder: "e.g. 1s", size: 7, value: params.get("maxDuration") || "" });
  const lookback = el("select", { name: "lookback" }, ...[["", "All held"], ["5m", "Last 5 minutes"], ["1h", "Last hour"], ["6h", "Last 6 hours"], ["24h", "Last day"], ["custom", "Custom range"]].map(([v, t]) => el("option", { value: v }, t)));
  // A custom window, in the URL as Jaeger's UI keeps it: lookback=custom, start and end in µs.
  const start = el("input", { name: "start", type: "datetime-local", step: 1, value: toLocalInput(params.get("start")) });
  const end = el("input", { name: "end", type: "datetime-local", step: 1, value: toLocalInput(params.get("end")) });
  const range = el("span", { class: "range" }, field("From", start), field("To", end));
  const limit = el("input", { name: "limit", type: "number", min: 1, size: 4, value: params.get("limit") || "20" });
  const sort = el("select", { name: "sort" }, ...[["recent", "Most recent"], ["longest", "Longest"], ["spans", "Most spans"]].map(([v, t]) => el("option", { value: v }, t)));
  status.value = params.get("status") || "";
  lookback.value = params.get("lookback") || (params.get("start") || params.get("end") ? "custom" : "");
  range.hidden = lookback.value !== "custom";
  lookback.addEventListener("change", () => { range.hidden = lookback.value !== "custom"; });
  sort.value = params.get("sort") || "recent";
  form.append(field("Service", service), field("Operation", operation), field("Tags (key=value …)", tags), field("Status", status),
    field("Min duration", minDuration), field("Max duration", maxDuration), field("Time", lookback), range, field("Limit", limit), field("Sort", sort),
    el("button", { type: "submit", id: "find" }, "Find traces"));
  const live = el("label", { class: "live" }, el("input", { type: "checkbox", id: "live", checked: true }), " live");
  const results = el("div", { id: "results" });
  const compareButton = el("button", { id: "compare-selected", disabled: true, onclick: () => {
    const ids = [...results.querySelectorAll("input.pick:checked")].map((c) => c.value);
    if (ids.length === 2) navigate(`/compare/${ids[0]}/${ids[1]}`);
  } }, "Compare selected (2)");
  app.replaceChildren(el("h1", {}, "Search traces"), form, el("div", { class: "toolbar" }, live, compareButton), results);

  const loadOperations = async () => {
    operation.replaceChildren(el("option", { value: "" }, "All operations"));
    if (!service.value) return;
    const ops = await api(`/api/services/${encodeURIComponent(service.value)}/operations`).catch(() => ({ data: [] }));
    for (const op of ops.data || []) operation.append(el("option", { value: op }, op));
    operation.value = params.get("operation") || "";
  };
  const services = await api("/api/services").catch(() => ({ data: [] }));
  for (const s of services.data || []) service.append(el("option", { value: s }, s));
  service.value = params.get("service") || "";
  await loadOperations();
  service.addEventListener("change", () => { params.delete("operation"); loadOperations(); });

  const query = () => {
    const q = new URLSearchParams();
    for (const [k, v] of [["service", service.value], ["operation", operation.value], ["status", status.value], ["minDuration", minDuration.value.trim()],
      ["maxDuration", maxDuration.value.trim()], ["lookback", lookback.value], ["limit", limit.value], ["sort", sort.value]]) if (v) q.set(k, v);
    const pairs = {};
    for (const word of tags.value.trim().split(/\s+/).filter(Boolean)) {
      const i = word.indexOf("=");
      if (i > 0) pairs[word.slice(0, i)] = word.slice(i + 1);
    }
    if (Object.keys(pairs).length) q.set("tags", JSON.stringify(pairs));
    if (lookback.value === "custom") {
      for (const [k, v] of [["start", fromLocalInput(start.value, 0)], ["end", fromLocalInput(end.value, 999999)]]) if (v) q.set(k, v);
    }
    return q;
  };
  const run = async () => {
    const q = query();
    if (q.has("start") && q.has("end") && Number(q.get("end")) < Number(q.get("start"))) {
      showError(results, new Error("the time window ends before it starts: set To after From"));
      return;
    }
    const shown = new URLSearchParams(q);
    shown.delete("tags");
    if (tags.value.trim()) shown.set("tagsText", tags.value.trim());
    history.replaceState(null, "", "/search" + (shown.toString() ? "?" + shown : ""));
    try {
      const body = await api("/api/traces?" + q);
      showResults(results, body.data.map(model), compareButton);
    } catch (e) { showError(results, e); }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); run(); });
  await run();
  lastReceived = (await refreshStats() || {}).spans_received;
  pollTimer = setInterval(async () => {
    const s = await refreshStats();
    if (s && s.spans_received !== lastReceived && document.getElementById("live").checked) { lastReceived = s.spans_received; run(); }
  }, 2000);
}

function showResults(where, models, compareButton) {
  if (!models.length) { where.replaceChildren(el("p", { class: "muted" }, "No traces match. Send a request (POST /orders) and they appear here.")); return; }
  // Live updates re-render the list: keep what was ticked for comparing.
  const picked = new Set([...where.querySelectorAll("input.pick:checked")].map((c) => c.value));
  const longest = Math.max(...models.map((m) => m.duration), 1);
  const rows = models.map((m) => {
    const root = m.root;
    const id = m.trace.traceID;
    return el("tr", { class: m.errors ? "result error" : "result", "data-trace": id },
      el("td", {}, el("input", { type: "checkbox", class: "pick", value: id, checked: picked.has(id), onchange: () => {
        const picked = where.querySelectorAll("input.pick:checked").length;
        compareButton.disabled = picked !== 2;
      } })),
      el("td", {}, link(`/trace/${id}`, el("strong", {}, root.service, ": ", root.span.operationName)),
        el("div", { class: "muted mono" }, id.slice(0, 12))),
      el("td", {}, m.services.map((s) => badge(s, m.nodes.filter((n) => n.service === s).length))),
      el("td", { class: "num" }, String(m.nodes.length), " spans"),
      el("td", {}, m.errors ? el("span", { class: "error-mark", title: "spans with status ERROR" }, `⚠ ${m.errors} error${m.errors > 1 ? "s" : ""}`) : ""),
      el("td", { class: "num" }, fmtDuration(m.duration), durationBar(m.duration / longest)),
      el("td", { title: fmtTime(m.start) }, ago(m.start)));
  });
  compareButton.disabled = models.filter((m) => picked.has(m.trace.traceID)).length !== 2;
  where.replaceChildren(el("p", { class: "muted" }, `${models.length} trace${models.length > 1 ? "s" : ""}`),
    el("table", { class: "results" }, el("thead", {}, el("tr", {}, ["", "Root span", "Services", "Spans", "Errors", "Duration", "Started"].map((h) => el("th", {}, h)))), el("tbody", {}, rows)));
}

function badge(service, count) {
  const b = el("span", { class: "badge" }, service, count ? ` ${count}` : "");
  b.style.borderColor = serviceColor(service);
  return b;
}

function durationBar(fraction) {
  const bar = el("div", { class: "dbar" });
  bar.style.width = Math.max(2, fraction * 100) + "%";
  return bar;
}

// ---- trace ---------------------------------------------------------------

async function tracePage(id) {
  if (!isHex(id)) { app.replaceChildren(el("p", { class: "error-text" }, "Not a trace id.")); return; }
  let m;
  try { m = model((await api(`/api/traces/${id}`)).data[0]); } catch (e) { showError(app, e); return; }
  refreshStats();
  const detail = el("div", { id: "detail", class: "detail" }, el("p", { class: "muted" }, "Select a span to see its attributes, events, resource and links."));
  const download = el("button", { id: "download", onclick: async () => {
    const body = await api(`/api/v3/traces/${id}`);
    const blob = new Blob([JSON.stringify(body.result, null, 2)], { type: "application/json" });
    const a = el("a", { href: URL.createObjectURL(blob), download: `trace-${id}.json` });
    document.body.append(a); a.click(); a.remove();
  } }, "Download OTLP/JSON");
  const other = el("input", { placeholder: "other trace id", size: 34, id: "compare-with" });
  const compare = el("form", { class: "inline", onsubmit: (e) => { e.preventDefault(); const o = other.value.trim().toLowerCase(); if (isHex(o)) navigate(`/compare/${id}/${o}`); } }, other, el("button", { type: "submit" }, "Compare"));
  const legend = el("div", { class: "legend" }, m.services.map((s) => badge(s, m.nodes.filter((n) => n.service === s).length)),
    el("span", { class: "legend-item dominant-key" }, "★ dominant span (most self time)"), el("span", { class: "legend-item critical-key" }, "┃ critical path"));
  app.replaceChildren(
    el("h1", {}, m.root.service, ": ", m.root.span.operationName, m.errors ? el("span", { class: "error-mark" }, ` ⚠ ${m.errors} error${m.errors > 1 ? "s" : ""}`) : ""),
    el("p", { class: "summary" }, el("span", { class: "mono", id: "trace-id" }, m.trace.traceID), ` · started ${fmtTime(m.start)} · duration ${fmtDuration(m.duration)} · `,
      el("span", { id: "span-count" }, `${m.nodes.length} spans`), ` · ${m.services.length} service${m.services.length > 1 ? "s" : ""} · dominant: `,
      el("strong", {}, m.dominant.span.operationName), ` (${fmtDuration(m.dominant.self)} self)`),
    el("div", { class: "toolbar" }, download, compare), legend, waterfall(m, detail), detail);
}

function ruler(m) {
  const ticks = el("div", { class: "ruler" });
  for (let i = 0; i <= 4; i++) {
    const t = el("span", { class: "tick" }, fmtDuration((m.duration * i) / 4));
    t.style.left = i * 25 + "%";
    ticks.append(t);
  }
  return el("div", { class: "row ruler-row" }, el("div", { class: "name" }, "Service: operation"), el("div", { class: "timeline" }, ticks));
}

function waterfall(m, detail) {
  const box = el("div", { class: "waterfall", id: "waterfall" }, ruler(m));
  const rowOf = new Map();
  const total = Math.max(m.duration, 1);
  const add = (node, depth) => {
    const s = node.span;
    const classes = ["row", "span"];
    if (node.error) classes.push("error");
    if (node === m.dominant) classes.push("dominant");
    if (m.critical.has(node)) classes.push("critical");
    const toggle = el("button", { class: "toggle", title: "collapse / expand", "aria-label": "collapse or expand" }, node.children.length ? "▾" : "");
    if (!node.children.length) toggle.disabled = true;
    const name = el("div", { class: "name" }, toggle, el("span", { class: "svc" }, node.service), " ", el("span", { class: "op" }, s.operationName),
      node.error ? el("span", { class: "error-mark", title: tagValue(s.tags, "otel.status_description") || "error" }, " ⚠") : "",
      node === m.dominant ? el("span", { class: "star", title: "the span with the most self time" }, " ★") : "");
    name.style.paddingLeft = depth * 14 + "px";
    const bar = el("div", { class: "bar" }, el("span", { class: "label" }, fmtDuration(s.duration)));
    bar.style.left = ((node.start - m.start) / total) * 100 + "%";
    bar.style.width = Math.max(0.3, (s.duration / total) * 100) + "%";
    bar.style.background = serviceColor(node.service);
    const row = el("div", { class: classes.join(" "), "data-span": s.spanID, tabindex: 0 }, name, el("div", { class: "timeline" }, bar));
    row.addEventListener("click", (e) => {
      if (e.target === toggle) return;
      for (const r of box.querySelectorAll(".row.selected")) r.classList.remove("selected");
      row.classList.add("selected");
      showSpan(m, node, detail);
    });
    toggle.addEventListener("click", () => {
      const collapsed = row.classList.toggle("collapsed");
      toggle.textContent = collapsed ? "▸" : "▾";
      // A child row is hidden while any ancestor is collapsed.
      const hide = (n, hidden) => n.children.forEach((c) => {
        const r = rowOf.get(c);
        r.hidden = hidden;
        hide(c, hidden || r.classList.contains("collapsed"));
      });
      hide(node, collapsed);
    });
    rowOf.set(node, row);
    box.append(row);
    node.children.forEach((c) => add(c, depth + 1));
  };
  m.roots.forEach((r) => add(r, 0));
  return box;
}

function kvTable(title, tags, id) {
  if (!tags || !tags.length) return null;
  return el("section", { id }, el("h3", {}, title), el("table", { class: "kv" }, el("tbody", {}, tags.map((t) =>
    el("tr", {}, el("td", { class: "key mono" }, t.key), el("td", { class: "val mono" }, typeof t.value === "string" ? t.value : JSON.stringify(t.value)))))));
}

function showSpan(m, node, detail) {
  const s = node.span;
  const derived = new Set(["span.kind", "otel.scope.name", "otel.scope.version", "otel.status_code", "otel.status_description", "error"]);
  const wasm = s.tags.filter((t) => t.key.startsWith("wasm.") && !derived.has(t.key));
  const attrs = s.tags.filter((t) => !t.key.startsWith("wasm.") && !derived.has(t.key));
  const status = tagValue(s.tags, "otel.status_code") || "UNSET";
  const events = (s.logs || []).map((log) => {
    const name = tagValue(log.fields, "event") || "event";
    const fields = log.fields.filter((f) => f.key !== "event");
    const stack = tagValue(fields, "exception.stacktrace");
    return el("div", { class: name === "exception" ? "event exception" : "event" },
      el("div", {}, el("strong", {}, name), ` at +${fmtDuration(log.timestamp - m.start)}`),
      name === "exception" ? el("div", { class: "exception-line" }, el("strong", {}, tagValue(fields, "exception.type") || "exception"), ": ", tagValue(fields, "exception.message") || "") : "",
      stack ? el("pre", {}, stack) : "",
      kvTable("Event attributes", fields.filter((f) => f.key !== "exception.stacktrace")));
  });
  const links = s.references.filter((r) => r.refType !== "CHILD_OF").map((r) =>
    el("li", {}, r.refType, " ", isHex(r.traceID) ? link(`/trace/${r.traceID}`, r.traceID) : r.traceID, " / ", el("span", { class: "mono" }, r.spanID)));
  const parent = node.parent ? `${node.parent.service}: ${node.parent.span.operationName}` : "none (root)";
  detail.replaceChildren(
    el("h2", {}, node.service, ": ", s.operationName),
    el("table", { class: "kv facts" }, el("tbody", {},
      [["Span ID", s.spanID], ["Parent", parent], ["Kind", tagValue(s.tags, "span.kind") || "unspecified"], ["Start", `+${fmtDuration(node.start - m.start)}`],
        ["Duration", fmtDuration(s.duration)], ["Self time", fmtDuration(node.self)],
        ["Status", status + (tagValue(s.tags, "otel.status_description") ? ": " + tagValue(s.tags, "otel.status_description") : "")],
        ["Scope", [tagValue(s.tags, "otel.scope.name"), tagValue(s.tags, "otel.scope.version")].filter(Boolean).join(" ") || "—"]]
        .map(([k, v]) => el("tr", { class: k === "Status" && status === "ERROR" ? "error" : "" }, el("td", { class: "key" }, k), el("td", { class: "val" }, v))))),
    kvTable("Attributes", attrs, "attributes"),
    kvTable("Sandbox (wasm.*)", wasm, "wasm-attributes"),
    events.length ? el("section", { id: "events" }, el("h3", {}, "Events"), events) : null,
    kvTable(`Resource (${node.service})`, node.process.tags, "resource"),
    links.length ? el("section", { id: "links" }, el("h3", {}, "Links"), el("ul", {}, links)) : null);
}

// ---- compare -------------------------------------------------------------

/** Each span keyed by its path of names from the root (repeats numbered). */
function paths(m) {
  const out = new Map();
  const walk = (node, prefix, depth) => {
    let key = `${prefix}/${node.service}: ${node.span.operationName}`;
    let n = 2;
    const base = key;
    while (out.has(key)) key = `${base} #${n++}`;
    out.set(key, { node, depth });
    node.children.forEach((c) => walk(c, key, depth + 1));
  };
  m.roots.forEach((r) => walk(r, "", 0));
  return out;
}

async function comparePage(a, b) {
  const form = el("form", { class: "inline", id: "compare-form" });
  const ia = el("input", { placeholder: "trace id A", size: 34, value: a || "" });
  const ib = el("input", { placeholder: "trace id B", size: 34, value: b || "" });
  form.append(ia, " vs ", ib, el("button", { type: "submit" }, "Compare"));
  form.addEventListener("submit", (e) => { e.preventDefault(); const x = ia.value.trim().toLowerCase(), y = ib.value.trim().toLowerCase(); if (isHex(x) && isHex(y)) navigate(`/compare/${x}/${y}`); });
  const out = el("div", { id: "comparison" });
  app.replaceChildren(el("h1", {}, "Compare two traces"), el("p", { class: "muted" }, "Pick two traces on the search page, or paste their ids. Spans are matched by their path of service and name from the root."), form, out);
  refreshStats();
  if (!isHex(a) || !isHex(b)) return;
  let ma, mb;
  try {
    [ma, mb] = await Promise.all([a, b].map(async (id) => model((await api(`/api/traces/${id}`)).data[0])));
  } catch (e) { showError(out, e); return; }
  const pa = paths(ma), pb = paths(mb);
  const keys = [...pa.keys()];
  for (const k of pb.keys()) if (!pa.has(k)) keys.push(k);
  const cell = (entry) => entry ? el("td", { class: entry.node.error ? "num error" : "num" }, fmtDuration(entry.node.span.duration), entry.node.error ? " ⚠" : "") : el("td", { class: "num muted" }, "—");
  const rows = keys.map((k) => {
    const ea = pa.get(k), eb = pb.get(k);
    const any = ea || eb;
    const name = el("td", {}, el("span", { class: "svc" }, any.node.service), " ", any.node.span.operationName);
    name.style.paddingLeft = 6 + any.depth * 14 + "px";
    let diff = "";
    if (ea && eb) {
      const d = eb.node.span.duration - ea.node.span.duration;
      diff = el("td", { class: d > 0 ? "num slower" : "num faster" }, (d > 0 ? "+" : "−") + fmtDuration(Math.abs(d)));
    } else diff = el("td", { class: "num" }, ea ? "only in A" : "only in B");
    return el("tr", { class: ea && eb ? "both" : ea ? "only-a" : "only-b" }, name, cell(ea), cell(eb), diff);
  });
  const head = (label, m, id) => el("th", { class: "num" }, link(`/trace/${id}`, label), el("div", { class: "muted" }, `${m.root.span.operationName} · ${fmtDuration(m.duration)}${m.errors ? " · ⚠ " + m.errors : ""}`));
  out.replaceChildren(
    el("p", {}, `A: ${ma.nodes.length} spans, B: ${mb.nodes.length} spans; ${rows.filter((r) => r.className === "only-a").length} only in A, ${rows.filter((r) => r.className === "only-b").length} only in B.`),
    el("table", { class: "compare" }, el("thead", {}, el("tr", {}, el("th", {}, "Span"), head("A", ma, a), head("B", mb, b), el("th", { class: "num" }, "B − A"))), el("tbody", {}, rows)));
}

// ---- services ------------------------------------------------------------

async function servicesPage() {
  const table = el("div", { id: "figures" });
  app.replaceChildren(el("h1", {}, "Services"), el("p", { class: "muted" }, "Computed from the spans the explorer holds: spans per second over the time they cover, the share with status ERROR, and duration percentiles (nearest rank)."), table);
  const load = async () => {
    refreshStats();
    try {
      const rows = (await api("/api/explorer/services")).data;
      if (!rows.length) { table.replaceChildren(el("p", { class: "muted" }, "No spans yet.")); return; }
      const ms = (v) => v.toFixed(v < 10 ? 2 : 1) + " ms";
      table.replaceChildren(el("table", { class: "results figures" },
        el("thead", {}, el("tr", {}, ["Service / operation", "Spans", "Rate", "Errors", "p50", "p95", "p99"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows.map((r) => el("tr", { class: r.operation ? "op-row" : "service-row" },
          el("td", {}, r.operation ? el("span", { class: "indent" }, r.operation) : badge(r.service, 0)),
          el("td", { class: "num" }, String(r.count)), el("td", { class: "num" }, r.rate.toFixed(2) + "/s"),
          el("td", { class: r.errors ? "num error" : "num" }, (r.error_rate * 100).toFixed(1) + "%"),
          el("td", { class: "num" }, ms(r.p50_ms)), el("td", { class: "num" }, ms(r.p95_ms)), el("td", { class: "num" }, ms(r.p99_ms)))))));
    } catch (e) { showError(table, e); }
  };
  await load();
  pollTimer = setInterval(load, 3000);
}

render();
