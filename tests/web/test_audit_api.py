"""The audit log: what is recorded (configuration changes, exports), who reads it, and that nobody edits it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from kernel.db import make_session_factory, session_scope
from tests.bureau import START, Bureau, login
from web.audit import AuditAction, record_audit
from web.models import Role, ScopeKind, User


def _audit(api: TestClient, **params: Any) -> dict[str, Any]:
    login(api, "auditor")
    response = api.get("/api/audit", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _changes(api: TestClient, target: str) -> list[dict[str, Any]]:
    rows = _audit(api, action="config.change", target=target, limit=1000)["items"]
    return [{"op": r["detail"]["op"], **r["detail"].get("changes", {})} | {"actor": r["actor_name"]} for r in rows]


def test_only_bureau_auditors_and_administrators_read_it(api: TestClient, bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        user = User(username="auditor_d1", password_hash=session.get(User, bureau.users["auditor"]).password_hash)  # type: ignore[union-attr]
        user.role, user.scope = Role.AUDITOR, ScopeKind.DISTRICT
        user.district_id = session.execute(text("SELECT id FROM districts WHERE code = 'D1'")).scalar_one()
        session.add(user)
    for name, code in [
        ("auditor", 200),
        ("admin", 200),
        ("officer1", 403),
        ("leader1", 403),
        ("inspector", 403),
        ("school11", 403),
        ("auditor_d1", 403),
    ]:
        login(api, name)
        assert api.get("/api/audit").status_code == code, name
    login(api, "auditor")
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert api.request(method, "/api/audit", json={}).status_code == 405
        assert api.request(method, "/api/audit/1", json={}).status_code in (404, 405)


def test_filters_and_pages(api: TestClient, bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        for n in range(5):
            record_audit(
                session,
                AuditAction.EXPORT,
                actor_name="officer1",
                target=f"daily report 2026-11-{20 + n}",
                at=START - timedelta(hours=5 - n),
            )
        record_audit(session, AuditAction.LIVE_VIEW, actor_name="officer2", target="camera S11-GATE", at=START)
    page = _audit(api, action="export", limit=2, offset=1)
    assert page["total"] == 5 and page["limit"] == 2 and page["offset"] == 1
    assert [r["target"] for r in page["items"]] == ["daily report 2026-11-23", "daily report 2026-11-22"]
    assert _audit(api, actor="officer2")["total"] == 1
    assert _audit(api, target="camera S11")["items"][0]["action"] == "live.view"
    assert _audit(api, target="camera S1_")["total"] == 0, "the target prefix is literal"
    since = (START - timedelta(hours=2)).isoformat()
    until = START.isoformat()
    window = _audit(api, action="export", since=since, until=until)
    assert [r["target"] for r in window["items"]] == ["daily report 2026-11-24", "daily report 2026-11-23"]
    assert api.get("/api/audit", params={"since": until, "until": since}).status_code == 422
    assert api.get("/api/audit", params={"action": "rewrite"}).status_code == 422
    assert api.get("/api/audit", params={"since": "2026-12-01T10:00"}).status_code == 422, "an offset is needed"


def test_configuration_changes_are_recorded(api: TestClient) -> None:
    login(api, "admin")
    tour = api.post("/api/tours", json={"name": "gates", "cameras": {"scene_types": ["gate"]}}).json()
    wall = api.post("/api/walls", json={"name": "main", "tour_id": tour["id"], "districts": ["D1"]}).json()
    assert api.patch(f"/api/walls/{wall['id']}", json={"screens": 2}).status_code == 200
    assert api.patch(f"/api/tours/{tour['id']}", json={"dwell_s": 20}).status_code == 200
    assert api.delete(f"/api/walls/{wall['id']}").status_code == 204
    plan_body = {
        "name": "gates at 7",
        "camera_set": {"schools": ["S11"]},
        "day_rule": "every_day",
        "start": "07:00",
        "end": "08:00",
    }
    plan = api.post("/api/patrol-plans", json=plan_body).json()
    assert api.put(f"/api/patrol-plans/{plan['id']}", json=plan_body | {"end": "08:30"}).status_code == 200
    quota_body = {"name": "5 a day", "period": "day", "min_count": 5, "max_count": 5, "seed": 987654321}
    quota = api.post("/api/spot-checks/quotas", json=quota_body).json()
    assert api.patch(f"/api/spot-checks/quotas/{quota['id']}", json={"enabled": False}).status_code == 200
    assert api.delete(f"/api/spot-checks/quotas/{quota['id']}").status_code == 204
    shift_body = {
        "starts_at": (START + timedelta(hours=1)).isoformat(),
        "ends_at": (START + timedelta(hours=9)).isoformat(),
        "leader": "leader1",
        "officers": ["officer1"],
    }
    shift = api.post("/api/roster/shifts", json=shift_body).json()
    assert api.put(f"/api/roster/shifts/{shift['id']}", json=shift_body | {"label": "day"}).status_code == 200
    assert api.delete(f"/api/roster/shifts/{shift['id']}").status_code == 204

    walls = _changes(api, f"wall {wall['id']}")
    assert [w["op"] for w in walls] == ["delete", "update", "create"]
    assert walls[1]["screens"] == 2 and walls[2]["districts"] == ["D1"] and walls[0]["name"] == "main"
    assert all(w["actor"] == "admin" for w in walls)
    assert [t["op"] for t in _changes(api, f"tour {tour['id']}")] == ["update", "create"]
    plan_rows = _changes(api, f"patrol plan {plan['id']}")
    assert plan_rows[0] == {"op": "update", "end": ["08:00:00", "08:30:00"], "actor": "admin"}
    quota_rows = _changes(api, f"spot-check quota {quota['id']}")
    assert [q["op"] for q in quota_rows] == ["delete", "update", "create"]
    assert quota_rows[2]["seed_given"] is True and "seed" not in quota_rows[2]
    every = api.get("/api/audit", params={"limit": 1000}).text
    assert "987654321" not in every, "the secret seed never reaches the audit log"
    assert [s["op"] for s in _changes(api, f"shift {shift['id']}")] == ["delete", "replace", "create"]
    login(api, "admin")
    generated = api.post(
        "/api/roster/generate",
        json={
            "first_day": "2026-12-03",
            "days": 1,
            "boundaries": ["08:00", "20:00"],
            "teams": [["officer1"], ["officer2"]],
            "leaders": ["leader1"],
        },
    )
    assert generated.status_code == 201, generated.text
    [roster] = _changes(api, "roster")
    assert roster["op"] == "generate" and len(roster["created"]) == 2


def test_report_downloads_are_audited_as_exports(api: TestClient, bureau: Bureau) -> None:
    login(api, "officer1")
    assert api.post("/api/reports/2026-11-30/generate").status_code == 201
    login(api, "leader1")
    assert api.get("/api/reports/2026-11-30.pdf").status_code == 200
    assert api.get("/api/reports/2026-11-30.csv").status_code == 200
    assert api.get("/api/reports/2026-11-29.csv").status_code == 404
    rows = _audit(api, action="export")["items"]
    assert [(r["actor_name"], r["target"], r["detail"]["format"]) for r in rows] == [
        ("leader1", "daily report 2026-11-30", "csv"),
        ("leader1", "daily report 2026-11-30", "pdf"),
    ]
    assert rows[0]["ip"] == "testclient" and rows[0]["actor_id"] == bureau.users["leader1"]


def test_the_database_refuses_to_update_or_delete_audit_rows(migrated_engine: Engine) -> None:
    factory = make_session_factory(migrated_engine)
    with session_scope(factory) as session:
        record_audit(session, AuditAction.LOGIN, actor_name="admin", at=datetime(2026, 1, 1, tzinfo=UTC))
    for statement in ("UPDATE audit_log SET actor_name = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError), migrated_engine.begin() as conn:
            conn.execute(text(statement))
    with migrated_engine.connect() as conn:
        assert conn.execute(text("SELECT actor_name FROM audit_log")).scalars().all() == ["admin"]
