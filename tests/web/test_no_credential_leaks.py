"""No camera credential in any response or log line: cameras with a user name and password in their URLs and an
encrypted password are stored, then every GET route of the app (and some error answers) is read."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from config import Settings
from ingest.models import HealthReason, HealthState
from ingest.tables import CameraHealth, CameraHealthTransition
from kernel.db import session_scope
from kernel.secrets import SecretBox
from registry.models import Camera, SceneType
from tests.bureau import START, Bureau, login
from tests.web.test_scope_matrix import app_routes

USER, PASSWORD = "camadmin", "Zq7-leak-canary-pw"
URL = f"rtsp://{USER}:{PASSWORD}@10.9.9.9:554/Streaming/Channels/101"
SUB_URL = f"rtsp://{USER}:{PASSWORD}@10.9.9.9:554/Streaming/Channels/102?token={PASSWORD}"
CODE = "S11-SECRET"
VALUES = {"code": CODE, "camera_code": CODE, "username": "admin", "lang": "en", "day": "2026-11-30"}


def _store_cameras(bureau: Bureau, settings: Settings) -> None:
    box = SecretBox.for_data_dir(settings.data_dir)
    with session_scope(bureau.factory) as session:
        camera = Camera(
            code=CODE,
            name="secret gate",
            school_id=bureau.schools["S11"],
            scene_type=SceneType.GATE,
            main_url=URL,
            sub_url=SUB_URL,
            username=USER,
            password_encrypted=box.encrypt(PASSWORD),
        )
        session.add(camera)
        session.flush()
        # What a careless worker might have stored: the web layer redacts it on the way out as well.
        detail = f"connect {URL} failed"
        session.add(
            CameraHealth(
                camera_id=camera.id,
                state=HealthState.OFFLINE,
                reason=next(iter(HealthReason)),
                detail=detail,
                since=START,
                updated_at=START,
            )
        )
        session.add(
            CameraHealthTransition(
                camera_id=camera.id,
                at=START - timedelta(minutes=1),
                state=HealthState.OFFLINE,
                reason=next(iter(HealthReason)),
                detail=detail,
            )
        )


def _leaks(text: str) -> list[str]:
    found = []
    if PASSWORD in text:
        found.append("the password")
    if re.search(rf"{USER}:[^@\s\"]*@", text):
        found.append("user:password@")
    if "password_encrypted" in text or "gAAAAA" in text:  # the field, or a Fernet token
        found.append("the encrypted password")
    return found


@pytest.mark.parametrize("who", ["admin", "school11", None])
def test_no_response_and_no_log_line_shows_a_camera_credential(
    api: TestClient, bureau: Bureau, settings: Settings, caplog: pytest.LogCaptureFixture, who: str | None
) -> None:
    _store_cameras(bureau, settings)
    caplog.set_level(logging.DEBUG)
    if who is not None:
        login(api, who)
    assert isinstance(api.app, FastAPI)
    read: list[str] = []
    problems: list[str] = []
    for method, path, _ in app_routes(api.app):
        if method != "GET":
            continue
        url = path
        for name in re.findall(r"{(\w+)}", path):
            url = url.replace("{" + name + "}", VALUES.get(name, "1"))
        for candidate in (url, url + "?limit=1000", path.replace("{", "").replace("}", "")):
            response = api.get(candidate, follow_redirects=False)
            read.append(f"{candidate} {response.status_code}")
            problems += [
                f"GET {candidate} ({response.status_code}) shows {leak}" for leak in _leaks(response.text)
            ]
            problems += [
                f"GET {candidate}: header {k} shows {leak}"
                for k, v in response.headers.items()
                for leak in _leaks(v)
            ]
    # Errors that name the camera or echo the request.
    for method, url, body in [
        ("POST", "/api/cameras", {"code": "S11-X", "main_url": URL, "school_code": "S11", "scene_type": "nope"}),
        ("PATCH", f"/api/cameras/{CODE}", {"main_url": URL, "scene_type": "nope"}),
        ("PATCH", f"/api/cameras/{CODE}", {"password": PASSWORD, "bogus": 1}),
        ("PUT", f"/api/cameras/{CODE}/rules", {"password": PASSWORD}),
        ("POST", "/api/hazards", {"school_code": "S11", "camera_code": URL, "title": PASSWORD}),
    ]:
        response = api.request(method, url, json=body)
        read.append(f"{method} {url} {response.status_code}")
        problems += [f"{method} {url} ({response.status_code}) shows {leak}" for leak in _leaks(response.text)]
    for record in caplog.records:
        problems += [f"log {record.name}: {leak}" for leak in _leaks(record.getMessage())]
    assert not problems, "\n".join(problems)
    if who == "admin":
        camera = api.get(f"/api/cameras/{CODE}").json()
        assert camera["has_credentials"] is True and "***" in camera["main_url"], camera
        health = api.get(f"/api/cameras/{CODE}/health").json()
        assert "10.9.9.9" in health["detail"] and "***" in health["detail"]
    assert len(read) > 150
