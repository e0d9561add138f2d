// Incidents: the list, one incident's four reporting clocks counting down live, follow-up reports, classify
// and close. The clocks count from the API's seconds_remaining (so a skewed browser clock does not matter).
import { api, el, t, toast } from "/static/console.js";
import {
  badge, busy, button, can, describe, facts, field, fill, form, isoOfLocal, label, localOfIso, onFeed, pager, query,
  refill, select, table, tabs, topicOf, when, who,
} from "/static/pages_kit.js";

const list = document.getElementById("incident-list");
const detail = document.getElementById("incident-detail");
const toolbar = document.getElementById("incident-toolbar");
const state = { status: "open", overdue: false, offset: 0, openId: null };

// --- the clocks ---------------------------------------------------------------------------------------------

/** Seconds as [-]h:mm:ss or m:ss. */
function span(seconds) {
  const sign = seconds < 0 ? "-" : "";
  let s = Math.floor(Math.abs(seconds));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${sign}${h}:${pad(m)}:${pad(s)}` : `${sign}${m}:${pad(s)}`;
}

/** Colour and text of a running clock `el` now. Amber in the last third of its time, red once past. */
function tick(node) {
  const left = (Number(node.dataset.due) - Date.now()) / 1000;
  const total = Number(node.dataset.total) || 1;
  const stateName = left <= 0 ? "overdue" : left <= total / 3 ? "warn" : "ok";
  if (node.dataset.state !== stateName) node.dataset.state = stateName;
  const text = left <= 0 ? t("inc.clock_overdue", { time: span(-left) }) : t("inc.clock_left", { time: span(left) });
  const out = node.querySelector(".remaining");
  if (out && out.textContent !== text) out.textContent = text;
}

setInterval(() => document.querySelectorAll(".clock[data-due]").forEach(tick), 1000);

function clockView(incident, clock, { compact = false } = {}) {
  const name = label("inc.clock", clock.kind);
  const node = el("div", { class: compact ? "clock compact" : "clock", dataset: { kind: clock.kind, testid: "clock" }, "data-testid": `clock-${clock.kind}` });
  if (clock.done) {
    node.dataset.state = clock.late ? "late" : "done";
    node.append(el("strong", {}, name), " ", badge(clock.late ? t("inc.done_late") : t("inc.done"), clock.late ? "warn" : "ok"));
    if (!compact) node.append(el("div", { class: "muted" }, t("inc.done_by", { time: when(clock.done_at), who: who(clock.done_by) }), clock.note ? ` · ${clock.note}` : ""));
    return node;
  }
  const started = new Date(clock.started_at).getTime();
  const deadline = new Date(clock.deadline).getTime();
  node.dataset.due = String(Date.now() + (clock.seconds_remaining ?? 0) * 1000);
  node.dataset.total = String(Math.max(1, (deadline - started) / 1000));
  node.append(el("strong", {}, name), " ", el("span", { class: "remaining" }));
  if (!compact) {
    node.append(el("div", { class: "muted" }, t("inc.deadline", { time: when(clock.deadline) })));
    if (clock.escalated_at) node.append(el("div", { class: "muted" }, t("inc.escalated", { time: when(clock.escalated_at), who: who(clock.escalated_to) || t("inc.nobody") })));
    if (can.duty && incident.status === "open") node.append(doneForm(incident, clock));
  }
  tick(node);
  return node;
}

function doneForm(incident, clock) {
  const note = el("input", { name: "note", maxlength: "2000", placeholder: t("inc.done_note") });
  return form(
    async (data) => {
      await api(`/api/incidents/${incident.id}/clocks/${clock.kind}/done`, { method: "POST", body: { note: String(data.get("note") || "") } });
      toast(t("inc.marked_done", { clock: label("inc.clock", clock.kind) }));
      await refresh();
    },
    [note],
    { submit: t("inc.mark_done"), testid: `done-${clock.kind}`, cls: "inline-form" },
  );
}

// --- the list -----------------------------------------------------------------------------------------------

async function loadList() {
  const page = await api(`/api/incidents${query({ status: state.status || undefined, overdue: state.overdue, limit: 50, offset: state.offset })}`);
  const rows = page.items.map((incident) => ({
    attrs: { class: state.openId === incident.id ? "selected clickable" : "clickable", "data-incident": String(incident.id) },
    cells: [
      String(incident.id),
      el("a", { href: `#${incident.id}` }, incident.title),
      `${incident.school_name} (${incident.school_code})`,
      badge(label("inc.severity", incident.severity), incident.severity === "major" ? "bad" : ""),
      badge(label("inc.status", incident.status), incident.status === "open" ? "info" : ""),
      when(incident.occurred_at),
      incident.status === "open" ? el("div", { class: "clocks compact" }, incident.clocks.map((c) => clockView(incident, c, { compact: true }))) : "",
    ],
  }));
  const headers = ["#", t("inc.title"), t("inc.school"), t("inc.severity"), t("inc.status"), t("inc.occurred_at"), t("inc.clocks")];
  fill(list, table(headers, rows, { testid: "incident-table" }), pager(page, (offset) => { state.offset = offset; loadList().catch(showError); }));
  for (const row of list.querySelectorAll("tr[data-incident]")) {
    row.addEventListener("click", (ev) => {
      ev.preventDefault();
      open(Number(row.dataset.incident));
    });
  }
}

