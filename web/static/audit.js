// The audit log (read only): who did what to which target, from where; filterable by action, user, target
// prefix and time.
import { api, boot, el, t } from "/static/console.js";
import { button, describe, field, fill, form, isoOfLocal, label, pager, query, select, table, when } from "/static/pages_kit.js";

const toolbar = document.getElementById("audit-toolbar");
const list = document.getElementById("audit-list");
const ACTIONS = boot.actions || [];
const state = { action: "", actor: "", target: "", since: null, until: null, offset: 0 };

function detailText(detail) {
  if (!detail || !Object.keys(detail).length) return "";
  return el("code", { class: "detail" }, JSON.stringify(detail));
}

async function loadList() {
  const page = await api(`/api/audit${query({ ...state, limit: 100 })}`);
  const rows = page.items.map((r) => [when(r.at), r.actor_name, label("audit.action", r.action), r.target, r.ip, detailText(r.detail)]);
  fill(list,
    el("p", { class: "muted" }, t("audit.total", { total: page.total })),
    table([t("audit.at"), t("audit.actor"), t("audit.action_h"), t("audit.target"), t("audit.ip"), t("audit.detail")], rows, { testid: "audit-table" }),
    pager(page, (offset) => { state.offset = offset; loadList().catch(listError); }));
}

function listError(err) {
  fill(list, el("p", { class: "error" }, describe(err)));
}

fill(toolbar, form(async (data) => {
  state.action = String(data.get("action") || "");
  state.actor = String(data.get("actor") || "").trim();
  state.target = String(data.get("target") || "").trim();
  state.since = isoOfLocal(String(data.get("since") || ""));
  state.until = isoOfLocal(String(data.get("until") || ""));
  state.offset = 0;
  await loadList();
}, [
  field(t("audit.action_h"), select("action", [["", t("pg.all")], ...ACTIONS.map((a) => [a, label("audit.action", a)])], "")),
  field(t("audit.actor"), el("input", { name: "actor", maxlength: "64" })),
  field(t("audit.target"), el("input", { name: "target", maxlength: "200", placeholder: t("audit.target_hint") })),
  field(t("audit.since"), el("input", { name: "since", type: "datetime-local" })),
  field(t("audit.until"), el("input", { name: "until", type: "datetime-local" })),
], { submit: t("audit.filter"), testid: "audit-filter", cls: "inline-form" }), button(t("action.refresh"), () => loadList().catch(listError), { kind: "secondary" }));
loadList().catch(listError);
