// The video wall: the chosen wall's layout with each tile's camera and refreshing thumbnail, the rotation as
// the patrol service drives it (wall.* messages on the feed, and polling as a fallback), alarm takeover with
// sound and acknowledgement, and the live view of a tile in a dialog.

import { ApiError, api, boot, el, feed, fmtTime, t, toast } from "/static/console.js";
import { AlarmSound, mountLive, severityLabel, typeLabel } from "/static/ops.js";

const POLL_MS = 3000; // fallback when the feed is down or a message was missed
const THUMB_MS = 4000; // thumbnails are the cameras' latest keyframes (one every ~2 s)
const REPEAT_BEEP_MS = 15000; // an alarm nobody acknowledged keeps calling
const WALL_KEY = "cw.wall";

// Grid of one screen: columns, and for the 1+N layouts where the big tile (tile 0 of the screen) sits.
const GRIDS = {
  1: { cols: 1 },
  4: { cols: 2 },
  9: { cols: 3 },
  16: { cols: 4 },
  25: { cols: 5 },
  36: { cols: 6 },
  "1+5": { cols: 3, big: { row: 1, col: 1, span: 2 } },
  "1+7": { cols: 4, big: { row: 1, col: 1, span: 3 } },
  "1+12": { cols: 4, big: { row: 2, col: 2, span: 2 } },
};

const wallBox = document.getElementById("wall");
const statusLine = document.getElementById("wall-status");
const nameLine = document.getElementById("wall-name");
const alarmBar = document.getElementById("alarm-bar");
const select = document.getElementById("wall-select");
const sound = new AlarmSound(document.getElementById("sound"));
const canAct = boot.can_act === true;

let wallId = null;
let layoutKey = ""; // layout and screens the tiles were built for
let tiles = []; // tile elements by tile number
let state = null;
let loading = null;
let again = false;
let heardAlarms = new Set();
let lastBeep = 0;

function tileParts(tile) {
  const img = el("img", { class: "thumb", alt: "", "data-testid": "thumb" });
  img.addEventListener("load", () => figure.classList.remove("nothumb"));
  img.addEventListener("error", () => figure.classList.add("nothumb"));
  const caption = el("figcaption", { class: "caption" });
  const overlay = el("div", { class: "tile-alarm", hidden: true });
  const placeholder = el("div", { class: "placeholder" }, t("wall.no_thumbnail"));
  const figure = el(
    "figure",
    { class: "tile", "data-testid": "tile", dataset: { tile: String(tile.tile) }, tabindex: "0" },
    img,
    placeholder,
    overlay,
    caption,
  );
  figure.addEventListener("click", (event) => {
    if (event.target.closest("button")) return;
    const code = figure.dataset.camera;
    if (code) openLive(code, figure.dataset.name || code);
  });
  figure.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && figure.dataset.camera) openLive(figure.dataset.camera, figure.dataset.name);
  });
  return { figure, img, caption, overlay };
}

function build(wallState) {
  const grid = GRIDS[wallState.layout] || GRIDS[9];
  const perScreen = wallState.tiles.length / Math.max(1, wallState.screens);
  wallBox.replaceChildren();
  wallBox.dataset.layout = wallState.layout;
  wallBox.dataset.screens = String(wallState.screens);
  tiles = [];
  for (let screen = 0; screen < wallState.screens; screen++) {
    const box = el("div", { class: "screen", dataset: { screen: String(screen) } });
    box.style.gridTemplateColumns = `repeat(${grid.cols}, minmax(0, 1fr))`;
    box.style.gridTemplateRows = `repeat(${grid.cols}, minmax(0, 1fr))`;
    for (const tile of wallState.tiles.slice(screen * perScreen, (screen + 1) * perScreen)) {
      const parts = tileParts(tile);
      if (tile.big && grid.big) {
        parts.figure.classList.add("big");
        parts.figure.style.gridRow = `${grid.big.row} / span ${grid.big.span}`;
        parts.figure.style.gridColumn = `${grid.big.col} / span ${grid.big.span}`;
      }
      tiles[tile.tile] = parts;
      box.append(parts.figure);
    }
    wallBox.append(box);
  }
  layoutKey = `${wallState.layout}x${wallState.screens}x${wallState.tiles.length}`;
}

function thumbUrl(url) {
  return `${url}${url.includes("?") ? "&" : "?"}t=${Date.now()}`;
}

function alarmDetails(alarm) {
  // The wall runner titles an alarm "type · school · camera".
  const [type, school, ...camera] = (alarm.title || "").split(" · ");
  return { type: type || "alarm", school: school || alarm.school_code, camera: camera.join(" · ") || alarm.camera_code };
}

function ackButton(alarm) {
  if (!canAct) return null;
  const button = el("button", { type: "button", class: "danger ack", "data-testid": "ack" }, t("wall.acknowledge"));
  button.addEventListener("click", () => acknowledge(alarm, button));
  return button;
}

