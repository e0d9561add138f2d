// Spot checks: quotas and their draws, the drawn schools, the inspection session of a school (its cameras,
// findings, the signature) and the verification of draws and signed inspections.
import { api, el, t, toast } from "/static/console.js";
import {
  badge, button, can, checked, describe, facts, field, fill, form, isoOfLocal, label, onFeed, pager, picture,
  pictureLink, query, select, table, tabs, topicOf, when, who,
} from "/static/pages_kit.js";

const main = document.getElementById("spot-main");
const tabBar = document.getElementById("spot-tabs");
const state = { tab: "draws", offset: 0 };

function inspectionBadge(status) {
  if (!status) return badge(t("spot.not_started"));
  return badge(label("spot.inspection_status", status), status === "signed" ? "ok" : "info");
}

function verificationView(result) {
  const ok = Boolean(result.ok);
  return el("div", { class: ok ? "verify ok" : "verify bad", "data-testid": "verification" },
    el("strong", {}, ok ? t("spot.verified_ok") : t("spot.verified_bad")), " ", result.verdict || "",
    result.problems && result.problems.length ? el("ul", {}, result.problems.map((p) => el("li", {}, p))) : null,
    el("div", { class: "muted mono" }, `sha256 ${result.stored_sha256 || "—"} / ${result.computed_sha256 || "—"}`));
}

// --- quotas -------------------------------------------------------------------------------------------------

async function showQuotas() {
  const quotas = await api("/api/spot-checks/quotas");
  const rows = quotas.map((q) => [
    q.name,
    label("spot.period", q.period),
    q.min_count === q.max_count ? String(q.min_count) : `${q.min_count}–${q.max_count}`,
    q.districts.length ? q.districts.join(", ") : t("spot.all_districts"),
    String(q.exclude_days),
    q.enabled ? badge(t("spot.enabled"), "ok") : badge(t("spot.disabled")),
    can.inspect ? button(t("spot.draw_now"), async () => {
      const draw = await api(`/api/spot-checks/quotas/${q.id}/draws`, { method: "POST", body: { period_start: null } });
      toast(t("spot.drawn", { count: draw.count }));
      await showDraw(draw.id);
    }, { testid: `draw-${q.id}` }) : "",
  ]);
  const parts = [table([t("spot.quota"), t("spot.period_h"), t("spot.count"), t("spot.districts"), t("spot.exclude_days"), t("spot.auto"), ""], rows, { testid: "quota-table" })];
  if (can.admin) parts.push(quotaForm());
  fill(main, ...parts);
}

function quotaForm() {
  return el("div", { class: "panel" }, el("h2", {}, t("spot.new_quota")), form(async (data) => {
    const districts = String(data.get("districts") || "").split(/[,\s]+/).filter(Boolean);
    await api("/api/spot-checks/quotas", {
      method: "POST",
      body: {
        name: String(data.get("name") || ""),
        period: String(data.get("period") || "day"),
        min_count: Number(data.get("min_count")),
        max_count: Number(data.get("max_count")),
        exclude_days: Number(data.get("exclude_days")),
        districts,
        enabled: checked(data, "enabled"),
      },
    });
    toast(t("spot.quota_saved"));
    await showQuotas();
  }, [
    field(t("spot.quota"), el("input", { name: "name", required: true, maxlength: "100" })),
    field(t("spot.period_h"), select("period", [["day", label("spot.period", "day")], ["week", label("spot.period", "week")]], "day")),
    field(t("spot.min"), el("input", { name: "min_count", type: "number", min: "1", max: "500", value: "1", required: true })),
    field(t("spot.max"), el("input", { name: "max_count", type: "number", min: "1", max: "500", value: "3", required: true })),
    field(t("spot.exclude_days"), el("input", { name: "exclude_days", type: "number", min: "0", max: "365", value: "7" })),
    field(t("spot.districts"), el("input", { name: "districts", placeholder: "D1, D2" }), { hint: t("spot.districts_hint") }),
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "enabled", checked: true }), t("spot.auto")),
  ], { testid: "quota-form" }));
}

