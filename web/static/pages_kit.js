// Small building blocks shared by the console's work pages (incidents, tasks, spot checks, hazards, health,
// reports, administration, notifications, audit). Everything is built with el(): no HTML is parsed from data.
import { ApiError, boot, el, feed, fmtTime, t, toast } from "/static/console.js";

/** What the page's user may do (from the server's boot data; the API checks every write again). */
export const can = boot.can || {};

/** Remove every child of `node` and append `children`. */
export function fill(node, ...children) {
  node.replaceChildren();
  for (const child of children.flat()) {
    if (child !== undefined && child !== null && child !== false) node.append(child);
  }
  return node;
}

/** `fill` for a detail pane showing the record `key`: if it showed that record already, the panels (`<details>`)
 * the user had opened stay open (matched by their summary), so a refresh landing while they work is not a fold. */
export function refill(node, key, ...children) {
  const open = node.dataset.shown === key
    ? new Set([...node.querySelectorAll("details[open] > summary")].map((s) => s.textContent))
    : new Set();
  fill(node, ...children);
  node.dataset.shown = key;
  for (const summary of node.querySelectorAll("details > summary")) {
    if (open.has(summary.textContent)) summary.parentElement.open = true;
  }
  return node;
}

/** The translation of `prefix.value`, or the value itself when there is no such message. */
export function label(prefix, value) {
  if (value === null || value === undefined || value === "") return "";
  const key = `${prefix}.${value}`;
  return key in boot.messages ? t(key) : String(value);
}

/** A readable text of an API error: FastAPI's validation lists become "field: message" lines. */
export function describe(err) {
  if (err instanceof ApiError) {
    const detail = err.detail;
    if (Array.isArray(detail)) {
      return detail
        .map((d) => {
          const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
          return where ? `${where}: ${d.msg}` : String(d.msg ?? JSON.stringify(d));
        })
        .join("; ");
    }
    if (err.status === 404 && typeof detail === "string" && detail === "Not Found") return t("pg.not_available");
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  }
  return String(err && err.message ? err.message : err);
}

/** Show an error in a toast (with the HTTP status). */
export function failed(err) {
  const status = err instanceof ApiError ? ` (${err.status})` : "";
  toast(`${t("common.error")}${status}: ${describe(err)}`, { error: true });
}

/** A button that runs `action` (async) once at a time, showing errors in a toast. */
export function button(text, action, { kind = "", testid, title } = {}) {
  const node = el("button", { type: "button", class: kind || undefined, "data-testid": testid, title }, text);
  node.addEventListener("click", async (ev) => {
    ev.preventDefault();
    node.disabled = true;
    try {
      await action(ev);
    } catch (err) {
      failed(err);
    } finally {
      node.disabled = false;
    }
  });
  return node;
}

/** A labelled form control. */
export function field(text, control, { hint } = {}) {
  return el("label", { class: "field" }, el("span", { class: "field-label" }, text), control, hint ? el("small", { class: "muted" }, hint) : null);
}

/** A <select> of `options` ([value, text] pairs) with `value` chosen. */
export function select(name, options, value, attrs = {}) {
  const node = el("select", { name, ...attrs });
  for (const [v, text] of options) {
    const option = el("option", { value: v }, text);
    if (String(v) === String(value ?? "")) option.selected = true;
    node.append(option);
  }
  return node;
}

/** A form whose submit runs `onSubmit(formData, form)`; errors go to a toast, the submit button waits. */
export function form(onSubmit, children, { submit = t("action.save"), testid, cls = "form" } = {}) {
  const submitButton = el("button", { type: "submit" }, submit);
  const node = el("form", { class: cls, "data-testid": testid }, ...children, el("div", { class: "form-actions" }, submitButton));
  node.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    submitButton.disabled = true;
    try {
      await onSubmit(new FormData(node), node);
    } catch (err) {
      failed(err);
    } finally {
      submitButton.disabled = false;
    }
  });
  return node;
}

/** A table: `headers` are texts, each row an array of cells (text or nodes), or {cells, attrs}. */
export function table(headers, rows, { empty = t("common.none"), cls = "data", testid } = {}) {
  const body = el("tbody");
  for (const row of rows) {
    const cells = Array.isArray(row) ? row : row.cells;
    const attrs = Array.isArray(row) ? {} : row.attrs || {};
    body.append(el("tr", attrs, ...cells.map((c) => el("td", {}, c))));
  }
  if (!rows.length) body.append(el("tr", {}, el("td", { colspan: String(headers.length), class: "muted" }, empty)));
  return el("table", { class: cls, "data-testid": testid }, el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))), body);
}

