// What the duty room's operational pages share: the alarm sound, event labels, and the live player.
// Used by wall.js, events.js and live_page.js.

import { el, t } from "/static/console.js";

const SOUND_KEY = "cw.sound";

/** Alarm sound made with WebAudio (no audio file). Browsers allow sound only after a user gesture, so the
 * page offers an "enable sound" button; the choice is remembered, and after a reload the first click or key
 * on the page resumes the sound. `count` says how many alerts were actually played (read by the browser
 * tests as `document.body.dataset.beeps`). */
export class AlarmSound {
  constructor(button) {
    this.button = button;
    this.context = null;
    this.count = 0;
    this.wanted = localStorage.getItem(SOUND_KEY) === "on";
    if (button) button.addEventListener("click", () => this.toggle());
    if (this.wanted) {
      this.open();
      const resume = () => {
        if (this.context && this.context.state === "suspended") this.context.resume().then(() => this.show());
      };
      document.addEventListener("pointerdown", resume, { once: true });
      document.addEventListener("keydown", resume, { once: true });
    }
    this.show();
  }

  open() {
    if (this.context === null) {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return;
      this.context = new Context();
      this.context.addEventListener("statechange", () => this.show());
    }
    if (this.context.state === "suspended") this.context.resume().then(() => this.show(), () => this.show());
  }

  toggle() {
    this.wanted = !this.wanted;
    localStorage.setItem(SOUND_KEY, this.wanted ? "on" : "off");
    if (this.wanted) {
      this.open(); // inside the click: the gesture lets the context start
      this.beep(1);
    } else if (this.context) {
      this.context.suspend();
    }
    this.show();
  }

  get ready() {
    return this.wanted && this.context !== null && this.context.state === "running";
  }

  show() {
    if (!this.button) return;
    let key = "wall.sound_enable";
    if (this.wanted) key = this.ready ? "wall.sound_on" : "wall.sound_blocked";
    this.button.textContent = t(key);
    this.button.dataset.state = this.wanted ? (this.ready ? "on" : "blocked") : "off";
    this.button.setAttribute("aria-pressed", this.wanted ? "true" : "false");
  }

  /** Play `times` short two-tone beeps (nothing while the sound is off or not allowed yet). */
  beep(times = 3) {
    if (!this.ready) return false;
    const ctx = this.context;
    const start = ctx.currentTime + 0.02;
    for (let i = 0; i < times; i++) {
      for (const [offset, freq] of [
        [0, 880],
        [0.16, 660],
      ]) {
        const at = start + i * 0.45 + offset;
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = "square";
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.25, at + 0.01);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.14);
        osc.connect(gain).connect(ctx.destination);
        osc.start(at);
        osc.stop(at + 0.15);
      }
    }
    this.count += 1;
    document.body.dataset.beeps = String(this.count);
    return true;
  }
}

/** An event type's label in the page's language (the code itself for a type without a translation). */
export function typeLabel(type) {
  const key = `events.type.${type}`;
  const text = t(key);
  return text === key ? type : text;
}

/** A severity's label. */
export function severityLabel(severity) {
  const key = `events.severity.${severity}`;
  const text = t(key);
  return text === key ? severity : text;
}

let liveModule = null;

async function loadLive() {
  if (liveModule === null) liveModule = import("/static/live.js");
  return liveModule;
}

/** Put a live player for `cameraCode` into `container`: a muted inline `<video>` fed over WebRTC by
 * `startLive` of `/static/live.js` (loaded when first needed), and its state (connecting, playing, stopped,
 * error with the reason). Returns `{ stop(), video }`. */
export function mountLive(container, cameraCode) {
  const video = el("video", {
    class: "live-video",
    autoplay: true,
    muted: true,
    playsinline: true,
    "data-testid": "live-video",
  });
  video.muted = true; // the attribute alone does not mute a video made from script
  const state = el("span", { class: "live-state", "data-testid": "live-state", "data-state": "connecting" });
  const again = el("button", { type: "button", class: "secondary", hidden: true }, t("wall.live.start"));
  const stopButton = el("button", { type: "button", class: "secondary" }, t("wall.live.stop"));
  container.replaceChildren(el("div", { class: "live-box" }, video), el("div", { class: "live-bar" }, state, stopButton, again));

  let handle = null;
  let generation = 0; // each start and stop moves it on: a late answer of an abandoned start is stopped

  function setState(name, detail = "") {
    state.dataset.state = name;
    state.textContent = t(`wall.live.state.${name}`, { detail });
    stopButton.hidden = name === "stopped" || name === "error";
    again.hidden = !stopButton.hidden;
  }

  video.addEventListener("playing", () => {
    if (handle !== null) setState("playing");
  });

  async function start() {
    const mine = ++generation;
    setState("connecting");
    let live;
    try {
      live = await loadLive();
    } catch {
      if (mine === generation) setState("error", t("wall.live.unavailable"));
      return;
    }
    let started;
    try {
      started = await live.startLive(video, cameraCode, {
        onState: (name, detail) => {
          if (mine !== generation) return;
          if (name === "error" || name === "failed") setState("error", detail || "");
          else if (name === "stopped" || name === "closed") setState("stopped");
          else if (name === "playing") setState("playing");
          else setState("connecting");
        },
      });
    } catch (err) {
      if (mine === generation) setState("error", err && err.message ? err.message : String(err));
      return;
    }
    if (mine !== generation) started.stop(); // stopped while the server was answering
    else handle = started;
  }

  function stop() {
    generation++;
    if (handle) handle.stop();
    handle = null;
    video.srcObject = null;
    setState("stopped");
  }

  stopButton.addEventListener("click", stop);
  again.addEventListener("click", start);
  start();
  return { stop, video };
}
