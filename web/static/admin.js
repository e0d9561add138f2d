// Administration: schools, cameras (credentials are write-only), users (role, scope, contacts, passwords),
// a camera's analytics rules (JSON, validated by the API) and the duty roster. One tab per page (/admin/<tab>).
import { api, boot, el, t, toast } from "/static/console.js";
import {
  badge, button, checked, describe, field, fill, form, isoOfLocal, label, localOfIso, pager, query, select, table,
  today, when, who,
} from "/static/pages_kit.js";

const main = document.getElementById("admin-main");
const tab = main.dataset.tab || boot.tab;
const ROLES = ["duty_officer", "leader_on_duty", "inspector", "school_safety_officer", "administrator", "auditor"];
const SCOPES = ["bureau", "district", "school"];
const SCHOOL_KINDS = ["kindergarten", "primary", "middle", "high", "vocational", "other"];
const SCENES = ["gate", "playground", "canteen", "dormitory", "corridor", "perimeter", "water", "guard_post", "classroom", "other"];

function mainError(err) {
  fill(main, el("p", { class: "error" }, describe(err)));
}

/** The entries of `values` that differ from `original` (what a PATCH sends). */
function changes(values, original) {
  const out = {};
  for (const [k, v] of Object.entries(values)) {
    if (JSON.stringify(v) !== JSON.stringify(original ? original[k] : undefined)) out[k] = v;
  }
  return out;
}

function text(data, name) {
  return String(data.get(name) ?? "").trim();
}

function editorBox(title, content) {
  return el("div", { class: "panel editor", "data-testid": "editor" }, el("h2", {}, title), content, button(t("action.cancel"), async () => { editor.replaceChildren(); }, { kind: "secondary" }));
}

const editor = el("div", { id: "admin-editor" });

// --- schools ------------------------------------------------------------------------------------------------

const schoolState = { q: "", district: "", offset: 0 };

async function schoolsTab() {
  const [districts, page] = await Promise.all([
    api("/api/districts"),
    api(`/api/schools${query({ q: schoolState.q, district: schoolState.district, limit: 50, offset: schoolState.offset })}`),
  ]);
  const search = el("input", { type: "search", value: schoolState.q, placeholder: t("admin.search") });
  search.addEventListener("change", () => { schoolState.q = search.value; schoolState.offset = 0; schoolsTab().catch(mainError); });
  const district = select("district", [["", t("pg.all")], ...districts.map((d) => [d.code, `${d.name} (${d.code})`])], schoolState.district);
  district.addEventListener("change", () => { schoolState.district = district.value; schoolState.offset = 0; schoolsTab().catch(mainError); });
  const rows = page.items.map((s) => [
    s.code, s.name, `${s.district_name} (${s.district_code})`, label("admin.school_kind", s.kind),
    `${s.contact_name} ${s.contact_phone}`.trim(), String(s.camera_count),
    el("span", {}, button(t("admin.edit"), () => schoolEditor(districts, s), { kind: "secondary", testid: `edit-${s.code}` }), " ",
      el("a", { href: `/admin/cameras#${s.code}` }, t("admin.tab.cameras"))),
  ]);
  fill(main,
    el("div", { class: "toolbar" }, search, district, button(t("admin.new_school"), () => schoolEditor(districts, null), { testid: "new-school" })),
    editor,
    table([t("admin.code"), t("admin.name"), t("admin.district"), t("admin.kind"), t("admin.contact"), t("admin.cameras"), ""], rows, { testid: "school-table" }),
    pager(page, (offset) => { schoolState.offset = offset; schoolsTab().catch(mainError); }));
}

