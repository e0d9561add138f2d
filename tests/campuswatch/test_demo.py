"""The one-command demo, run as a user runs it: a real process, real RTSP, the console over HTTP, SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import av
import httpx
import pytest

from ingest.simulator import ClipLibrary, ClipSettings
from kernel.paths import REPO_ROOT
from registry.generate import generate_fleet
from tests.servers import free_port

STOP_WITHIN_S = 8.0
DROP_AT_S = 6.0


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    pytest.fail(f"not within {timeout_s:.1f} s: {what}")


class DemoProcess:
    """``campuswatch demo`` in a child process, its output collected line by line.

    A reader thread drains the output all the time: a demo whose pipe is full blocks on its next log line (a
    shutdown that "hangs" only because nobody reads)."""

    def __init__(self, config_file: Path) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._pos = 0
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "campuswatch.cli", "demo", "--config", str(config_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # A crash at exit prints every thread's stack (one SIGSEGV was seen once under a loaded full run).
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )
        self._reader = threading.Thread(target=self._read, name="demo-output")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self._lines.append(line.rstrip("\n"))

    @property
    def lines(self) -> list[str]:
        """Every line the demo has written so far."""
        with self._lock:
            return list(self._lines)

    def wait_for(self, marker: str, timeout_s: float = 60.0) -> str:
        """The next line (after the one the previous call returned) containing ``marker``; fail with everything
        read if it never comes."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                for n in range(self._pos, len(self._lines)):
                    if marker in self._lines[n]:
                        self._pos = n + 1
                        return self._lines[n]
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        pytest.fail(f"no {marker!r} in the demo's output:\n" + "\n".join(self.lines))

    def terminate(self) -> float:
        """Send SIGTERM; return the seconds until the process exited."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            # SIGABRT first: faulthandler (PYTHONFAULTHANDLER=1) prints where every thread is stuck.
            self.proc.send_signal(signal.SIGABRT)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self._reader.join(5)
            tail = "\n".join([line for line in self.lines if "CRITICAL" not in line and line.strip()][-80:])
            pytest.fail(f"the demo did not stop within {STOP_WITHIN_S} s of SIGTERM:\n{tail}")
        took = time.monotonic() - started
        self._reader.join(5)
        return took


@pytest.fixture
def demo_config(tmp_path: Path, sim_clips: ClipLibrary, sim_data_dir: Path) -> Iterator[tuple[Path, int]]:
    data_dir = tmp_path / "demo"
    data_dir.mkdir()
    # Reuse the session's rendered clips instead of rendering the demo's own.
    shutil.copytree(sim_data_dir / "sim-clips", data_dir / "sim-clips")
    web_port = free_port()
    # One camera refuses from t=6 s on: the demo must show it offline within 10 s of that.
    dropping = generate_fleet(2, 4, 3, 2026)[0]["camera_code"]
    schedule = tmp_path / "schedule.yaml"
    schedule.write_text(
        f"cameras:\n  '{dropping}':\n    default_scene: people_walking\n"
        f"    drops:\n      - {{at_s: {DROP_AT_S}, mode: refuse}}\n",
        encoding="utf-8",
    )
    config = tmp_path / "demo.yaml"
    config.write_text(
        f"data_dir: {data_dir}\n"
        "web:\n  host: 127.0.0.1\n"
        f"  port: {web_port}\n"
        f"simulator:\n  port: {free_port()}\n"
        f"  clip_gops: {sim_clips.settings.gops}\n"
        f"  schedule_file: {schedule}\n"
        # No scripted intrusion: no camera has rules, so no detector (and no model files) is needed here.
        "demo:\n  districts: 2\n  schools_per_district: 2\n  cameras_per_school: 3\n  webhook_port: 0\n"
        "  intrusion_every_s: 0\n",
        encoding="utf-8",
    )
    yield config, web_port


def test_demo_serves_a_bureau_over_rtsp_and_stops_on_sigterm(demo_config: tuple[Path, int]) -> None:
    config, web_port = demo_config
    demo = DemoProcess(config)
    try:
        banner_seen = time.monotonic()
        login_line = demo.wait_for("login:")
        password = login_line.split("/")[-1].strip()
        demo.wait_for("Uvicorn running")
        base = f"http://127.0.0.1:{web_port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get("/api/cameras").status_code == 401
            response = client.post("/login", data={"username": "admin", "password": password})
            assert response.status_code == 303
            cameras = client.get("/api/cameras", params={"limit": 100}).json()
            page = client.get("/").text
            dropping = generate_fleet(2, 4, 3, 2026)[0]["camera_code"]
            other = cameras["items"][1]["code"]
            # Live status and thumbnails of the demo cameras.
            _wait(lambda: client.get("/api/health/summary").json()["online"] >= 10, 15, "cameras online")
            _wait(lambda: client.get(f"/api/cameras/{other}/thumbnail.jpg").status_code == 200, 10, "a thumbnail")
            assert client.get(f"/api/cameras/{other}/thumbnail.jpg").content[:2] == b"\xff\xd8"
            # The scripted drop turns its camera offline within 10 s.
            _wait(
                lambda: client.get(f"/api/cameras/{dropping}/health").json()["state"] == "offline",
                max(0.0, DROP_AT_S + 10 - (time.monotonic() - banner_seen)),
                "the dropping camera offline",
            )
        assert cameras["total"] == 12
        assert page.count("<tr") >= 5  # header + 4 schools
        assert page.count('class="thumb"') == 12
        url = cameras["items"][1]["main_url"]  # items[0] is the camera that refuses from t=6 s
        assert url.startswith("rtsp://127.0.0.1:")
        with av.open(url, options={"rtsp_transport": "tcp", "timeout": "5000000"}) as container:
            frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (640, 360)
    finally:
        stop_s = demo.terminate()
    assert demo.proc.returncode == 0, "\n".join(demo.lines)
    assert stop_s < STOP_WITHIN_S
    assert any("camera simulator stopped" in line for line in demo.lines)
    assert any("demo stopped" in line for line in demo.lines)


def test_demo_restart_keeps_bureau_and_password(demo_config: tuple[Path, int]) -> None:
    config, _ = demo_config
    first = DemoProcess(config)
    try:
        password = first.wait_for("login:").split("/")[-1].strip()
        first.wait_for("Uvicorn running")
    finally:
        first.terminate()
    second = DemoProcess(config)
    try:
        registry = second.wait_for("registry:")
        again = second.wait_for("login:").split("/")[-1].strip()
    finally:
        second.terminate()
    assert "0 created" in registry and "12 unchanged" in registry
    assert again == password
    assert second.proc.returncode == 0


def test_demo_raises_intrusion_and_crowd_events_with_evidence(tmp_path: Path, models_dir: Path) -> None:
    # The demo's own camera mix (no schedule file): the wall climber and the crowd are among its 12 cameras.
    data_dir = tmp_path / "demo"
    clips = ClipLibrary.load_or_generate(REPO_ROOT / ".cache" / "test-clips", ClipSettings())
    assert clips.directory is not None
    shutil.copytree(clips.directory, data_dir / "sim-clips" / clips.directory.name)
    web_port = free_port()
    config = tmp_path / "demo.yaml"
    config.write_text(
        f"data_dir: {data_dir}\n"
        f"web:\n  host: 127.0.0.1\n  port: {web_port}\n"
        f"simulator:\n  port: {free_port()}\n  clip_gops: {clips.settings.gops}\n"
        "demo:\n  districts: 2\n  schools_per_district: 2\n  cameras_per_school: 3\n  webhook_port: 0\n"
        f"analytics:\n  models_dir: {models_dir}\n",
        encoding="utf-8",
    )
    demo = DemoProcess(config)
    try:
        password = demo.wait_for("login:").split("/")[-1].strip()
        demo.wait_for("Uvicorn running")
        started = time.monotonic()
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", timeout=10) as client:
            assert client.post("/login", data={"username": "admin", "password": password}).status_code == 303

            def types() -> set[str]:
                return {e["type"] for e in client.get("/api/events").json()}

            _wait(
                lambda: {"line_crossing", "intrusion", "crowding"} <= types(), 45, "wall, intrusion, crowd events"
            )
            took = time.monotonic() - started
            events = client.get("/api/events").json()
            for event in events:
                evidence = client.get(event["evidence_url"])
                assert evidence.status_code == 200 and evidence.content[:2] == b"\xff\xd8"
                assert event["severity"] in ("general", "major") and event["school_name"]
    finally:
        demo.terminate()
    assert demo.proc.returncode == 0, "\n".join(demo.lines)
    # The clips loop every 12 s and the intruder crosses the wall about 8 s into his: within seconds of serving.
    assert took < 45
