// The real-time events feed: events newest first (filters by handling state, type and school), new ones
// arriving over the WebSocket at the top with a highlight and an optional sound, and for the chosen event its
// evidence, the steps acknowledge → dispatch → resolve with notes, and its history. The server applies the
// user's scope to everything here (and to what the feed pushes).

import { ApiError, api, boot, el, feed, fmtTime, t, toast } from "/static/console.js";
import { AlarmSound, severityLabel, typeLabel } from "/static/ops.js";

const LIMIT = 100;
const FRESH_MS = 8000;
const can = boot.can || {};
const rows = document.getElementById("event-rows");
const detail = document.getElementById("event-detail");
const form = document.getElementById("filters");
const sound = new AlarmSound(document.getElementById("sound"));

let events = new Map(); // id -> event, as listed
let selected = null;

function filters() {
  const data = new FormData(form);
  return { status: data.get("status") || "", type: data.get("type") || "", school: data.get("school") || "" };
}

function matches(event) {
  const f = filters();
  return (
    (!f.status || event.status === f.status) && (!f.type || event.type === f.type) && (!f.school || event.school_code === f.school)
  );
}

function statusBadge(status) {
  return el("span", { class: `status ${status}`, "data-testid": "event-status" }, t(`events.status.${status}`));
}

function row(event, { fresh = false } = {}) {
  const evidence = event.evidence_url
    ? el("img", { class: "evidence-thumb", alt: "", loading: "lazy", src: event.evidence_url })
    : el("span", { class: "muted" }, "—");
  const tr = el(
    "tr",
    {
      class: fresh ? "event fresh" : "event",
      "data-testid": "event-row",
      dataset: { id: String(event.id), school: event.school_code, camera: event.camera_code, status: event.status },
      tabindex: "0",
    },
    el("td", {}, el("time", { datetime: event.started_at }, fmtTime(event.started_at))),
    el("td", {}, typeLabel(event.type)),
    el("td", { "data-testid": "event-school" }, event.school_name, el("small", { class: "muted" }, ` ${event.school_code}`)),
    el("td", {}, event.camera_code),
    el("td", {}, el("span", { class: `severity ${event.severity}` }, severityLabel(event.severity))),
    el("td", {}, statusBadge(event.status)),
    el("td", {}, evidence),
  );
  if (selected === event.id) tr.classList.add("selected");
  tr.addEventListener("click", () => select(event.id));
  tr.addEventListener("keydown", (e) => e.key === "Enter" && select(event.id));
  if (fresh) setTimeout(() => tr.classList.remove("fresh"), FRESH_MS);
  return tr;
}

function showEmpty() {
  if (rows.querySelector("tr.event")) return;
  rows.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: "7", class: "muted" }, t("events.empty"))));
}

async function load() {
  const f = filters();
  const params = new URLSearchParams({ limit: String(LIMIT) });
  if (f.status) params.set("status", f.status);
  if (f.type) params.set("type", f.type);
  if (f.school) params.set("school", f.school);
  let list;
  try {
    list = await api(`/api/events?${params}`);
  } catch (err) {
    rows.replaceChildren(el("tr", {}, el("td", { colspan: "7", class: "error" }, t("events.load_failed", { detail: err.message }))));
    return;
  }
  events = new Map(list.map((e) => [e.id, e]));
  rows.replaceChildren(...list.map((e) => row(e)));
  showEmpty();
}

function upsert(event, { fresh = false } = {}) {
  const existing = rows.querySelector(`tr.event[data-id="${event.id}"]`);
  if (!matches(event)) {
    if (existing) existing.remove();
    events.delete(event.id);
    showEmpty();
    return;
  }
  events.set(event.id, event);
  const tr = row(event, { fresh });
  if (existing) existing.replaceWith(tr);
  else {
    rows.querySelector("tr.empty")?.remove();
    rows.prepend(tr);
  }
}

async function loadSchools() {
  const box = document.getElementById("filter-school");
  try {
    const page = await api("/api/schools?limit=1000");
    const schools = Array.isArray(page) ? page : page.items || [];
    box.append(...schools.map((s) => el("option", { value: s.code }, `${s.name} (${s.code})`)));
  } catch {
    // the filter stays "all"; the list itself still loads
  }
}

// -- detail and actions -------------------------------------------------------------------------------------

async function select(id) {
  selected = id;
  for (const tr of rows.querySelectorAll("tr.event")) tr.classList.toggle("selected", tr.dataset.id === String(id));
  let event;
  try {
    event = await api(`/api/events/${id}`);
  } catch (err) {
    detail.replaceChildren(el("p", { class: "error" }, err.message));
    return;
  }
  if (selected !== id) return;
  renderDetail(event);
}

function fieldRow(label, value) {
  return el("div", { class: "kv" }, el("span", { class: "muted" }, label), el("span", {}, value));
}

function historyList(actions) {
  if (!actions || actions.length === 0) return el("p", { class: "muted" }, t("events.history.empty"));
  return el(
    "ol",
    { class: "history", "data-testid": "history" },
    ...actions.map((a) =>
      el(
        "li",
        { dataset: { action: a.action } },
        el("time", { datetime: a.at }, fmtTime(a.at)),
        " ",
        el("strong", {}, t(`events.history.${a.action}`)),
        " ",
        a.user ? el("span", {}, a.user.display_name || a.user.username) : null,
        a.note ? el("div", { class: "note" }, a.note) : null,
      ),
    ),
  );
}

