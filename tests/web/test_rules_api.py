"""Rules API: a camera's zones, lines and rules, read in scope, written by administrators into the rules file."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from config import Settings, load_settings
from config.rules_file import read_rules_file, rules_file_path
from kernel.db import session_scope
from tests.bureau import Bureau, login
from web.audit import AuditAction, AuditEntry

YARD = {"name": "yard", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]}
WALL = {"name": "wall", "a": [0.5, 0.3], "b": [0.5, 1.0]}
RULES = {
    "zones": [YARD],
    "lines": [WALL],
    "rules": [
        {"type": "intrusion", "name": "after hours", "zone": "yard"},
        {"type": "line_crossing", "name": "climbing", "line": "wall"},
        {
            "type": "loitering",
            "name": "loitering",
            "zone": "yard",
            "dwell_s": 60,
            "when": [{"days": ["mon", "tue"], "start": "22:00", "end": "06:00"}],
        },
    ],
}
CONFIGURED = {"rules": [{"type": "crowding", "name": "crowd", "zone": "yard"}], "zones": [YARD]}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """S12-GATE has rules in the configuration file."""
    return load_settings(None, data_dir=tmp_path / "data", analytics={"cameras": {"S12-GATE": CONFIGURED}})


def test_reads_follow_the_scope(api: TestClient) -> None:
    login(api, "school11")
    none = api.get("/api/cameras/S11-GATE/rules").json()
    assert (none["source"], none["rules"], none["zones"]) == ("none", [], [])
    assert api.get("/api/cameras/S12-GATE/rules").status_code == 404
    login(api, "officer_d1")
    configured = api.get("/api/cameras/S12-GATE/rules").json()
    assert (configured["source"], configured["rules"][0]["name"]) == ("config", "crowd")
    assert api.get("/api/cameras/S21-GATE/rules").status_code == 404
    assert api.get("/api/cameras/NOPE/rules").status_code == 404


def test_administrators_write_the_rules_file(api: TestClient, bureau: Bureau, settings: Settings) -> None:
    for name in ("officer1", "leader1", "school11", "auditor"):
        login(api, name)
        assert api.put("/api/cameras/S11-GATE/rules", json=RULES).status_code == 403, name
    login(api, "admin")
    put = api.put("/api/cameras/S11-GATE/rules", json=RULES)
    assert put.status_code == 200, put.text
    body = put.json()
    assert (body["source"], [r["name"] for r in body["rules"]]) == (
        "console",
        ["after hours", "climbing", "loitering"],
    )
    assert body["rules"][0]["when"] == "campus_closed"  # the model's defaults are filled in
    off = api.put("/api/cameras/S12-GATE/rules", json={})  # switches the configured rules off
    assert off.json()["source"] == "console" and off.json()["rules"] == []

    stored = read_rules_file(rules_file_path(settings.data_dir))
    assert sorted(stored) == ["S11-GATE", "S12-GATE"]
    assert stored["S11-GATE"].rules[2].when[0].start.hour == 22  # type: ignore[union-attr]
    assert api.get("/api/cameras/S11-GATE/rules").json() == body

    back = api.delete("/api/cameras/S12-GATE/rules").json()
    assert (back["source"], back["rules"][0]["name"]) == ("config", "crowd")
    assert sorted(read_rules_file(rules_file_path(settings.data_dir))) == ["S11-GATE"]
    with session_scope(bureau.factory) as session:
        entries = session.scalars(
            select(AuditEntry).where(AuditEntry.action == AuditAction.CONFIG_CHANGE.value).order_by(AuditEntry.id)
        ).all()
    assert [(e.target, e.detail["op"]) for e in entries] == [
        ("rules of camera S11-GATE", "put"),
        ("rules of camera S12-GATE", "put"),
        ("rules of camera S12-GATE", "delete"),
    ]
    assert entries[0].detail["rules"] == ["intrusion:after hours", "line_crossing:climbing", "loitering:loitering"]


def test_bad_rules_are_422_naming_the_field(api: TestClient, settings: Settings) -> None:
    login(api, "admin")
    missing_zone = {"zones": [], "rules": [{"type": "intrusion", "name": "x", "zone": "yard"}]}
    response = api.put("/api/cameras/S11-GATE/rules", json=missing_zone)
    assert response.status_code == 422
    assert "names zone 'yard', which this camera does not have" in response.text
    off_picture = {"zones": [{"name": "z", "polygon": [[0, 0], [1.5, 0], [1, 1]]}]}
    response = api.put("/api/cameras/S11-GATE/rules", json=off_picture)
    assert response.status_code == 422
    assert ["body", "zones", 0, "polygon", 1, 0] in [e["loc"] for e in response.json()["detail"]]
    unknown_type = {"rules": [{"type": "teleport", "name": "x"}]}
    assert api.put("/api/cameras/S11-GATE/rules", json=unknown_type).status_code == 422
    assert api.put("/api/cameras/S11-GATE/rules", json={"zones": [], "extra": 1}).status_code == 422
    assert not rules_file_path(settings.data_dir).exists()
