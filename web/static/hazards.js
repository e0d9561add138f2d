// Hazards: the list by status, one hazard with its before/after pictures and history, and the steps the
// user's role may take (open → rectifying → submitted → closed, or reopened).
import { api, el, t, toast } from "/static/console.js";
import {
  badge, busy, button, can, describe, facts, field, fill, form, isoOfLocal, label, onFeed, pager, pictureLink,
  query, refill, select, table, tabs, topicOf, when, who,
} from "/static/pages_kit.js";

const toolbar = document.getElementById("hazard-toolbar");
const list = document.getElementById("hazard-list");
const detail = document.getElementById("hazard-detail");
const state = { status: "open", overdue: false, offset: 0, openId: null };
const STATUSES = ["open", "rectifying", "submitted", "closed"];

function statusBadge(status) {
  const kind = { open: "bad", rectifying: "warn", submitted: "info", closed: "ok" }[status] || "";
  return badge(label("hz.status", status), kind);
}

function deadlineCell(h) {
  if (h.status === "closed") return when(h.deadline);
  if (h.overdue) return el("span", {}, when(h.deadline), " ", badge(t("hz.overdue_by", { hours: Math.round(h.hours_overdue) }), "bad"));
  return when(h.deadline);
}

async function loadList() {
  const page = await api(`/api/hazards${query({ status: state.status, overdue: state.overdue, limit: 50, offset: state.offset })}`);
  const rows = page.items.map((h) => ({
    attrs: { class: state.openId === h.id ? "clickable selected" : "clickable", "data-hazard": String(h.id) },
    cells: [
      String(h.id),
      el("a", { href: `#${h.id}` }, h.title),
      `${h.school_name} (${h.school_code})`,
      label("hz.source", h.source),
      badge(label("inc.severity", h.severity), h.severity === "major" ? "bad" : ""),
      statusBadge(h.status),
      deadlineCell(h),
      h.escalation_level ? badge(t("hz.escalation", { level: h.escalation_level }), "warn") : "",
    ],
  }));
  fill(list,
    table(["#", t("hz.title"), t("hz.school"), t("hz.source_h"), t("hz.severity"), t("hz.state"), t("hz.deadline"), t("hz.escalated")], rows, { testid: "hazard-table" }),
    pager(page, (offset) => { state.offset = offset; loadList().catch(listError); }));
  for (const row of list.querySelectorAll("tr[data-hazard]")) {
    row.addEventListener("click", (ev) => {
      ev.preventDefault();
      openHazard(Number(row.dataset.hazard));
    });
  }
}

function listError(err) {
  fill(list, el("p", { class: "error" }, describe(err)));
}

async function openHazard(id) {
  state.openId = id;
  history.replaceState(null, "", `#${id}`);
  for (const row of list.querySelectorAll("tr[data-hazard]")) row.classList.toggle("selected", Number(row.dataset.hazard) === id);
  await loadDetail();
}

/** The steps the hazard's state and the user's role allow: [path, text, needs a note, kind]. */
function steps(h) {
  const out = [];
  if (can.rectify && h.status === "open") out.push(["start", t("hz.start"), false, ""]);
  if (can.rectify && h.status === "rectifying") out.push(["submit", t("hz.submit"), false, ""]);
  if (can.verify && h.status === "submitted") out.push(["verify", t("hz.verify"), false, ""]);
  return out;
}

function stepForm(h, [path, text]) {
  return form(async (data) => {
    await api(`/api/hazards/${h.id}/${path}`, { method: "POST", body: { note: String(data.get("note") || "") } });
    toast(t("hz.step_done", { step: text }));
    await refresh(true);
  }, [el("input", { name: "note", maxlength: "2000", placeholder: t("hz.note") })], { submit: text, testid: `step-${path}`, cls: "inline-form" });
}

