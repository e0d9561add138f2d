"""The registry API: scoped reads, and the administrators' writes of districts, schools and cameras."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from config import Settings
from ingest.fleet import load_targets
from kernel.db import session_scope
from kernel.secrets import SecretBox
from patrol.tables.walls import TourCoverage
from registry.models import Camera, School
from tests.bureau import PASSWORD, START, Bureau, login
from web.audit import AuditAction, AuditEntry
from web.auth import hash_password
from web.models import Role, ScopeKind, User

SECRET = "Gate-Pw-7731"
NEW_CAMERA = {
    "code": "S11-ROOF",
    "name": "S11 roof",
    "school_code": "S11",
    "scene_type": "perimeter",
    "main_url": f"rtsp://viewer:{SECRET}@10.1.1.9:554/Streaming/Channels/101",
    "tags": ["night", "night", "roof"],
}


def codes(response_json: dict[str, list[dict[str, str]]]) -> list[str]:
    return [item["code"] for item in response_json["items"]]


def test_reads_are_scoped(api: TestClient) -> None:
    login(api, "officer_d1")
    assert [(d["code"], d["school_count"]) for d in api.get("/api/districts").json()] == [("D1", 3)]
    assert api.get("/api/districts/D2").status_code == 404
    assert codes(api.get("/api/schools").json()) == ["S11", "S12", "S13"]
    assert api.get("/api/schools", params={"district": "D2"}).json()["total"] == 0
    assert api.get("/api/schools/S21").status_code == 404
    cameras = api.get("/api/cameras", params={"limit": 100}).json()
    assert cameras["total"] == 12 and all(c.startswith("S1") for c in codes(cameras))
    assert api.get("/api/cameras/S21-GATE").status_code == 404
    assert api.get("/api/cameras/S12-GATE").status_code == 200

    login(api, "school11")
    assert [(d["code"], d["school_count"]) for d in api.get("/api/districts").json()] == [("D1", 1)]
    assert codes(api.get("/api/schools").json()) == ["S11"]
    assert api.get("/api/schools/S12").status_code == 404
    assert codes(api.get("/api/cameras").json()) == ["S11-CORR", "S11-DORM", "S11-GATE", "S11-YARD"]
    assert api.get("/api/cameras/S12-GATE").status_code == 404

    login(api, "officer1")
    assert [d["code"] for d in api.get("/api/districts").json()] == ["D1", "D2"]
    assert api.get("/api/cameras").json()["total"] == 24


def test_writes_need_a_bureau_administrator(api: TestClient, bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        district_id = session.scalar(select(School.district_id).where(School.code == "S11"))
        session.add(
            User(
                username="admin_d1",
                password_hash=hash_password(PASSWORD),
                role=Role.ADMINISTRATOR,
                scope=ScopeKind.DISTRICT,
                district_id=district_id,
            )
        )
    for name in ("officer1", "leader1", "auditor", "school11", "admin_d1"):
        login(api, name)
        assert api.post("/api/cameras", json=NEW_CAMERA).status_code == 403, name
        assert api.patch("/api/cameras/S11-GATE", json={"name": "x"}).status_code == 403, name
        assert api.delete("/api/cameras/S11-GATE").status_code == 403, name
        assert api.post("/api/districts", json={"code": "D9", "name": "x"}).status_code == 403, name
        assert api.patch("/api/schools/S11", json={"name": "x"}).status_code == 403, name
    login(api, "admin")
    api.headers.pop("X-CSRF-Token")
    assert api.post("/api/districts", json={"code": "D9", "name": "x"}).status_code == 403  # CSRF


def test_camera_credentials_are_write_only(
    api: TestClient, bureau: Bureau, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    login(api, "admin")
    created = api.post("/api/cameras", json=NEW_CAMERA)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["main_url"] == "rtsp://10.1.1.9:554/Streaming/Channels/101"
    assert body["has_credentials"] is True
    assert body["tags"] == ["night", "roof"]
    assert "password" not in body and "username" not in body
    changed = api.patch(
        "/api/cameras/S11-ROOF", json={"password": "Other-Pw-99", "sub_url": "rtsp://10.1.1.9/102"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["sub_url"] == "rtsp://10.1.1.9/102"

    box = SecretBox.for_data_dir(settings.data_dir)
    with session_scope(bureau.factory) as session:
        camera = session.scalars(select(Camera).where(Camera.code == "S11-ROOF")).one()
        assert camera.username == "viewer"
        assert camera.password_encrypted is not None and box.decrypt(camera.password_encrypted) == "Other-Pw-99"
        # What the ingest reads: the sub stream with the credentials put back, in memory only.
        target = load_targets(session, box)["S11-ROOF"]
        assert target.url == "rtsp://viewer:Other-Pw-99@10.1.1.9/102"
        audit = session.scalars(select(AuditEntry).where(AuditEntry.target == "camera S11-ROOF")).all()
    assert [a.detail["op"] for a in audit] == ["create", "update"]
    assert all(a.action == AuditAction.CONFIG_CHANGE.value for a in audit)
    assert audit[1].detail["credentials"] == "changed"
    bodies = [
        created.text,
        changed.text,
        api.get("/api/cameras/S11-ROOF").text,
        api.get("/api/cameras", params={"school": "S11"}).text,
        str([a.detail for a in audit]),
        caplog.text,
    ]
    for text in bodies:
        assert SECRET not in text and "Other-Pw-99" not in text

    cleared = api.patch("/api/cameras/S11-ROOF", json={"username": None}).json()
    assert cleared["has_credentials"] is False
    disabled = api.patch("/api/cameras/S11-ROOF", json={"enabled": False}).json()
    assert disabled["enabled"] is False
    with session_scope(bureau.factory) as session:
        assert "S11-ROOF" not in load_targets(session, box)


BAD_INPUTS: list[tuple[dict[str, object], str, str]] = [
    ({"main_url": "http://10.1.1.9/live"}, "main_url", "scheme 'http' is not allowed"),
    ({"main_url": "rtsp:///live"}, "main_url", "no host"),
    ({"main_url": "rtsp://10.1.1.9:99999/live"}, "main_url", "port"),
    ({"main_url": f"rtsp://10.1.1.9/live?password={SECRET}"}, "main_url", "query string"),
    ({"password": SECRET, "main_url": "rtsp://u:Else-99@10.1.1.9/x"}, "password", "differ"),
    ({"main_url": "rtsp://10.1.1.9/x", "password": SECRET}, "password", "needs a username"),
    ({"sub_url": "rtmp://10.1.1.9/x"}, "sub_url", "not allowed"),
    ({"code": "S11 ROOF"}, "code", "pattern"),
    ({"name": "  "}, "name", "required"),
]


def test_camera_input_errors_name_the_field(api: TestClient) -> None:
    login(api, "admin")
    for change, field, message in BAD_INPUTS:
        response = api.post("/api/cameras", json={**NEW_CAMERA, **change})
        assert response.status_code == 422, (change, response.text)
        errors = response.json()["detail"]
        assert any(e["loc"] == ["body", field] and message in e["msg"] for e in errors), errors
        assert SECRET not in response.text
    assert api.get("/api/cameras/S11-ROOF").status_code == 404
    bad_patch = api.patch("/api/cameras/S11-GATE", json={"main_url": f"ftp://u:{SECRET}@h/x"})
    assert bad_patch.status_code == 422 and SECRET not in bad_patch.text
    # A missing field: FastAPI's own 422 would echo the whole body (password included) as its "input".
    missing = api.post(
        "/api/cameras", json={"code": "S11-ROOF", "password": SECRET, "main_url": NEW_CAMERA["main_url"]}
    )
    assert missing.status_code == 422 and SECRET not in missing.text
    assert {tuple(e["loc"]) for e in missing.json()["detail"]} >= {("body", "name"), ("body", "school_code")}


def test_camera_conflicts_and_unknowns(api: TestClient) -> None:
    login(api, "admin")
    assert api.post("/api/cameras", json={**NEW_CAMERA, "code": "S11-GATE"}).status_code == 409
    unknown = api.post("/api/cameras", json={**NEW_CAMERA, "school_code": "S99"})
    assert unknown.status_code == 422 and "unknown school 'S99'" in unknown.text
    assert api.patch("/api/cameras/NOPE", json={"name": "x"}).status_code == 404
    assert api.patch("/api/cameras/S11-GATE", json={"name": None}).status_code == 422
    assert api.patch("/api/cameras/S11-GATE", json={"colour": "red"}).status_code == 422
    moved = api.patch("/api/cameras/S11-GATE", json={"school_code": "S21", "key_scene": False}).json()
    assert (moved["school_code"], moved["key_scene"]) == ("S21", False)


def test_a_camera_with_history_is_disabled_not_deleted(api: TestClient, bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        session.add(
            TourCoverage(
                day=date(2026, 12, 1),
                camera_id=bureau.cameras["S11-GATE"],
                first_shown_at=START,
                last_shown_at=START,
            )
        )
    login(api, "admin")
    refused = api.delete("/api/cameras/S11-GATE")
    assert refused.status_code == 409
    assert (
        "1 days of wall coverage" in refused.json()["detail"] and "disable it instead" in refused.json()["detail"]
    )
    assert api.delete("/api/cameras/S11-YARD").status_code == 204
    assert api.get("/api/cameras/S11-YARD").status_code == 404
    assert api.get("/api/schools/S11").json()["camera_count"] == 3


def test_districts_and_schools(api: TestClient, bureau: Bureau) -> None:
    login(api, "admin")
    assert api.post("/api/districts", json={"code": "D3", "name": "第3区"}).status_code == 201
    assert api.post("/api/districts", json={"code": "D3", "name": "again"}).status_code == 409
    assert api.patch("/api/districts/D3", json={"name": "三区"}).json() == {
        "code": "D3",
        "name": "三区",
        "school_count": 0,
    }
    school = {"code": "S31", "name": "三区一小", "kind": "primary", "district_code": "D3", "contact_phone": "110"}
    created = api.post("/api/schools", json=school)
    assert created.status_code == 201, created.text
    assert (created.json()["district_name"], created.json()["camera_count"]) == ("三区", 0)
    assert api.post("/api/schools", json={**school, "code": "S32", "district_code": "D9"}).status_code == 422
    assert api.post("/api/schools", json={**school, "kind": "college"}).status_code == 422
    refused = api.delete("/api/districts/D3")
    assert refused.status_code == 409 and "1 schools" in refused.json()["detail"]
    refused = api.delete("/api/schools/S11")
    assert refused.status_code == 409 and "4 cameras" in refused.json()["detail"]
    moved = api.patch("/api/schools/S31", json={"district_code": "D2", "address": "路1号"}).json()
    assert (moved["district_code"], moved["address"]) == ("D2", "路1号")
    assert api.delete("/api/schools/S31").status_code == 204
    assert api.delete("/api/districts/D3").status_code == 204
    assert api.get("/api/districts/D3").status_code == 404
    with session_scope(bureau.factory) as session:
        targets = list(
            session.scalars(
                select(AuditEntry.target)
                .where(AuditEntry.action == AuditAction.CONFIG_CHANGE.value)
                .order_by(AuditEntry.id)
            )
        )
    assert targets == ["district D3", "district D3", "school S31", "school S31", "school S31", "district D3"]
