"""Walls and tours API: configuration with validation and roles, the wall's state as the rotator stored it,
alarm acknowledgement on every wall the alarm was raised on, tour coverage."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from campuswatch.patrol_facts import StoredFleetFacts
from config.patrol import PatrolConfig
from kernel.bus import Delivery, Event, InMemoryBus
from kernel.db import session_scope
from patrol.wall_runner import WallRunner
from tests.bureau import Bureau, ManualClock, login
from web.routers import tours


def run_walls(bureau: Bureau, runner: WallRunner, *deliveries: Delivery) -> None:
    for delivery in deliveries:
        with session_scope(bureau.factory) as session:
            runner.raise_alarms(session, delivery)
    with session_scope(bureau.factory) as session:
        runner.tick(session)


def intrusion(camera: str) -> Delivery:
    event = Event(topic="events", type="event.started", source="t", payload={"camera_code": camera})
    return Delivery("events", "g", "1-0", 1, event)


def test_tours_and_walls_are_configured_and_validated(api: TestClient) -> None:
    login(api, "admin")
    tour = api.post(
        "/api/tours",
        json={"name": "gates", "cameras": {"scene_types": ["gate"]}, "dwell_s": 15, "layout": "1+5"},
    )
    assert tour.status_code == 201, tour.text
    assert tour.json()["camera_count"] == 6 and tour.json()["cameras_described"] == "scenes gate"
    tour_id = tour.json()["id"]
    assert api.post("/api/tours", json={"name": "gates"}).status_code == 409
    bad = api.post("/api/tours", json={"name": "x", "cameras": {"districts": ["D9"]}})
    assert bad.status_code == 422 and "unknown district 'D9'" in bad.text
    assert api.post("/api/tours", json={"name": "x", "dwell_s": 4}).status_code == 422
    assert api.post("/api/tours", json={"name": "x", "layout": "3x3"}).status_code == 422
    wall = api.post(
        "/api/walls", json={"name": "main", "tour_id": tour_id, "screens": 2, "pinned": {"0": "S11-GATE"}}
    )
    assert wall.status_code == 201, wall.text
    body = wall.json()
    assert body["layout"] == "1+5" and body["tiles"] == 12 and body["rotating_tiles"] == 11  # the tour's layout
    assert body["tour_name"] == "gates"
    for payload, message in (
        ({"name": "w", "pinned": {"9": "S11-GATE"}, "layout": "4"}, "pinned tiles [9]"),
        ({"name": "w", "schools": ["S99"]}, "unknown school 'S99'"),
        ({"name": "w", "tour_id": 999}, "unknown tour 999"),
        ({"name": "w", "pinned": {"0": "NOPE"}, "layout": "4"}, "unknown camera 'NOPE'"),
    ):
        response = api.post("/api/walls", json=payload)
        assert response.status_code == 422 and message in response.text, response.text
    changed = api.patch(f"/api/walls/{body['id']}", json={"layout": "9", "tour_id": None})
    assert changed.status_code == 200 and changed.json()["tour_id"] is None and changed.json()["tiles"] == 18
    assert api.patch(f"/api/walls/{body['id']}", json={"layout": None}).status_code == 422
    assert api.patch(f"/api/tours/{tour_id}", json={"cameras": None}).status_code == 422
    moved = api.patch(f"/api/tours/{tour_id}", json={"cameras": {"districts": ["D2"]}, "dwell_s": 20})
    assert moved.status_code == 200 and moved.json()["camera_count"] == 12 and moved.json()["dwell_s"] == 20
    assert [t["camera_count"] for t in api.get("/api/tours").json()] == [12]
    assert [w["name"] for w in api.get("/api/walls").json()] == ["main"]
    assert {x["name"] for x in api.get("/api/layouts").json()} >= {"1", "36", "1+12"}
    assert api.delete(f"/api/tours/{tour_id}").status_code == 204
    assert api.get(f"/api/tours/{tour_id}").status_code == 404


def test_only_administrators_configure_and_auditors_cannot_acknowledge(api: TestClient) -> None:
    login(api, "officer1")
    assert api.post("/api/tours", json={"name": "t"}).status_code == 403
    assert api.post("/api/walls", json={"name": "w"}).status_code == 403
    assert api.get("/api/walls").status_code == 200
    login(api, "auditor")
    assert api.post("/api/walls/1/alarms/1/acknowledge").status_code == 403


def test_state_alarms_and_acknowledgement_on_every_wall(
    api: TestClient, bureau: Bureau, clock: ManualClock, bus: InMemoryBus
) -> None:
    login(api, "admin")
    tour_id = api.post("/api/tours", json={"name": "all", "layout": "4"}).json()["id"]
    bureau_wall = api.post("/api/walls", json={"name": "bureau", "tour_id": tour_id}).json()["id"]
    district_wall = api.post("/api/walls", json={"name": "d1", "tour_id": tour_id, "districts": ["D1"]}).json()[
        "id"
    ]
    runner = WallRunner(StoredFleetFacts(), PatrolConfig(), timezone=ZoneInfo("Asia/Shanghai"), clock=clock)
    run_walls(bureau, runner)
    state = api.get(f"/api/walls/{bureau_wall}/state").json()
    assert [t["camera_code"] for t in state["tiles"]] == ["S11-CORR", "S11-DORM", "S11-GATE", "S11-YARD"]
    assert state["tiles"][0]["thumbnail_url"] == "/api/cameras/S11-CORR/thumbnail.jpg"
    assert state["paused"] is False and state["tour"]["name"] == "all" and state["tour"]["position"] == 4
    run_walls(bureau, runner, intrusion("S12-GATE"))
    state = api.get(f"/api/walls/{district_wall}/state").json()
    assert state["paused"] is True and state["alarm"]["camera_code"] == "S12-GATE"
    assert state["tiles"][0]["camera_code"] == "S12-GATE" and state["tiles"][0]["alarm"] is True
    assert [t["alarm"] for t in state["tiles"]] == [True, False, False, False]
    alarm_id = state["alarm"]["id"]
    watcher = bus.consumer("walls", "test", "t")
    login(api, "officer1")
    assert (
        api.post(f"/api/walls/{bureau_wall}/alarms/{alarm_id}/acknowledge").status_code == 404
    )  # not that wall's
    acknowledged = api.post(f"/api/walls/{district_wall}/alarms/{alarm_id}/acknowledge")
    assert acknowledged.status_code == 200 and acknowledged.json()["acknowledged_by"]["username"] == "officer1"
    assert api.post(f"/api/walls/{district_wall}/alarms/{alarm_id}/acknowledge").status_code == 409
    for wall_id in (bureau_wall, district_wall):  # one event, one acknowledgement: off both walls
        assert api.get(f"/api/walls/{wall_id}/state").json()["paused"] is False
        assert api.get(f"/api/walls/{wall_id}/alarms", params={"open": "true"}).json()["total"] == 0
        listed = api.get(f"/api/walls/{wall_id}/alarms").json()
        assert listed["total"] == 1 and listed["items"][0]["acknowledged_by"]["display_name"] == "Officer1"
    assert sorted(int(str(d.event.payload["wall_id"])) for d in watcher.fetch(10)) == sorted(
        [bureau_wall, district_wall]
    )
    run_walls(bureau, runner)
    assert api.get(f"/api/walls/{district_wall}/state").json()["tiles"][0]["camera_code"] == "S12-CORR"
    coverage = api.get(f"/api/tours/{tour_id}/coverage", params={"day": "2026-12-01"}).json()
    assert coverage["cameras"] == 24 and coverage["shown"] == 8 and coverage["share"] == round(8 / 24, 4)
    assert [d["shown"] for d in coverage["by_district"]] == [8, 0]
    cameras = api.get(f"/api/tours/{tour_id}/cameras", params={"limit": 2, "offset": 4}).json()
    assert [c["code"] for c in cameras] == ["S12-CORR", "S12-DORM"]


def test_a_name_taken_at_the_same_moment_is_a_conflict_not_a_server_error(
    api: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    login(api, "admin")
    assert api.post("/api/tours", json={"name": "gates"}).status_code == 201
    # Another request stored the name between this request's check and its insert: the database refuses it.
    monkeypatch.setattr(tours, "_check", lambda *_args: None)
    clash = api.post("/api/tours", json={"name": "gates"})
    assert clash.status_code == 409 and "try again" in clash.json()["detail"]
    assert "INSERT" not in clash.text
    assert [t["name"] for t in api.get("/api/tours").json()] == ["gates"]