function reopenForm(h) {
  return form(async (data) => {
    await api(`/api/hazards/${h.id}/reopen`, { method: "POST", body: { note: String(data.get("note") || ""), deadline: isoOfLocal(String(data.get("deadline") || "")) } });
    toast(t("hz.reopened"));
    await refresh(true);
  }, [
    field(t("hz.reopen_why"), el("input", { name: "note", required: true, maxlength: "2000" })),
    field(t("hz.new_deadline"), el("input", { name: "deadline", type: "datetime-local" })),
  ], { submit: t("hz.reopen"), testid: "step-reopen", cls: "inline-form" });
}

function uploadForm(h) {
  const stages = [];
  if (can.file && h.status !== "closed") stages.push(["before", label("hz.stage", "before")]);
  if (can.rectify && (h.status === "open" || h.status === "rectifying")) stages.push(["after", label("hz.stage", "after")]);
  if (!stages.length) return null;
  return el("details", { class: "panel" }, el("summary", {}, t("hz.upload")), form(async (data, node) => {
    const body = new FormData();
    body.set("file", data.get("file"));
    body.set("stage", String(data.get("stage")));
    body.set("note", String(data.get("note") || ""));
    await api(`/api/hazards/${h.id}/evidence`, { method: "POST", form: body });
    node.reset();
    toast(t("hz.uploaded"));
    await loadDetail();
  }, [
    field(t("hz.stage_h"), select("stage", stages, stages[stages.length - 1][0])),
    field(t("hz.picture"), el("input", { type: "file", name: "file", accept: "image/jpeg,image/png", required: true })),
    field(t("hz.note"), el("input", { name: "note", maxlength: "2000" })),
  ], { submit: t("hz.upload"), testid: "upload-form" }));
}

function pictures(h, stage) {
  const items = h.evidence.filter((e) => e.stage === stage);
  if (!items.length) return el("p", { class: "muted" }, t("hz.no_pictures"));
  return el("div", { class: "pictures" }, items.map((e) => el("figure", {}, pictureLink(e.url, e.note), el("figcaption", { class: "muted" }, `${when(e.uploaded_at)} ${who(e.uploaded_by)} ${e.note}`))));
}

/** Show the open record; `background` (a feed refresh) leaves the pane alone if the user began working in it
 * while the record was fetched. */