function schoolEditor(districts, school) {
  const fields = [
    school ? null : field(t("admin.code"), el("input", { name: "code", required: true, maxlength: "32" })),
    field(t("admin.name"), el("input", { name: "name", required: true, maxlength: "200", value: school?.name ?? "" })),
    field(t("admin.district"), select("district_code", districts.map((d) => [d.code, `${d.name} (${d.code})`]), school?.district_code ?? districts[0]?.code)),
    field(t("admin.kind"), select("kind", SCHOOL_KINDS.map((k) => [k, label("admin.school_kind", k)]), school?.kind ?? "primary")),
    field(t("admin.address"), el("input", { name: "address", maxlength: "300", value: school?.address ?? "" })),
    field(t("admin.contact_name"), el("input", { name: "contact_name", maxlength: "100", value: school?.contact_name ?? "" })),
    field(t("admin.contact_phone"), el("input", { name: "contact_phone", maxlength: "40", value: school?.contact_phone ?? "" })),
  ];
  fill(editor, editorBox(school ? t("admin.edit_school", { code: school.code }) : t("admin.new_school"), form(async (data) => {
    const values = {
      name: text(data, "name"), district_code: text(data, "district_code"), kind: text(data, "kind"),
      address: text(data, "address"), contact_name: text(data, "contact_name"), contact_phone: text(data, "contact_phone"),
    };
    if (school) await api(`/api/schools/${encodeURIComponent(school.code)}`, { method: "PATCH", body: changes(values, school) });
    else await api("/api/schools", { method: "POST", body: { code: text(data, "code"), ...values } });
    toast(t("admin.saved"));
    editor.replaceChildren();
    await schoolsTab();
  }, fields, { testid: "school-form" })));
}

// --- cameras ------------------------------------------------------------------------------------------------

const cameraState = { school: location.hash.slice(1), q: "", offset: 0 };

async function camerasTab() {
  const page = await api(`/api/cameras${query({ school: cameraState.school, q: cameraState.q, limit: 50, offset: cameraState.offset })}`);
  const school = el("input", { value: cameraState.school, placeholder: t("admin.school_code"), maxlength: "32" });
  school.addEventListener("change", () => { cameraState.school = school.value.trim(); cameraState.offset = 0; camerasTab().catch(mainError); });
  const search = el("input", { type: "search", value: cameraState.q, placeholder: t("admin.search") });
  search.addEventListener("change", () => { cameraState.q = search.value; cameraState.offset = 0; camerasTab().catch(mainError); });
  const rows = page.items.map((c) => [
    c.code, c.name, `${c.school_name} (${c.school_code})`, label("admin.scene", c.scene_type),
    c.enabled ? badge(t("admin.enabled"), "ok") : badge(t("admin.disabled")),
    c.key_scene ? badge(t("admin.key_scene"), "warn") : "",
    c.has_credentials ? badge(t("admin.has_credentials"), "info") : "",
    el("span", { class: "mono" }, c.main_url),
    el("span", {}, button(t("admin.edit"), () => cameraEditor(c), { kind: "secondary", testid: `edit-${c.code}` }), " ",
      el("a", { href: `/admin/rules#${c.code}` }, t("admin.tab.rules"))),
  ]);
  fill(main,
    el("div", { class: "toolbar" }, school, search, button(t("admin.new_camera"), () => cameraEditor(null), { testid: "new-camera" })),
    editor,
    table([t("admin.code"), t("admin.name"), t("admin.school"), t("admin.scene_h"), t("admin.state"), "", t("admin.credentials"), t("admin.main_url"), ""], rows, { testid: "camera-table" }),
    pager(page, (offset) => { cameraState.offset = offset; camerasTab().catch(mainError); }));
}

