"""The demo's patrol, as a user drives it over HTTP: the duty-room wall rotates the demo cameras, incidents take
a tile until acknowledged, and an inspector draws, records and signs a spot check."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import httpx

from ingest.simulator import ClipLibrary, ClipSettings
from kernel.paths import REPO_ROOT
from tests.campuswatch.test_demo import DemoProcess, _wait
from tests.servers import free_port
from web.csrf import CSRF_COOKIE, CSRF_HEADER


def _demo_config(
    tmp_path: Path, models_dir: Path, *, analytics: bool, cameras_per_school: int = 3
) -> tuple[Path, int]:
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
        f"demo:\n  districts: 2\n  schools_per_district: 2\n  cameras_per_school: {cameras_per_school}\n"
        "  intrusion_first_s: 3\n  intrusion_every_s: 600\n  webhook_port: 0\n"
        f"analytics:\n  enabled: {'true' if analytics else 'false'}\n  models_dir: {models_dir}\n"
        # As in config/demo.yaml: only the scripted intrusion (major) takes the wall.
        "patrol:\n  tick_s: 0.2\n  alarm_severities: [major]\n"
        "notify:\n  events:\n    severities: [major]\n",
        encoding="utf-8",
    )
    return config, web_port


def _login(client: httpx.Client, demo: DemoProcess) -> None:
    password = demo.wait_for("login:").split("/")[-1].strip()
    demo.wait_for("Uvicorn running")
    assert client.post("/login", data={"username": "admin", "password": password}).status_code == 303
    client.headers[CSRF_HEADER] = client.cookies[CSRF_COOKIE]


def _line(demo: DemoProcess, marker: str, timeout_s: float) -> str:
    """The demo's output line with ``marker``, read already or still to come."""
    return next((line for line in demo.lines if marker in line), None) or demo.wait_for(marker, timeout_s)


def _tiles(client: httpx.Client, wall_id: int) -> list[str | None]:
    return [t["camera_code"] for t in client.get(f"/api/walls/{wall_id}/state").json()["tiles"]]


def test_demo_wall_rotates_and_a_spot_check_is_drawn_recorded_and_signed(tmp_path: Path, models_dir: Path) -> None:
    config, web_port = _demo_config(tmp_path, models_dir, analytics=False)
    demo = DemoProcess(config)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", timeout=10) as client:
            _login(client, demo)
            walls = client.get("/api/walls").json()
            assert [w["name"] for w in walls] == ["值班大屏 Duty-room wall"] and walls[0]["tiles"] == 9
            wall_id, tour_id = walls[0]["id"], walls[0]["tour_id"]
            assert client.patch(f"/api/tours/{tour_id}", json={"dwell_s": 5}).status_code == 200
            _wait(lambda: all(_tiles(client, wall_id)), 10, "the wall's first page")
            first = _tiles(client, wall_id)
            _wait(lambda: _tiles(client, wall_id) != first, 12, "the next page")
            second = _tiles(client, wall_id)
            cameras = {c["code"] for c in client.get("/api/cameras", params={"limit": 100}).json()["items"]}
            # 12 cameras on 9 tiles: two pages show every one of them (the second filled from the next round).
            assert set(first) | set(second) == cameras and len(set(second)) == 9
            state = client.get(f"/api/walls/{wall_id}/state").json()
            assert state["tour"]["tour_id"] == tour_id and state["paused"] is False
            # The inspector's spot check, end to end through the API.
            quota = client.get("/api/spot-checks/quotas").json()[0]
            draw = client.post(f"/api/spot-checks/quotas/{quota['id']}/draws", json={})
            assert draw.status_code in (200, 201), draw.text
            school = draw.json()["schools"][0]["code"]
            assert len(draw.json()["schools"]) == 3
            assert client.get(f"/api/spot-checks/draws/{draw.json()['id']}/verify").json()["ok"] is True
            inspection = client.post(
                "/api/inspections",
                json={"school_code": school, "method": "random", "draw_id": draw.json()["id"], "wall_id": wall_id},
            )
            assert inspection.status_code == 201, inspection.text
            inspection_id = inspection.json()["id"]
            school_cameras = {c["code"] for c in inspection.json()["cameras"]}
            _wait(
                lambda: {c for c in _tiles(client, wall_id) if c} <= school_cameras, 10, "the school on the wall"
            )
            camera = sorted(school_cameras)[0]
            finding = client.post(
                f"/api/inspections/{inspection_id}/findings",
                data={
                    "camera_code": camera,
                    "verdict": "abnormal",
                    "note": "消防通道堵塞 fire lane blocked",
                    "open_hazard": "true",
                    "hazard_title": "消防通道堵塞",
                },
            )
            assert finding.status_code == 201, finding.text
            signed = client.post(
                f"/api/inspections/{inspection_id}/sign", json={"signed_name": "演示督导 Demo inspector"}
            )
            assert signed.status_code == 200, signed.text
            assert len(signed.json()["signature"]["content_sha256"]) == 64
            assert client.get(f"/api/inspections/{inspection_id}/verify").json()["ok"] is True
            assert client.get("/api/hazards", params={"source": "spot_check"}).json()["total"] == 1
            _wait(lambda: not {c for c in _tiles(client, wall_id) if c} <= school_cameras, 12, "the tour again")
    finally:
        demo.terminate()
    assert demo.proc.returncode == 0, "\n".join(demo.lines)