// --- draws --------------------------------------------------------------------------------------------------

async function showDraws() {
  const page = await api(`/api/spot-checks/draws${query({ limit: 30, offset: state.offset })}`);
  const rows = page.items.map((d) => ({
    attrs: { class: "clickable", "data-draw": String(d.id) },
    cells: [String(d.id), d.quota_name, `${d.period_start} – ${d.period_end}`, String(d.count), d.schools.map((s) => s.code).join(", "), `${when(d.drawn_at)} ${who(d.drawn_by)}`],
  }));
  fill(main, table(["#", t("spot.quota"), t("spot.period_h"), t("spot.count"), t("spot.schools"), t("spot.drawn_at")], rows, { testid: "draw-table", empty: t("spot.no_draws") }),
    pager(page, (offset) => { state.offset = offset; showDraws().catch(mainError); }));
  for (const row of main.querySelectorAll("tr[data-draw]")) row.addEventListener("click", () => showDraw(Number(row.dataset.draw)).catch(mainError));
}

async function showDraw(id) {
  const draw = await api(`/api/spot-checks/draws/${id}`);
  const verifyBox = el("div");
  const rows = draw.schools.map((s) => [
    s.code,
    s.name,
    s.district_code,
    inspectionBadge(s.inspection_status),
    s.inspection_id
      ? button(t("spot.open_inspection"), () => showInspection(s.inspection_id), { kind: "secondary" })
      : can.inspect ? button(t("spot.start_inspection"), async () => {
        const created = await api("/api/inspections", { method: "POST", body: { school_code: s.code, method: "random", draw_id: draw.id } });
        toast(t("spot.inspection_started", { school: s.name }));
        await showInspection(created.id);
      }, { testid: `start-${s.code}` }) : "",
  ]);
  fill(main,
    button(`‹ ${t("spot.back_to_draws")}`, showDraws, { kind: "secondary" }),
    el("h2", {}, t("spot.draw_title", { id: draw.id, quota: draw.quota_name })),
    facts([
      [t("spot.period_h"), `${label("spot.period", draw.period)} ${draw.period_start} – ${draw.period_end}`],
      [t("spot.drawn_at"), `${when(draw.drawn_at)} ${who(draw.drawn_by)}`],
      [t("spot.seed"), el("span", { class: "mono" }, draw.seed)],
      [t("spot.inputs"), el("span", { class: "mono" }, draw.inputs_sha256)],
    ]),
    table([t("spot.code"), t("spot.school"), t("spot.district"), t("spot.inspection"), ""], rows, { testid: "drawn-schools" }),
    button(t("spot.verify_draw"), async () => fill(verifyBox, verificationView(await api(`/api/spot-checks/draws/${draw.id}/verify`))), { kind: "secondary", testid: "verify-draw" }),
    verifyBox);
}

// --- inspections --------------------------------------------------------------------------------------------

async function showInspections() {
  const page = await api(`/api/inspections${query({ limit: 30, offset: state.offset })}`);
  const rows = page.items.map((i) => ({
    attrs: { class: "clickable", "data-inspection": String(i.id) },
    cells: [String(i.id), `${i.school_name} (${i.school_code})`, label("spot.method", i.method), inspectionBadge(i.status), who(i.inspector), when(i.started_at), `${i.finding_count} / ${i.abnormal_count}`],
  }));
  const parts = [table(["#", t("spot.school"), t("spot.method_h"), t("spot.inspection"), t("spot.inspector"), t("spot.started_at"), t("spot.findings_abnormal")], rows, { testid: "inspection-table" }),
    pager(page, (offset) => { state.offset = offset; showInspections().catch(mainError); })];
  if (can.inspect) parts.unshift(newInspectionForm());
  fill(main, ...parts);
  for (const row of main.querySelectorAll("tr[data-inspection]")) row.addEventListener("click", () => showInspection(Number(row.dataset.inspection)).catch(mainError));
}

