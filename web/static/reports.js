// Daily reports: the list with headline figures, one day's figures, PDF and CSV downloads, and (for the duty
// room) generating a finished day's report again.
import { api, el, t, toast } from "/static/console.js";
import { badge, button, can, describe, facts, field, fill, form, label, onFeed, pager, query, table, today, topicOf, when } from "/static/pages_kit.js";

const toolbar = document.getElementById("report-toolbar");
const list = document.getElementById("report-list");
const detail = document.getElementById("report-detail");
const state = { offset: 0, zero: "", day: null };
const KEY_FIGURES = ["coverage_share", "tasks_not_done", "events", "major_events", "incidents", "major_incidents", "hazards_found", "hazards_rectified", "hazards_overdue", "offline_cameras", "spot_checks_signed"];

function figure(key, value) {
  return key === "coverage_share" ? `${Math.round(Number(value) * 1000) / 10}%` : String(value);
}

function downloads(r) {
  return el("span", { class: "downloads" },
    el("a", { href: r.pdf_url, "data-testid": "pdf-link", download: "" }, "PDF"), " · ",
    el("a", { href: r.csv_url, "data-testid": "csv-link", download: "" }, "CSV"));
}

async function loadList() {
  const page = await api(`/api/reports${query({ zero: state.zero, limit: 31, offset: state.offset })}`);
  const rows = page.items.map((r) => ({
    attrs: { class: state.day === r.day ? "clickable selected" : "clickable", "data-day": r.day },
    cells: [
      el("a", { href: `#${r.day}` }, r.day),
      r.zero ? badge(t("rep.zero"), "ok") : badge(t("rep.not_zero"), "warn"),
      figure("coverage_share", r.key_figures.coverage_share),
      String(r.key_figures.events),
      String(r.key_figures.incidents),
      String(r.key_figures.hazards_found),
      String(r.key_figures.offline_cameras),
      when(r.generated_at),
      downloads(r),
    ],
  }));
  fill(list,
    table([t("rep.day"), t("rep.kind"), t("rep.fig.coverage_share"), t("rep.fig.events"), t("rep.fig.incidents"), t("rep.fig.hazards_found"), t("rep.fig.offline_cameras"), t("rep.generated"), t("rep.download")], rows, { testid: "report-table", empty: t("rep.none") }),
    pager(page, (offset) => { state.offset = offset; loadList().catch(listError); }));
  for (const row of list.querySelectorAll("tr[data-day]")) {
    row.addEventListener("click", (ev) => {
      if (ev.target.closest(".downloads")) return;
      ev.preventDefault();
      openDay(row.dataset.day);
    });
  }
}

function listError(err) {
  fill(list, el("p", { class: "error" }, describe(err)));
}

async function openDay(day) {
  state.day = day;
  history.replaceState(null, "", `#${day}`);
  for (const row of list.querySelectorAll("tr[data-day]")) row.classList.toggle("selected", row.dataset.day === day);
  let r;
  try {
    r = await api(`/api/reports/${day}`);
  } catch (err) {
    fill(detail, el("p", { class: "error" }, describe(err)));
    return;
  }
  const f = r.figures;
  const names = new Map(r.users.map((u) => [u.id, u.display_name || u.username]));
  fill(detail,
    el("h2", {}, t("rep.title", { day: r.day })),
    el("p", {}, r.zero ? badge(t("rep.zero"), "ok") : badge(t("rep.not_zero"), "warn"), " ", downloads(r)),
    r.zero ? null : el("p", { class: "muted" }, t("rep.reasons", { reasons: f.reasons.map((x) => label("rep.reason", x)).join(", ") })),
    el("h3", {}, t("rep.key_figures")),
    facts(KEY_FIGURES.map((k) => [t(`rep.fig.${k}`), figure(k, r.key_figures[k])])),
    el("h3", {}, t("rep.tasks")),
    facts([[t("rep.total"), String(f.tasks.total)], [t("rep.done"), String(f.tasks.done)], [t("rep.missed"), String(f.tasks.missed)], [t("rep.abnormal"), String(f.tasks.abnormal)]]),
    el("h3", {}, t("rep.events")),
    table([t("rep.type"), t("rep.count")], Object.entries(f.events.by_type || {}).map(([k, v]) => [k, String(v)])),
    el("h3", {}, t("rep.offline")),
    table([t("rep.school"), t("rep.cameras")], (f.offline.by_school || []).map((s) => [`${s.school_name} (${s.school_code})`, s.cameras.join(", ")])),
    el("h3", {}, t("rep.duty")),
    table([t("rep.shift"), t("rep.leader"), t("rep.officers")], (f.duty || []).map((s) => [`${s.label} ${when(s.starts_at)} – ${when(s.ends_at)}`, names.get(s.leader_id) || String(s.leader_id), s.officer_ids.map((id) => names.get(id) || String(id)).join(", ")])),
    el("p", { class: "muted" }, t("rep.generated_at", { time: when(r.generated_at) })));
}

function setup() {
  const zero = el("select", { "data-testid": "report-zero" },
    el("option", { value: "" }, t("pg.all")), el("option", { value: "true" }, t("rep.zero")), el("option", { value: "false" }, t("rep.not_zero")));
  zero.addEventListener("change", () => { state.zero = zero.value; state.offset = 0; loadList().catch(listError); });
  fill(toolbar, field(t("rep.kind"), zero), button(t("action.refresh"), () => loadList().catch(listError), { kind: "secondary" }));
  if (can.generate) {
    toolbar.append(form(async (data) => {
      const day = String(data.get("day"));
      await api(`/api/reports/${day}/generate`, { method: "POST" });
      toast(t("rep.generated_ok", { day }));
      await loadList();
      await openDay(day);
    }, [field(t("rep.day"), el("input", { type: "date", name: "day", required: true, value: today(-1), max: today(-1) }))], { submit: t("rep.generate"), testid: "generate-form", cls: "inline-form" }));
  }
  onFeed((m) => topicOf(m).type === "report.daily", () => loadList().catch(listError));
  const day = location.hash.slice(1);
  loadList().catch(listError).then(() => { if (/^\d{4}-\d{2}-\d{2}$/.test(day)) openDay(day); });
}

setup();