/** A small coloured tag: `kind` picks the colour class (ok, warn, bad, info). */
export function badge(text, kind = "") {
  return el("span", { class: `badge ${kind}`.trim() }, text);
}

/** Term/definition pairs. */
export function facts(pairs) {
  return el("dl", { class: "facts" }, ...pairs.filter((p) => p && p[1] !== undefined).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v ?? "")]));
}

/** A picture that hides itself when it cannot be loaded (no inline handlers: the CSP forbids them). */
export function picture(src, alt = "", cls = "thumb") {
  const img = el("img", { src, alt, class: cls, loading: "lazy" });
  img.addEventListener("error", () => img.classList.add("none"));
  return img;
}

/** A link to a picture, opening it full size. */
export function pictureLink(src, alt = "") {
  return el("a", { href: src, target: "_blank", rel: "noopener" }, picture(src, alt));
}

/** A user reference's name. */
export function who(ref) {
  return ref ? ref.display_name || ref.username : "";
}

/** A local date-time string of an ISO time (empty for none). */
export function when(iso) {
  return iso ? fmtTime(iso) : "";
}

/** An ISO time with offset of an <input type=datetime-local> value (local time), or null for empty. */
export function isoOfLocal(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** The value for an <input type=datetime-local> of an ISO time, in local time. */
export function localOfIso(iso) {
  const d = iso ? new Date(iso) : new Date();
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Today's local date as YYYY-MM-DD. */
export function today(offsetDays = 0) {
  const d = new Date();
  d.setDate(d.getDate() + offsetDays);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** A query string of the non-empty entries of `params` (arrays repeat the key). */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "" || v === false) continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
    else q.set(k, String(v));
  }
  const text = q.toString();
  return text ? `?${text}` : "";
}

/** Run `refresh` when a feed message passes `match` (at most once every `waitMs`), and on every reconnect. */
export function onFeed(match, refresh, waitMs = 400) {
  let timer = null;
  const later = () => {
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      refresh();
    }, waitMs);
  };
  let opened = false;
  feed((message) => {
    if (!message || typeof message !== "object") return;
    if (message.type === "feed.open") {
      if (opened) later(); // a reconnect: catch up on what was missed
      opened = true;
      return;
    }
    if (match(message)) later();
  });
}

/** The topic and type of a feed message (the feed may nest the bus event). */
export function topicOf(message) {
  const inner = message.event && typeof message.event === "object" ? message.event : message;
  return { topic: String(inner.topic || message.topic || ""), type: String(inner.type || message.type || "") };
}

/** A "page N of M" pager calling `go(offset)`. */
export function pager(page, go) {
  const { total = 0, offset = 0, limit = 1 } = page;
  if (total <= limit) return el("span");
  const prev = offset > 0 ? button("‹", () => go(Math.max(0, offset - limit)), { kind: "secondary" }) : null;
  const next = offset + limit < total ? button("›", () => go(offset + limit), { kind: "secondary" }) : null;
  return el("div", { class: "pager" }, prev, t("pg.page", { page: Math.floor(offset / limit) + 1, pages: Math.ceil(total / limit), total }), next);
}

/** A row of tabs: `items` are [value, text]; `onPick(value)` when one is clicked. */
export function tabs(items, current, onPick, testid) {
  const bar = el("div", { class: "tabs", role: "tablist", "data-testid": testid });
  for (const [value, text] of items) {
    const tab = el("button", { type: "button", role: "tab", class: value === current ? "tab active" : "tab", "aria-selected": value === current ? "true" : "false", dataset: { value } }, text);
    tab.addEventListener("click", () => {
      for (const other of bar.children) {
        other.classList.toggle("active", other === tab);
        other.setAttribute("aria-selected", other === tab ? "true" : "false");
      }
      onPick(value);
    });
    bar.append(tab);
  }
  return bar;
}

/** Whether the form's checkbox `name` is ticked. */
export function checked(data, name) {
  return data.get(name) === "on" || data.get(name) === "true";
}

/** Whether the user is working in a form inside `node`: typing, a panel opened, a file picked, a text entered
 * (a live refresh then leaves that part alone rather than throw the work away). */
export function busy(node) {
  const active = document.activeElement;
  if (active && node.contains(active) && active.matches("input, textarea, select")) return true;
  if (node.querySelector("details[open]")) return true;
  for (const input of node.querySelectorAll("input, textarea")) {
    if (input.type === "file" ? input.files && input.files.length : input.type !== "checkbox" && input.type !== "radio" && input.type !== "hidden" && input.value !== input.defaultValue) return true;
  }
  return false;
}
