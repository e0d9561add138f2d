// Live view of a camera over WebRTC: the camera's own H.264, passed through by the server (aiortc) without
// re-encoding. No STUN or TURN (`iceServers: []`): host candidates only, the console is on the LAN.
//
//   import { startLive } from "/static/live.js";
//   const live = await startLive(videoElement, "S11-GATE", { onState: (name, detail) => ... });
//   ...
//   await live.stop();
//
// startLive resolves once the server answered (the video starts a moment later, at the camera's next
// keyframe) and rejects with a LiveError (.status: 404 no such camera or outside your scope, 403 your role may
// not watch, 422 this browser cannot play H.264, 429 too many viewers, 502/504 the camera's stream is down).
// onState(name, detail) reports "connecting", "playing", "error" (detail: why the view ended: the camera
// stalled, the connection was lost, the time limit...) and "stopped" (after stop()).
"use strict";

const CSRF_COOKIE = "cw_csrf";
const CSRF_HEADER = "X-CSRF-Token";
const GATHER_TIMEOUT_MS = 3000;
const STATUS_EVERY_MS = 3000;

/** A live view that could not start; `status` is the HTTP status (0: the browser's own failure). */
export class LiveError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "LiveError";
    this.status = status;
  }
}

function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

async function detailOf(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
    return JSON.stringify(body.detail);
  } catch {
    return response.statusText || `HTTP ${response.status}`;
  }
}

/** Wait until the browser has gathered its (host) candidates: the server takes one offer, no trickle. */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      pc.removeEventListener("icegatheringstatechange", check);
      clearTimeout(timer);
      resolve();
    };
    const check = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

function preferH264(transceiver) {
  // The server sends H.264 only; saying so up front keeps the browser from offering codecs it cannot get.
  if (typeof transceiver.setCodecPreferences !== "function" || !window.RTCRtpReceiver?.getCapabilities) return;
  const codecs = RTCRtpReceiver.getCapabilities("video")?.codecs || [];
  const h264 = codecs.filter(
    (c) => c.mimeType.toLowerCase() === "video/h264" && /packetization-mode=1/.test(c.sdpFmtpLine || ""),
  );
  const rtx = codecs.filter((c) => c.mimeType.toLowerCase() === "video/rtx");
  if (h264.length) transceiver.setCodecPreferences([...h264, ...rtx]);
}

/**
 * Play camera `cameraCode` live in `video` (a <video> element; it is muted so that it may autoplay).
 * Options: `stream` ("main" or "sub"; default: the server's choice, the sub stream when there is one),
 * `onState(name, detail)`. Resolves to `{ sessionId, cameraCode, stream, codec, width, height, stop() }`.
 */
export async function startLive(video, cameraCode, { stream = null, onState = () => {} } = {}) {
  const report = (name, detail = "") => {
    try {
      onState(name, detail);
    } catch (err) {
      console.warn("live view: onState failed", err);
    }
  };
  report("connecting");
  const pc = new RTCPeerConnection({ iceServers: [] });
  let sessionId = null;
  let finished = false;
  let poller = null;

  const cleanup = () => {
    finished = true;
    if (poller !== null) clearInterval(poller);
    window.removeEventListener("pagehide", onPageHide);
    pc.close();
    if (video.srcObject) video.srcObject = null;
  };
  const stopOnServer = (keepalive) =>
    fetch(`/api/live/sessions/${encodeURIComponent(sessionId)}`, {
      method: "DELETE",
      headers: { [CSRF_HEADER]: csrfToken() },
      credentials: "same-origin",
      keepalive,
    }).catch(() => {});
  const onPageHide = () => {
    if (!finished && sessionId) stopOnServer(true);
  };

  // The server ended the view (stall, time limit, lost connection, shutdown): say why.
  const checkEnded = async () => {
    if (finished || !sessionId) return;
    try {
      const response = await fetch(`/api/live/sessions/${encodeURIComponent(sessionId)}`, { credentials: "same-origin" });
      if (finished) return;
      if (response.status === 404 || response.status === 401) {
        cleanup();
        report("error", response.status === 401 ? "login required" : "the live view ended");
        return;
      }
      if (!response.ok) return;
      const session = await response.json();
      if (session.state === "ended" && !finished) {
        cleanup();
        report("error", session.reason || "the live view ended");
      }
    } catch {
      // A network blip: the next poll tries again.
    }
  };

  const transceiver = pc.addTransceiver("video", { direction: "recvonly" });
  preferH264(transceiver);
  pc.addEventListener("track", (event) => {
    video.muted = true;
    video.playsInline = true;
    video.srcObject = event.streams && event.streams[0] ? event.streams[0] : new MediaStream([event.track]);
    const playing = video.play();
    if (playing && typeof playing.catch === "function") playing.catch(() => {});
  });
  video.addEventListener("playing", () => {
    if (!finished) report("playing");
  }, { once: true });
  pc.addEventListener("connectionstatechange", () => {
    if (pc.connectionState === "failed" || pc.connectionState === "disconnected") checkEnded();
  });

  let answer;
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const query = stream ? `?stream=${encodeURIComponent(stream)}` : "";
    const response = await fetch(`/api/live/${encodeURIComponent(cameraCode)}/offer${query}`, {
      method: "POST",
      headers: { "Content-Type": "application/json", [CSRF_HEADER]: csrfToken() },
      credentials: "same-origin",
      body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }),
    });
    if (!response.ok) throw new LiveError(await detailOf(response), response.status);
    answer = await response.json();
    sessionId = answer.session_id;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
  } catch (err) {
    if (sessionId) stopOnServer(false);
    cleanup();
    if (err instanceof LiveError) throw err;
    throw new LiveError(err && err.message ? err.message : String(err));
  }
  window.addEventListener("pagehide", onPageHide);
  poller = setInterval(checkEnded, STATUS_EVERY_MS);

  return {
    sessionId,
    cameraCode: answer.camera_code,
    stream: answer.stream,
    codec: answer.codec,
    width: answer.width,
    height: answer.height,
    /** Stop the view (the server ends and audits it); safe to call more than once. */
    async stop() {
      if (finished) return;
      finished = true; // the server ends the session first, so that it records why (not "connection lost")
      await stopOnServer(false);
      cleanup();
      report("stopped");
    },
  };
}
