// The operator console: the REST API and its live stream, nothing else, no libraries.
// Rules: user text is only ever set as textContent; what changed is patched in place, and
// nothing the operator has focused or typed into is ever rebuilt.
"use strict";

const TOKEN_KEY = "switchboard-token";
const $ = (id) => document.getElementById(id);
const state = {
  session: null,
  agents: [],
  requests: new Map(), // request id -> digest, pending only
  threads: new Map(), // thread id -> digest
  open: null, // {id, count, stale}: the thread on screen, how many log entries it shows
  stream: null,
};

// ---- small helpers ---------------------------------------------------------------------
function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key === "class") node.className = value;
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function ago(iso) {
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  const future = s < 0;
  const n = Math.abs(s);
  const text = n < 60 ? `${n} s` : n < 3600 ? `${Math.floor(n / 60)} min` : n < 86400 ? `${Math.floor(n / 3600)} h` : `${Math.floor(n / 86400)} d`;
  return future ? `in ${text}` : `${text} ago`;
}

function clock(iso) {
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay ? d.toLocaleTimeString() : d.toLocaleString();
}

function when(iso, prefix) {
  return el("time", { datetime: iso, title: new Date(iso).toLocaleString(), "data-rel": prefix || "", text: (prefix || "") + ago(iso) });
}

function refreshTimes() {
  for (const t of document.querySelectorAll("time[data-rel]")) t.textContent = t.dataset.rel + ago(t.getAttribute("datetime"));
}

function value(v) {
  return typeof v === "string" ? v : JSON.stringify(v);
}

function notice(text) {
  $("notice").textContent = text;
}

function typedInto(node) {
  if (node.contains(document.activeElement) && document.activeElement !== node) return true;
  return [...node.querySelectorAll("textarea, input")].some((i) => i.value !== "" && i.defaultValue !== i.value);
}

// ---- the API ---------------------------------------------------------------------------
class Unauthorized extends Error {}

function headers(json) {
  const h = json ? { "content-type": "application/json" } : {};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) h.authorization = "Bearer " + token;
  return h;
}

async function api(path, body) {
  const init = body === undefined ? { headers: headers(false) } : { method: "POST", headers: headers(true), body: JSON.stringify(body) };
  const response = await fetch(path, init);
  const data = await response.json().catch(() => ({}));
  if (response.status === 401) {
    signedOut(sessionStorage.getItem(TOKEN_KEY) ? "The token was refused. Sign in again." : "");
    throw new Unauthorized("unauthorized");
  }
  if (!response.ok) {
    const detail = Array.isArray(data.detail) ? data.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ") : data.detail;
    throw new Error(detail || `${response.status} ${response.statusText}`);
  }
  return data;
}

// ---- the live stream: fetch() so the token travels in a header, never in a URL ----------
function connect() {
  if (state.stream) state.stream.abort();
  const control = new AbortController();
  state.stream = control;
  let retry = 0;
  const live = $("live");
  const run = async () => {
    while (!control.signal.aborted) {
      try {
        const response = await fetch("/v1/stream", { headers: headers(false), signal: control.signal, cache: "no-store" });
        if (response.status === 401) return signedOut("The token was refused. Sign in again.");
        if (!response.ok || !response.body) throw new Error(`stream: ${response.status}`);
        live.dataset.state = "live";
        live.textContent = "live";
        retry = 0;
        await readEvents(response.body, control.signal);
      } catch (err) {
        if (control.signal.aborted) return;
      }
      live.dataset.state = "off";
      live.textContent = "reconnecting…";
      retry = Math.min(retry + 1, 5);
      await new Promise((resolve) => setTimeout(resolve, 400 * retry));
    }
  };
  run();
}

async function readEvents(body, signal) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  signal.addEventListener("abort", () => reader.cancel().catch(() => {}));
  let buffer = "";
  for (;;) {
    const { value: chunk, done } = await reader.read();
    if (done) return;
    // Lines end in CRLF; a CR at the end of a chunk waits in the buffer for its LF.
    buffer = (buffer + chunk).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue;
      // A fault in patching is a bug to see, not a reason to drop the connection.
      try { dispatch(name, JSON.parse(data.join("\n"))); } catch (err) { reportError(err); }
    }
  }
}

