"""Users API: /api/me, admin-only CRUD with scopes, passwords that end sessions, the last-admin guard."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from kernel.db import session_scope
from tests.bureau import PASSWORD, Bureau, login
from web.audit import AuditAction, AuditEntry
from web.csrf import CSRF_COOKIE, CSRF_HEADER

GIVEN = "a-long-enough-pw"


def login_as(client: TestClient, username: str, password: str) -> int:
    client.cookies.clear()
    client.headers.pop(CSRF_HEADER, None)
    response = client.post("/login", data={"username": username, "password": password}, follow_redirects=False)
    if response.status_code == 303:
        client.headers[CSRF_HEADER] = client.cookies[CSRF_COOKIE]
    return response.status_code


def second_client(api: TestClient) -> TestClient:
    return TestClient(api.app)


def test_me_shows_role_and_scope(api: TestClient) -> None:
    assert api.get("/api/me").status_code == 401
    login(api, "school11")
    me = api.get("/api/me").json()
    assert (me["role"], me["scope"], me["school_code"], me["district_code"]) == (
        "school_safety_officer",
        "school",
        "S11",
        "D1",
    )
    assert me["school_codes"] == ["S11"] and me["display_name"] == "School11"
    login(api, "officer_d1")
    me = api.get("/api/me").json()
    assert (me["scope"], me["district_code"], me["school_code"]) == ("district", "D1", None)
    assert me["school_codes"] == ["S11", "S12", "S13"]
    login(api, "admin")
    me = api.get("/api/me").json()
    assert (me["role"], me["scope"], me["school_codes"]) == ("administrator", "bureau", None)
    assert "password" not in str(me)


def test_only_bureau_administrators_manage_users(api: TestClient) -> None:
    for name in ("officer1", "leader1", "auditor", "school11", "officer_d1"):
        login(api, name)
        assert api.get("/api/users").status_code == 403, name
        assert api.post("/api/users", json={"username": "x", "role": "auditor"}).status_code == 403, name
        assert api.patch("/api/users/officer2", json={"active": False}).status_code == 403, name
        assert api.post("/api/users/officer2/password", json={}).status_code == 403, name
    login(api, "admin")
    users = api.get("/api/users", params={"limit": 100}).json()
    assert users["total"] == 9
    assert "password_hash" not in str(users) and "$argon2" not in str(users)
    scoped = {u["username"]: (u["scope"], u["district_code"], u["school_code"]) for u in users["items"]}
    assert scoped["school11"] == ("school", "D1", "S11") and scoped["officer_d1"] == ("district", "D1", None)
    assert [u["username"] for u in api.get("/api/users", params={"role": "leader_on_duty"}).json()["items"]] == [
        "leader1",
        "leader2",
    ]
    assert api.get("/api/users/nobody").status_code == 404


def test_create_with_a_generated_password(api: TestClient, bureau: Bureau) -> None:
    login(api, "admin")
    body = {"username": "school21", "role": "school_safety_officer", "scope": "school", "school_code": "S21"}
    created = api.post("/api/users", json={**body, "display_name": "王老师", "phone": "13800000000"})
    assert created.status_code == 201, created.text
    password = created.json()["password"]
    assert len(password) == 12
    user = created.json()["user"]
    assert (user["scope"], user["school_code"], user["district_code"], user["active"]) == (
        "school",
        "S21",
        "D2",
        True,
    )
    assert "$argon2" not in created.text
    assert api.post("/api/users", json=body).status_code == 409
    other = second_client(api)
    assert login_as(other, "school21", password) == 303
    assert other.get("/api/me").json()["school_codes"] == ["S21"]
    with session_scope(bureau.factory) as session:
        entry = session.scalars(select(AuditEntry).where(AuditEntry.target == "user school21")).one()
    assert entry.action == AuditAction.CONFIG_CHANGE.value
    assert entry.detail["password_generated"] is True and password not in str(entry.detail)


def test_scope_fields_are_checked_against_each_other(api: TestClient) -> None:
    login(api, "admin")
    base = {"username": "newbie", "role": "duty_officer", "password": GIVEN}
    cases = [
        ({"scope": "district"}, "district_code", "needs a district_code"),
        ({"scope": "district", "district_code": "D9"}, "district_code", "unknown district"),
        ({"scope": "district", "district_code": "D1", "school_code": "S11"}, "school_code", "names no school"),
        ({"scope": "school"}, "school_code", "needs a school_code"),
        ({"scope": "school", "school_code": "S21", "district_code": "D1"}, "district_code", "is in district 'D2'"),
        ({"scope": "bureau", "district_code": "D1"}, "district_code", "names no district"),
        ({"password": "Qz-7pw"}, "password", "shorter than 10"),
        ({"scope": "galaxy"}, "scope", ""),
    ]
    for change, field, message in cases:
        response = api.post("/api/users", json={**base, **change})
        assert response.status_code == 422, (change, response.text)
        assert any(e["loc"][-1] == field and message in e["msg"] for e in response.json()["detail"]), response.text
        assert "Qz-7pw" not in response.text
    nameless = api.post("/api/users", json={"role": "auditor", "password": "Secret-Never-Echoed"})
    assert nameless.status_code == 422 and "Secret-Never-Echoed" not in nameless.text
    created = api.post("/api/users", json={**base, "scope": "district", "district_code": "D2"})
    assert created.status_code == 201 and created.json()["password"] is None
    moved = api.patch("/api/users/newbie", json={"scope": "school", "school_code": "S11"}).json()
    assert (moved["scope"], moved["district_code"], moved["school_code"]) == ("school", "D1", "S11")
    moved = api.patch("/api/users/newbie", json={"school_code": "S12"}).json()
    assert (moved["scope"], moved["school_code"]) == ("school", "S12")
    moved = api.patch("/api/users/newbie", json={"scope": "bureau"}).json()
    assert (moved["scope"], moved["district_code"], moved["school_code"]) == ("bureau", None, None)
    assert api.patch("/api/users/newbie", json={"role": None}).status_code == 422


def test_password_change_and_deactivation_end_sessions(api: TestClient) -> None:
    officer = second_client(api)
    assert login_as(officer, "officer1", PASSWORD) == 303
    assert officer.get("/api/me").status_code == 200
    login(api, "admin")
    reset = api.post("/api/users/officer1/password", json={})
    assert reset.status_code == 200
    new = reset.json()["password"]
    assert officer.get("/api/me").status_code == 401
    assert login_as(officer, "officer1", PASSWORD) == 401
    assert login_as(officer, "officer1", new) == 303

    short = api.post("/api/users/officer1/password", json={"password": "tiny-pw"})
    assert short.status_code == 422 and "tiny-pw" not in short.text
    given = api.post("/api/users/officer1/password", json={"password": GIVEN})
    assert given.json() == {"username": "officer1", "password": None}
    assert officer.get("/api/me").status_code == 401
    assert login_as(officer, "officer1", GIVEN) == 303

    assert api.patch("/api/users/officer1", json={"active": False}).json()["active"] is False
    assert officer.get("/api/me").status_code == 401
    assert login_as(officer, "officer1", GIVEN) == 401

    # An administrator setting their own password stays logged in on this session.
    assert api.post("/api/users/admin/password", json={"password": GIVEN}).status_code == 200
    assert api.get("/api/me").status_code == 200


def test_the_last_administrator_cannot_lock_everyone_out(api: TestClient) -> None:
    login(api, "admin")
    for change in ({"role": "auditor"}, {"scope": "district", "district_code": "D1"}):
        refused = api.patch("/api/users/admin", json=change)
        assert refused.status_code == 409 and "last active bureau administrator" in refused.json()["detail"]
    assert api.patch("/api/users/admin", json={"active": False}).status_code == 409  # never oneself
    created = api.post("/api/users", json={"username": "admin2", "role": "administrator", "password": GIVEN})
    assert created.status_code == 201
    other = second_client(api)
    assert login_as(other, "admin2", GIVEN) == 303
    assert other.patch("/api/users/admin", json={"active": False}).status_code == 200
    assert api.get("/api/me").status_code == 401  # admin's session ended
    refused = other.patch("/api/users/admin2", json={"role": "duty_officer"})
    assert refused.status_code == 409
    assert other.patch("/api/users/admin", json={"active": True}).status_code == 200
    assert other.patch("/api/users/admin2", json={"role": "duty_officer"}).json()["role"] == "duty_officer"
    assert other.get("/api/users").status_code == 401  # the new role ended admin2's own session too
    assert login_as(other, "admin2", GIVEN) == 303
    assert other.get("/api/users").status_code == 403  # no longer an administrator


def test_a_new_role_or_scope_ends_the_sessions_but_contact_changes_do_not(api: TestClient) -> None:
    officer = second_client(api)
    assert login_as(officer, "officer2", PASSWORD) == 303
    login(api, "admin")
    assert api.patch("/api/users/officer2", json={"phone": "13900000000"}).status_code == 200
    assert officer.get("/api/me").status_code == 200
    narrowed = api.patch("/api/users/officer2", json={"scope": "school", "school_code": "S21"})
    assert narrowed.status_code == 200, narrowed.text
    assert officer.get("/api/me").status_code == 401  # the open session must not keep the bureau scope
    assert login_as(officer, "officer2", PASSWORD) == 303
    assert officer.get("/api/me").json()["school_codes"] == ["S21"]
    assert api.patch("/api/users/officer2", json={"role": "inspector"}).status_code == 200
    assert officer.get("/api/me").status_code == 401


def test_the_schools_page_shows_only_the_users_scope(api: TestClient) -> None:
    login(api, "school11")
    page = api.get("/")
    assert page.status_code == 200
    assert "S11-GATE" in page.text and "S12-GATE" not in page.text and "S21-GATE" not in page.text
    assert "1 schools · 4 cameras" in page.text
    login(api, "officer_d1")
    page = api.get("/")
    assert "S13-YARD" in page.text and "S21-GATE" not in page.text and "3 schools · 12 cameras" in page.text
