// Live camera status and thumbnails on the schools page: polls the health API, refreshes the pictures.
"use strict";
(function () {
  const EVERY_MS = 4000;
  const figures = Array.from(document.querySelectorAll("figure.cam[data-camera]"));
  if (!figures.length) return;
  const byCode = new Map(figures.map((f) => [f.dataset.camera, f]));
  // No inline handlers (the Content-Security-Policy forbids them): hide pictures that fail to load here.
  for (const img of document.querySelectorAll("figure.cam img.thumb")) {
    img.addEventListener("error", () => img.classList.add("none"));
  }

  async function refresh() {
    const params = new URLSearchParams();
    byCode.forEach((_, code) => params.append("camera", code));
    params.set("limit", "1000");
    try {
      const [health, summary] = await Promise.all([
        fetch("/api/health?" + params).then((r) => (r.ok ? r.json() : [])),
        fetch("/api/health/summary").then((r) => (r.ok ? r.json() : null)),
      ]);
      for (const h of health) {
        const fig = byCode.get(h.camera_code);
        if (!fig) continue;
        fig.dataset.state = h.state || "unknown";
        const faults = h.faults.map((f) => f.fault).join(", ");
        const reason = h.reason && h.reason !== "ok" ? " · " + h.reason : "";
        fig.querySelector("[data-role=state]").textContent = (h.state || "unknown") + reason + (faults ? " · " + faults : "");
        const img = fig.querySelector("img.thumb");
        if (h.state !== "offline") {
          img.classList.remove("none");
          img.src = "/api/cameras/" + encodeURIComponent(h.camera_code) + "/thumbnail.jpg?t=" + Date.now();
        }
      }
      if (summary) {
        document.getElementById("summary").textContent =
          `${summary.online} online · ${summary.degraded} degraded · ${summary.offline} offline · ` +
          `${summary.unknown} not yet read · ${summary.open_faults} picture faults`;
      }
    } catch (err) {
      console.warn("health refresh failed", err);
    }
  }
  refresh();
  setInterval(refresh, EVERY_MS);
})();
