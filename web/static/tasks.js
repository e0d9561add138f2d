// Patrol tasks: today's tasks (of my shift, or all), one task's cameras with live thumbnails, and the verdict
// on each camera (normal/abnormal, a note, a snapshot from the latest thumbnail or an upload; an abnormal
// verdict may open a hazard). A task is done once every camera has a verdict.
import { api, el, t, toast } from "/static/console.js";
import {
  badge, busy, button, can, checked, describe, field, fill, form, isoOfLocal, label, onFeed, pager, picture, query,
  refill, select, table, today, topicOf, when, who,
} from "/static/pages_kit.js";

const toolbar = document.getElementById("task-toolbar");
const list = document.getElementById("task-list");
const detail = document.getElementById("task-detail");
const state = { day: today(), mine: false, status: "", offset: 0, openId: null };
const THUMB_EVERY_MS = 10000;

function statusBadge(status) {
  return badge(label("task.status", status), status === "done" ? "ok" : status === "missed" ? "bad" : "info");
}

function windowText(task) {
  return `${when(task.window_start)} – ${when(task.window_end)}`;
}

async function loadList() {
  const page = await api(`/api/patrol-tasks${query({ day: state.day, mine: state.mine, status: state.status, limit: 50, offset: state.offset })}`);
  const rows = page.items.map((task) => ({
    attrs: { class: state.openId === task.id ? "clickable selected" : "clickable", "data-task": String(task.id) },
    cells: [
      String(task.id),
      el("a", { href: `#${task.id}` }, task.plan_name),
      windowText(task),
      statusBadge(task.status),
      el("span", { class: "progress" }, el("progress", { max: String(task.cameras_total || 1), value: String(task.cameras_done) }), ` ${task.cameras_done}/${task.cameras_total}`),
    ],
  }));
  fill(
    list,
    table(["#", t("task.plan"), t("task.window"), t("task.state"), t("task.progress")], rows, { testid: "task-table", empty: t("task.none") }),
    pager(page, (offset) => { state.offset = offset; loadList().catch(listError); }),
  );
  for (const row of list.querySelectorAll("tr[data-task]")) {
    row.addEventListener("click", (ev) => {
      ev.preventDefault();
      openTask(Number(row.dataset.task));
    });
  }
}

function listError(err) {
  fill(list, el("p", { class: "error" }, describe(err)));
}

async function openTask(id) {
  state.openId = id;
  history.replaceState(null, "", `#${id}`);
  for (const row of list.querySelectorAll("tr[data-task]")) row.classList.toggle("selected", Number(row.dataset.task) === id);
  await loadDetail();
}

/** Show the open record; `background` (a feed refresh) leaves the pane alone if the user began working in it
 * while the record was fetched. */
async function loadDetail(background = false) {
  if (state.openId === null) return;
  let task;
  try {
    task = await api(`/api/patrol-tasks/${state.openId}`);
  } catch (err) {
    fill(detail, el("p", { class: "error" }, describe(err)));
    return;
  }
  if (background && busy(detail)) return;
  const now = Date.now();
  const inWindow = now >= new Date(task.window_start).getTime() && now < new Date(task.window_end).getTime();
  const head = [
    el("h2", {}, `#${task.id} ${task.plan_name}`),
    el("p", {}, statusBadge(task.status), " ", windowText(task), " · ", t("task.done_of", { done: task.cameras_done, total: task.cameras_total })),
  ];
  if (task.status === "done") head.push(el("p", { class: "ok-text", "data-testid": "task-complete" }, t("task.completed_at", { time: when(task.completed_at) })));
  if (task.status === "pending" && !inWindow) head.push(el("p", { class: "muted" }, t("task.outside_window")));
  const grid = el("div", { class: "camera-grid", "data-testid": "task-cameras" }, task.items.map((item) => itemCard(task, item, inWindow)));
  refill(detail, String(task.id), ...head, grid);
}

function itemCard(task, item, inWindow) {
  const thumbUrl = `/api/cameras/${encodeURIComponent(item.camera_code)}/thumbnail.jpg`;
  const img = picture(`${thumbUrl}?t=${Date.now()}`, item.camera_name);
  img.dataset.thumb = thumbUrl;
  const card = el("article", { class: `camera-card ${item.verdict || "unchecked"}`, "data-camera": item.camera_code },
    img,
    el("h3", {}, item.camera_name, " ", el("small", { class: "muted" }, item.camera_code)),
    el("div", { class: "muted" }, item.school_name));
  if (item.verdict) {
    card.append(el("p", {}, badge(label("task.verdict", item.verdict), item.verdict === "normal" ? "ok" : "bad"), " ", when(item.checked_at), " ", who(item.checked_by)));
    if (item.note) card.append(el("p", { class: "note" }, item.note));
    if (item.snapshot_url) card.append(el("a", { href: item.snapshot_url, target: "_blank", rel: "noopener" }, t("task.snapshot")));
    if (item.hazard_id) card.append(" · ", el("a", { href: `/hazards#${item.hazard_id}` }, t("task.hazard", { id: item.hazard_id })));
  }
  if (can.verdict && task.status === "pending" && inWindow) card.append(verdictForm(task, item));
  return card;
}