def test_demo_scripted_intrusion_takes_a_tile_until_acknowledged_and_reaches_the_webhook(
    tmp_path: Path, models_dir: Path
) -> None:
    # 16 cameras: the demo's 13 special ones leave empty yards, one of them the scripted intrusion's.
    config, web_port = _demo_config(tmp_path, models_dir, analytics=True, cameras_per_school=4)
    demo = DemoProcess(config)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{web_port}", timeout=10) as client:
            _login(client, demo)
            wall_id = client.get("/api/walls").json()[0]["id"]
            scripted = _line(demo, "scripted intrusion 1: an intruder climbs the wall on camera", 30).split()[-1]

            def state() -> dict[str, Any]:
                found: dict[str, Any] = client.get(f"/api/walls/{wall_id}/state").json()
                return found

            _wait(lambda: state()["paused"], 45, "an alarm on the wall")
            alarm = state()["alarm"]
            tile = next(t for t in state()["tiles"] if t["alarm"])
            assert tile["tile"] == 0 and tile["camera_code"] == alarm["camera_code"]  # the first rotating tile
            assert alarm["camera_code"] == scripted and alarm["severity"] == "major"
            # The duty phone's stand-in: the demo's webhook receiver got the signed message about this event.
            _line(demo, "scripted intrusion 1: webhook received at", 30)
            delivered = client.get("/api/notifications", params={"event_id": alarm["event_id"]}).json()
            assert [m["status"] for m in delivered["items"]][:1] == ["sent"], delivered
            event = next(e for e in client.get("/api/events").json() if e["id"] == alarm["event_id"])
            assert event["camera_code"] == alarm["camera_code"]
            ack = client.post(f"/api/walls/{wall_id}/alarms/{alarm['id']}/acknowledge")
            assert ack.status_code == 200, ack.text
            # The next queued alarm takes the tile, or the tour resumes.
            _wait(lambda: (state()["alarm"] or {}).get("id") != alarm["id"], 5, "the alarm off the wall")
            deadline = time.monotonic() + 30
            while state()["paused"] and time.monotonic() < deadline:
                shown = state()["alarm"]
                if shown is not None:
                    client.post(f"/api/walls/{wall_id}/alarms/{shown['id']}/acknowledge")
                time.sleep(0.2)
            assert not state()["paused"], "the wall did not resume its tour after every alarm was acknowledged"
    finally:
        demo.terminate()
    assert demo.proc.returncode == 0, "\n".join(demo.lines)