function showError(err) {
  fill(list, el("p", { class: "error" }, describe(err)));
}

// --- one incident -------------------------------------------------------------------------------------------

async function open(id) {
  state.openId = id;
  if (location.hash !== `#${id}`) history.replaceState(null, "", `#${id}`);
  for (const row of list.querySelectorAll("tr[data-incident]")) row.classList.toggle("selected", Number(row.dataset.incident) === id);
  await loadDetail();
}

/** Show the open record; `background` (a feed refresh) leaves the pane alone if the user began working in it
 * while the record was fetched. */
async function loadDetail(background = false) {
  if (state.openId === null) {
    fill(detail, el("p", { class: "muted" }, t("inc.pick")));
    return;
  }
  let incident;
  try {
    incident = await api(`/api/incidents/${state.openId}`);
  } catch (err) {
    fill(detail, el("p", { class: "error" }, describe(err)));
    return;
  }
  if (background && busy(detail)) return;
  const major = incident.severity === "major";
  const isOpen = incident.status === "open";
  const parts = [
    el("h2", {}, `#${incident.id} ${incident.title}`),
    facts([
      [t("inc.school"), `${incident.school_name} (${incident.school_code}) · ${incident.district_code}`],
      [t("inc.severity"), badge(label("inc.severity", incident.severity), major ? "bad" : "")],
      [t("inc.status"), label("inc.status", incident.status)],
      [t("inc.occurred_at"), when(incident.occurred_at)],
      [t("inc.created"), `${when(incident.created_at)} ${who(incident.created_by)}`],
      incident.classified_at ? [t("inc.classified"), `${when(incident.classified_at)} ${who(incident.classified_by)}`] : null,
      incident.closed_at ? [t("inc.closed_at"), when(incident.closed_at)] : null,
      incident.event_id ? [t("inc.event"), el("a", { href: `/events#${incident.event_id}` }, `#${incident.event_id}`)] : null,
      [t("inc.summary"), incident.summary || "—"],
    ]),
  ];
  if (major) {
    parts.push(el("h3", {}, t("inc.clocks")), el("div", { class: "clocks", "data-testid": "clocks" }, incident.clocks.map((c) => clockView(incident, c))));
  }
  const actions = el("div", { class: "toolbar" });
  if (can.duty && isOpen && !major) {
    actions.append(button(t("inc.classify_major"), async () => {
      if (!window.confirm(t("inc.classify_confirm"))) return;
      await api(`/api/incidents/${incident.id}/classify`, { method: "POST", body: { severity: "major" } });
      toast(t("inc.classified_major"));
      await refresh();
    }, { kind: "danger", testid: "classify-major" }));
  }
  parts.push(actions);
  parts.push(el("h3", {}, t("inc.followups")));
  parts.push(table([t("inc.at"), t("inc.by"), t("inc.text")], incident.followups.map((f) => [when(f.at), who(f.by), f.text]), { testid: "followups" }));
  if (can.duty && isOpen) {
    parts.push(form(async (data, node) => {
      await api(`/api/incidents/${incident.id}/followups`, { method: "POST", body: { text: String(data.get("text") || "") } });
      node.reset();
      toast(t("inc.followup_added"));
      await loadDetail();
    }, [field(t("inc.followup_new"), el("textarea", { name: "text", required: true, maxlength: "2000", rows: "3" }))], { submit: t("inc.followup_add"), testid: "followup-form" }));
  }
  if (isOpen && can.duty && (!major || can.close_major)) {
    parts.push(el("h3", {}, t("inc.close")));
    parts.push(form(async (data) => {
      const summary = String(data.get("summary") || "").trim();
      await api(`/api/incidents/${incident.id}/close`, { method: "POST", body: { summary: summary || null } });
      toast(t("inc.closed_ok"));
      await refresh();
    }, [field(t("inc.final_summary"), el("textarea", { name: "summary", maxlength: "2000", rows: "3" }))], { submit: t("inc.close"), testid: "close-form" }));
  } else if (isOpen && major && can.duty && !can.close_major) {
    parts.push(el("p", { class: "muted" }, t("inc.close_needs_leader")));
  }
  refill(detail, String(incident.id), ...parts);
}

