"""Hazards API: filed, rectified with pictures, verified; who may do each step; uploads; filters; bus events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from analytics.tables import SafetyEvent
from kernel.bus import InMemoryBus
from tests.bureau import Bureau, ManualClock, login

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def file_hazard(api: TestClient, user: str = "officer1", **body: Any) -> Any:
    login(api, user)
    fields: dict[str, Any] = {"school_code": "S11", "title": "Gate left open", "camera_code": "S11-GATE"}
    fields.update(body)
    return api.post("/api/hazards", json=fields)


def upload(api: TestClient, hazard_id: int, data: bytes, stage: str = "after", name: str = "a.jpg") -> Any:
    return api.post(
        f"/api/hazards/{hazard_id}/evidence",
        data={"stage": stage, "note": "new lock"},
        files={"file": (name, data, "application/octet-stream")},
    )


def step(api: TestClient, hazard_id: int, name: str, **body: Any) -> Any:
    return api.post(f"/api/hazards/{hazard_id}/{name}", json=body)


def test_a_hazard_is_filed_rectified_and_verified(api: TestClient, bus: InMemoryBus) -> None:
    duty = bus.consumer("duty", "test", "t")
    created = file_hazard(api, severity="major")
    assert created.status_code == 201, created.text
    hazard = created.json()
    assert (hazard["status"], hazard["school_name"], hazard["district_code"], hazard["camera_code"]) == (
        "open",
        "第11中学",
        "D1",
        "S11-GATE",
    )
    assert hazard["deadline"] == "2026-12-03T02:00:00Z"  # major: 2 days
    assert hazard["created_by"]["username"] == "officer1" and hazard["source"] == "manual"
    hid = hazard["id"]
    assert upload(api, hid, PNG, stage="before", name="b.png").status_code == 201
    login(api, "school11")
    assert step(api, hid, "start", note="on it").status_code == 200
    uploaded = upload(api, hid, JPEG)
    assert uploaded.status_code == 201, uploaded.text
    assert uploaded.json()["content_type"] == "image/jpeg" and uploaded.json()["size"] == len(JPEG)
    submitted = step(api, hid, "submit")
    assert submitted.status_code == 200 and submitted.json()["status"] == "submitted"
    login(api, "leader1")
    verified = step(api, hid, "verify", note="checked on the gate camera")
    assert verified.status_code == 200, verified.text
    detail = api.get(f"/api/hazards/{hid}").json()
    assert detail["status"] == "closed" and detail["closed_at"] == "2026-12-01T02:00:00Z"
    assert [(a["action"], a["to_status"], a["by"]["username"]) for a in detail["actions"]] == [
        ("created", "open", "officer1"),
        ("evidence", None, "officer1"),
        ("started", "rectifying", "school11"),
        ("evidence", None, "school11"),
        ("submitted", "submitted", "school11"),
        ("verified", "closed", "leader1"),
    ]
    assert [(e["stage"], e["content_type"]) for e in detail["evidence"]] == [
        ("before", "image/png"),
        ("after", "image/jpeg"),
    ]
    picture = api.get(detail["evidence"][1]["url"])
    assert (
        picture.status_code == 200 and picture.content == JPEG and picture.headers["content-type"] == "image/jpeg"
    )
    assert api.get(detail["evidence"][0]["url"]).headers["content-type"] == "image/png"
    events = [(d.event.type, d.event.payload.get("to_status")) for d in duty.fetch(max_count=10)]
    assert events == [
        ("hazard.created", None),
        ("hazard.status", "rectifying"),
        ("hazard.status", "submitted"),
        ("hazard.status", "closed"),
    ]


def test_each_write_refuses_the_roles_it_is_not_for(api: TestClient) -> None:
    hid = file_hazard(api).json()["id"]
    for user in ("school11", "auditor"):
        assert file_hazard(api, user).status_code == 403
    login(api, "auditor")
    assert step(api, hid, "start").status_code == 403
    assert step(api, hid, "notes", note="x").status_code == 403
    assert upload(api, hid, JPEG, stage="before").status_code == 403
    login(api, "inspector")  # files hazards and their before pictures, does not rectify them
    assert file_hazard(api, "inspector").status_code == 201
    assert step(api, hid, "start").status_code == 403
    after = upload(api, hid, JPEG)
    assert after.status_code == 403 and "may not upload after pictures" in after.json()["detail"]
    login(api, "school11")
    assert upload(api, hid, JPEG, stage="before").status_code == 403
    assert step(api, hid, "start").status_code == 200
    assert upload(api, hid, JPEG).status_code == 201
    assert step(api, hid, "submit").status_code == 200
    assert step(api, hid, "reopen", note="no").status_code == 403
    assert step(api, hid, "verify").status_code == 403
    login(api, "officer1")
    assert step(api, hid, "verify").status_code == 403  # the leader on duty signs off
    assert step(api, hid, "notes", note="asked the school for a closer picture").status_code == 201
    assert step(api, hid, "reopen", note="the picture does not show the lock").status_code == 200
    api.cookies.clear()
    assert api.get("/api/hazards").status_code == 401


def test_steps_out_of_order_and_bad_requests(api: TestClient) -> None:
    hid = file_hazard(api).json()["id"]
    login(api, "leader1")
    early = step(api, hid, "verify")
    assert early.status_code == 409
    assert early.json()["detail"] == (
        f"hazard {hid} is open: only a submitted hazard can be verified; "
        "an open hazard can only be started (rectifying)"
    )
    assert step(api, hid, "start").status_code == 200
    no_picture = step(api, hid, "submit")
    assert no_picture.status_code == 409 and "no rectification (after) picture" in no_picture.json()["detail"]
    assert step(api, hid, "reopen", note="").status_code == 422
    assert step(api, hid, "start", colour="red").status_code == 422
    assert step(api, 999, "start").status_code == 404
    assert api.get("/api/hazards/999").status_code == 404
    assert file_hazard(api, school_code="S99").status_code == 404
    assert file_hazard(api, camera_code="S12-GATE").status_code == 422  # not a camera of S11
    assert file_hazard(api, deadline="2026-12-09T10:00:00").status_code == 422  # naive
    past = file_hazard(api, deadline="2026-11-30T10:00:00+08:00")
    assert past.status_code == 422 and "is not after" in past.json()["detail"]
    assert file_hazard(api, title=None).status_code == 422
    assert api.post("/api/hazards", json={"event_id": 1, "school_code": "S11"}).status_code == 422


def test_uploads_are_checked_by_type_size_and_emptiness(api: TestClient) -> None:
    hid = file_hazard(api).json()["id"]
    gif = upload(api, hid, b"GIF89a" + b"\x00" * 20, stage="before", name="x.jpg")
    assert gif.status_code == 422 and "is not a JPEG or PNG picture" in gif.json()["detail"]
    empty = upload(api, hid, b"", stage="before")
    assert empty.status_code == 422 and "empty" in empty.json()["detail"]
    big = upload(api, hid, JPEG[:4] + b"\x00" * (5 * 1024 * 1024), stage="before")
    assert big.status_code == 413 and "5 MiB" in big.json()["detail"]
    assert upload(api, hid, JPEG, stage="during").status_code == 422
    assert api.post(f"/api/hazards/{hid}/evidence", data={"stage": "before"}).status_code == 422  # no file
    assert api.get(f"/api/hazards/{hid}").json()["evidence"] == []  # nothing kept of the refused ones
    other = file_hazard(api, title="other").json()["id"]
    picture = upload(api, other, JPEG, stage="before").json()["id"]
    assert api.get(f"/api/hazards/{hid}/evidence/{picture}").status_code == 404
    assert api.get(f"/api/hazards/{other}/evidence/{picture}").status_code == 200


def _event(bureau: Bureau, severity: str) -> int:
    with bureau.factory() as session, session.begin():
        event = SafetyEvent(
            camera_id=bureau.cameras["S22-YARD"],
            school_id=bureau.schools["S22"],
            type="water_area",
            rule="pond",
            severity=severity,
            started_at=datetime(2026, 12, 1, 1, 30, tzinfo=UTC),
            detail="1 in pond zone",
        )
        session.add(event)
        session.flush()
        return event.id


def test_a_hazard_is_filed_from_an_event(api: TestClient, bureau: Bureau) -> None:
    event_id = _event(bureau, "major")
    login(api, "inspector")
    created = api.post("/api/hazards", json={"event_id": event_id})
    assert created.status_code == 201, created.text
    hazard = created.json()
    assert (hazard["source"], hazard["source_id"], hazard["school_code"], hazard["camera_code"]) == (
        "event",
        event_id,
        "S22",
        "S22-YARD",
    )
    assert (hazard["title"], hazard["severity"], hazard["description"]) == (
        "water_area at S22-YARD",
        "major",
        "1 in pond zone",
    )
    again = api.post("/api/hazards", json={"event_id": event_id, "title": "again"})
    assert again.status_code == 409 and f"already has hazard {hazard['id']}" in again.json()["detail"]
    assert api.post("/api/hazards", json={"event_id": 4242}).status_code == 404
    assert upload(api, hazard["id"], JPEG, stage="before").status_code == 201  # its before picture, uploaded


def test_hazards_are_listed_newest_first_with_filters(api: TestClient, clock: ManualClock, bureau: Bureau) -> None:
    first = file_hazard(api, deadline="2026-12-01T12:00:00+08:00").json()["id"]
    clock.advance(minutes=1)
    second = file_hazard(api, school_code="S21", camera_code=None, title="Fence broken").json()["id"]
    clock.advance(minutes=1)
    third = file_hazard(api, "inspector", school_code="S12", camera_code="S12-DORM", title="Exit blocked").json()[
        "id"
    ]
    login(api, "auditor")
    listed = api.get("/api/hazards").json()
    assert (listed["total"], [h["id"] for h in listed["items"]]) == (3, [third, second, first])
    assert [h["id"] for h in api.get("/api/hazards", params={"district": "D1"}).json()["items"]] == [third, first]
    assert [h["id"] for h in api.get("/api/hazards", params={"school": "S21"}).json()["items"]] == [second]
    assert api.get("/api/hazards", params={"status": "closed"}).json()["total"] == 0
    assert api.get("/api/hazards", params={"source": "manual"}).json()["total"] == 3
    assert api.get("/api/hazards", params={"overdue": "true"}).json()["total"] == 0
    paged = api.get("/api/hazards", params={"limit": 1, "offset": 1}).json()
    assert (paged["total"], [h["id"] for h in paged["items"]]) == (3, [second])
    clock.advance(hours=3)  # past the first one's deadline (12:00)
    overdue = api.get("/api/hazards", params={"overdue": "true"}).json()
    assert [h["id"] for h in overdue["items"]] == [first]
    assert overdue["items"][0]["overdue"] is True and overdue["items"][0]["hours_overdue"] == pytest.approx(
        1.03, abs=0.01
    )
    assert api.get("/api/hazards", params={"overdue": "false"}).json()["total"] == 2
    assert api.get("/api/hazards", params={"status": "nope"}).status_code == 422
    assert api.get("/api/hazards", params={"limit": 0}).status_code == 422
    del bureau


def test_nothing_is_announced_when_the_transaction_does_not_commit(
    api: TestClient, bus: InMemoryBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    duty = bus.consumer("duty", "test", "t")
    refused = file_hazard(api, school_code="S99")
    assert refused.status_code == 404 and duty.fetch(max_count=10) == []

    def fail(self: Session) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(Session, "commit", fail)
    with pytest.raises(RuntimeError, match="database went away"):
        file_hazard(api)
    assert duty.fetch(max_count=10) == []
    monkeypatch.undo()
    assert file_hazard(api).status_code == 201
    assert [d.event.type for d in duty.fetch(max_count=10)] == ["hazard.created"]


def test_the_deadline_defaults_to_the_configured_days(api: TestClient) -> None:
    general = file_hazard(api).json()
    assert datetime.fromisoformat(general["deadline"]) - datetime.fromisoformat(
        general["created_at"]
    ) == timedelta(days=7)
