"""Scoring, end to end from RTSP: the simulator's scripted incidents must raise their events, clean scenes none.

Real parts only: the GStreamer RTSP simulator serving the scene library (12-s clips, looping), an embedded ingest
worker reading every camera over RTSP (analyze mode because each has active rules), the batching pipeline with the
real yolov3-tiny (and the fall model for the faller) in onnxruntime, ByteTrack, the rules, SQLite, the bus. Each
camera is configured as a duty room would configure it; some rules are there to stay silent (a crowd rule on a
lone lingerer).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from analytics.events import EVENTS_TOPIC, EventRecorder
from analytics.pipeline import AnalyticsPipeline, BatchStats
from analytics.tables import SafetyEvent
from campuswatch.database import upgrade
from config import Settings, load_settings
from ingest.membership import LocalMembership
from ingest.models import ReadMode
from ingest.simulator import (
    CameraSchedule,
    CameraSimulator,
    ClipLibrary,
    ClipSettings,
    SceneKind,
    build_camera_specs,
)
from ingest.thumbnails import MemoryThumbnailStore
from ingest.worker import IngestWorker
from kernel.bus import InMemoryBus
from kernel.db import make_engine, make_session_factory, session_scope
from kernel.paths import REPO_ROOT
from kernel.secrets import SecretBox
from registry.fleet_file import FleetRow
from registry.fleet_io import import_rows
from registry.generate import generate_fleet

YARD = {"name": "yard", "polygon": [[0, 0.58], [1, 0.58], [1, 1], [0, 1]]}
# The perimeter tripwire of the line_crossing scene (ingest/simulator/scenes.py: x = 320 of 640, left to right).
TRIPWIRE = {"name": "tripwire", "a": [0.5, 0.3], "b": [0.5, 1.0], "entering_side": [0.9, 0.8]}
CLOSED = {"type": "intrusion", "name": "after-hours", "zone": "yard", "min_seconds": 1}
LOITER = {"type": "loitering", "name": "loiter", "zone": "yard", "dwell_s": 15}
CROWD = {"type": "crowding", "name": "crowd", "zone": "yard", "min_people": 6, "min_seconds": 2}
WALL = {"type": "line_crossing", "name": "wall", "line": "tripwire"}
POST = {"name": "post", "polygon": [[0.25, 0.55], [0.55, 0.55], [0.55, 0.95], [0.25, 0.95]]}
POST_EMPTY = {"type": "guard_post_empty", "name": "guard", "zone": "post", "absent_s": 6}
FALL = {"type": "fall", "name": "fall", "min_seconds": 1, "min_score": 0.5}

# camera scene, its rules, and the rule types it must raise (anything else it raises is a false alarm).
CAMERAS: dict[str, tuple[SceneKind, list[dict[str, Any]], set[str]]] = {
    "wall": (SceneKind.LINE_CROSSING, [WALL, CLOSED], {"line_crossing", "intrusion"}),
    "crowd": (SceneKind.CROWD_FORMING, [CROWD, CLOSED], {"crowding", "intrusion"}),
    "lingerer": (SceneKind.PERSON_LINGERING, [LOITER, CROWD], {"loitering"}),
    "walkers": (SceneKind.PEOPLE_WALKING, [LOITER, CROWD, CLOSED], {"intrusion"}),
    "empty": (SceneKind.EMPTY_YARD, [CLOSED, LOITER, CROWD, WALL], set()),
    "post-manned": (SceneKind.PERSON_LINGERING, [POST_EMPTY], set()),
    "post-empty": (SceneKind.EMPTY_YARD, [POST_EMPTY], {"guard_post_empty"}),
    # The fall model (YOLOv8s, Normal / Fall) runs only on cameras with an active fall rule.
    "faller": (SceneKind.PERSON_FALLING, [FALL, LOITER], {"fall"}),
}
RUN_S = 40.0
Scored = tuple[
    dict[str, str], list[dict[str, Any]], list[SafetyEvent], BatchStats
]  # three loops of each 12-s clip, after the cameras connect


@pytest.fixture(scope="module")
def scene_clips() -> ClipLibrary:
    """The scene library at its real length (12-s clips), cached across runs in .cache/test-clips."""
    return ClipLibrary.load_or_generate(REPO_ROOT / ".cache" / "test-clips", ClipSettings())


def scoring_settings(data_dir: Path, models_dir: Path, codes: dict[str, str]) -> Settings:
    cameras = {}
    for name, (_, rules, _) in CAMERAS.items():
        cameras[codes[name]] = {"zones": [YARD, POST], "lines": [TRIPWIRE], "rules": rules}
    # A school holiday all year: the campus is closed, intrusion rules are active whenever the test runs.
    holiday = {"start": date(2000, 1, 1), "end": date(2099, 12, 31), "name": "test holiday"}
    return load_settings(
        None,
        data_dir=data_dir,
        ingest={"analyze_fps": 4.0, "read_timeout_s": 3.0, "open_timeout_s": 3.0},
        analytics={
            "models_dir": str(models_dir),
            "batch": {"max_batch": 8, "max_wait_ms": 30},
            "calendar": {"holidays": [holiday]},
            "cameras": cameras,
        },
    )


@pytest.fixture
def scored_events(scene_clips: ClipLibrary, models_dir: Path, tmp_path: Path) -> Iterator[Scored]:
    rows = generate_fleet(1, 1, len(CAMERAS), seed=11)
    codes = {name: row["camera_code"] for name, row in zip(CAMERAS, rows, strict=True)}
    schedules = {codes[name]: CameraSchedule.showing(scene) for name, (scene, _, _) in CAMERAS.items()}
    simulator = CameraSimulator(
        build_camera_specs(list(codes.values()), schedules), cache_dir=tmp_path / "c", port=0, clips=scene_clips
    )
    simulator.start()
    try:
        yield run_fleet(simulator, rows, codes, scoring_settings(tmp_path, models_dir, codes))
    finally:
        simulator.stop()


def run_fleet(
    simulator: CameraSimulator, rows: list[dict[str, str]], codes: dict[str, str], settings: Settings
) -> Scored:
    """Read the fleet with the embedded worker and the pipeline for ``RUN_S``; what was published and stored."""
    # SQLite only: the database is not what this test scores (the recorder's writes are shared code).
    engine = make_engine(settings.database_url())
    upgrade(engine)
    for row in rows:
        row.update(
            main_url=simulator.url(row["camera_code"]), sub_url="", username="", password="", enabled="true"
        )
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        fleet = [FleetRow(i + 2, row) for i, row in enumerate(rows)]
        import_rows(session, fleet, SecretBox.for_data_dir(settings.data_dir), source="test")
    bus = InMemoryBus()
    consumer = bus.consumer(EVENTS_TOPIC, "test", "t")
    pipeline = AnalyticsPipeline(settings, EventRecorder(factory, bus, source="test"))
    membership = LocalMembership(heartbeat_s=settings.ingest.heartbeat_s, ttl_s=settings.ingest.heartbeat_ttl_s)
    worker = IngestWorker(
        settings, factory, bus, MemoryThumbnailStore(), membership, frames=pipeline, analyze_check_s=1.0
    )
    pipeline.start()
    worker.start()
    published: list[dict[str, Any]] = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(worker.reading()) < len(CAMERAS):
            time.sleep(0.2)
        assert worker.reading() == set(codes.values())
        end = time.monotonic() + RUN_S
        while time.monotonic() < end:
            deliveries = consumer.fetch(max_count=100, block_s=0.5)
            consumer.ack(*deliveries)
            published += [{"kind": d.event.type, **d.event.payload} for d in deliveries]
        modes = {code: worker.mode(code) for code in codes.values()}
    finally:
        worker.stop()
        pipeline.stop()
    assert all(mode is ReadMode.ANALYZE for mode in modes.values()), modes
    stats = pipeline.batcher.stats
    assert stats.frames_done > 100 and stats.failures == 0, stats
    with session_scope(factory) as session:
        stored = list(session.scalars(select(SafetyEvent).order_by(SafetyEvent.id)))
        session.expunge_all()
    engine.dispose()
    return codes, published, stored, stats


def test_incidents_are_found_and_clean_scenes_stay_quiet(
    scored_events: Scored,
) -> None:
    codes, published, stored, stats = scored_events
    names = {code: name for name, code in codes.items()}
    starts = [e for e in published if e["kind"] == "event.started"]
    events = {(names[e["camera_code"]], e["type"]) for e in starts}
    expected = {(name, rule_type) for name, (_, _, wanted) in CAMERAS.items() for rule_type in wanted}
    true_positive = events & expected
    recall = len(true_positive) / len(expected)
    precision = len(true_positive) / len(events) if events else 1.0
    logging.getLogger(__name__).info(
        "scoring: recall %.2f precision %.2f, raised %s, frames %s", recall, precision, sorted(events), stats
    )
    assert recall >= 0.9, f"recall {recall:.2f}: missed {sorted(expected - events)}; raised {sorted(events)}"
    assert precision >= 0.9, f"precision {precision:.2f}: false alarms {sorted(events - expected)}"
    # Each incident is one event (cooldown), not one per frame or per loop of the clip.
    assert len(starts) == len(events), sorted((names[e["camera_code"]], e["type"]) for e in starts)
    # Every published start is stored, with its evidence picture and school.
    by_id = {row.id: row for row in stored}
    for event in starts:
        row = by_id[event["event_id"]]
        assert row.evidence_jpeg is not None and row.evidence_jpeg[:2] == b"\xff\xd8"
        assert row.type == event["type"] and row.school_id > 0
        assert event["evidence_url"] == f"/api/events/{row.id}/evidence.jpg"