function newInspectionForm() {
  const methods = ["directed", "fixed_point", "lead", "covert", "video", "random"];
  return el("details", { class: "panel" }, el("summary", {}, t("spot.new_inspection")), form(async (data) => {
    const created = await api("/api/inspections", { method: "POST", body: { school_code: String(data.get("school_code") || ""), method: String(data.get("method")), summary: String(data.get("summary") || "") } });
    await showInspection(created.id);
  }, [
    field(t("spot.code"), el("input", { name: "school_code", required: true, maxlength: "64" })),
    field(t("spot.method_h"), select("method", methods.map((m) => [m, label("spot.method", m)]), "directed")),
    field(t("spot.summary"), el("textarea", { name: "summary", rows: "2", maxlength: "4000" })),
  ], { submit: t("spot.start_inspection") }));
}

async function showInspection(id) {
  const insp = await api(`/api/inspections/${id}`);
  const open = insp.status === "open" && can.inspect;
  const verifyBox = el("div");
  const findingsByCamera = new Map();
  for (const f of insp.findings) {
    const key = f.camera_code || "";
    if (!findingsByCamera.has(key)) findingsByCamera.set(key, []);
    findingsByCamera.get(key).push(f);
  }
  const cards = insp.cameras.map((c) => {
    const card = el("article", { class: "camera-card", "data-camera": c.code },
      picture(`${c.thumbnail_url}${c.thumbnail_url.includes("?") ? "&" : "?"}t=${Date.now()}`, c.name),
      el("h3", {}, c.name, " ", el("small", { class: "muted" }, c.code), c.key_scene ? badge(t("spot.key_scene"), "warn") : null),
      el("div", { class: "muted" }, label("spot.scene", c.scene_type)));
    for (const f of findingsByCamera.get(c.code) || []) card.append(findingLine(insp, f));
    if (open) card.append(findingForm(insp, c.code));
    return card;
  });
  const schoolFindings = (findingsByCamera.get("") || []).map((f) => findingLine(insp, f));
  const parts = [
    button(`‹ ${t("spot.back_to_inspections")}`, () => { state.tab = "inspections"; showInspections().catch(mainError); }, { kind: "secondary" }),
    el("h2", {}, t("spot.inspection_title", { id: insp.id, school: insp.school_name })),
    facts([
      [t("spot.school"), `${insp.school_name} (${insp.school_code}) · ${insp.district_code}`],
      [t("spot.method_h"), label("spot.method", insp.method)],
      [t("spot.inspection"), inspectionBadge(insp.status)],
      [t("spot.inspector"), who(insp.inspector)],
      [t("spot.started_at"), when(insp.started_at)],
      [t("spot.summary"), insp.summary || "—"],
      insp.signature ? [t("spot.signed"), `${insp.signature.signed_name} · ${when(insp.signature.signed_at)}`] : null,
    ]),
    el("h3", {}, t("spot.cameras")),
    el("div", { class: "camera-grid", "data-testid": "inspection-cameras" }, cards),
    el("h3", {}, t("spot.school_findings")),
    el("div", {}, schoolFindings.length ? schoolFindings : el("p", { class: "muted" }, t("common.none"))),
  ];
  if (open) {
    parts.push(el("details", { class: "panel" }, el("summary", {}, t("spot.school_finding")), findingForm(insp, null)));
    parts.push(el("div", { class: "panel" }, el("h3", {}, t("spot.sign")), form(async (data) => {
      const summary = String(data.get("summary") || "").trim();
      await api(`/api/inspections/${insp.id}/sign`, { method: "POST", body: { signed_name: String(data.get("signed_name") || ""), summary: summary || null } });
      toast(t("spot.signed_ok"));
      await showInspection(insp.id);
    }, [
      field(t("spot.signed_name"), el("input", { name: "signed_name", required: true, maxlength: "100" })),
      field(t("spot.final_summary"), el("textarea", { name: "summary", rows: "2", maxlength: "4000" })),
    ], { submit: t("spot.sign"), testid: "sign-form" })));
  }
  parts.push(button(t("spot.verify_inspection"), async () => fill(verifyBox, verificationView(await api(`/api/inspections/${insp.id}/verify`))), { kind: "secondary", testid: "verify-inspection" }), verifyBox);
  fill(main, ...parts);
}

