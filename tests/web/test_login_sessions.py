"""Server-side login sessions: logging out ends that session only (a copy of its cookie is refused, the user's
other sessions go on, its feed closes), administrators list and end a user's sessions (audited), a forged or
unknown session id is refused, sessions expire with the cookie's max age, ``last_seen_at`` is written at most
once a minute with one primary-key lookup a request, the live guard judges views by their login session, and
migration 0008 goes up and down. SQLite and PostgreSQL (the ``api`` fixture runs on both)."""

from __future__ import annotations

import json
from base64 import b64decode, b64encode
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import itsdangerous
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, inspect, select, update
from starlette.websockets import WebSocketDisconnect

from campuswatch.database import current_revision, downgrade, upgrade
from config import Settings
from config.live import LiveConfig
from kernel.clock import utcnow
from kernel.db import session_scope
from tests.bureau import PASSWORD, Bureau, login
from web.app import session_secret
from web.audit import AuditAction, AuditEntry
from web.auth import LAST_SEEN_EVERY_S, login_session_key
from web.csrf import CSRF_COOKIE, CSRF_HEADER
from web.live import LiveManager, Viewer
from web.models import LoginSession, SessionEndReason, User

ORIGIN = {"origin": "http://testserver"}


def _client(api: TestClient, username: str, user_agent: str = "testclient") -> TestClient:
    """Another browser (its own cookie jar) on the same app, logged in as ``username``."""
    client = TestClient(api.app, headers={"user-agent": user_agent})
    response = client.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303, response.text
    client.headers[CSRF_HEADER] = client.cookies[CSRF_COOKIE]
    return client


def _copy(api: TestClient, client: TestClient) -> TestClient:
    """A third party holding a copy of ``client``'s cookies (the wall PC, a proxy log)."""
    thief = TestClient(api.app, cookies=dict(client.cookies))
    thief.headers[CSRF_HEADER] = client.cookies[CSRF_COOKIE]
    return thief


def _cookie_data(client: TestClient) -> dict[str, Any]:
    """The decoded (signed, not encrypted) session cookie of ``client``."""
    data: dict[str, Any] = json.loads(b64decode(client.cookies["cw_session"].split(".")[0]))
    return data


def _key(client: TestClient) -> str:
    """The login-session row key of ``client``'s cookie."""
    return login_session_key(_cookie_data(client)["sid"])


def _row(bureau: Bureau, key: str) -> LoginSession:
    with bureau.factory() as session:
        row = session.get(LoginSession, key)
        assert row is not None
        return row


def _audit(bureau: Bureau, action: AuditAction) -> list[AuditEntry]:
    with bureau.factory() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action.value)))


