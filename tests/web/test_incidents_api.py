"""Incidents API: filed, classified major (clocks), reports marked, follow-ups, closing; roles; bus events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from analytics.tables import SafetyEvent
from kernel.bus import InMemoryBus
from patrol.incidents import check_clocks
from tests.bureau import Bureau, ManualClock, login

MANUAL = {"school_code": "S11", "occurred_at": "2026-12-01T09:50:00+08:00", "title": "Student fell from stairs"}


def file_incident(api: TestClient, user: str = "officer1", **body: Any) -> Any:
    login(api, user)
    return api.post("/api/incidents", json={**MANUAL, **body})


def classify(api: TestClient, incident_id: int, severity: str = "major") -> Any:
    return api.post(f"/api/incidents/{incident_id}/classify", json={"severity": severity})


def done(api: TestClient, incident_id: int, kind: str, note: str = "") -> Any:
    return api.post(f"/api/incidents/{incident_id}/clocks/{kind}/done", json={"note": note})


def clocks(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in body["clocks"]}


def test_a_major_incident_runs_its_clocks_until_every_report_is_made(
    api: TestClient, clock: ManualClock, bus: InMemoryBus
) -> None:
    duty = bus.consumer("duty", "test", "t")
    created = file_incident(api)
    assert created.status_code == 201, created.text
    incident = created.json()
    iid = incident["id"]
    assert (incident["severity"], incident["clocks"], incident["report_day"]) == ("general", [], "2026-12-01")
    clock.advance(minutes=2)
    classified = classify(api, iid)
    assert classified.status_code == 200, classified.text
    running = clocks(classified.json())
    assert {k: (c["deadline"], c["seconds_remaining"]) for k, c in running.items()} == {
        "school_phone": ("2026-12-01T02:17:00Z", 900.0),
        "bureau_phone": ("2026-12-01T02:22:00Z", 1200.0),
        "school_written": ("2026-12-01T02:32:00Z", 1800.0),
        "bureau_written": ("2026-12-01T02:42:00Z", 2400.0),
    }
    clock.advance(minutes=5)
    again = classify(api, iid)  # does not restart the clocks
    assert clocks(again.json())["school_phone"]["deadline"] == "2026-12-01T02:17:00Z"
    assert clocks(again.json())["school_phone"]["seconds_remaining"] == 600.0
    assert done(api, iid, "school_phone", "校长电话报告").json()["late"] is False
    clock.advance(minutes=20)  # 10:27 local: bureau phone (10:22) overdue
    detail = api.get(f"/api/incidents/{iid}").json()
    bureau_phone = clocks(detail)["bureau_phone"]
    assert (bureau_phone["seconds_remaining"], bureau_phone["late"], detail["overdue_clocks"]) == (-300.0, True, 1)
    assert clocks(detail)["school_phone"]["done_by"]["username"] == "officer1"
    late = done(api, iid, "bureau_phone", "报市政府总值班室")
    assert late.status_code == 200 and (late.json()["done"], late.json()["late"]) == (True, True)
    assert late.json()["seconds_remaining"] is None
    twice = done(api, iid, "bureau_phone")
    assert twice.status_code == 409  # in local time, as the officer reads it
    assert "was marked done at 2026-12-01T10:27+08:00" in twice.json()["detail"]
    assert api.post(f"/api/incidents/{iid}/close", json={}).status_code == 403  # an officer: major
    login(api, "leader1")
    open_clocks = api.post(f"/api/incidents/{iid}/close", json={})
    assert open_clocks.status_code == 409 and "school_written, bureau_written" in open_clocks.json()["detail"]
    assert done(api, iid, "school_written").status_code == 200
    assert done(api, iid, "bureau_written").status_code == 200
    closed = api.post(f"/api/incidents/{iid}/close", json={"summary": "sent to hospital, recovering"})
    assert closed.status_code == 200, closed.text
    assert (closed.json()["status"], closed.json()["summary"]) == ("closed", "sent to hospital, recovering")
    assert api.post(f"/api/incidents/{iid}/close", json={}).status_code == 409
    assert [d.event.type for d in duty.fetch(max_count=10)] == ["incident.created", "incident.major"]


def test_a_major_incident_is_closed_by_the_leader_and_a_general_one_by_the_duty_room(api: TestClient) -> None:
    major = file_incident(api, severity="major").json()
    assert len(major["clocks"]) == 4 and major["classified_by"]["username"] == "officer1"
    for kind in ("school_phone", "bureau_phone", "school_written", "bureau_written"):
        assert done(api, major["id"], kind).status_code == 200
    refused = api.post(f"/api/incidents/{major['id']}/close", json={})
    assert refused.status_code == 403 and "may not close major incident" in refused.json()["detail"]
    general = file_incident(api).json()
    assert api.post(f"/api/incidents/{general['id']}/close", json={}).status_code == 200
    login(api, "admin")
    assert api.post(f"/api/incidents/{major['id']}/close", json={}).status_code == 200


def test_each_write_refuses_the_roles_it_is_not_for(api: TestClient) -> None:
    iid = file_incident(api).json()["id"]
    for user in ("inspector", "school11", "auditor"):
        assert file_incident(api, user).status_code == 403
        assert classify(api, iid).status_code == 403
        assert done(api, iid, "school_phone").status_code == 403
        assert api.post(f"/api/incidents/{iid}/followups", json={"text": "x"}).status_code == 403
        assert api.post(f"/api/incidents/{iid}/close", json={}).status_code == 403
        assert api.get(f"/api/incidents/{iid}").status_code == 200  # everybody reads
    api.cookies.clear()
    assert api.get("/api/incidents").status_code == 401


def test_bad_requests_and_missing_things(api: TestClient) -> None:
    iid = file_incident(api).json()["id"]
    assert file_incident(api, occurred_at="2026-12-01T09:50:00").status_code == 422  # naive
    future = file_incident(api, occurred_at="2026-12-01T11:00:00+08:00")
    assert future.status_code == 422
    assert "cannot occur in the future (2026-12-01T11:00+08:00 is after 2026-12-01T10:00+08:00)" in future.text
    assert file_incident(api, school_code="S99").status_code == 404
    assert file_incident(api, title=None).status_code == 422
    assert file_incident(api, event_id=3).status_code == 422  # event_id with school and time
    assert file_incident(api, colour="red").status_code == 422
    assert classify(api, iid, "huge").status_code == 422
    assert classify(api, 999).status_code == 404
    no_clock = done(api, iid, "school_phone")
    assert (
        no_clock.status_code == 404 and "only a major incident has reporting clocks" in no_clock.json()["detail"]
    )
    assert done(api, iid, "city_fax").status_code == 422
    assert api.post(f"/api/incidents/{iid}/followups", json={"text": ""}).status_code == 422
    assert classify(api, iid).status_code == 200
    downgrade = classify(api, iid, "general")
    assert downgrade.status_code == 409 and "is not downgraded" in downgrade.json()["detail"]
    assert "classified major at 2026-12-01T10:00+08:00" in downgrade.json()["detail"]
    assert api.get("/api/incidents/999").status_code == 404


def _event(bureau: Bureau) -> int:
    with bureau.factory() as session, session.begin():
        event = SafetyEvent(
            camera_id=bureau.cameras["S23-GATE"],
            school_id=bureau.schools["S23"],
            type="crowding",
            rule="gate-crowd",
            severity="major",
            started_at=datetime(2026, 12, 1, 1, 40, tzinfo=UTC),
            detail="52 people",
        )
        session.add(event)
        session.flush()
        return event.id


def test_an_incident_from_an_event_and_its_followups(api: TestClient, bureau: Bureau, clock: ManualClock) -> None:
    event_id = _event(bureau)
    login(api, "officer2")
    created = api.post("/api/incidents", json={"event_id": event_id, "severity": "major"})
    assert created.status_code == 201, created.text
    incident = created.json()
    assert (incident["school_code"], incident["occurred_at"], incident["event_id"]) == (
        "S23",
        "2026-12-01T01:40:00Z",
        event_id,
    )
    assert (incident["title"], incident["summary"]) == ("crowding at S23-GATE", "52 people")
    again = api.post("/api/incidents", json={"event_id": event_id})
    assert again.status_code == 409 and f"already has open incident {incident['id']}" in again.json()["detail"]
    assert api.post("/api/incidents", json={"event_id": 999}).status_code == 404
    iid = incident["id"]
    first = api.post(f"/api/incidents/{iid}/followups", json={"text": "police arrived"})
    assert first.status_code == 201 and first.json()["by"]["username"] == "officer2"
    clock.advance(minutes=10)
    api.post(f"/api/incidents/{iid}/followups", json={"text": "crowd dispersed"})
    listed = api.get(f"/api/incidents/{iid}/followups").json()
    assert [(f["text"], f["at"]) for f in listed] == [
        ("police arrived", "2026-12-01T02:00:00Z"),
        ("crowd dispersed", "2026-12-01T02:10:00Z"),
    ]
    assert [f["text"] for f in api.get(f"/api/incidents/{iid}").json()["followups"]] == [f["text"] for f in listed]


def test_incidents_are_listed_with_filters_and_escalations_show(
    api: TestClient, bureau: Bureau, clock: ManualClock
) -> None:
    general = file_incident(api).json()["id"]
    major = file_incident(api, school_code="S21", severity="major").json()["id"]
    login(api, "admin")
    day = {"starts_at": "2026-12-01T08:00:00+08:00", "ends_at": "2026-12-01T20:00:00+08:00", "leader": "leader2"}
    assert api.post("/api/roster/shifts", json={**day, "officers": ["officer1"]}).status_code == 201
    login(api, "auditor")
    listed = api.get("/api/incidents").json()
    assert (listed["total"], [i["id"] for i in listed["items"]]) == (2, [major, general])
    assert [i["id"] for i in api.get("/api/incidents", params={"severity": "major"}).json()["items"]] == [major]
    assert [i["id"] for i in api.get("/api/incidents", params={"district": "D1"}).json()["items"]] == [general]
    assert api.get("/api/incidents", params={"school": "S21", "status": "closed"}).json()["total"] == 0
    assert api.get("/api/incidents", params={"overdue": "true"}).json()["total"] == 0
    assert api.get("/api/incidents", params={"since": "2026-12-01T09:50:00"}).status_code == 422
    since = api.get("/api/incidents", params={"since": "2026-12-01T09:51:00+08:00"}).json()
    assert since["total"] == 0
    clock.advance(minutes=16)
    overdue = api.get("/api/incidents", params={"overdue": "true"}).json()
    assert [i["id"] for i in overdue["items"]] == [major] and overdue["items"][0]["overdue_clocks"] == 1
    with bureau.factory() as session:
        assert check_clocks(session, clock()) == 1
        session.commit()
    escalated = clocks(api.get(f"/api/incidents/{major}").json())["school_phone"]
    assert (
        escalated["escalated_to"]["username"] == "leader2" and escalated["escalated_at"] == "2026-12-01T02:16:00Z"
    )


def test_nothing_is_announced_when_the_transaction_does_not_commit(
    api: TestClient, bus: InMemoryBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    duty = bus.consumer("duty", "test", "t")
    iid = file_incident(api).json()["id"]
    assert [d.event.type for d in duty.fetch(max_count=10)] == ["incident.created"]

    def fail(self: Session) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(Session, "commit", fail)
    with pytest.raises(RuntimeError, match="database went away"):
        classify(api, iid)
    assert duty.fetch(max_count=10) == []
    monkeypatch.undo()
    detail = classify(api, iid).json()
    assert len(detail["clocks"]) == 4  # the failed attempt left no clocks behind
    assert [d.event.type for d in duty.fetch(max_count=10)] == ["incident.major"]
