// Camera health: the fleet's counts, the offline and degraded cameras, and the open picture faults with the
// keyframe that showed each. Refreshed on `camera.health` / `camera.quality` feed messages and every 30 s.
import { api, el, t } from "/static/console.js";
import { badge, button, describe, fill, label, onFeed, pictureLink, table, topicOf, when } from "/static/pages_kit.js";

const toolbar = document.getElementById("health-toolbar");
const summaryBox = document.getElementById("health-summary");
const offlineBox = document.getElementById("health-offline");
const degradedBox = document.getElementById("health-degraded");
const faultsBox = document.getElementById("health-faults");
const POLL_MS = 30000;
const stamp = el("span", { class: "muted" });

function card(key, value, kind) {
  return el("div", { class: `card ${kind}`, "data-testid": `count-${key}` }, el("div", { class: "count" }, String(value)), el("div", {}, t(`health.count.${key}`)));
}

function stateTable(rows) {
  return table([t("health.camera"), t("health.reason"), t("health.detail"), t("health.since"), t("health.last_frame"), t("health.reconnects"), t("health.faults")], rows.map((h) => [
    el("strong", {}, h.camera_code),
    label("health.reason", h.reason),
    h.detail || "",
    when(h.since),
    when(h.last_frame_at),
    String(h.reconnects),
    h.faults.map((f) => badge(label("health.fault", f.fault), "warn")),
  ]), { empty: t("health.none") });
}

async function refresh() {
  try {
    const [summary, offline, degraded, faults] = await Promise.all([
      api("/api/health/summary"),
      api("/api/health?state=offline&limit=1000"),
      api("/api/health?state=degraded&limit=1000"),
      api("/api/quality-faults?open=true&limit=200"),
    ]);
    fill(summaryBox,
      card("online", summary.online, "ok"),
      card("degraded", summary.degraded, "warn"),
      card("offline", summary.offline, "bad"),
      card("unknown", summary.unknown, ""),
      card("open_faults", summary.open_faults, "warn"));
    fill(offlineBox, stateTable(offline));
    fill(degradedBox, stateTable(degraded));
    fill(faultsBox, faults.length ? faults.map((f) => el("figure", { class: "fault", "data-fault": String(f.id) },
      f.snapshot_url ? pictureLink(f.snapshot_url, f.fault) : el("div", { class: "thumb none" }),
      el("figcaption", {},
        el("strong", {}, f.camera_code), " ", badge(label("health.fault", f.fault), "warn"),
        el("div", { class: "muted" }, t("health.fault_value", { value: f.value.toFixed(3), threshold: f.threshold.toFixed(3) })),
        el("div", { class: "muted" }, t("health.fault_since", { time: when(f.started_at) }))))) : el("p", { class: "muted" }, t("health.no_faults")));
    stamp.textContent = t("health.updated", { time: new Date().toLocaleTimeString() });
  } catch (err) {
    fill(summaryBox, el("p", { class: "error" }, describe(err)));
  }
}

fill(toolbar, button(t("action.refresh"), refresh, { kind: "secondary" }), stamp);
onFeed((m) => {
  const { topic, type } = topicOf(m);
  return topic === "camera.health" || topic === "camera.quality" || type.startsWith("camera.") || type.startsWith("quality.");
}, refresh, 1000);
setInterval(refresh, POLL_MS);
refresh();