async function act(event, path, body, button) {
  button.disabled = true;
  try {
    const updated = await api(`/api/events/${event.id}/${path}`, { method: "POST", body });
    toast(t("events.done"));
    upsert(updated);
    if (selected === event.id) renderDetail(updated);
  } catch (err) {
    toast(err instanceof ApiError ? err.message : String(err), { error: true });
    button.disabled = false;
    if (err instanceof ApiError && err.status === 409) select(event.id);
  }
}

function actions(event) {
  const box = el("div", { class: "actions", "data-testid": "actions" });
  if (can.act) {
    if (event.status === "new") {
      const ack = el("button", { type: "button", "data-testid": "acknowledge" }, t("events.action.acknowledge"));
      ack.addEventListener("click", () => act(event, "acknowledge", {}, ack));
      box.append(ack);
    }
    if (event.status === "acknowledged" || event.status === "dispatched") {
      const to = el("input", {
        name: "to",
        "data-testid": "dispatch-to",
        maxlength: "200",
        placeholder: t("events.dispatch_to"),
        value: event.disposition?.dispatched_to || "",
      });
      const send = el("button", { type: "button", "data-testid": "dispatch" }, t("events.action.dispatch"));
      send.addEventListener("click", () => {
        if (!to.value.trim()) return toast(t("events.need_dispatch_to"), { error: true });
        act(event, "dispatch", { to: to.value.trim() }, send);
      });
      const how = el("textarea", { name: "resolve", rows: "2", maxlength: "1000", "data-testid": "resolve-note", placeholder: t("events.resolve_note") });
      const done = el("button", { type: "button", class: "secondary", "data-testid": "resolve" }, t("events.action.resolve"));
      done.addEventListener("click", () => {
        if (!how.value.trim()) return toast(t("events.need_note"), { error: true });
        act(event, "resolve", { note: how.value.trim() }, done);
      });
      box.append(el("div", { class: "step" }, to, send), el("div", { class: "step" }, how, done));
    }
  }
  if (can.note) {
    const note = el("textarea", { name: "note", rows: "2", maxlength: "1000", "data-testid": "note", placeholder: t("events.note") });
    const add = el("button", { type: "button", class: "secondary", "data-testid": "add-note" }, t("events.action.note"));
    add.addEventListener("click", () => {
      if (!note.value.trim()) return toast(t("events.need_note"), { error: true });
      act(event, "notes", { note: note.value.trim() }, add);
    });
    box.append(el("div", { class: "step" }, note, add));
  }
  if (!can.act && !can.note) box.append(el("p", { class: "muted" }, t("events.read_only")));
  return box;
}

function renderDetail(event) {
  const picture = event.evidence_url
    ? el("img", { class: "evidence", alt: "", src: event.evidence_url, "data-testid": "detail-evidence" })
    : null;
  const d = event.disposition || {};
  detail.replaceChildren(
    ...[
      el("h2", {}, t("events.detail", { id: event.id }), " ", statusBadge(event.status)),
      picture,
      fieldRow(t("events.col.type"), `${typeLabel(event.type)} · ${severityLabel(event.severity)}`),
      fieldRow(t("events.col.school"), `${event.school_name} (${event.school_code})`),
      fieldRow(t("events.col.camera"), el("a", { href: `/live/${encodeURIComponent(event.camera_code)}` }, event.camera_code)),
      fieldRow(t("events.detail.started"), fmtTime(event.started_at)),
      fieldRow(t("events.detail.zone"), event.zone || "—"),
      fieldRow(t("events.detail.detail"), event.detail || "—"),
      event.ended_at ? fieldRow("", t("events.ended", { time: fmtTime(event.ended_at) })) : fieldRow("", t("events.ongoing")),
      d.dispatched_to ? fieldRow(t("events.detail.dispatched_to"), d.dispatched_to) : null,
      actions(event),
      el("h3", {}, t("events.history")),
      historyList(event.actions),
    ].filter(Boolean),
  );
  detail.dataset.event = String(event.id);
}

// -- the feed ---------------------------------------------------------------------------------------------------

async function arrived(id, { fresh }) {
  let event;
  try {
    event = await api(`/api/events/${id}`);
  } catch {
    return; // outside the scope, or gone
  }
  const isNew = !events.has(event.id);
  upsert(event, { fresh: fresh && isNew });
  if (fresh && isNew && matches(event)) {
    toast(t("events.new_arrived", { type: typeLabel(event.type), school: event.school_name }));
    sound.beep(2);
  }
  if (selected === event.id) renderDetail(event);
}

feed((message) => {
  if (message.type === "feed.open") {
    load();
    return;
  }
  const payload = message.payload || {};
  const type = message.type || "";
  if (payload.event_id === undefined || payload.event_id === null || !type.startsWith("event.")) return;
  arrived(payload.event_id, { fresh: type === "event.started" });
});

form.addEventListener("submit", (e) => {
  e.preventDefault();
  load();
});
form.addEventListener("change", () => load());
loadSchools();
load();