function cameraEditor(camera) {
  // The credentials are write-only: the fields start empty and are sent only when filled in (or cleared).
  const fields = [
    camera ? null : field(t("admin.code"), el("input", { name: "code", required: true, maxlength: "64" })),
    field(t("admin.name"), el("input", { name: "name", required: true, maxlength: "200", value: camera?.name ?? "" })),
    field(t("admin.school_code"), el("input", { name: "school_code", required: true, maxlength: "32", value: camera?.school_code ?? cameraState.school })),
    field(t("admin.scene_h"), select("scene_type", SCENES.map((s) => [s, label("admin.scene", s)]), camera?.scene_type ?? "gate")),
    field(t("admin.main_url"), el("input", { name: "main_url", required: !camera, maxlength: "1000", placeholder: camera ? t("admin.url_unchanged") : "rtsp://host:554/stream" }), { hint: t("admin.url_hint") }),
    field(t("admin.sub_url"), el("input", { name: "sub_url", maxlength: "1000", placeholder: camera ? t("admin.url_unchanged") : "" })),
    field(t("admin.username"), el("input", { name: "username", autocomplete: "off", maxlength: "200", placeholder: t("admin.write_only") })),
    field(t("admin.password"), el("input", { name: "password", type: "password", autocomplete: "new-password", maxlength: "200", placeholder: t("admin.write_only") })),
    camera ? el("label", { class: "check" }, el("input", { type: "checkbox", name: "clear_credentials" }), t("admin.clear_credentials")) : null,
    field(t("admin.location"), el("input", { name: "location", maxlength: "300", value: camera?.location ?? "" })),
    field(t("admin.tags"), el("input", { name: "tags", value: (camera?.tags ?? []).join(", ") }), { hint: t("admin.tags_hint") }),
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "enabled", checked: camera ? camera.enabled : true }), t("admin.enabled")),
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "key_scene", checked: camera ? camera.key_scene : false }), t("admin.key_scene")),
  ];
  fill(editor, editorBox(camera ? t("admin.edit_camera", { code: camera.code }) : t("admin.new_camera"), form(async (data) => {
    const values = {
      name: text(data, "name"), school_code: text(data, "school_code"), scene_type: text(data, "scene_type"),
      location: text(data, "location"), tags: text(data, "tags").split(/[,，]\s*/).filter(Boolean),
      enabled: checked(data, "enabled"), key_scene: checked(data, "key_scene"),
    };
    const body = camera ? changes(values, camera) : values;
    for (const name of ["main_url", "sub_url", "username", "password"]) {
      const value = text(data, name);
      if (value) body[name] = value;
    }
    if (camera && checked(data, "clear_credentials")) {
      body.username = "";
      delete body.password;
    }
    if (camera) await api(`/api/cameras/${encodeURIComponent(camera.code)}`, { method: "PATCH", body });
    else await api("/api/cameras", { method: "POST", body: { code: text(data, "code"), ...body } });
    toast(t("admin.saved"));
    editor.replaceChildren();
    await camerasTab();
  }, fields, { testid: "camera-form" })));
}

// --- users --------------------------------------------------------------------------------------------------

const userState = { q: "", role: "", offset: 0 };

async function usersTab() {
  const page = await api(`/api/users${query({ q: userState.q, role: userState.role, limit: 100, offset: userState.offset })}`);
  const search = el("input", { type: "search", value: userState.q, placeholder: t("admin.search") });
  search.addEventListener("change", () => { userState.q = search.value; userState.offset = 0; usersTab().catch(mainError); });
  const role = select("role", [["", t("pg.all")], ...ROLES.map((r) => [r, t(`role.${r}`)])], userState.role);
  role.addEventListener("change", () => { userState.role = role.value; userState.offset = 0; usersTab().catch(mainError); });
  const rows = page.items.map((u) => [
    u.username, u.display_name, t(`role.${u.role}`),
    `${t(`scope.${u.scope}`)} ${u.school_code || u.district_code || ""}`.trim(),
    u.phone, u.email,
    u.active ? badge(t("admin.active"), "ok") : badge(t("admin.inactive"), "bad"),
    el("span", {},
      button(t("admin.edit"), () => userEditor(u), { kind: "secondary", testid: `edit-${u.username}` }), " ",
      button(t("admin.reset_password"), async () => {
        if (!window.confirm(t("admin.reset_confirm", { user: u.username }))) return;
        const result = await api(`/api/users/${encodeURIComponent(u.username)}/password`, { method: "POST", body: { password: null } });
        showPassword(result.username, result.password);
      }, { kind: "secondary", testid: `reset-${u.username}` })),
  ]);
  fill(main,
    el("div", { class: "toolbar" }, search, role, button(t("admin.new_user"), () => userEditor(null), { testid: "new-user" })),
    editor,
    table([t("admin.username"), t("admin.display_name"), t("admin.role"), t("admin.scope"), t("admin.phone"), t("admin.email"), t("admin.state"), ""], rows, { testid: "user-table" }),
    pager(page, (offset) => { userState.offset = offset; usersTab().catch(mainError); }));
}