function dispatch(name, data) {
  if (name === "snapshot") onSnapshot(data);
  else if (name === "thread") onThread(data);
}

function onSnapshot(snap) {
  const pending = new Set(snap.requests.map((r) => r.request.request_id));
  for (const id of [...state.requests.keys()]) if (!pending.has(id)) settle(id, "no longer pending");
  for (const r of snap.requests) upsertRequest(r);
  const shown = new Set(snap.threads.map((t) => t.meta.thread_id));
  for (const id of [...state.threads.keys()]) if (!shown.has(id)) removeThread(id);
  for (const t of snap.threads) upsertThread(t);
  if (state.open) loadThread(state.open.id);
  counts();
}

function onThread(change) {
  upsertThread(change.thread);
  for (const r of change.requests) {
    if (r.status === "pending") upsertRequest(r);
    else if (state.requests.has(r.request.request_id)) settle(r.request.request_id, r.status);
  }
  if (state.open && state.open.id === change.thread.meta.thread_id) patchThread(change);
  counts();
}

function counts() {
  const n = state.requests.size;
  document.title = n ? `(${n}) Switchboard` : "Switchboard";
  const badge = $("inbox-count");
  badge.textContent = n;
  badge.dataset.n = n;
  $("inbox-empty").hidden = $("inbox").children.length > 0;
  $("threads-empty").hidden = state.threads.size > 0;
  if (state.open) $("thread-requests-empty").hidden = $("thread-requests").children.length > 0;
}

// ---- requests: one card per list it shows in, patched, never rebuilt --------------------
function facts(r) {
  const parts = [];
  const record = r.request;
  if (r.asked) parts.push("asked by ", el("b", { text: r.asked.by }), ` via ${r.asked.channel}: `, el("q", { text: r.asked.text }), " · ");
  parts.push(when(record.created), ` · ${r.agent}`);
  const offers = r.offers.map((o) => `${o.channel}:${o.address} (${o.status})`);
  if (offers.length) parts.push(` · offered on ${offers.join(", ")}`);
  if (record.deadline) parts.push(" · ", when(record.deadline, "deadline "));
  const needed = r.approvals_needed ?? record.approvals_needed;
  if (needed !== undefined) parts.push(` · approvals ${r.approvals_given ?? record.approvals_given ?? 0} of ${needed}`);
  return parts;
}

function call(record) {
  const list = el("dl", { class: "call", "aria-label": "The call" }, el("dt", { text: "tool" }), el("dd", { text: record.tool }));
  for (const [k, v] of Object.entries(record.arguments || {})) list.append(el("dt", { text: k }), el("dd", { text: value(v) }));
  return list;
}

