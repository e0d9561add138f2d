// The console's shared module: boot data, translations, API calls with the CSRF header, the live feed.
// Pages import what they need: `import { api, t, feed } from "/static/console.js";`

const bootElement = document.getElementById("cw-boot");
export const boot = bootElement ? JSON.parse(bootElement.textContent) : { lang: "zh-CN", messages: {} };

/** The message `key` in the page's language, with `{name}` placeholders filled from `values`. */
export function t(key, values = {}) {
  const text = boot.messages[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)cw_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/** An error answered by the API: `status` and the server's `detail`. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

/** Call the API: JSON in and out; unsafe methods carry the CSRF token; a 401 goes to the login page. */
export async function api(path, { method = "GET", body, form, raw = false } = {}) {
  const headers = { Accept: "application/json" };
  let payload;
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  if (form !== undefined) payload = form;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const response = await fetch(path, { method, headers, body: payload, credentials: "same-origin" });
  if (response.status === 401) {
    window.location.assign("/login");
    throw new ApiError(401, "login required");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = (await response.json()).detail ?? detail;
    } catch {
      // not JSON: keep the status text
    }
    throw new ApiError(response.status, detail);
  }
  if (raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

/** Make an element: `el("td", {class: "x", dataset: {id: 1}}, "text", child)`. Text is never parsed as HTML. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** A local date-time string for an ISO timestamp, in the page's language. */
export function fmtTime(iso, options = {}) {
  if (!iso) return "";
  return new Date(iso).toLocaleString(boot.lang, { hour12: false, ...options });
}

/** Show a short message at the bottom of the page (errors in red). */
export function toast(message, { error = false } = {}) {
  let box = document.getElementById("toasts");
  if (!box) {
    box = el("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(box);
  }
  const item = el("div", { class: error ? "toast error" : "toast" }, message);
  box.append(item);
  setTimeout(() => item.remove(), error ? 8000 : 4000);
}

const listeners = new Set();
let socket = null;
let retryMs = 500;

function connectFeed() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(`${scheme}//${location.host}/ws/feed`);
  const status = document.getElementById("feed-status");
  socket.addEventListener("open", () => {
    retryMs = 500;
    if (status) {
      status.hidden = false;
      status.dataset.state = "up";
      status.textContent = t("common.connected");
    }
    for (const listener of listeners) listener({ type: "feed.open" });
  });
  socket.addEventListener("message", (message) => {
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      return;
    }
    // The server pings every heartbeat; a console that stays silent is taken for dead and closed.
    if (data.type === "ping") {
      socket.send(JSON.stringify({ type: "pong" }));
      return;
    }
    for (const listener of listeners) listener(data);
  });
  socket.addEventListener("close", () => {
    if (status) {
      status.hidden = false;
      status.dataset.state = "down";
      status.textContent = t("common.disconnected");
    }
    // Back off with jitter, so a restarted server is not hit by every console at once.
    setTimeout(connectFeed, retryMs + Math.random() * retryMs);
    retryMs = Math.min(retryMs * 2, 15000);
  });
}

/** Follow the live feed: `listener(message)` gets every message the server pushes (see web/feed.py). */
export function feed(listener) {
  listeners.add(listener);
  if (socket === null) connectFeed();
  return () => listeners.delete(listener);
}

// The language switch comes back to this very page, query included (a page may have changed it since).
const langSwitch = document.querySelector("a.lang");
if (langSwitch) {
  langSwitch.addEventListener("click", () => {
    const target = new URL(langSwitch.href, location.href);
    target.searchParams.set("next", location.pathname + location.search);
    langSwitch.href = target.pathname + target.search;
  });
}

const logout = document.getElementById("logout");
if (logout) {
  logout.addEventListener("click", async () => {
    await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrfToken() }, credentials: "same-origin" });
    window.location.assign("/login");
  });
}