/** What a tile taken by the alarm shows over its picture: the evidence, the type, school, camera and time. */
function alarmOverlay(alarm) {
  const info = alarmDetails(alarm);
  const picture = alarm.event_id
    ? `/api/events/${alarm.event_id}/evidence.jpg`
    : thumbUrl(`/api/cameras/${alarm.camera_code}/thumbnail.jpg`);
  const evidence = el("img", { class: "evidence", alt: "", src: picture, "data-testid": "alarm-evidence" });
  evidence.addEventListener("error", () => evidence.classList.add("none"), { once: true });
  return el(
    "div",
    { class: "alarm-body", dataset: { alarm: String(alarm.id) } },
    evidence,
    el(
      "div",
      { class: "alarm-text" },
      el("strong", { class: "alarm-type", "data-testid": "alarm-type" }, `${t("wall.alarm")} · ${typeLabel(info.type)}`),
      el("span", { class: `severity ${alarm.severity}` }, severityLabel(alarm.severity)),
      el("span", { class: "alarm-school", "data-testid": "alarm-school" }, info.school),
      el("span", { class: "alarm-camera" }, info.camera),
      el("time", { datetime: alarm.raised_at }, t("wall.raised_at", { time: fmtTime(alarm.raised_at) })),
      ackButton(alarm),
    ),
  );
}

/** The one-line banner above the wall (shown as soon as the alarm is raised, before it takes a tile). */
function alarmBanner(alarm, queued) {
  const info = alarmDetails(alarm);
  return el(
    "div",
    { class: "alarm-line", dataset: { alarm: String(alarm.id) } },
    el("strong", { class: "alarm-type" }, `${t("wall.alarm")} · ${typeLabel(info.type)}`),
    el("span", { class: `severity ${alarm.severity}` }, severityLabel(alarm.severity)),
    el("span", { class: "alarm-school" }, info.school),
    el("span", { class: "alarm-camera" }, info.camera),
    el("time", { datetime: alarm.raised_at }, t("wall.raised_at", { time: fmtTime(alarm.raised_at) })),
    queued ? el("span", { class: "queued" }, t("wall.queued", { n: queued })) : null,
    ackButton(alarm),
  );
}

function render(wallState) {
  if (`${wallState.layout}x${wallState.screens}x${wallState.tiles.length}` !== layoutKey) build(wallState);
  const alarm = wallState.alarm;
  for (const tile of wallState.tiles) {
    const parts = tiles[tile.tile];
    if (!parts) continue;
    const { figure, img, caption, overlay } = parts;
    const code = tile.camera_code || "";
    if (figure.dataset.camera !== code) {
      figure.dataset.camera = code;
      figure.dataset.name = tile.camera_name || code;
      if (tile.thumbnail_url) img.src = thumbUrl(tile.thumbnail_url);
      else img.removeAttribute("src");
    }
    figure.classList.toggle("empty", !code);
    figure.classList.toggle("pinned", tile.pinned);
    caption.replaceChildren(
      ...[
        code ? el("span", { class: "cam-name" }, tile.camera_name || code) : el("span", { class: "muted" }, t("wall.empty_tile")),
        tile.school_name ? el("small", { class: "muted" }, ` · ${tile.school_name}`) : null,
        tile.pinned ? el("small", { class: "pin" }, ` · ${t("wall.pinned")}`) : null,
      ].filter(Boolean),
    );
    const held = tile.alarm && alarm !== null;
    figure.classList.toggle("alarm", held);
    if (held) {
      if (overlay.dataset.alarm !== String(alarm.id)) {
        overlay.replaceChildren(alarmOverlay(alarm));
        overlay.dataset.alarm = String(alarm.id);
      }
      overlay.hidden = false;
    } else {
      overlay.hidden = true;
      overlay.dataset.alarm = "";
      overlay.replaceChildren();
    }
  }
  renderAlarmBar(wallState);
  renderStatus(wallState);
  wallBox.classList.toggle("alarming", alarm !== null);
  document.body.classList.toggle("alarming", alarm !== null);
}

function renderAlarmBar(wallState) {
  const alarm = wallState.alarm;
  if (alarm === null) {
    alarmBar.hidden = true;
    alarmBar.dataset.alarm = "";
    alarmBar.replaceChildren();
    return;
  }
  const queued = wallState.queued.length;
  if (alarmBar.dataset.alarm !== String(alarm.id) || alarmBar.dataset.queued !== String(queued)) {
    alarmBar.replaceChildren(alarmBanner(alarm, queued));
    alarmBar.dataset.alarm = String(alarm.id);
    alarmBar.dataset.queued = String(queued);
  }
  alarmBar.hidden = false;
  const now = Date.now();
  if (!heardAlarms.has(alarm.id)) {
    heardAlarms.add(alarm.id);
    lastBeep = now;
    sound.beep(3);
  } else if (now - lastBeep >= REPEAT_BEEP_MS) {
    lastBeep = now;
    sound.beep(1);
  }
}

