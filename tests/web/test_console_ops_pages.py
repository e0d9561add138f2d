"""The duty console's operational pages (video wall, events feed, live view) as the server sends them: a login
first, the roles each page is for, the live view only of cameras in the user's scope, and both languages."""

from __future__ import annotations

import json
import re

import pytest
from fastapi.testclient import TestClient

from tests.bureau import PASSWORD, login
from web.i18n import catalogue

PAGES = ("/wall", "/events", "/live/S11-GATE")


def boot(html: str) -> dict[str, object]:
    """The page's boot JSON (what its scripts read)."""
    found = re.search(r'<script type="application/json" id="cw-boot">(.*?)</script>', html, re.S)
    assert found, "the page embeds no boot JSON"
    data: dict[str, object] = json.loads(found.group(1))
    return data


def test_pages_need_a_login(api: TestClient) -> None:
    for path in PAGES:
        response = api.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == "/login"


def test_the_duty_room_lands_on_the_wall_after_login(api: TestClient) -> None:
    landings = {"officer1": "/wall", "leader1": "/wall", "officer_d1": "/wall", "admin": "/", "school11": "/"}
    for username, landing in landings.items():
        api.cookies.clear()
        response = api.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == landing, username


def test_wall_page_for_a_duty_officer(api: TestClient) -> None:
    login(api, "officer1")
    response = api.get("/wall?wall=3")
    assert response.status_code == 200
    html = response.text
    assert '<script type="module" src="/static/wall.js"></script>' in html
    assert 'href="/static/wall.css"' in html
    assert 'data-testid="wall"' in html and 'id="live-dialog"' in html
    assert 'class="active" aria-current="page">视频墙</a>' in html  # zh-CN by default, the wall marked active
    data = boot(html)
    assert data["wall_id"] == 3 and data["can_act"] is True
    assert data["lang"] == "zh-CN"
    messages = data["messages"]
    assert isinstance(messages, dict) and messages["wall.acknowledge"] == "确认报警"


def test_wall_page_is_read_only_for_roles_that_do_not_acknowledge(api: TestClient) -> None:
    for username, can_act in (("auditor", False), ("inspector", False), ("leader1", True), ("officer_d1", True)):
        login(api, username)
        response = api.get("/wall")
        assert response.status_code == 200, username
        data = boot(response.text)
        assert data["can_act"] is can_act and data["wall_id"] is None, username


def test_wall_page_refuses_a_school_account(api: TestClient) -> None:
    login(api, "school11")
    response = api.get("/wall")
    assert response.status_code == 403
    assert 'data-testid="forbidden"' in response.text
    assert "/static/wall.js" not in response.text


def test_wall_page_rejects_a_bad_wall_id(api: TestClient) -> None:
    login(api, "officer1")
    assert api.get("/wall?wall=abc").status_code == 422
    assert api.get("/wall?wall=0").status_code == 422


def test_events_page_offers_the_actions_of_the_role(api: TestClient) -> None:
    offers = {
        "officer1": {"act": True, "note": True},
        "school11": {"act": False, "note": True},
        "auditor": {"act": False, "note": False},
        "inspector": {"act": False, "note": False},
    }
    for username, can in offers.items():
        login(api, username)
        response = api.get("/events")
        assert response.status_code == 200
        assert '<script type="module" src="/static/events.js"></script>' in response.text
        assert 'data-testid="filter-status"' in response.text
        assert boot(response.text)["can"] == can, username


def test_live_page_of_a_camera_in_scope(api: TestClient) -> None:
    login(api, "school11")
    response = api.get("/live/S11-GATE")
    assert response.status_code == 200
    assert '<script type="module" src="/static/live_page.js"></script>' in response.text
    assert boot(response.text)["camera"] == {
        "code": "S11-GATE",
        "name": "S11 gate",
        "school_code": "S11",
        "school_name": "第11中学",
    }
    assert "10.1.1.1" not in response.text  # its address (rtsp://10.1.1.1:554/gate) stays server-side


def test_live_page_of_a_camera_outside_the_scope_is_not_found(api: TestClient) -> None:
    login(api, "school11")
    for code in ("S21-GATE", "S12-YARD", "NOPE"):
        response = api.get(f"/live/{code}")
        assert response.status_code == 404, code
        assert 'data-testid="not-found"' in response.text
        assert "live_page.js" not in response.text


def test_live_page_for_a_district_officer(api: TestClient) -> None:
    login(api, "officer_d1")
    assert api.get("/live/S13-DORM").status_code == 200
    assert api.get("/live/S21-DORM").status_code == 404


def test_live_page_refuses_the_auditor(api: TestClient) -> None:
    login(api, "auditor")
    response = api.get("/live/S11-GATE")
    assert response.status_code == 403
    assert "live_page.js" not in response.text


def test_pages_switch_to_english(api: TestClient) -> None:
    login(api, "officer1")
    assert 'href="/lang/en?next=/wall"' in api.get("/wall").text
    switched = api.get("/lang/en", params={"next": "/wall"}, follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/wall"
    kept = api.get("/lang/en", params={"next": "/wall?wall=2"}, follow_redirects=False)
    assert kept.headers["location"] == "/wall?wall=2"
    for elsewhere in ("https://evil.example/", "//evil.example/x", "wall", "/\\evil.example"):
        away = api.get("/lang/en", params={"next": elsewhere}, follow_redirects=False)
        assert away.headers["location"] == "/", elsewhere
    wall = api.get("/wall")
    assert wall.status_code == 200 and '<html lang="en">' in wall.text
    assert "<title>Video wall ·" in wall.text
    messages = boot(wall.text)["messages"]
    assert isinstance(messages, dict) and messages["wall.acknowledge"] == "Acknowledge"
    events = api.get("/events")
    assert "<h1>Live events</h1>" in events.text and ">line crossing</option>" in events.text


@pytest.mark.parametrize("name", ["wall.js", "events.js", "ops.js", "live_page.js", "wall.css"])
def test_page_scripts_and_styles_are_served(api: TestClient, name: str) -> None:
    response = api.get(f"/static/{name}")
    assert response.status_code == 200
    assert (
        "cdn" not in response.text.lower() and "http://" not in response.text and "https://" not in response.text
    )


def test_operational_messages_exist_in_both_languages() -> None:
    messages = catalogue()
    for prefix in ("wall.", "events."):
        zh = {k for k in messages["zh-CN"] if k.startswith(prefix)}
        en = {k for k in messages["en"] if k.startswith(prefix)}
        assert zh and zh == en
    assert messages["en"]["events.type.line_crossing"] == "line crossing"