function card(r, where) {
  const record = r.request;
  const id = record.request_id;
  const key = `${where}-${id}`;
  const approval = record.kind === "approval";
  const error = el("p", { class: "error", role: "alert" });
  const form = el("form", { class: "decide", "aria-label": approval ? "Decide" : "Answer" });
  const box = el("textarea", { id: `text-${key}`, rows: 2, name: approval ? "reason" : "answer", required: !approval });
  form.append(el("label", { for: box.id, text: approval ? "Reason (sent to the agent with a rejection)" : "Your answer" }), box);
  const send = async (body, verb) => {
    error.textContent = "";
    for (const b of form.querySelectorAll("button")) b.disabled = true;
    try {
      await api(`/v1/requests/${id}`, body);
      notice(`${verb} ${approval ? record.tool : "question"} (${id}).`);
      drop(id);
    } catch (err) {
      error.textContent = err.message;
      for (const b of form.querySelectorAll("button")) b.disabled = false;
    }
  };
  if (approval) {
    form.append(
      el("button", { type: "button", class: "primary", text: "Approve", onclick: () => send({ decision: "approve" }, "Approved") }),
      el("button", { type: "button", class: "danger", text: "Reject", onclick: () => send({ decision: "reject", comment: box.value || null }, "Rejected") }),
    );
    if ((record.grants || []).includes("thread")) {
      // Before Reject, like the Slack message: later calls of this tool on the thread run unasked.
      form.insertBefore(el("button", { type: "button", text: "Approve for this thread", onclick: () => send({ decision: "approve", grant: "thread" }, "Approved for this thread") }), form.lastElementChild);
    }
    const editable = record.editable || r.editable;
    if (Array.isArray(editable) && editable.length) form.append(editForm(record, editable, key, send));
    form.addEventListener("submit", (event) => event.preventDefault());
  } else {
    form.append(el("button", { type: "submit", class: "primary", text: "Answer" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (box.value.trim()) send({ answer: box.value }, "Answered");
    });
  }
  form.append(error);
  const head = el("div", { class: "card-head" },
    el("h3", { id: `h-${key}`, text: approval ? `Approve ${record.tool}?` : "Question" }),
    where === "inbox" ? el("a", { href: `#thread/${record.thread_id}`, text: record.thread_id }) : null);
  const node = el("li", { "data-id": id, "data-agent": r.agent, "data-kind": record.kind, "aria-labelledby": `h-${key}` },
    head, el("p", { class: "ask", text: record.text }), approval ? call(record) : null,
    el("p", { class: "facts" }, ...facts(r)), form);
  return node;
}

function editForm(record, editable, key, send) {
  const details = el("details", {}, el("summary", { text: "Edit, then approve" }));
  const inputs = {};
  for (const name of editable) {
    const input = el("input", { id: `edit-${key}-${name}`, name, value: value((record.arguments || {})[name] ?? "") });
    inputs[name] = input;
    details.append(el("label", { for: input.id, text: name }), input);
  }
  const submit = () => {
    const args = {};
    for (const [name, input] of Object.entries(inputs)) {
      const before = (record.arguments || {})[name];
      try { args[name] = typeof before === "string" ? input.value : JSON.parse(input.value); } catch { args[name] = input.value; }
    }
    send({ decision: "approve", arguments: args }, "Approved (edited)");
  };
  details.append(el("button", { type: "button", class: "primary", text: "Approve with these values", onclick: submit }));
  return details;
}

function placeInOrder(list, node, created) {
  const later = [...list.children].find((c) => c.dataset.created > created);
  node.dataset.created = created;
  list.insertBefore(node, later || null);
}

function upsertRequest(r) {
  const id = r.request.request_id;
  state.requests.set(id, r);
  const lists = [["inbox", $("inbox")]];
  if (state.open && state.open.id === r.request.thread_id) lists.push(["thread", $("thread-requests")]);
  for (const [where, list] of lists) {
    const existing = list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
    if (existing) existing.querySelector(".facts").replaceChildren(...facts(r));
    else placeInOrder(list, card(r, where), r.request.created);
  }
  filterInbox();
}

// A request decided elsewhere: its card goes, unless the operator is in the middle of it.
function settle(id, why) {
  state.requests.delete(id);
  for (const node of document.querySelectorAll(`.cards li[data-id="${CSS.escape(id)}"]`)) {
    if (!typedInto(node)) { node.remove(); continue; }
    if (node.classList.contains("settled")) continue;
    node.classList.add("settled");
    for (const b of node.querySelectorAll(".decide > button")) b.disabled = true;
    node.querySelector(".error").textContent = `This request is ${why}: it was decided elsewhere.`;
    node.querySelector(".decide").append(el("button", { type: "button", text: "Dismiss", onclick: () => { node.remove(); counts(); } }));
  }
  counts();
}

function drop(id) {
  state.requests.delete(id);
  for (const node of document.querySelectorAll(`.cards li[data-id="${CSS.escape(id)}"]`)) node.remove();
  counts();
}

function filterInbox() {
  const agent = $("filter-agent").value;
  const kind = $("filter-kind").value;
  for (const li of $("inbox").children) li.hidden = (agent && li.dataset.agent !== agent) || (kind && li.dataset.kind !== kind);
}

// ---- threads ---------------------------------------------------------------------------
function threadLine(t) {
  const status = el("span", { class: `status ${t.state.status}`, text: t.state.status.replace("_", " ") });
  return [
    el("span", { class: "first", text: t.first ? t.first.text : t.meta.thread_id }),
    t.last_word ? el("span", { class: "last", text: `${t.meta.agent}: ${t.last_word}` }) : null,
    el("span", { class: "facts" }, `${t.meta.thread_id} · ${t.meta.agent} · from ${t.meta.origin.channel} · `, status,
      t.pending ? ` · ${t.pending} pending` : "", " · ", when(t.last_activity)),
  ];
}

function upsertThread(t) {
  const id = t.meta.thread_id;
  state.threads.set(id, t);
  const list = $("threads");
  const existing = list.querySelector(`li[data-id="${CSS.escape(id)}"]`);
  if (existing) {
    existing.firstChild.replaceChildren(...threadLine(t));
  } else {
    const node = el("li", { "data-id": id }, el("a", { href: `#thread/${id}` }, ...threadLine(t)));
    const newer = [...list.children].find((c) => c.dataset.created < t.meta.created);
    node.dataset.created = t.meta.created;
    list.insertBefore(node, newer || null);
  }
  if (state.open && state.open.id === id) threadHeader(t);
  search();
}

function removeThread(id) {
  state.threads.delete(id);
  const node = $("threads").querySelector(`li[data-id="${CSS.escape(id)}"]`);
  if (node && !node.contains(document.activeElement)) node.remove();
}

function search() {
  const words = $("search").value.trim().toLowerCase();
  for (const li of $("threads").children) {
    const t = state.threads.get(li.dataset.id);
    const text = t ? [t.meta.thread_id, t.meta.agent, t.first?.text, t.last_word].join(" ").toLowerCase() : "";
    li.hidden = words !== "" && !words.split(/\s+/).every((w) => text.includes(w));
  }
  // The list holds the newest threads only: an id that is not among them opens directly.
  const id = $("search").value.trim();
  const direct = $("search-open");
  direct.hidden = !/^th_\w+$/.test(id) || state.threads.has(id);
  direct.firstChild.href = `#thread/${id}`;
  direct.firstChild.textContent = `Open ${id}`;
}

// ---- one thread ------------------------------------------------------------------------
function describe(e) {
  switch (e.type) {
    case "user_message": return [`${e.sender} via ${e.channel}`, e.text];
    case "agent_step": {
      const args = Object.entries(e.arguments || {}).map(([k, v]) => `${k}=${value(v)}`).join(", ");
      return [`agent chose ${e.intent} (${e.prompt})`, args];
    }
    case "tool_result": return [`${e.tool} → ${e.outcome || "ok"}`, e.output];
    case "tool_error": return [`${e.tool} failed`, e.error];
    case "llm_error": return [`model error: ${e.kind}`, e.error];
    case "question": return [`agent asked for an answer (${e.request_id})`, e.text];
    case "approval_request": return [`agent asked for an approval (${e.request_id})`, e.text];
    case "approved":
    case "rejected": return [`${e.responder} via ${e.channel} ${e.type} ${e.request_id}`, e.comment || ""];
    case "answered": return [`${e.responder} via ${e.channel} answered ${e.request_id}`, e.answer];
    case "delivery_failed":
      return [`${e.message} to ${e.channel}:${e.address} ${e.outcome === "unknown" ? "may not have arrived" : "did not arrive"}`, e.reason];
    case "rerouted": return [e.to ? `offered at ${e.to}` : "not moved", e.text];
    case "final_answer": return ["agent answered", e.text];
    case "system_note": return [`service: ${e.kind.replace("_", " ")}`, e.text];
    case "tool_started": return [`${e.tool} started${e.agent ? ` on ${e.agent}` : ""}, waiting for its result`, e.external_id];
    case "call_reported": return [`${e.outcome} of ${e.call_id} from ${e.by}`, e.text];
    case "call_due": return [`${e.call_id} timed out`, ""];
    case "cancel_requested": return [`${e.by} asked to cancel`, e.reason || ""];
    default: return [e.type.replaceAll("_", " "), e.text || e.comment || e.answer || e.error || ""];
  }
}

function entry(e) {
  const [what, body] = describe(e);
  return el("li", { class: e.type }, el("div", { class: "what" }, el("span", { text: what }), el("time", { datetime: e.at, text: clock(e.at) })),
    body ? el("p", { class: "body", text: body }) : null);
}

function threadHeader(t) {
  $("thread-title").textContent = t.first ? t.first.text : t.meta.thread_id;
  $("thread-meta").replaceChildren(`${t.meta.thread_id} · ${t.meta.agent} · from ${t.meta.origin.channel}:${t.meta.origin.address} · `,
    el("span", { class: `status ${t.state.status}`, text: t.state.status.replace("_", " ") }), ` · steps: ${t.state.steps}`);
}

// A handoff's threads link each other: the parent that started this one, the children it started.
function threadLinks(view) {
  const parts = [];
  const parent = view.meta.parent;
  if (parent) parts.push("handed over by ", el("a", { href: `#thread/${parent.thread_id}`, text: parent.thread_id }));
  for (const c of view.children || []) {
    if (parts.length) parts.push(" · ");
    parts.push(`handed to ${c.agent}: `, el("a", { href: `#thread/${c.thread_id}`, text: c.thread_id }));
  }
  $("thread-links").replaceChildren(...parts);
  $("thread-links").hidden = parts.length === 0;
}

function delivery(o) {
  const to = `${o.item.to.channel}:${o.item.to.address}`;
  // "unknown": the provider may have taken it (a lost answer); what it reported later shows too.
  const status = o.status === "unknown" ? "outcome unknown" : o.status;
  const reported = o.reported && o.reported.length ? `; ${o.item.to.channel} reported ${o.reported.join(", ")}` : "";
  const text = `${o.item.kind} to ${to}: ${status}${o.attempts > 1 ? ` after ${o.attempts} attempts` : ""}${o.error ? ` (${o.error})` : ""}${reported}`;
  return [el("span", { text }), " · ", el("time", { datetime: o.item.created, text: clock(o.item.created) })];
}

function patchDeliveries(outbox) {
  const list = $("deliveries");
  for (const o of outbox) {
    let node = list.querySelector(`li[data-id="${CSS.escape(o.item.outbox_id)}"]`);
    if (!node) list.append((node = el("li", { "data-id": o.item.outbox_id })));
    node.className = `delivery ${o.status}`;
    node.replaceChildren(...delivery(o));
  }
}

async function loadThread(id) {
  let view;
  try {
    view = await api(`/v1/threads/${encodeURIComponent(id)}`);
  } catch (err) {
    if (!(err instanceof Unauthorized)) $("thread-meta").textContent = `Cannot show ${id}: ${err.message}`;
    return;
  }
  if (!state.open || state.open.id !== id) return;
  const fresh = state.open.count === null;
  if (fresh) $("timeline").replaceChildren(...view.events.map(entry));
  else $("timeline").append(...view.events.slice(state.open.count).map(entry));
  state.open.count = view.events.length;
  $("arriving").replaceChildren(...view.inbox.map(entry));
  patchDeliveries(view.outbox);
  threadLinks(view);
  const t = state.threads.get(id);
  if (t) threadHeader(t);
  else $("thread-title").textContent = id;
  for (const r of state.requests.values()) if (r.request.thread_id === id) upsertRequest(r);
  counts();
  if (state.open.stale) { // changed while it loaded: the read may predate the change
    state.open.stale = false;
    loadThread(id);
  }
}

function patchThread(change) {
  if (state.open.count === null) { state.open.stale = true; return; } // read again once loaded
  if (change.events_from > state.open.count) return loadThread(state.open.id);
  $("timeline").append(...change.events.slice(state.open.count - change.events_from).map(entry));
  state.open.count = Math.max(state.open.count, change.events_from + change.events.length);
  $("arriving").replaceChildren(...change.inbox.map(entry));
  patchDeliveries(change.outbox);
}

function openThread(id) {
  if (state.open && state.open.id === id) return;
  state.open = { id, count: null, stale: false };
  $("timeline").replaceChildren();
  $("arriving").replaceChildren();
  $("deliveries").replaceChildren();
  $("thread-requests").replaceChildren();
  $("thread-meta").textContent = "";
  $("thread-links").replaceChildren();
  $("thread-links").hidden = true;
  $("thread-title").textContent = id;
  $("reply").value = "";
  $("reply-form").querySelector(".error").textContent = "";
  loadThread(id);
}

// ---- views -----------------------------------------------------------------------------
function show(view, focus) {
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== `view-${view}`;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.view === view) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (focus) $(`view-${view}`).querySelector("h2").focus();
}