function showPassword(username, password) {
  fill(editor, el("div", { class: "panel", "data-testid": "new-password" },
    el("p", {}, password ? t("admin.password_once", { user: username }) : t("admin.password_set", { user: username })),
    password ? el("p", { class: "mono password" }, password) : null,
    button(t("action.close"), async () => { editor.replaceChildren(); }, { kind: "secondary" })));
}

function userEditor(user) {
  const fields = [
    user ? null : field(t("admin.username"), el("input", { name: "username", required: true, maxlength: "64", pattern: "[\\w.@\\-]+" })),
    field(t("admin.display_name"), el("input", { name: "display_name", maxlength: "128", value: user?.display_name ?? "" })),
    field(t("admin.role"), select("role", ROLES.map((r) => [r, t(`role.${r}`)]), user?.role ?? "duty_officer")),
    field(t("admin.scope"), select("scope", SCOPES.map((s) => [s, t(`scope.${s}`)]), user?.scope ?? "bureau")),
    field(t("admin.district_code"), el("input", { name: "district_code", maxlength: "32", value: user?.scope === "district" ? user.district_code ?? "" : "" }), { hint: t("admin.scope_hint") }),
    field(t("admin.school_code"), el("input", { name: "school_code", maxlength: "32", value: user?.school_code ?? "" })),
    field(t("admin.phone"), el("input", { name: "phone", maxlength: "40", value: user?.phone ?? "" })),
    field(t("admin.email"), el("input", { name: "email", type: "email", maxlength: "200", value: user?.email ?? "" })),
    user ? null : field(t("admin.password"), el("input", { name: "password", type: "password", autocomplete: "new-password", maxlength: "256" }), { hint: t("admin.password_hint") }),
    el("label", { class: "check" }, el("input", { type: "checkbox", name: "active", checked: user ? user.active : true }), t("admin.active")),
  ];
  fill(editor, editorBox(user ? t("admin.edit_user", { user: user.username }) : t("admin.new_user"), form(async (data) => {
    const scope = text(data, "scope");
    const values = {
      display_name: text(data, "display_name"), role: text(data, "role"), scope,
      district_code: scope === "district" ? text(data, "district_code") || null : null,
      school_code: scope === "school" ? text(data, "school_code") || null : null,
      phone: text(data, "phone"), email: text(data, "email"), active: checked(data, "active"),
    };
    if (user) {
      const original = { ...user, district_code: user.scope === "district" ? user.district_code : null, school_code: user.scope === "school" ? user.school_code : null };
      const body = changes(values, original);
      if ("scope" in body || "district_code" in body || "school_code" in body) Object.assign(body, { scope, district_code: values.district_code, school_code: values.school_code });
      await api(`/api/users/${encodeURIComponent(user.username)}`, { method: "PATCH", body });
      toast(t("admin.saved"));
      editor.replaceChildren();
    } else {
      const created = await api("/api/users", { method: "POST", body: { username: text(data, "username"), password: text(data, "password") || null, ...values } });
      showPassword(created.user.username, created.password);
    }
    await usersTab();
  }, fields, { testid: "user-form" })));
}

// --- rules --------------------------------------------------------------------------------------------------

