"""Benchmark: how long a scripted intrusion takes to reach the duty room — on the wall and on the duty phone.

    .venv/bin/python benchmarks/alarm_latency.py [--intrusions 4] [--every 30]

Runs the real demo (``campuswatch demo`` in a child process: RTSP simulator, ingest, YOLO analytics on the CPU,
patrol service, notifier, console) on a quiet bureau of 6 cameras in which only the scripted-intrusion camera
has rules. Every ``--every`` seconds an intruder climbs the perimeter wall on that camera. Headless Chromium
(Playwright, Debian's /usr/bin/chromium) is logged in on the duty-room wall; a MutationObserver in the page
notes the browser clock when each alarm appears, then a click acknowledges it as a duty officer would.

For each intrusion (all times on this machine's clock):
- scene: the first frame of the intruder's scene pushed into the RTSP stream (the simulator notes it);
- event: the analytics event on the bus (the demo notes it) — the baseline: detection time, which includes the
  intruder walking into the zone and the rule's one-second confirmation;
- screen: the alarm visible on the wall in the browser;
- webhook: the notifier's signed webhook arriving at the demo's local receiver.
At the end the live view of a wall tile is opened (WebRTC): the time until its video plays is reported too.
Reported: medians of scene→event, scene→screen, scene→webhook and the delivery parts event→screen,
event→webhook; ratios screen/event and webhook/event against the detection baseline measured in the same run.
The last line is JSON: ``{"bench": "alarm_latency", ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

REPO = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
]
ISO = r"(\d{4}-\d\d-\d\dT[\d:.]+[+-]\d\d:\d\d)"
SCENE_RE = re.compile(r"scripted intrusion (\d+): the intruder is in the stream of \S+ at " + ISO)
EVENT_RE = re.compile(r"scripted intrusion (\d+): event (\d+) \(\w+\) raised at " + ISO)
WEBHOOK_RE = re.compile(r"scripted intrusion (\d+): webhook received at " + ISO)
# Notes each alarm the wall shows (browser clock, ms since the epoch) and acknowledges it like an officer.
OBSERVER_JS = """
() => {
  window.__alarms = [];
  const seen = new Set();
  const look = () => {
    for (const body of document.querySelectorAll(".alarm-body[data-alarm]")) {
      const id = body.dataset.alarm;
      if (seen.has(id)) continue;
      seen.add(id);
      const img = body.querySelector("img.evidence");
      const match = img && img.src.match(/events\\/(\\d+)\\/evidence/);
      window.__alarms.push({ id, event_id: match ? Number(match[1]) : null, at: Date.now() });
      const ack = body.querySelector("button.ack");
      if (ack) setTimeout(() => ack.click(), 2000);
    }
  };
  new MutationObserver(look).observe(document.body, { childList: true, subtree: true, attributes: true });
  look();
}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(folder: Path, every_s: float) -> tuple[Path, int]:
    web_port = free_port()
    schedule = folder / "quiet.yaml"
    schedule.write_text("default:\n  default_scene: empty_yard\n", encoding="utf-8")
    config = folder / "bench.yaml"
    config.write_text(
        f"data_dir: {folder / 'data'}\n"
        "instance:\n  name: 基准教育局 Benchmark bureau\n  timezone: Asia/Shanghai\n"
        "bus:\n  url: memory://\n"
        f"web:\n  host: 127.0.0.1\n  port: {web_port}\n"
        f"simulator:\n  enabled: true\n  host: 127.0.0.1\n  port: {free_port()}\n  schedule_file: {schedule}\n"
        "demo:\n  districts: 1\n  schools_per_district: 2\n  cameras_per_school: 3\n"
        f"  intrusion_first_s: 15\n  intrusion_every_s: {every_s}\n  webhook_port: {free_port()}\n"
        f"analytics:\n  models_dir: {REPO / '.cache' / 'models'}\n"
        "patrol:\n  alarm_severities: [major]\n"
        # Each intrusion raises two events (intrusion, line crossing): keep the storm control from summing them.
        "notify:\n  storm:\n    threshold: 50\n"
        "logging:\n  level: INFO\n",
        encoding="utf-8",
    )
    return config, web_port


