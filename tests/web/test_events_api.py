"""Events API: events stored by the recorder are listed, filtered and their evidence served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

import numpy as np
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from analytics.events import EventRecorder, evidence_jpeg
from analytics.rules import RuleEvent
from kernel.bus import InMemoryBus
from kernel.db import make_session_factory
from tests.web.test_app import _login, client

__all__ = ["client"]  # the fixture, shared with the app tests

AT = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)


def rule_event(kind: Literal["started", "ended"], camera: str, rule_type: str, at: datetime) -> RuleEvent:
    return RuleEvent(
        kind,
        camera,
        f"{rule_type}-rule",
        rule_type,
        "major",
        "yard",
        at if kind == "started" else AT,
        at,
        (3,),
        0.81,
        ((0.1, 0.5, 0.2, 0.9),),
        "1 in yard",
        polygon=((0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)),
    )


def test_events_are_listed_filtered_and_have_evidence(client: TestClient, migrated_engine: Engine) -> None:
    bus = InMemoryBus()
    consumer = bus.consumer("events", "test", "t")
    recorder = EventRecorder(make_session_factory(migrated_engine), bus, source="test")
    picture = np.full((360, 640, 3), 90, np.uint8)
    intrusion = rule_event("started", "C000", "intrusion", AT)
    recorder.record(intrusion, evidence_jpeg(picture, intrusion))
    recorder.record(rule_event("started", "C121", "crowding", AT + timedelta(seconds=5)), None)
    recorder.record(rule_event("ended", "C000", "intrusion", AT + timedelta(seconds=9)), None)
    recorder.record(rule_event("started", "NOPE", "intrusion", AT), None)  # unknown camera: dropped, logged
    assert recorder.flush() == 4
    published = [d.event for d in consumer.fetch(max_count=10)]
    assert [(e.type, e.payload["camera_code"]) for e in published] == [
        ("event.started", "C000"),
        ("event.started", "C121"),
        ("event.ended", "C000"),
    ]
    _login(client)
    listed = client.get("/api/events").json()
    assert [(e["camera_code"], e["type"], e["school_code"]) for e in listed] == [
        ("C121", "crowding", "S12"),  # newest first
        ("C000", "intrusion", "S00"),
    ]
    intrusion_row = listed[1]
    assert intrusion_row["ended_at"] is not None and intrusion_row["track_ids"] == [3]
    assert client.get("/api/events", params={"open": "true"}).json()[0]["camera_code"] == "C121"
    assert [e["type"] for e in client.get("/api/events", params={"school": "S12"}).json()] == ["crowding"]
    assert client.get("/api/events", params={"type": "fall"}).json() == []
    evidence = client.get(intrusion_row["evidence_url"])
    assert evidence.status_code == 200 and evidence.content[:2] == b"\xff\xd8"
    assert client.get(f"/api/events/{listed[0]['id']}/evidence.jpg").status_code == 404
    naive = client.get("/api/events", params={"since": "2026-11-23T08:00:00"})
    assert naive.status_code == 422 and "UTC offset" in naive.text


def test_events_need_a_login(client: TestClient) -> None:
    assert client.get("/api/events").status_code == 401