function findingLine(insp, f) {
  return el("div", { class: `finding ${f.verdict}` },
    badge(label("task.verdict", f.verdict), f.verdict === "normal" ? "ok" : "bad"), " ", when(f.created_at), " ", f.note,
    f.snapshot_url ? pictureLink(f.snapshot_url, f.note) : null,
    f.hazard_id ? el("a", { href: `/hazards#${f.hazard_id}` }, t("task.hazard", { id: f.hazard_id })) : null);
}

function findingForm(insp, cameraCode) {
  const hazard = el("div", { class: "hazard-fields" },
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "open_hazard" }), t("task.open_hazard")),
    field(t("task.hazard_title"), el("input", { name: "hazard_title", maxlength: "200" })),
    field(t("task.hazard_severity"), select("hazard_severity", [["general", label("inc.severity", "general")], ["major", label("inc.severity", "major")]], "general")),
    field(t("task.hazard_deadline"), el("input", { name: "hazard_deadline", type: "datetime-local" })));
  const parts = [
    el("div", { class: "radios" }, ["normal", "abnormal"].map((v) => el("label", { class: "check" }, el("input", { type: "radio", name: "verdict", value: v, required: true }), label("task.verdict", v)))),
    field(t("task.note"), el("textarea", { name: "note", rows: "2", maxlength: "2000" })),
  ];
  if (cameraCode) parts.push(el("label", { class: "check" }, el("input", { type: "checkbox", name: "thumbnail", checked: true }), t("spot.use_thumbnail")));
  parts.push(field(t("task.upload"), el("input", { type: "file", name: "snapshot", accept: "image/jpeg" })), hazard);
  return form(async (data) => {
    const body = new FormData();
    body.set("verdict", String(data.get("verdict") || ""));
    body.set("note", String(data.get("note") || ""));
    if (cameraCode) body.set("camera_code", cameraCode);
    const file = data.get("snapshot");
    if (file instanceof File && file.size > 0) body.set("snapshot", file);
    else if (cameraCode && checked(data, "thumbnail")) body.set("thumbnail", "true");
    if (checked(data, "open_hazard")) {
      body.set("open_hazard", "true");
      body.set("hazard_title", String(data.get("hazard_title") || ""));
      body.set("hazard_severity", String(data.get("hazard_severity") || "general"));
      const deadline = isoOfLocal(String(data.get("hazard_deadline") || ""));
      if (deadline) body.set("hazard_deadline", deadline);
    }
    const finding = await api(`/api/inspections/${insp.id}/findings`, { method: "POST", form: body });
    toast(t("spot.finding_saved") + (finding.hazard_id ? ` · ${t("task.hazard", { id: finding.hazard_id })}` : ""));
    await showInspection(insp.id);
  }, parts, { submit: t("spot.add_finding"), testid: `finding-${cameraCode || "school"}`, cls: "verdict-form" });
}

// --- the page -----------------------------------------------------------------------------------------------

function mainError(err) {
  fill(main, el("p", { class: "error" }, describe(err)));
}

const SHOW = { draws: showDraws, quotas: showQuotas, inspections: showInspections };

function show(tab) {
  state.tab = tab;
  state.offset = 0;
  SHOW[tab]().catch(mainError);
}

fill(tabBar, tabs([["draws", t("spot.tab_draws")], ["quotas", t("spot.tab_quotas")], ["inspections", t("spot.tab_inspections")]], state.tab, show, "spot-tabs"));
onFeed((m) => topicOf(m).type.startsWith("spotcheck.") && state.tab === "draws", () => showDraws().catch(mainError));
show(state.tab);