async function rulesTab() {
  const code = el("input", { name: "camera", list: "rule-cameras", required: true, maxlength: "64", value: decodeURIComponent(location.hash.slice(1)), placeholder: t("admin.camera_code"), "data-testid": "rules-camera" });
  const cameras = el("datalist", { id: "rule-cameras" });
  api("/api/cameras?limit=1000").then((page) => page.items.forEach((c) => cameras.append(el("option", { value: c.code }, `${c.school_code} ${c.name}`)))).catch(() => {});
  const area = el("textarea", { class: "code-editor", rows: "24", spellcheck: "false", "data-testid": "rules-text" });
  const source = el("p", { class: "muted" });
  const problems = el("div", { class: "problems", "data-testid": "rules-errors" });
  let loaded = "";
  const load = async () => {
    problems.replaceChildren();
    const rules = await api(`/api/cameras/${encodeURIComponent(code.value.trim())}/rules`);
    loaded = rules.camera_code;
    history.replaceState(null, "", `#${encodeURIComponent(loaded)}`);
    source.textContent = t("admin.rules_source", { camera: loaded, source: label("admin.rules_from", rules.source) });
    const { camera_code: _code, source: _source, ...body } = rules;
    area.value = JSON.stringify(body, null, 2);
  };
  const showProblems = (err) => {
    const detail = err && err.detail;
    const items = Array.isArray(detail) ? detail.map((d) => `${(d.loc || []).filter((p) => p !== "body").join(".")}: ${d.msg}`) : [describe(err)];
    fill(problems, el("p", { class: "error" }, t("admin.rules_invalid")), el("ul", {}, items.map((x) => el("li", { class: "error" }, x))));
  };
  const save = async () => {
    if (!loaded) return toast(t("admin.rules_load_first"), { error: true });
    let body;
    try {
      body = JSON.parse(area.value);
    } catch (err) {
      fill(problems, el("p", { class: "error" }, t("admin.rules_not_json", { error: err.message })));
      return;
    }
    try {
      await api(`/api/cameras/${encodeURIComponent(loaded)}/rules`, { method: "PUT", body });
    } catch (err) {
      showProblems(err);
      return;
    }
    toast(t("admin.rules_saved", { camera: loaded }));
    await load();
  };
  const revert = async () => {
    if (!loaded || !window.confirm(t("admin.rules_revert_confirm", { camera: loaded }))) return;
    await api(`/api/cameras/${encodeURIComponent(loaded)}/rules`, { method: "DELETE" });
    toast(t("admin.rules_reverted", { camera: loaded }));
    await load();
  };
  fill(main,
    el("div", { class: "toolbar" }, field(t("admin.camera_code"), code), cameras, button(t("admin.load"), load, { testid: "rules-load" })),
    source,
    el("p", { class: "muted" }, t("admin.rules_hint")),
    area,
    problems,
    el("div", { class: "toolbar" }, button(t("action.save"), save, { testid: "rules-save" }), button(t("admin.rules_revert"), revert, { kind: "secondary" })));
  if (code.value) await load().catch((err) => showProblems(err));
}

// --- roster -------------------------------------------------------------------------------------------------

const rosterState = { start: today(-1) };

