"""An embedded ingest worker against the simulator: health stored and published, faults, thumbnails."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from config import Settings, load_settings
from ingest.membership import LocalMembership
from ingest.models import HealthReason, HealthState, QualityFault, ReadMode
from ingest.simulator import CameraSchedule, CameraSimulator, ClipLibrary, Drop, SceneKind, build_camera_specs
from ingest.tables import CameraHealth, CameraHealthTransition, CameraQualityFault
from ingest.thumbnails import MemoryThumbnailStore
from ingest.worker import IngestWorker
from kernel.bus import Consumer, Event, InMemoryBus
from kernel.db import make_session_factory, session_scope
from kernel.secrets import SecretBox
from registry.fleet_file import FleetRow
from registry.fleet_io import import_rows
from registry.generate import generate_fleet
from registry.models import Camera

SCENES = [SceneKind.PEOPLE_WALKING, SceneKind.BLACK, SceneKind.EMPTY_YARD, SceneKind.EMPTY_YARD]
DROP_AT_S, DROP_FOR_S = 5.0, 6.0


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    pytest.fail(f"not within {timeout_s} s: {what}")


class Fleet:
    """Cameras in the database, served by a simulator: [plain, black, refuses for a while, disabled]."""

    def __init__(self, factory: sessionmaker[Session], simulator: CameraSimulator, codes: list[str]) -> None:
        self.factory = factory
        self.simulator = simulator
        self.plain, self.black, self.dropping, self.disabled = codes

    def state(self, code: str) -> tuple[HealthState, HealthReason] | None:
        row = self.health().get(code)
        return None if row is None else (row.state, row.reason)

    def health(self) -> dict[str, CameraHealth]:
        with session_scope(self.factory) as session:
            rows = session.execute(select(Camera.code, CameraHealth).join(CameraHealth)).all()
            session.expunge_all()
            return {str(code): row for code, row in rows}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        data_dir=tmp_path,
        ingest={
            "read_timeout_s": 1.5,
            "open_timeout_s": 2.0,
            "backoff_initial_s": 0.3,
            "backoff_max_s": 1.0,
            "figures_every_s": 1.0,
            "heartbeat_s": 0.5,
            "heartbeat_ttl_s": 1.5,
            # Every other keyframe (they come every 2 s): sampling on, and the faults still come quickly.
            "watch_keyframe_every_s": 4.0,
        },
    )


@pytest.fixture
def fleet(migrated_engine: Engine, settings: Settings, sim_clips: ClipLibrary, tmp_path: Path) -> Iterator[Fleet]:
    rows = generate_fleet(1, 1, len(SCENES), seed=5)
    codes = [row["camera_code"] for row in rows]
    schedules = {code: CameraSchedule.showing(scene) for code, scene in zip(codes, SCENES, strict=True)}
    schedules[codes[2]] = CameraSchedule(drops=(Drop(at_s=DROP_AT_S, duration_s=DROP_FOR_S, mode="refuse"),))
    simulator = CameraSimulator(
        build_camera_specs(codes, schedules), cache_dir=tmp_path / "clips", port=0, clips=sim_clips
    )
    simulator.start()
    for row, code in zip(rows, codes, strict=True):
        row.update(main_url=simulator.url(code), sub_url="", username="", password="", enabled="true")
    rows[3]["enabled"] = "false"
    factory = make_session_factory(migrated_engine)
    with session_scope(factory) as session:
        import_rows(
            session,
            [FleetRow(i + 2, row) for i, row in enumerate(rows)],
            SecretBox.for_data_dir(settings.data_dir),
            source="test",
        )
    try:
        yield Fleet(factory, simulator, codes)
    finally:
        simulator.stop()


def test_worker_records_health_faults_and_thumbnails(fleet: Fleet, settings: Settings) -> None:
    bus = InMemoryBus()
    health_events = Collected(bus.consumer("camera.health", "test", "t"))
    quality_events = Collected(bus.consumer("camera.quality", "test", "t"))
    thumbnails = MemoryThumbnailStore()
    membership = LocalMembership(heartbeat_s=0.5, ttl_s=1.5)
    worker = IngestWorker(settings, fleet.factory, bus, thumbnails, membership, flush_s=0.2)
    worker.start()
    try:
        wait_until(
            lambda: worker.reading() == {fleet.plain, fleet.black, fleet.dropping}, 5, "enabled cameras read"
        )
        wait_until(
            lambda: (
                all(h.state is HealthState.ONLINE for h in fleet.health().values()) and len(fleet.health()) == 3
            ),
            10,
            "three cameras online in the database",
        )
        # Thumbnails: ~320 px JPEGs of the latest keyframe.
        thumbnail = thumbnails.get(fleet.plain)
        assert thumbnail is not None
        image = cv2.imdecode(np.frombuffer(thumbnail.jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and image.shape == (180, 320, 3)
        # The black camera: a fault with its snapshot, published on the bus.
        wait_until(lambda: _open_faults(fleet) == {(fleet.black, QualityFault.BLACK)}, 10, "black fault stored")
        with session_scope(fleet.factory) as session:
            fault = session.scalars(select(CameraQualityFault)).one()
            assert fault.snapshot_jpeg is not None and fault.snapshot_jpeg[:2] == b"\xff\xd8"
        wait_until(lambda: len(quality_events.poll()) >= 1, 3, "a quality event")
        assert [(e.type, e.payload["camera_code"], e.payload["fault"]) for e in quality_events.poll()] == [
            ("quality.fault", fleet.black, "black")
        ]
        # The scripted refusal: offline (refused) within the drop, then recovered; both published.
        drop_ends = DROP_AT_S + DROP_FOR_S
        # The refusal first closes the session (stream ended: no data), then refuses the reconnects.
        offline_refused = (HealthState.OFFLINE, HealthReason.REFUSED)
        wait_until(
            lambda: (
                (fleet.health()[fleet.dropping].state, fleet.health()[fleet.dropping].reason) == offline_refused
            ),
            max(0.0, DROP_AT_S - fleet.simulator.elapsed_s()) + 10,
            "the dropping camera offline, refused",
        )
        wait_until(
            lambda: fleet.health()[fleet.dropping].state is HealthState.ONLINE,
            max(0.0, drop_ends - fleet.simulator.elapsed_s()) + 10,
            "the dropping camera recovered",
        )
        wait_until(lambda: len(health_events.poll()) >= 2, 3, "two health events")
        events = [(e.type, e.payload["camera_code"], e.payload["reason"]) for e in health_events.poll()]
        # One event per state change: the reason changing while offline is history, not a new alarm.
        assert events == [
            ("camera.offline", fleet.dropping, "no_data"),
            ("camera.recovered", fleet.dropping, "ok"),
        ]
        with session_scope(fleet.factory) as session:
            history = session.execute(
                select(CameraHealthTransition.state, CameraHealthTransition.previous_state)
                .join(Camera)
                .where(Camera.code == fleet.dropping)
                .order_by(CameraHealthTransition.id)
            ).all()
        assert [(s, p) for s, p in history] == [
            (HealthState.ONLINE, None),
            (HealthState.OFFLINE, HealthState.ONLINE),
            (HealthState.OFFLINE, HealthState.OFFLINE),
            (HealthState.ONLINE, HealthState.OFFLINE),
        ]
        # Figures are stored.
        plain = fleet.health()[fleet.plain]
        assert (plain.width, plain.height) == (640, 360)
        assert 12 <= plain.fps <= 18
        # A mode switch reaches the camera's reader; an unknown camera is refused.
        assert worker.set_mode(fleet.plain, ReadMode.ANALYZE)
        assert not worker.set_mode(fleet.disabled, ReadMode.ANALYZE)
    finally:
        started = time.monotonic()
        worker.stop(timeout_s=8)
        assert time.monotonic() - started < 8
        bus.close()
    assert worker.reading() == set()


def _open_faults(fleet: Fleet) -> set[tuple[str, QualityFault]]:
    with session_scope(fleet.factory) as session:
        rows = session.execute(
            select(Camera.code, CameraQualityFault.fault).join(Camera).where(CameraQualityFault.open.is_(True))
        ).all()
    return {(code, fault) for code, fault in rows}


class Collected:
    """Everything a bus consumer has received so far (acknowledged as it arrives)."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self.events: list[Event] = []

    def poll(self) -> list[Event]:
        deliveries = self.consumer.fetch(max_count=100)
        if deliveries:
            self.consumer.ack(*deliveries)
        self.events.extend(d.event for d in deliveries)
        return self.events