function route(focus) {
  if (!state.session) return show("signin", focus);
  const hash = location.hash.slice(1);
  if (hash.startsWith("thread/")) {
    openThread(decodeURIComponent(hash.slice(7)));
    return show("thread", focus);
  }
  state.open = null;
  show(["threads", "new"].includes(hash) ? hash : "inbox", focus);
}

function signedOut(message) {
  if (state.stream) state.stream.abort();
  state.stream = null;
  state.session = null;
  $("who").textContent = "";
  $("sign-out").hidden = true;
  $("signin-form").querySelector(".error").textContent = message || "";
  $("live").dataset.state = "off";
  $("live").textContent = "offline";
  show("signin");
}

async function start() {
  let session;
  try {
    session = await api("/v1/session");
  } catch (err) {
    if (!(err instanceof Unauthorized)) signedOut(`Cannot reach the service: ${err.message}`);
    return;
  }
  state.session = session;
  $("who").textContent = session.auth === "loopback"
    ? "Loopback mode: no API token is configured"
    : `Signed in as ${session.operator}`;
  $("sign-out").hidden = session.auth === "loopback";
  state.agents = await api("/v1/agents");
  const options = () => state.agents.map((a) => el("option", { value: a.name, text: a.description ? `${a.name} — ${a.description}` : a.name, selected: a.default }));
  $("new-agent").replaceChildren(...options());
  $("filter-agent").replaceChildren(el("option", { value: "", text: "all" }), ...state.agents.map((a) => el("option", { value: a.name, text: a.name })));
  connect();
  route(false);
}