def test_a_copied_cookie_is_refused_after_logout_and_the_other_session_goes_on(
    api: TestClient, bureau: Bureau
) -> None:
    laptop = _client(api, "officer1", "laptop")
    wall_pc = _client(api, "officer1", "wall-pc")
    copied = _copy(api, laptop)
    laptop_key = _key(laptop)
    assert copied.get("/api/me").json()["username"] == "officer1", "a copy works while the session is open"
    assert laptop.post("/logout", follow_redirects=False).status_code == 303
    assert "cw_session" not in laptop.cookies, "the browser's cookie is cleared"
    assert copied.get("/api/me").status_code == 401
    page = copied.get("/incidents", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert copied.post("/api/hazards", json={"school_code": "S11", "title": "x"}).status_code == 401
    assert wall_pc.get("/api/me").json()["username"] == "officer1", "the duty room's wall PC stays logged in"
    row = _row(bureau, laptop_key)
    assert row.ended_at is not None and row.end_reason is SessionEndReason.LOGOUT
    assert row.user_agent == "laptop" and row.ip == "testclient"
    assert _row(bureau, _key(wall_pc)).ended_at is None
    [logout] = _audit(bureau, AuditAction.LOGOUT)
    assert logout.actor_name == "officer1" and logout.detail == {"session": laptop_key[:12]}
    logins = {entry.detail["session"] for entry in _audit(bureau, AuditAction.LOGIN)}
    assert logins == {laptop_key[:12], _key(wall_pc)[:12]}
    # Logging out again with the copy ends nothing more and records nothing.
    assert copied.post("/logout", follow_redirects=False).status_code == 303
    assert len(_audit(bureau, AuditAction.LOGOUT)) == 1
    assert _row(bureau, laptop_key).ended_at == row.ended_at


def test_the_cookie_holds_a_long_random_token_and_the_table_only_its_hash(api: TestClient, bureau: Bureau) -> None:
    first, second = _client(api, "officer1"), _client(api, "officer1")
    token = _cookie_data(first)["sid"]
    assert isinstance(token, str) and len(token) >= 43 and token != _cookie_data(second)["sid"]  # 256 bits
    with bureau.factory() as session:
        keys = set(session.scalars(select(LoginSession.id)))
    assert keys == {_key(first), _key(second)} and token not in keys


@pytest.mark.timeout(60)
def test_the_feed_of_a_logged_out_session_closes_and_the_other_ones_stays_open(api: TestClient) -> None:
    app = api.app
    assert isinstance(app, FastAPI)
    app.state.feed.heartbeat_s = 0.1
    login(api, "officer1")
    laptop = dict(api.cookies), api.headers[CSRF_HEADER]
    login(api, "officer1")
    wall_pc = dict(api.cookies)

    def use(cookies: dict[str, str]) -> None:
        api.cookies.clear()
        for name, value in cookies.items():
            api.cookies.set(name, value)

    use(laptop[0])
    with api.websocket_connect("/ws/feed", headers=ORIGIN) as mine:
        assert mine.receive_json()["type"] == "hello"
        use(wall_pc)
        with api.websocket_connect("/ws/feed", headers=ORIGIN) as theirs:
            assert theirs.receive_json()["type"] == "hello"
            use(laptop[0])
            api.headers[CSRF_HEADER] = laptop[1]
            assert api.post("/logout", follow_redirects=False).status_code == 303
            logged_out_at = utcnow()
            with pytest.raises(WebSocketDisconnect) as ended:
                while True:
                    mine.receive_json()
                    mine.send_json({"type": "pong"})
            assert ended.value.code == 4401
            # Two pings sent after the logout: the second one followed a session check made after it.
            later = 0
            while later < 2:
                message = theirs.receive_json()
                theirs.send_json({"type": "pong"})
                if message["type"] == "ping" and datetime.fromisoformat(message["time"]) > logged_out_at:
                    later += 1
    use(laptop[0])
    with pytest.raises(WebSocketDisconnect) as refused, api.websocket_connect("/ws/feed", headers=ORIGIN):
        pass
    assert refused.value.code == 1008, "the logged-out cookie cannot open the feed again"


def test_an_administrator_lists_a_users_sessions_and_ends_one(api: TestClient, bureau: Bureau) -> None:
    laptop = _client(api, "officer1", "laptop")
    wall_pc = _client(api, "officer1", "wall-pc")
    login(api, "admin")
    listed = api.get("/api/users/officer1/sessions")
    assert listed.status_code == 200, listed.text
    sessions = listed.json()
    assert [s["user_agent"] for s in sessions] == ["wall-pc", "laptop"], "newest first"
    assert all(not s["current"] and s["ip"] == "testclient" and len(s["handle"]) == 12 for s in sessions)
    for client in (laptop, wall_pc):  # neither the cookie's token nor the row's key is shown
        assert _cookie_data(client)["sid"] not in listed.text and _key(client) not in listed.text
    assert [s["current"] for s in api.get("/api/users/admin/sessions").json()] == [True]

    wall_handle = sessions[0]["handle"]
    assert wall_handle == _key(wall_pc)[:12]
    assert api.delete(f"/api/users/officer1/sessions/{wall_handle}").status_code == 204
    assert wall_pc.get("/api/me").status_code == 401
    assert laptop.get("/api/me").status_code == 200, "the user's other session goes on"
    assert [s["user_agent"] for s in api.get("/api/users/officer1/sessions").json()] == ["laptop"]
    row = _row(bureau, _key(wall_pc))
    assert row.ended_at is not None and row.end_reason is SessionEndReason.ADMINISTRATOR
    [entry] = [e for e in _audit(bureau, AuditAction.CONFIG_CHANGE) if e.detail.get("op") == "end_session"]
    assert (entry.actor_name, entry.target, entry.detail["handle"]) == ("admin", "user officer1", wall_handle)
    # An ended, unknown or malformed handle, another user's handle, or an unknown user: 404, nothing ended.
    laptop_handle = _key(laptop)[:12]
    for path in (
        f"officer1/sessions/{wall_handle}",
        "officer1/sessions/000000000000",
        "officer1/sessions/%25",
        f"officer1/sessions/{laptop_handle[:6]}",
        f"officer2/sessions/{laptop_handle}",
        f"nobody/sessions/{laptop_handle}",
    ):
        assert api.delete(f"/api/users/{path}").status_code == 404, path
    assert laptop.get("/api/me").status_code == 200
    assert len([e for e in _audit(bureau, AuditAction.CONFIG_CHANGE) if e.detail.get("op") == "end_session"]) == 1
    # Only bureau administrators.
    for name in ("officer1", "auditor", "leader1"):
        login(api, name)
        assert api.get("/api/users/officer1/sessions").status_code == 403, name
        assert api.delete(f"/api/users/officer1/sessions/{laptop_handle}").status_code == 403, name
    assert laptop.get("/api/me").status_code == 200


def test_sessions_ended_by_a_password_change_are_no_longer_listed(api: TestClient) -> None:
    officer = _client(api, "officer1")
    login(api, "admin")
    assert len(api.get("/api/users/officer1/sessions").json()) == 1
    assert api.post("/api/users/officer1/password", json={}).status_code == 200
    assert officer.get("/api/me").status_code == 401
    assert api.get("/api/users/officer1/sessions").json() == []
    # An administrator setting their own password keeps this session (and it stays listed), not the others.
    other = _client(api, "admin")
    assert api.post("/api/users/admin/password", json={"password": "a-long-enough-pw"}).status_code == 200
    assert api.get("/api/me").status_code == 200 and other.get("/api/me").status_code == 401
    assert [s["current"] for s in api.get("/api/users/admin/sessions").json()] == [True]


def _forged(settings: Settings, data: dict[str, Any]) -> dict[str, str]:
    """A session cookie signed with the app's own key (as if the key leaked): only a row makes it a session."""
    signer = itsdangerous.TimestampSigner(session_secret(settings))
    value = signer.sign(b64encode(json.dumps(data).encode())).decode()
    return {"cw_session": value, CSRF_COOKIE: str(data.get("csrf", ""))}


def test_an_unknown_or_forged_session_id_is_refused(api: TestClient, bureau: Bureau, settings: Settings) -> None:
    officer = _client(api, "officer1")
    real = _cookie_data(officer)
    assert TestClient(api.app, cookies=_forged(settings, real)).get("/api/me").status_code == 200, "the control"
    leader = _cookie_data(_client(api, "leader1"))
    for what, data in (
        ("an unknown id", real | {"sid": "x" * 43}),
        ("the row's key instead of the token", real | {"sid": _key(officer)}),
        ("no id (a cookie from before server-side sessions)", {k: v for k, v in real.items() if k != "sid"}),
        ("a number", real | {"sid": 1}),
        ("an overlong id", real | {"sid": real["sid"] * 10}),
        ("another user's session", real | {"sid": leader["sid"]}),
        ("another user id on this session", real | {"uid": bureau.users["leader1"]}),
        ("an older session version", real | {"ver": real["ver"] - 1}),
    ):
        forged = TestClient(api.app, cookies=_forged(settings, data))
        assert forged.get("/api/me").status_code == 401, what
        with pytest.raises(WebSocketDisconnect) as refused, forged.websocket_connect("/ws/feed", headers=ORIGIN):
            pass
        assert refused.value.code == 1008, what
    assert officer.get("/api/me").status_code == 200


def test_a_session_expires_with_the_cookies_max_age(api: TestClient, bureau: Bureau, settings: Settings) -> None:
    officer = _client(api, "officer1")
    row = _row(bureau, _key(officer))
    max_age = timedelta(seconds=settings.web.session_max_age_s)
    assert row.expires_at - row.created_at == max_age
    # Idle for the whole max age: refused, and the row says why.
    with session_scope(bureau.factory) as session:
        session.execute(
            update(LoginSession)
            .where(LoginSession.id == row.id)
            .values(created_at=utcnow() - max_age, last_seen_at=utcnow() - max_age, expires_at=utcnow())
        )
    assert officer.get("/api/me").status_code == 401
    ended = _row(bureau, row.id)
    assert ended.ended_at is not None and ended.end_reason is SessionEndReason.EXPIRED
    login(api, "admin")
    assert api.get("/api/users/officer1/sessions").json() == []


@pytest.fixture
def login_session_sql(migrated_engine: Engine) -> Iterator[list[str]]:
    """The SQL statements run on ``login_sessions`` while the test runs."""
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "login_sessions" in statement:
            statements.append(" ".join(statement.split()))

    event.listen(migrated_engine, "before_cursor_execute", seen)
    yield statements
    event.remove(migrated_engine, "before_cursor_execute", seen)


def test_one_primary_key_lookup_a_request_and_last_seen_written_at_most_once_a_minute(
    api: TestClient, bureau: Bureau, login_session_sql: list[str]
) -> None:
    officer = _client(api, "officer1")
    key = _key(officer)
    login_session_sql.clear()
    for _ in range(3):
        assert officer.get("/api/me").status_code == 200
    assert len(login_session_sql) == 3, login_session_sql
    assert all(s.startswith("SELECT") and "WHERE login_sessions.id =" in s for s in login_session_sql)
    seen_at = _row(bureau, key).last_seen_at
    # A minute later, the next request writes it once; the one after does not.
    with session_scope(bureau.factory) as session:
        session.execute(
            update(LoginSession)
            .where(LoginSession.id == key)
            .values(last_seen_at=seen_at - timedelta(seconds=LAST_SEEN_EVERY_S))
        )
    login_session_sql.clear()
    assert officer.get("/api/me").status_code == 200
    assert [s.split()[0] for s in login_session_sql] == ["SELECT", "UPDATE"], login_session_sql
    touched = _row(bureau, key).last_seen_at
    assert touched >= seen_at
    login_session_sql.clear()
    assert officer.get("/api/me").status_code == 200
    assert [s.split()[0] for s in login_session_sql] == ["SELECT"], login_session_sql
    assert _row(bureau, key).last_seen_at == touched


def test_the_live_guard_judges_every_view_by_its_login_session_in_one_query(
    api: TestClient, bureau: Bureau, login_session_sql: list[str]
) -> None:
    laptop, wall_pc, leader = _client(api, "officer1"), _client(api, "officer1"), _client(api, "leader1")
    manager = LiveManager(LiveConfig(), bureau.factory)

    def viewer(client: TestClient, name: str) -> Viewer:
        return Viewer(bureau.users[name], name, "testclient", session_version=1, login_session_id=_key(client))

    views = {viewer(laptop, "officer1"), viewer(wall_pc, "officer1"), viewer(leader, "leader1")}
    login_session_sql.clear()
    assert manager._still_valid(views) == views
    assert len(login_session_sql) == 1, "one query for every view"
    assert laptop.post("/logout", follow_redirects=False).status_code == 303
    assert {v.login_session_id for v in manager._still_valid(views)} == {_key(wall_pc), _key(leader)}
    unknown = Viewer(bureau.users["leader1"], "leader1", "testclient", 1, login_session_id="0" * 64)
    stolen = Viewer(bureau.users["leader1"], "leader1", "testclient", 1, login_session_id=_key(wall_pc))
    assert manager._still_valid({unknown, stolen}) == set(), "the id must be the viewer's own session"
    with session_scope(bureau.factory) as session:
        session.execute(update(User).where(User.username == "leader1").values(active=False))
    assert {v.login_session_id for v in manager._still_valid(views)} == {_key(wall_pc)}


def test_migration_0008_goes_up_and_down(empty_engine: Engine) -> None:
    upgrade(empty_engine, "0007")
    assert "login_sessions" not in inspect(empty_engine).get_table_names()
    upgrade(empty_engine, "0008")
    inspector = inspect(empty_engine)
    columns = {c["name"] for c in inspector.get_columns("login_sessions")}
    assert columns == {
        "id",
        "user_id",
        "session_version",
        "created_at",
        "last_seen_at",
        "expires_at",
        "ended_at",
        "end_reason",
        "ip",
        "user_agent",
    }
    assert inspector.get_pk_constraint("login_sessions")["constrained_columns"] == ["id"]
    indexes = {i["name"]: i["column_names"] for i in inspector.get_indexes("login_sessions")}
    assert indexes["ix_login_sessions_user_created"] == ["user_id", "created_at"]
    [fk] = inspector.get_foreign_keys("login_sessions")
    assert (fk["referred_table"], fk["options"].get("ondelete")) == ("users", "CASCADE")
    downgrade(empty_engine, "0007")
    assert current_revision(empty_engine) == "0007"
    assert "login_sessions" not in inspect(empty_engine).get_table_names()
    assert "users" in inspect(empty_engine).get_table_names()
    upgrade(empty_engine)
    assert "login_sessions" in inspect(empty_engine).get_table_names()


def test_a_login_session_ends_with_its_user(api: TestClient, bureau: Bureau) -> None:
    """The rows go with a deleted user (ON DELETE CASCADE): no orphan keeps a session id."""
    officer = _client(api, "officer2")
    key = _key(officer)
    with session_scope(bureau.factory) as session:
        user = session.get(User, bureau.users["officer2"])
        assert user is not None
        session.delete(user)
    with bureau.factory() as session:
        assert session.get(LoginSession, key) is None
    assert officer.get("/api/me").status_code == 401