async function rosterTab() {
  const start = new Date(`${rosterState.start}T00:00`);
  const end = new Date(start.getTime() + 8 * 86400000);
  const [shifts, now] = await Promise.all([
    api(`/api/roster/shifts${query({ start: start.toISOString(), end: end.toISOString(), limit: 500 })}`),
    api("/api/roster/now"),
  ]);
  const from = el("input", { type: "date", value: rosterState.start });
  from.addEventListener("change", () => { rosterState.start = from.value || today(-1); rosterTab().catch(mainError); });
  const rows = shifts.map((s) => ({
    attrs: now.shift && now.shift.id === s.id ? { class: "selected" } : {},
    cells: [
      s.label, when(s.starts_at), when(s.ends_at), who(s.leader), s.officers.map(who).join(", "),
      button(t("admin.delete"), async () => {
        if (!window.confirm(t("admin.delete_shift_confirm", { label: s.label || s.id }))) return;
        await api(`/api/roster/shifts/${s.id}`, { method: "DELETE" });
        toast(t("admin.deleted"));
        await rosterTab();
      }, { kind: "danger", testid: `delete-shift-${s.id}` }),
    ],
  }));
  const onDuty = now.shift ? t("admin.on_duty_now", { label: now.shift.label, leader: who(now.shift.leader), officers: now.shift.officers.map(who).join(", ") }) : t("admin.nobody_on_duty");
  const names = (value) => value.split(/[,，\s]+/).filter(Boolean);
  fill(main,
    el("p", { "data-testid": "on-duty" }, onDuty),
    el("div", { class: "toolbar" }, field(t("admin.from_day"), from)),
    table([t("admin.shift_label"), t("admin.starts_at"), t("admin.ends_at"), t("admin.leader"), t("admin.officers"), ""], rows, { testid: "shift-table" }),
    el("details", { class: "panel" }, el("summary", {}, t("admin.new_shift")), form(async (data, node) => {
      await api("/api/roster/shifts", {
        method: "POST",
        body: { label: text(data, "label"), starts_at: isoOfLocal(text(data, "starts_at")), ends_at: isoOfLocal(text(data, "ends_at")), leader: text(data, "leader"), officers: names(text(data, "officers")) },
      });
      node.reset();
      toast(t("admin.saved"));
      await rosterTab();
    }, [
      field(t("admin.shift_label"), el("input", { name: "label", maxlength: "64" })),
      field(t("admin.starts_at"), el("input", { name: "starts_at", type: "datetime-local", required: true, value: localOfIso() })),
      field(t("admin.ends_at"), el("input", { name: "ends_at", type: "datetime-local", required: true })),
      field(t("admin.leader"), el("input", { name: "leader", required: true, maxlength: "64", placeholder: "leader1" })),
      field(t("admin.officers"), el("input", { name: "officers", required: true, placeholder: "officer1, officer2" }), { hint: t("admin.names_hint") }),
    ], { testid: "shift-form" })),
    el("details", { class: "panel" }, el("summary", {}, t("admin.generate")), form(async (data) => {
      const result = await api("/api/roster/generate", {
        method: "POST",
        body: {
          first_day: text(data, "first_day"),
          days: Number(data.get("days")),
          boundaries: names(text(data, "boundaries")),
          teams: text(data, "teams").split(/[;；]/).map(names).filter((team) => team.length),
          leaders: names(text(data, "leaders")),
        },
      });
      toast(t("admin.generated", { created: result.created.length, skipped: result.skipped.length }));
      for (const s of result.skipped) toast(`${when(s.starts_at)} – ${when(s.ends_at)}: ${s.reason}`, { error: true });
      await rosterTab();
    }, [
      field(t("admin.first_day"), el("input", { name: "first_day", type: "date", required: true, value: today() })),
      field(t("admin.days"), el("input", { name: "days", type: "number", min: "1", max: "62", value: "7", required: true })),
      field(t("admin.boundaries"), el("input", { name: "boundaries", required: true, value: "08:00, 20:00" })),
      field(t("admin.teams"), el("input", { name: "teams", required: true, placeholder: "officer1, officer2; officer3" }), { hint: t("admin.teams_hint") }),
      field(t("admin.leaders"), el("input", { name: "leaders", required: true, placeholder: "leader1, leader2" })),
    ], { submit: t("admin.generate"), testid: "generate-form" })));
}

const TABS = { schools: schoolsTab, cameras: camerasTab, users: usersTab, rules: rulesTab, roster: rosterTab };
if (TABS[tab]) TABS[tab]().catch(mainError);
else fill(main, el("p", { class: "error" }, t("pg.forbidden_title")));