function formError(form, err) {
  if (!(err instanceof Unauthorized)) form.querySelector(".error").textContent = err.message;
}

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value);
    $("token").value = "";
    start();
  });
  $("sign-out").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    signedOut("Signed out.");
  });
  $("new-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    try {
      const made = await api("/v1/threads", { message: $("new-message").value, agent: $("new-agent").value });
      $("new-message").value = "";
      location.hash = `#thread/${made.thread_id}`;
    } catch (err) { formError(form, err); }
  });
  $("reply-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.target;
    form.querySelector(".error").textContent = "";
    try {
      await api(`/v1/threads/${encodeURIComponent(state.open.id)}/messages`, { message: $("reply").value });
      $("reply").value = "";
      notice("Message sent to the thread.");
    } catch (err) { formError(form, err); }
  });
  $("audit").addEventListener("click", async () => {
    const id = state.open.id;
    const record = await api(`/v1/threads/${encodeURIComponent(id)}`);
    const link = el("a", { href: URL.createObjectURL(new Blob([JSON.stringify(record, null, 2)], { type: "application/json" })), download: `${id}.json` });
    link.click();
    URL.revokeObjectURL(link.href);
  });
  $("filter-agent").addEventListener("change", filterInbox);
  $("filter-kind").addEventListener("change", filterInbox);
  $("search").addEventListener("input", search);
  window.addEventListener("hashchange", () => route(true));
  setInterval(refreshTimes, 15000);
  start();
});