function renderStatus(wallState) {
  nameLine.textContent = wallState.name;
  document.body.dataset.paused = wallState.paused ? "true" : "false";
  if (wallState.paused) {
    statusLine.textContent = t("wall.paused");
    statusLine.dataset.state = "paused";
    return;
  }
  statusLine.dataset.state = "rotating";
  const parts = [];
  if (wallState.inspection_id) parts.push(t("wall.inspection", { id: wallState.inspection_id }));
  else if (wallState.tour)
    parts.push(
      t("wall.rotating", {
        tour: wallState.tour.name,
        round: wallState.tour.round,
        shown: wallState.tour.position,
        entries: wallState.tour.entries,
      }),
    );
  else parts.push(t("wall.no_tour"));
  if (wallState.next_rotation_at) {
    const s = Math.max(0, Math.round((new Date(wallState.next_rotation_at) - Date.now()) / 1000));
    parts.push(t("wall.next_in", { s }));
  }
  statusLine.textContent = parts.join(" · ");
}

/** Read the wall's state now; calls made while one is under way are folded into one more read after it. */
async function refresh() {
  if (wallId === null) return;
  if (loading) {
    again = true;
    return loading;
  }
  loading = (async () => {
    try {
      state = await api(`/api/walls/${wallId}/state`);
      render(state);
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) {
        statusLine.textContent = t("wall.load_failed", { detail: err.message });
        statusLine.dataset.state = "error";
      }
    } finally {
      loading = null;
    }
    if (again) {
      again = false;
      await refresh();
    }
  })();
  return loading;
}

function refreshThumbnails() {
  if (!state) return;
  for (const tile of state.tiles) {
    const parts = tiles[tile.tile];
    if (parts && tile.thumbnail_url && !document.hidden) parts.img.src = thumbUrl(tile.thumbnail_url);
  }
}

async function acknowledge(alarm, button) {
  button.disabled = true;
  try {
    // The wall's acknowledgement acknowledges the alarm's event too (and every wall it is on).
    await api(`/api/walls/${alarm.wall_id}/alarms/${alarm.id}/acknowledge`, { method: "POST" });
    toast(t("wall.acknowledged"));
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) toast(t("wall.already_acknowledged"));
    else toast(err.message, { error: true });
    button.disabled = false;
  }
  refresh();
}

// -- live view dialog ------------------------------------------------------------------------------------------

const dialog = document.getElementById("live-dialog");
let player = null;

function openLive(code, name) {
  document.getElementById("live-dialog-title").textContent = t("wall.live.title", { camera: name || code });
  document.getElementById("live-dialog-page").href = `/live/${encodeURIComponent(code)}`;
  dialog.dataset.camera = code;
  if (player) player.stop();
  player = mountLive(document.getElementById("live-dialog-body"), code);
  if (!dialog.open) dialog.showModal();
}

dialog.addEventListener("close", () => {
  if (player) player.stop();
  player = null;
});
document.getElementById("live-dialog-close").addEventListener("click", () => dialog.close());

// -- choosing the wall -----------------------------------------------------------------------------------------

async function chooseWall() {
  let walls;
  try {
    walls = await api("/api/walls");
  } catch (err) {
    statusLine.textContent = t("wall.load_failed", { detail: err.message });
    statusLine.dataset.state = "error";
    return;
  }
  if (walls.length === 0) {
    statusLine.textContent = t("wall.none");
    statusLine.dataset.state = "none";
    return;
  }
  const wanted = boot.wall_id ?? Number(localStorage.getItem(WALL_KEY));
  const chosen = walls.find((w) => w.id === wanted) || walls[0];
  select.replaceChildren(...walls.map((w) => el("option", { value: String(w.id), selected: w.id === chosen.id }, w.name)));
  document.getElementById("wall-choice").hidden = walls.length < 2;
  select.addEventListener("change", () => setWall(Number(select.value)));
  setWall(chosen.id);
}

function setWall(id) {
  wallId = id;
  localStorage.setItem(WALL_KEY, String(id));
  const url = new URL(location.href);
  url.searchParams.set("wall", String(id));
  history.replaceState(null, "", url);
  layoutKey = "";
  heardAlarms = new Set();
  wallBox.dataset.wall = String(id);
  refresh();
}

document.getElementById("fullscreen").addEventListener("click", () => {
  if (document.fullscreenElement) document.exitFullscreen();
  else document.documentElement.requestFullscreen().catch(() => {});
});

feed((message) => {
  if (message.type === "feed.open") {
    refresh();
    return;
  }
  const payload = message.payload || {};
  const type = message.type || "";
  if (type.startsWith("wall.") && (payload.wall_id === undefined || payload.wall_id === wallId)) refresh();
  else if (type === "event.acknowledged") refresh();
});

setInterval(refresh, POLL_MS);
setInterval(refreshThumbnails, THUMB_MS);
setInterval(() => state && !state.paused && renderStatus(state), 1000);
chooseWall();