function verdictForm(task, item) {
  const hazardBox = el("div", { class: "hazard-fields" },
    field(t("task.hazard_title"), el("input", { name: "hazard_title", maxlength: "200" })),
    field(t("task.hazard_severity"), select("hazard_severity", [["general", label("inc.severity", "general")], ["major", label("inc.severity", "major")]], "general")),
    field(t("task.hazard_deadline"), el("input", { name: "hazard_deadline", type: "datetime-local" })));
  hazardBox.hidden = true;
  const openHazard = el("input", { type: "checkbox", name: "open_hazard" });
  const hazardToggle = el("label", { class: "check" }, openHazard, t("task.open_hazard"));
  hazardToggle.hidden = true;
  openHazard.addEventListener("change", () => { hazardBox.hidden = !openHazard.checked; });
  const radios = ["normal", "abnormal"].map((v) => {
    const input = el("input", { type: "radio", name: "verdict", value: v, required: true });
    if (item.verdict === v) input.checked = true;
    input.addEventListener("change", () => {
      const abnormal = input.value === "abnormal" && input.checked;
      hazardToggle.hidden = !abnormal;
      if (!abnormal) {
        openHazard.checked = false;
        hazardBox.hidden = true;
      }
    });
    return el("label", { class: `check verdict-${v}` }, input, label("task.verdict", v));
  });
  return form(async (data) => {
    const body = new FormData();
    const verdict = String(data.get("verdict") || "");
    body.set("verdict", verdict);
    body.set("note", String(data.get("note") || ""));
    const file = data.get("snapshot");
    if (file instanceof File && file.size > 0) body.set("snapshot", file);
    if (verdict === "abnormal" && checked(data, "open_hazard")) {
      body.set("open_hazard", "true");
      const title = String(data.get("hazard_title") || "").trim();
      if (title) body.set("hazard_title", title);
      body.set("hazard_severity", String(data.get("hazard_severity") || "general"));
      const deadline = isoOfLocal(String(data.get("hazard_deadline") || ""));
      if (deadline) body.set("hazard_deadline", deadline);
    }
    const result = await api(`/api/patrol-tasks/${task.id}/items/${encodeURIComponent(item.camera_code)}/verdict`, { method: "POST", form: body });
    const snap = label("task.snapshot_from", result.snapshot);
    toast(t("task.recorded", { camera: item.camera_name, snapshot: snap }) + (result.hazard_opened ? ` · ${t("task.hazard_opened")}` : ""));
    if (result.snapshot_detail) toast(result.snapshot_detail);
    if (result.task_completed) toast(t("task.task_done"));
    await Promise.all([loadDetail(), loadList().catch(listError)]);
  }, [
    el("div", { class: "radios" }, radios),
    field(t("task.note"), el("textarea", { name: "note", rows: "2", maxlength: "2000" })),
    field(t("task.upload"), el("input", { type: "file", name: "snapshot", accept: "image/jpeg" }), { hint: t("task.upload_hint") }),
    hazardToggle,
    hazardBox,
  ], { submit: item.verdict ? t("task.replace_verdict") : t("task.record_verdict"), testid: `verdict-${item.camera_code}`, cls: "verdict-form" });
}

function refreshThumbnails() {
  for (const img of detail.querySelectorAll("img[data-thumb]")) {
    img.classList.remove("none");
    img.src = `${img.dataset.thumb}?t=${Date.now()}`;
  }
}

async function refresh(force = true) {
  try {
    await loadList();
  } catch (err) {
    listError(err);
  }
  if (force || !busy(detail)) await loadDetail(!force);
}

function setup() {
  const day = el("input", { type: "date", value: state.day, "data-testid": "task-day" });
  day.addEventListener("change", () => { state.day = day.value; state.offset = 0; refresh(); });
  const mine = el("input", { type: "checkbox", "data-testid": "task-mine" });
  mine.addEventListener("change", () => { state.mine = mine.checked; state.offset = 0; refresh(); });
  const status = select("status", [["", t("pg.all")], ...["pending", "done", "missed"].map((s) => [s, label("task.status", s)])], "");
  status.addEventListener("change", () => { state.status = status.value; state.offset = 0; refresh(); });
  fill(toolbar, field(t("task.day"), day), el("label", { class: "check" }, mine, t("task.mine")), field(t("task.state"), status), button(t("action.refresh"), () => refresh(), { kind: "secondary" }));
  const id = Number(location.hash.slice(1));
  if (id > 0) state.openId = id;
  onFeed((m) => {
    const { topic, type } = topicOf(m);
    return (topic === "duty" || topic === "") && type.startsWith("task.");
  }, () => refresh(false));
  setInterval(refreshThumbnails, THUMB_EVERY_MS);
  refresh();
}

setup();
