"""Event actions API: events listed and acted on within the user's scope, acknowledge → dispatch → resolve with
notes and history, 409 for the second officer, roles, the audit log, bus events after the commit, and the wall
alarm acknowledged with its event (and the event with its wall alarm)."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from sqlalchemy import select

from analytics.tables import SafetyEvent
from campuswatch.patrol_facts import StoredFleetFacts
from config.patrol import PatrolConfig
from kernel.bus import Delivery, Event, InMemoryBus
from kernel.db import session_scope
from patrol.wall_runner import WallRunner
from tests.bureau import START, Bureau, ManualClock, login
from web.audit import AuditAction, AuditEntry


def add_event(bureau: Bureau, camera: str, *, minutes: int = 0, evidence: bool = False) -> int:
    with session_scope(bureau.factory) as session:
        event = SafetyEvent(
            camera_id=bureau.cameras[camera],
            school_id=bureau.schools[camera.split("-", maxsplit=1)[0]],
            type="intrusion",
            rule="intrusion-rule",
            severity="major",
            started_at=START + timedelta(minutes=minutes),
            evidence_jpeg=b"\xff\xd8fake" if evidence else None,
        )
        session.add(event)
        session.flush()
        return event.id


def test_lists_and_reads_stay_in_the_users_scope(api: TestClient, bureau: Bureau) -> None:
    s11 = add_event(bureau, "S11-GATE", minutes=1, evidence=True)
    s12 = add_event(bureau, "S12-YARD", minutes=2)
    s21 = add_event(bureau, "S21-GATE", minutes=3, evidence=True)
    login(api, "officer1")
    everything = api.get("/api/events")
    assert [e["id"] for e in everything.json()] == [s21, s12, s11] and everything.headers["X-Total-Count"] == "3"
    assert everything.json()[0]["status"] == "new" and everything.json()[0]["district_code"] == "D2"
    login(api, "officer_d1")
    assert [e["id"] for e in api.get("/api/events").json()] == [s12, s11]
    assert api.get(f"/api/events/{s21}").status_code == 404
    assert api.get(f"/api/events/{s21}/evidence.jpg").status_code == 404
    assert api.get(f"/api/events/{s11}/evidence.jpg").status_code == 200
    assert api.post(f"/api/events/{s21}/acknowledge").status_code == 404
    assert api.get("/api/events", params={"school": "S21"}).json() == []
    login(api, "school11")
    assert [e["id"] for e in api.get("/api/events").json()] == [s11]
    assert api.get(f"/api/events/{s12}").status_code == 404
    assert api.post(f"/api/events/{s12}/notes", json={"note": "x"}).status_code == 404
    page = api.get("/api/events", params={"limit": 1, "offset": 1})
    assert page.json() == [] and page.headers["X-Total-Count"] == "1"
    api.cookies.clear()
    assert api.get("/api/events").status_code == 401
    assert api.get(f"/api/events/{s11}").status_code == 401


def test_acknowledge_dispatch_resolve_with_history_audit_and_bus_events(
    api: TestClient, bureau: Bureau, bus: InMemoryBus, clock: ManualClock
) -> None:
    event_id = add_event(bureau, "S11-GATE")
    other = add_event(bureau, "S12-GATE", minutes=1)
    duty = bus.consumer("duty", "test", "t", from_start=False)
    login(api, "officer1")
    assert api.post(f"/api/events/{event_id}/resolve", json={"note": "done"}).status_code == 409
    taken = api.post(f"/api/events/{event_id}/acknowledge", json={"note": "looking"})
    assert taken.status_code == 200, taken.text
    body = taken.json()
    assert body["status"] == "acknowledged" and body["disposition"]["acknowledged_by"]["username"] == "officer1"
    assert [(a["action"], a["note"]) for a in body["actions"]] == [("acknowledge", "looking")]
    login(api, "officer2")
    second = api.post(f"/api/events/{event_id}/acknowledge")
    assert second.status_code == 409 and "Officer1 (officer1)" in second.text and "10:00+08:00" in second.text
    clock.advance(minutes=2)
    assert api.post(f"/api/events/{event_id}/dispatch", json={}).status_code == 422
    assert api.post(f"/api/events/{event_id}/dispatch", json={"user": "nobody"}).status_code == 422
    far = api.post(f"/api/events/{event_id}/dispatch", json={"user": "officer_d1"})
    assert far.status_code == 200, far.text  # officer_d1 sees D1, where S11 is
    wrong = api.post(f"/api/events/{add_event(bureau, 'S21-GATE')}/acknowledge")
    assert wrong.status_code == 200
    cannot = api.post(f"/api/events/{wrong.json()['id']}/dispatch", json={"user": "school11"})
    assert cannot.status_code == 422 and "cannot see school S21" in cannot.text
    sent = api.post(
        f"/api/events/{event_id}/dispatch", json={"to": "school security S11 / 110", "note": "gate guard"}
    )
    assert sent.status_code == 200 and sent.json()["status"] == "dispatched"
    assert sent.json()["disposition"]["dispatched_to"] == "school security S11 / 110"
    assert sent.json()["disposition"]["dispatched_by"]["username"] == "officer2"
    login(api, "school11")
    assert api.post(f"/api/events/{event_id}/acknowledge").status_code == 403
    assert api.post(f"/api/events/{event_id}/resolve", json={"note": "x"}).status_code == 403
    noted = api.post(f"/api/events/{event_id}/notes", json={"note": "our guard is there"})
    assert noted.status_code == 201 and noted.json()["actions"][-1]["user"]["username"] == "school11"
    assert api.post(f"/api/events/{event_id}/notes", json={"note": ""}).status_code == 422
    login(api, "auditor")
    assert api.post(f"/api/events/{event_id}/notes", json={"note": "x"}).status_code == 403
    assert api.get(f"/api/events/{event_id}").status_code == 200
    login(api, "leader1")
    assert api.post(f"/api/events/{event_id}/resolve", json={}).status_code == 422
    clock.advance(minutes=10)
    done = api.post(f"/api/events/{event_id}/resolve", json={"note": "a parent, let in"})
    assert done.status_code == 200 and done.json()["status"] == "resolved"
    assert done.json()["disposition"]["resolved_at"].startswith("2026-12-01T02:12:00")
    detail = api.get(f"/api/events/{event_id}").json()
    assert [a["action"] for a in detail["actions"]] == ["acknowledge", "dispatch", "dispatch", "note", "resolve"]
    assert detail["actions"][1]["note"].startswith("Officer_D1 (officer_d1)")
    listed = api.get("/api/events", params={"status": "resolved"}).json()
    assert [e["id"] for e in listed] == [event_id]
    open_ones = api.get("/api/events", params=[("status", "new"), ("status", "acknowledged")]).json()
    assert sorted(e["id"] for e in open_ones) == sorted([other, wrong.json()["id"]])
    assert api.get("/api/events", params={"status": "bogus"}).status_code == 422
    with bureau.factory() as session:
        audited = session.scalars(
            select(AuditEntry).where(AuditEntry.action == AuditAction.EVENT_ACTION.value).order_by(AuditEntry.id)
        ).all()
    mine = [(a.actor_name, a.detail["action"]) for a in audited if a.detail["event_id"] == event_id]
    assert mine == [
        ("officer1", "acknowledge"),
        ("officer2", "dispatch"),
        ("officer2", "dispatch"),
        ("school11", "note"),
        ("leader1", "resolve"),
    ]
    assert audited[0].target == f"event {event_id} intrusion S11-GATE" and audited[0].ip == "testclient"
    published = [(d.event.type, d.event.payload["event_id"]) for d in duty.fetch(max_count=50)]
    assert published[:2] == [("event.acknowledged", event_id), ("event.dispatched", event_id)]
    assert ("event.resolved", event_id) in published and ("event.note", event_id) in published
    assert len([p for p in published if p[1] == event_id]) == 5  # refused attempts published nothing


def intrusion(camera: str, event_id: int) -> Delivery:
    event = Event(
        topic="events",
        type="event.started",
        source="t",
        payload={"camera_code": camera, "event_id": event_id, "severity": "major", "type": "intrusion"},
    )
    return Delivery("events", "g", "1-0", 1, event)


def _walls(api: TestClient, bureau: Bureau, clock: ManualClock) -> tuple[WallRunner, int, int]:
    login(api, "admin")
    tour_id = api.post("/api/tours", json={"name": "all", "layout": "4"}).json()["id"]
    bureau_wall = api.post("/api/walls", json={"name": "bureau", "tour_id": tour_id}).json()["id"]
    d1_wall = api.post("/api/walls", json={"name": "d1", "tour_id": tour_id, "districts": ["D1"]}).json()["id"]
    runner = WallRunner(StoredFleetFacts(), PatrolConfig(), timezone=ZoneInfo("Asia/Shanghai"), clock=clock)
    return runner, bureau_wall, d1_wall


def _run(bureau: Bureau, runner: WallRunner, *deliveries: Delivery) -> None:
    for delivery in deliveries:
        with session_scope(bureau.factory) as session:
            runner.raise_alarms(session, delivery)
    with session_scope(bureau.factory) as session:
        runner.tick(session)


def test_acknowledging_the_event_takes_its_alarm_off_every_wall(
    api: TestClient, bureau: Bureau, clock: ManualClock
) -> None:
    runner, bureau_wall, d1_wall = _walls(api, bureau, clock)
    event_id = add_event(bureau, "S12-GATE")
    _run(bureau, runner, intrusion("S12-GATE", event_id))
    login(api, "officer1")
    for wall in (bureau_wall, d1_wall):
        state = api.get(f"/api/walls/{wall}/state").json()
        assert state["paused"] is True and state["alarm"]["event_id"] == event_id
    assert api.post(f"/api/events/{event_id}/acknowledge").status_code == 200
    for wall in (bureau_wall, d1_wall):
        assert api.get(f"/api/walls/{wall}/state").json()["paused"] is False
        alarms = api.get(f"/api/walls/{wall}/alarms").json()["items"]
        assert alarms[0]["acknowledged_by"]["username"] == "officer1"
    _run(bureau, runner)  # the walls rotate again at once
    assert api.get(f"/api/walls/{d1_wall}/state").json()["tiles"][0]["camera_code"] != "S12-GATE"


def test_acknowledging_the_wall_alarm_acknowledges_its_event(
    api: TestClient, bureau: Bureau, clock: ManualClock
) -> None:
    runner, _bureau_wall, d1_wall = _walls(api, bureau, clock)
    event_id = add_event(bureau, "S12-GATE")
    _run(bureau, runner, intrusion("S12-GATE", event_id))
    login(api, "officer2")
    alarm_id = api.get(f"/api/walls/{d1_wall}/state").json()["alarm"]["id"]
    assert api.post(f"/api/walls/{d1_wall}/alarms/{alarm_id}/acknowledge").status_code == 200
    event = api.get(f"/api/events/{event_id}").json()
    assert event["status"] == "acknowledged" and event["disposition"]["acknowledged_by"]["username"] == "officer2"
    assert event["actions"][0]["note"] == f"acknowledged on the video wall (alarm {alarm_id})"
    with session_scope(bureau.factory) as session:
        audited = session.scalars(select(AuditEntry).where(AuditEntry.action == AuditAction.EVENT_ACTION)).all()
    assert [(a.actor_name, a.detail["via"], a.detail["event_id"]) for a in audited] == [
        ("officer2", "wall", event_id)
    ]
    assert api.post(f"/api/events/{event_id}/acknowledge").status_code == 409
    assert api.post(f"/api/events/{event_id}/resolve", json={"note": "checked"}).status_code == 200