async function loadDetail(background = false) {
  if (state.openId === null) return;
  let h;
  try {
    h = await api(`/api/hazards/${state.openId}`);
  } catch (err) {
    fill(detail, el("p", { class: "error" }, describe(err)));
    return;
  }
  if (background && busy(detail)) return;
  const actions = el("div", { class: "toolbar", "data-testid": "hazard-steps" }, steps(h).map((s) => stepForm(h, s)));
  if (can.reopen && (h.status === "submitted" || h.status === "closed")) actions.append(reopenForm(h));
  const parts = [
    el("h2", {}, `#${h.id} ${h.title}`),
    facts([
      [t("hz.school"), `${h.school_name} (${h.school_code}) · ${h.district_code}`],
      h.camera_code ? [t("hz.camera"), h.camera_code] : null,
      [t("hz.source_h"), `${label("hz.source", h.source)}${h.source_id ? ` #${h.source_id}` : ""}`],
      [t("hz.severity"), label("inc.severity", h.severity)],
      [t("hz.state"), statusBadge(h.status)],
      [t("hz.deadline"), deadlineCell(h)],
      [t("hz.created"), `${when(h.created_at)} ${who(h.created_by)}`],
      h.closed_at ? [t("hz.closed_at"), when(h.closed_at)] : null,
      h.reopened ? [t("hz.reopened_times"), String(h.reopened)] : null,
      [t("hz.description"), h.description || "—"],
    ]),
    actions,
    el("div", { class: "before-after" },
      el("section", {}, el("h3", {}, label("hz.stage", "before")), pictures(h, "before")),
      el("section", {}, el("h3", {}, label("hz.stage", "after")), pictures(h, "after"))),
    uploadForm(h),
    el("h3", {}, t("hz.history")),
    table([t("hz.at"), t("hz.by"), t("hz.action"), t("hz.change"), t("hz.note")], h.actions.map((a) => [
      when(a.at), who(a.by), label("hz.action", a.action),
      a.to_status ? `${a.from_status ? label("hz.status", a.from_status) : "—"} → ${label("hz.status", a.to_status)}` : "", a.note,
    ]), { testid: "hazard-history" }),
  ];
  if (can.work && h.status !== "closed") {
    parts.push(form(async (data, node) => {
      await api(`/api/hazards/${h.id}/notes`, { method: "POST", body: { note: String(data.get("note") || "") } });
      node.reset();
      await loadDetail();
    }, [field(t("hz.add_note"), el("textarea", { name: "note", required: true, rows: "2", maxlength: "2000" }))], { submit: t("hz.add_note"), testid: "note-form" }));
  }
  refill(detail, String(h.id), ...parts);
}

function newHazardForm() {
  const box = el("div", { class: "panel", "data-testid": "new-hazard" });
  box.hidden = true;
  box.append(el("h2", {}, t("hz.new")), form(async (data, node) => {
    const body = {
      school_code: String(data.get("school_code") || "") || null,
      camera_code: String(data.get("camera_code") || "") || null,
      title: String(data.get("title") || "") || null,
      description: String(data.get("description") || "") || null,
      severity: String(data.get("severity") || "general"),
      deadline: isoOfLocal(String(data.get("deadline") || "")),
    };
    const created = await api("/api/hazards", { method: "POST", body });
    node.reset();
    box.hidden = true;
    toast(t("hz.created_ok", { id: created.id }));
    state.openId = created.id;
    await refresh(true);
  }, [
    field(t("hz.school"), el("input", { name: "school_code", required: true, maxlength: "32" })),
    field(t("hz.camera"), el("input", { name: "camera_code", maxlength: "64" })),
    field(t("hz.title"), el("input", { name: "title", required: true, maxlength: "200" })),
    field(t("hz.description"), el("textarea", { name: "description", rows: "3", maxlength: "2000" })),
    field(t("hz.severity"), select("severity", [["general", label("inc.severity", "general")], ["major", label("inc.severity", "major")]], "general")),
    field(t("hz.deadline"), el("input", { name: "deadline", type: "datetime-local" }), { hint: t("hz.deadline_hint") }),
  ], { submit: t("hz.file") }));
  return box;
}

async function refresh(force = false) {
  try {
    await loadList();
  } catch (err) {
    listError(err);
  }
  if (force || !busy(detail)) await loadDetail(!force);
}

function setup() {
  const bar = tabs([...STATUSES.map((s) => [s, label("hz.status", s)]), ["", t("pg.all")]], state.status, (value) => {
    state.status = value;
    state.offset = 0;
    refresh();
  }, "hazard-status");
  const overdue = el("input", { type: "checkbox", "data-testid": "hazard-overdue" });
  overdue.addEventListener("change", () => { state.overdue = overdue.checked; state.offset = 0; refresh(); });
  fill(toolbar, bar, el("label", { class: "check" }, overdue, t("hz.overdue_only")), button(t("action.refresh"), () => refresh(true), { kind: "secondary", testid: "hazard-refresh" }));
  if (can.file) {
    const box = newHazardForm();
    toolbar.after(box);
    toolbar.append(button(t("hz.new"), () => { box.hidden = !box.hidden; }, { testid: "new-hazard-toggle" }));
  }
  const id = Number(location.hash.slice(1));
  if (id > 0) {
    state.openId = id;
    state.status = "";
    bar.querySelectorAll(".tab").forEach((tab) => tab.classList.toggle("active", tab.dataset.value === ""));
  }
  onFeed((m) => topicOf(m).type.startsWith("hazard."), () => refresh(false));
  refresh(true);
}

setup();