// --- a new incident -----------------------------------------------------------------------------------------

function newIncidentForm() {
  const box = el("div", { class: "panel", "data-testid": "new-incident" });
  const schools = el("datalist", { id: "incident-schools" });
  api("/api/schools?limit=500").then((page) => page.items.forEach((s) => schools.append(el("option", { value: s.code }, s.name)))).catch(() => {});
  box.append(el("h2", {}, t("inc.new")), form(async (data, node) => {
    const body = {
      school_code: String(data.get("school_code") || ""),
      occurred_at: isoOfLocal(String(data.get("occurred_at") || "")),
      title: String(data.get("title") || ""),
      summary: String(data.get("summary") || ""),
      severity: String(data.get("severity") || "general"),
    };
    const created = await api("/api/incidents", { method: "POST", body });
    node.reset();
    box.hidden = true;
    toast(t("inc.created_ok", { id: created.id }));
    state.openId = created.id;
    await refresh();
  }, [
    field(t("inc.school"), el("input", { name: "school_code", required: true, list: "incident-schools", maxlength: "32" })),
    schools,
    field(t("inc.occurred_at"), el("input", { name: "occurred_at", type: "datetime-local", required: true, value: localOfIso() })),
    field(t("inc.title"), el("input", { name: "title", required: true, maxlength: "200" })),
    field(t("inc.summary"), el("textarea", { name: "summary", maxlength: "2000", rows: "3" })),
    field(t("inc.severity"), select("severity", [["general", label("inc.severity", "general")], ["major", label("inc.severity", "major")]], "general")),
  ], { submit: t("inc.file") }));
  box.hidden = true;
  return box;
}

async function refresh(force = true) {
  try {
    await loadList();
  } catch (err) {
    showError(err);
  }
  if (force || !busy(detail)) await loadDetail(!force);
}

function setup() {
  const statusTabs = tabs([["open", label("inc.status", "open")], ["closed", label("inc.status", "closed")], ["", t("pg.all")]], state.status, (value) => {
    state.status = value;
    state.offset = 0;
    refresh();
  }, "incident-status");
  const overdue = el("input", { type: "checkbox", "data-testid": "overdue-only" });
  overdue.addEventListener("change", () => {
    state.overdue = overdue.checked;
    state.offset = 0;
    refresh();
  });
  fill(toolbar, statusTabs, el("label", { class: "check" }, overdue, t("inc.overdue_only")), button(t("action.refresh"), () => refresh(), { kind: "secondary" }));
  if (can.duty) {
    const box = newIncidentForm();
    toolbar.after(box);
    toolbar.append(button(t("inc.new"), () => { box.hidden = !box.hidden; }, { testid: "new-incident-toggle" }));
  }
  const id = Number(location.hash.slice(1));
  if (id > 0) state.openId = id;
  window.addEventListener("hashchange", () => {
    const next = Number(location.hash.slice(1));
    if (next > 0 && next !== state.openId) open(next);
  });
  onFeed((m) => {
    const { topic, type } = topicOf(m);
    return topic === "duty" ? type.startsWith("incident") || type.startsWith("clock") : type.startsWith("incident.") || type.startsWith("clock.");
  }, () => refresh(false));
  refresh();
}

setup();
