"""Login, session and CSRF hardening, cookie flags and security headers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from argon2 import extract_parameters
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update

from campuswatch.patrol_facts import StoredFleetFacts
from config import Settings
from ingest.thumbnails import MemoryThumbnailStore
from kernel.bus import InMemoryBus
from kernel.clock import utcnow
from kernel.db import session_scope
from tests.bureau import PASSWORD, Bureau, ManualClock, login
from web import auth
from web.app import create_app
from web.audit import AuditAction, AuditEntry, record_audit
from web.csrf import CSRF_COOKIE, CSRF_HEADER
from web.models import User


def _audit(bureau: Bureau, action: AuditAction) -> list[AuditEntry]:
    with bureau.factory() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action.value)))


def _try(client: TestClient, username: str, password: str) -> int:
    response = client.post("/login", data={"username": username, "password": password}, follow_redirects=False)
    return response.status_code


def test_five_failures_for_a_name_block_it_with_429_and_retry_after(api: TestClient, bureau: Bureau) -> None:
    for _ in range(5):
        assert _try(api, "officer1", "wrong") == 401
    response = api.post("/login", data={"username": "officer1", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 429, "even the right password is refused while blocked"
    assert response.headers["Retry-After"] == "900"
    assert "cw_session" not in response.headers.get("set-cookie", "")
    failed = _audit(bureau, AuditAction.LOGIN_FAILED)
    assert [e.actor_name for e in failed] == ["officer1"] * 5 and all(e.actor_id is None for e in failed)
    assert all(PASSWORD not in str(e.detail) and "wrong" not in str(e.detail) for e in failed)
    assert [e.actor_name for e in _audit(bureau, AuditAction.LOGIN_BLOCKED)] == ["officer1"]


def test_five_failures_from_an_address_block_every_name_from_it(api: TestClient) -> None:
    for n in range(5):
        assert _try(api, f"guess{n}", "wrong") == 401
    assert _try(api, "officer2", PASSWORD) == 429


def test_failures_older_than_the_window_do_not_count(api: TestClient, bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        for _ in range(5):
            record_audit(
                session,
                AuditAction.LOGIN_FAILED,
                actor_name="officer1",
                ip="testclient",
                at=utcnow() - timedelta(seconds=901),
            )
    assert _try(api, "officer1", PASSWORD) == 303


def test_a_good_login_is_audited_with_the_user_and_the_address(api: TestClient, bureau: Bureau) -> None:
    login(api, "leader1")
    [entry] = _audit(bureau, AuditAction.LOGIN)
    assert (entry.actor_id, entry.actor_name, entry.ip) == (bureau.users["leader1"], "leader1", "testclient")
    assert _try(api, "nobody", "x") == 401
    assert [e.actor_name for e in _audit(bureau, AuditAction.LOGIN_FAILED)] == ["nobody"]


def test_an_unknown_or_disabled_name_costs_a_verification_and_answers_like_a_wrong_password(
    api: TestClient, bureau: Bureau, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []
    real_verify = auth.verify_password

    def counting_verify(password_hash: str, password: str) -> bool:
        verified.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting_verify)
    with session_scope(bureau.factory) as session:
        session.execute(update(User).where(User.username == "officer2").values(active=False))
        real_hash = session.scalars(select(User.password_hash).where(User.username == "officer1")).one()

    def attempt(username: str) -> tuple[int, str, dict[str, str], list[str]]:
        verified.clear()
        response = api.post("/login", data={"username": username, "password": "wrong"}, follow_redirects=False)
        # The name is echoed in the form, and the body's length follows it: both set aside.
        body = response.text.replace(f'value="{username}"', 'value="NAME"')
        headers = {k: v for k, v in response.headers.items() if k != "content-length"}
        return response.status_code, body, headers, list(verified)

    wrong = attempt("officer1")
    assert wrong[0] == 401 and wrong[3] == [real_hash]
    dummies: list[str] = []
    for name in ("nobody", "officer2"):  # unknown; known but disabled (even with the right password below)
        status, body, headers, hashes = attempt(name)
        assert (status, body, headers) == wrong[:3], f"{name}: answered unlike a wrong password"
        assert len(hashes) == 1 and hashes[0] != real_hash, f"{name}: no argon2 verification"
        assert extract_parameters(hashes[0]) == extract_parameters(real_hash)
        dummies += hashes
    assert dummies[0] == dummies[1], "one dummy hash, made once"
    verified.clear()
    assert _try(api, "officer2", PASSWORD) == 401 and verified == [dummies[0]]


def test_login_starts_a_new_session_with_a_new_csrf_token(api: TestClient) -> None:
    login(api, "officer1")
    first_session, first_token = api.cookies["cw_session"], api.cookies[CSRF_COOKIE]
    # Someone who planted or kept the first cookies gains nothing from the next login.
    planted = {"cw_session": first_session, CSRF_COOKIE: first_token}
    login(api, "officer2")
    assert api.cookies["cw_session"] != first_session and api.cookies[CSRF_COOKIE] != first_token
    assert api.get("/api/me").json()["username"] == "officer2"
    # The old token does not pass with the new session.
    api.headers[CSRF_HEADER] = first_token
    assert api.post("/api/hazards", json={"school_code": "S11", "title": "x"}).status_code == 403
    fresh = TestClient(api.app)
    planted_header = "; ".join(f"{k}={v}" for k, v in planted.items())
    response = fresh.post(
        "/login",
        data={"username": "officer1", "password": PASSWORD},
        headers={"cookie": planted_header},
        follow_redirects=False,
    )
    assert response.status_code == 303
    issued = {
        h.split("=", 1)[0]: h.split("=", 1)[1].split(";")[0] for h in response.headers.get_list("set-cookie")
    }
    assert issued["cw_session"] != first_session and issued[CSRF_COOKIE] != first_token


@pytest.mark.parametrize("change", ["session_version", "active"])
def test_a_session_ends_when_the_version_is_bumped_or_the_user_disabled(
    api: TestClient, bureau: Bureau, change: str
) -> None:
    login(api, "officer1")
    assert api.get("/api/me").status_code == 200
    values = {"session_version": User.session_version + 1} if change == "session_version" else {"active": False}
    with session_scope(bureau.factory) as session:
        session.execute(update(User).where(User.username == "officer1").values(**values))
    assert api.get("/api/me").status_code == 401
    page = api.get("/incidents", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login"
    assert api.post("/api/hazards", json={"school_code": "S11", "title": "x"}).status_code == 401


def test_unsafe_requests_need_the_csrf_header_and_login_is_exempt(api: TestClient) -> None:
    login(api, "officer1")  # login itself sends no token
    token = api.headers.pop(CSRF_HEADER)
    body = {"school_code": "S11", "title": "broken fence"}
    missing = api.post("/api/hazards", json=body)
    assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["detail"]
    assert api.post("/api/hazards", json=body, headers={CSRF_HEADER: "forged"}).status_code == 403
    assert api.post("/logout", follow_redirects=False).status_code == 403, "logging a user out is a write too"
    assert api.post("/api/hazards", json=body, headers={CSRF_HEADER: token}).status_code == 201
    assert api.get("/api/hazards").status_code == 200, "reads need no token"


def _set_cookies(response: object) -> dict[str, str]:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    return {h.split("=", 1)[0]: h.lower() for h in headers}


def test_cookie_flags(api: TestClient) -> None:
    response = api.post("/login", data={"username": "officer1", "password": PASSWORD}, follow_redirects=False)
    cookies = _set_cookies(response)
    assert "httponly" in cookies["cw_session"] and "samesite=lax" in cookies["cw_session"]
    assert "secure" not in cookies["cw_session"], "plain HTTP unless web.secure_cookies"
    # The CSRF cookie is read by the page's script: not HttpOnly, but strict.
    assert "httponly" not in cookies[CSRF_COOKIE] and "samesite=strict" in cookies[CSRF_COOKIE]
    assert "strict-transport-security" not in response.headers


@pytest.fixture
def secure_api(
    settings: Settings, migrated_engine: Engine, bureau: Bureau, clock: ManualClock
) -> Iterator[TestClient]:
    """The app with ``web.secure_cookies`` (behind HTTPS)."""
    secure = settings.model_copy(update={"web": settings.web.model_copy(update={"secure_cookies": True})})
    app = create_app(
        secure,
        engine=migrated_engine,
        facts=StoredFleetFacts(),
        bus=InMemoryBus(),
        clock=clock,
        thumbnails=MemoryThumbnailStore(),
    )
    with TestClient(app, base_url="https://testserver", raise_server_exceptions=False) as client:
        yield client


def test_secure_cookies_and_hsts_behind_https(secure_api: TestClient) -> None:
    response = secure_api.post(
        "/login", data={"username": "officer1", "password": PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 303
    cookies = _set_cookies(response)
    assert "; secure" in cookies["cw_session"] and "; secure" in cookies[CSRF_COOKIE]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert secure_api.get("/api/me").headers["Strict-Transport-Security"]


HEADERS = (
    "Content-Security-Policy",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Permissions-Policy",
    "Cross-Origin-Opener-Policy",
)


def _assert_headers(response: object, what: str) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    missing = [h for h in HEADERS if h not in headers]
    assert not missing, f"{what}: no {missing}"
    csp = headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and headers["X-Frame-Options"] == "DENY"


def test_security_headers_on_every_kind_of_response(api: TestClient) -> None:
    anonymous = [
        ("login page", api.get("/login")),
        ("health", api.get("/healthz")),
        ("API 401", api.get("/api/hazards")),
        ("page redirect", api.get("/incidents", follow_redirects=False)),
        ("unknown path", api.get("/no/such/thing")),
        ("static file", api.get("/static/console.css")),
        ("failed login", api.post("/login", data={"username": "x", "password": "y"})),
    ]
    for what, response in anonymous:
        _assert_headers(response, what)
    login(api, "officer1")
    token = api.headers.pop(CSRF_HEADER)
    _assert_headers(api.post("/api/hazards", json={}), "CSRF 403")
    api.headers[CSRF_HEADER] = token
    for what, response in [
        ("API 200", api.get("/api/hazards")),
        ("API 404", api.get("/api/hazards/999999")),
        ("API 422", api.post("/api/hazards", json={"title": 1})),
        ("API 403", api.post("/api/walls", json={})),
        ("page", api.get("/incidents")),
    ]:
        _assert_headers(response, what)


def test_a_server_error_carries_the_headers_and_tells_nothing(secure_api: TestClient) -> None:
    def boom() -> None:
        raise RuntimeError("rtsp://admin:hunter2@10.0.0.1/secret went wrong")

    secure_api.app.add_api_route("/api/boom-test", boom)  # type: ignore[attr-defined]
    response = secure_api.get("/api/boom-test")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert "hunter2" not in response.text
    _assert_headers(response, "500")
    assert response.headers["Strict-Transport-Security"]
