// The notifier's outbox and delivery log: each message with its channel, recipients, status and attempts; a
// message opens to its delivery attempts (status code or error, how long each took). Administrators can send a
// test message on a channel.
import { api, el, t, toast } from "/static/console.js";
import { badge, button, can, describe, facts, field, fill, form, label, onFeed, pager, query, select, table, when, who } from "/static/pages_kit.js";

const toolbar = document.getElementById("notif-toolbar");
const list = document.getElementById("notif-list");
const state = { status: "", channel: "", offset: 0 };
const STATUSES = ["pending", "sending", "sent", "failed", "dead"];
const detail = el("div", { class: "panel", "data-testid": "notif-detail" });
detail.hidden = true;

function statusBadge(status) {
  const kind = { sent: "ok", failed: "warn", dead: "bad", pending: "info", sending: "info" }[status] || "";
  return badge(label("notif.status", status), kind);
}

function listError(err) {
  const missing = err && err.status === 404;
  fill(list, el("p", { class: missing ? "muted" : "error" }, missing ? t("notif.unavailable") : describe(err)));
}

const shown = new Map();

async function loadList() {
  const page = await api(`/api/notifications${query({ status: state.status, channel: state.channel, limit: 50, offset: state.offset })}`);
  shown.clear();
  for (const m of page.items) shown.set(m.id, m);
  const rows = page.items.map((m) => ({
    attrs: { class: "clickable", "data-message": m.id },
    cells: [
      when(m.created_at),
      m.channel,
      recipientsText(m),
      label("notif.kind", m.kind),
      m.title,
      statusBadge(m.status),
      String(m.attempts),
      m.sent_at ? when(m.sent_at) : m.next_attempt_at ? t("notif.next_at", { time: when(m.next_attempt_at) }) : "",
      m.last_error ? el("span", { class: "error-text" }, m.last_error) : "",
    ],
  }));
  fill(list,
    table([t("notif.created"), t("notif.channel"), t("notif.receiver"), t("notif.kind_h"), t("notif.title"), t("notif.state"), t("notif.attempts"), t("notif.sent"), t("notif.error")], rows, { testid: "notif-table" }),
    pager(page, (offset) => { state.offset = offset; loadList().catch(listError); }),
    detail);
  for (const row of list.querySelectorAll("tr[data-message]")) row.addEventListener("click", () => openMessage(row.dataset.message));
}

function recipientsText(m) {
  const people = (m.recipients || []).map(who).join(", ");
  return m.receiver_key === "group" ? `${t("notif.group")}${people ? ` (${people})` : ""}` : people || m.receiver_key;
}

async function openMessage(id) {
  const m = shown.get(id);
  if (!m) return;
  detail.hidden = false;
  let attempts = [];
  try {
    attempts = await api(`/api/notifications/${encodeURIComponent(id)}/attempts`);
  } catch (err) {
    fill(detail, el("p", { class: "error" }, describe(err)));
    return;
  }
  fill(detail,
    el("h2", {}, m.title || id),
    facts([
      [t("notif.id"), el("span", { class: "mono" }, m.id)],
      [t("notif.channel"), m.channel],
      [t("notif.receiver"), recipientsText(m)],
      [t("notif.kind_h"), label("notif.kind", m.kind)],
      [t("notif.steps"), m.steps.map((x) => label("notif.step", x)).join(", ")],
      [t("notif.items"), String(m.item_count)],
      [t("notif.events"), el("span", {}, m.event_ids.map((e, i) => [i ? ", " : "", el("a", { href: `/events#${e}` }, `#${e}`)]))],
      [t("notif.state"), statusBadge(m.status)],
      [t("notif.created"), when(m.created_at)],
      [t("notif.sent"), when(m.sent_at)],
    ]),
    el("h3", {}, t("notif.attempts_log")),
    table(["#", t("notif.at"), t("notif.result"), t("notif.status_code"), t("notif.error"), t("notif.duration"), t("notif.dispatcher")], attempts.map((a) => [
      String(a.attempt), when(a.at), a.ok ? badge(t("notif.ok"), "ok") : badge(t("notif.failed"), "bad"), a.status_code == null ? "" : String(a.status_code), a.error, `${a.duration_ms} ms`, a.dispatcher,
    ]), { testid: "notif-attempts" }));
}

function testForm() {
  return el("details", { class: "panel" }, el("summary", {}, t("notif.test")), form(async (data) => {
    const to = String(data.get("to") || "").split(/[,，\s]+/).filter(Boolean);
    const sent = await api("/api/notifications/test", { method: "POST", body: { channel: String(data.get("channel") || ""), text: String(data.get("text") || "") || undefined, to } });
    toast(t("notif.test_sent", { count: sent.length, status: sent.map((m) => label("notif.status", m.status)).join(", ") }));
    await loadList();
  }, [
    field(t("notif.channel"), el("input", { name: "channel", required: true, maxlength: "64" })),
    field(t("notif.test_text"), el("input", { name: "text", maxlength: "500", placeholder: "campuswatch test message" })),
    field(t("notif.test_to"), el("input", { name: "to", placeholder: t("notif.test_to_hint") })),
  ], { submit: t("notif.test_send"), testid: "test-form" }));
}

const status = select("status", [["", t("pg.all")], ...STATUSES.map((s) => [s, label("notif.status", s)])], "");
status.addEventListener("change", () => { state.status = status.value; state.offset = 0; loadList().catch(listError); });
const channel = el("input", { placeholder: t("notif.channel"), maxlength: "64" });
channel.addEventListener("change", () => { state.channel = channel.value.trim(); state.offset = 0; loadList().catch(listError); });
fill(toolbar, status, channel, button(t("action.refresh"), () => loadList().catch(listError), { kind: "secondary" }));
if (can.test) toolbar.after(testForm());
// A new event or duty item is soon in the outbox: look again a little later (the notifier writes it first).
onFeed((m) => ["duty", "events"].includes(String(m.topic || "")), () => loadList().catch(listError), 2000);
loadList().catch(listError);