class Demo:
    """The demo in a child process; its output lines collected by a reader thread."""

    def __init__(self, config: Path) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "campuswatch.cli", "demo", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self._reader = threading.Thread(target=self._read, name="demo-output")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def wait_for(self, marker: str, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for line in self.lines:
                    if marker in line:
                        return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise SystemExit(f"no {marker!r} in the demo's output:\n" + "\n".join(self.lines[-60:]))

    def output(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def watch_wall(page: Page, base: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    page.goto(f"{base}/wall")
    page.wait_for_selector("[data-testid=tile]", timeout=30_000)
    page.evaluate(OBSERVER_JS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--intrusions", type=int, default=4)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between intrusions")
    parser.add_argument("--log", type=Path, help="write the demo's output to this file")
    parser.add_argument("--screenshot", type=Path, help="save the wall with the first alarm as this PNG")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="alarm-latency-") as tmp:
        config, web_port = write_config(Path(tmp), args.every)
        demo = Demo(config)
        try:
            password = demo.wait_for("login:", 180).split("/")[-1].strip()
            demo.wait_for("Uvicorn running", 60)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1600, "height": 900})
                watch_wall(page, f"http://127.0.0.1:{web_port}", password)
                deadline = time.monotonic() + 15 + args.every * args.intrusions + 60
                while time.monotonic() < deadline:
                    done = {int(m.group(1)) for m in map(WEBHOOK_RE.search, demo.output()) if m}
                    alarms = page.evaluate("window.__alarms")
                    events = {int(m.group(2)) for m in map(EVENT_RE.search, demo.output()) if m}
                    shown = {a["event_id"] for a in alarms}
                    if args.screenshot and alarms and not args.screenshot.exists():
                        page.wait_for_timeout(200)
                        page.screenshot(path=str(args.screenshot))
                    if len(done) >= args.intrusions and events <= shown:
                        break
                    page.wait_for_timeout(500)
                alarms = page.evaluate("window.__alarms")
                live_s = play_live(page)
                browser.close()
        finally:
            demo.stop()
        lines = demo.output()
    if args.log:
        args.log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return report(lines, alarms, args.intrusions, live_s)


def play_live(page: Page) -> float:
    """Open the live view of the wall's second tile; seconds until its video plays (time advancing by 1 s)."""
    started = time.monotonic()
    page.locator("[data-testid=tile][data-tile='1']").click()
    video = page.get_by_test_id("live-dialog").get_by_test_id("live-video")
    page.wait_for_function("v => v.currentTime > 0", arg=video.element_handle(), timeout=20_000)
    playing = time.monotonic() - started
    at = video.evaluate("v => v.currentTime")
    page.wait_for_function(
        "([v, at]) => v.currentTime > at + 1.0", arg=[video.element_handle(), at], timeout=10_000
    )
    return playing


def report(lines: list[str], alarms: list[dict[str, object]], wanted: int, live_s: float) -> int:
    scene: dict[int, float] = {}
    event: dict[int, tuple[int, float]] = {}
    webhook: dict[int, float] = {}
    for line in lines:
        if m := SCENE_RE.search(line):
            scene[int(m.group(1))] = epoch(m.group(2))
        elif m := EVENT_RE.search(line):
            event[int(m.group(1))] = (int(m.group(2)), epoch(m.group(3)))
        elif m := WEBHOOK_RE.search(line):
            webhook[int(m.group(1))] = epoch(m.group(2))
    screen = {int(str(a["event_id"])): float(str(a["at"])) / 1000 for a in alarms if a.get("event_id") is not None}
    rows = []
    for number in sorted(scene):
        if number not in event:
            continue
        event_id, event_at = event[number]
        row = {
            "intrusion": number,
            "scene_event_ms": (event_at - scene[number]) * 1000,
            "scene_screen_ms": (screen[event_id] - scene[number]) * 1000 if event_id in screen else None,
            "scene_webhook_ms": (webhook[number] - scene[number]) * 1000 if number in webhook else None,
        }
        rows.append(row)
        print(
            f"intrusion {number}: event {row['scene_event_ms']:.0f} ms, screen "
            f"{_ms(row['scene_screen_ms'])}, webhook {_ms(row['scene_webhook_ms'])} after the scene change"
        )
    complete = [r for r in rows if r["scene_screen_ms"] is not None and r["scene_webhook_ms"] is not None]
    if len(complete) < wanted:
        print(f"only {len(complete)} of {wanted} intrusions were measured end to end", file=sys.stderr)
        print("\n".join(lines[-80:]), file=sys.stderr)
        return 1

    def median(key: str) -> float:
        return statistics.median(float(str(r[key])) for r in complete)

    detect, on_screen, on_phone = median("scene_event_ms"), median("scene_screen_ms"), median("scene_webhook_ms")
    figures = {
        "bench": "alarm_latency",
        "intrusions": len(complete),
        "scene_event_ms": round(detect),
        "scene_screen_ms": round(on_screen),
        "scene_webhook_ms": round(on_phone),
        "event_screen_ms": round(
            statistics.median(float(str(r["scene_screen_ms"])) - float(str(r["scene_event_ms"])) for r in complete)
        ),
        "event_webhook_ms": round(
            statistics.median(
                float(str(r["scene_webhook_ms"])) - float(str(r["scene_event_ms"])) for r in complete
            )
        ),
        "screen_over_detect": round(on_screen / detect, 3),
        "webhook_over_detect": round(on_phone / detect, 3),
        "live_first_frame_s": round(live_s, 2),
    }
    print(
        f"medians over {len(complete)} intrusions: scene→event {detect:.0f} ms (baseline), scene→screen "
        f"{on_screen:.0f} ms ({figures['screen_over_detect']}×), scene→webhook {on_phone:.0f} ms "
        f"({figures['webhook_over_detect']}×); delivery after the event: screen {figures['event_screen_ms']} ms, "
        f"webhook {figures['event_webhook_ms']} ms; live view of a tile playing after {live_s:.2f} s"
    )
    print(json.dumps(figures))
    return 0


def _ms(value: object) -> str:
    return "—" if value is None else f"{float(str(value)):.0f} ms"


if __name__ == "__main__":
    sys.exit(main())
