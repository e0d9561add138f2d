"""The web app: login, the schools page, the registry API, and no credential in any response."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from campuswatch.patrol_facts import StoredFleetFacts
from config import Settings
from kernel.db import make_session_factory, session_scope
from kernel.secrets import SecretBox
from registry.models import Camera, District, SceneType, School, SchoolKind
from web.app import create_app
from web.auth import create_user
from web.models import Role

PASSWORD = "correct horse"
CAMERA_SECRET = "S3cr3t!pw"


@pytest.fixture
def client(settings: Settings, migrated_engine: Engine) -> Iterator[TestClient]:
    factory = make_session_factory(migrated_engine)
    box = SecretBox.for_data_dir(settings.data_dir)
    with session_scope(factory) as session:
        create_user(session, "admin", PASSWORD, Role.ADMINISTRATOR, "值班管理员")
        for d in range(2):
            district = District(code=f"D{d}", name=f"区{d}")
            for s in range(3):
                school = School(code=f"S{d}{s}", name=f"第{s}小学", district=district, kind=SchoolKind.PRIMARY)
                for c in range(2):
                    session.add(
                        Camera(
                            code=f"C{d}{s}{c}",
                            name=f"门{c}",
                            school=school,
                            scene_type=SceneType.GATE,
                            main_url=f"rtsp://10.0.{d}.{s}:554/Streaming/Channels/10{c}",
                            username="admin",
                            password_encrypted=box.encrypt(CAMERA_SECRET),
                        )
                    )
    app = create_app(settings, engine=migrated_engine, facts=StoredFleetFacts())
    with TestClient(app) as test_client:
        yield test_client


def _login(client: TestClient) -> None:
    response = client.post("/login", data={"username": "admin", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303


def test_pages_need_a_login(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert client.get("/api/schools").status_code == 401
    assert client.get("/healthz").json() == {"status": "ok"}


def test_wrong_password_is_refused(client: TestClient) -> None:
    response = client.post("/login", data={"username": "admin", "password": "nope"})
    assert response.status_code == 401
    assert "wrong user name or password" in response.text
    assert client.get("/api/schools").status_code == 401


def test_schools_page_lists_schools_and_cameras(client: TestClient) -> None:
    _login(client)
    page = client.get("/")
    assert page.status_code == 200
    assert "6 schools · 12 cameras" in page.text
    for code in ("S00", "S12", "C000", "C121"):
        assert code in page.text
    assert page.headers["x-content-type-options"] == "nosniff"
    only_d1 = client.get("/", params={"district": "D1"}).text
    assert "S10" in only_d1
    assert 'data-school="S00"' not in only_d1


def test_registry_api(client: TestClient) -> None:
    _login(client)
    districts = client.get("/api/districts").json()
    assert [(d["code"], d["school_count"]) for d in districts] == [("D0", 3), ("D1", 3)]
    schools = client.get("/api/schools", params={"district": "D1", "limit": 2}).json()
    assert schools["total"] == 3
    assert [s["code"] for s in schools["items"]] == ["S10", "S11"]
    assert schools["items"][0]["camera_count"] == 2
    cameras = client.get("/api/cameras", params={"school": "S11"}).json()
    assert [c["code"] for c in cameras["items"]] == ["C110", "C111"]
    assert cameras["items"][0]["has_credentials"] is True
    assert client.get("/api/cameras/C110").json()["school_code"] == "S11"
    assert client.get("/api/cameras/NOPE").status_code == 404
    assert client.get("/api/schools", params={"limit": 0}).status_code == 422


def test_no_credential_in_any_response(client: TestClient) -> None:
    _login(client)
    bodies = [client.get(path).text for path in ("/", "/api/cameras", "/api/cameras/C000", "/openapi.json")]
    for body in bodies:
        assert CAMERA_SECRET not in body
        assert "password_encrypted" not in body
