"""The wall rotator over the database: tour pages every dwell, offline cameras skipped and taken back, alarms
from the bus that take a tile and pause rotation until acknowledged, restarts, tour changes and inspections."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campuswatch.patrol_facts import StoredFleetFacts
from config.patrol import PatrolConfig
from ingest.models import HealthReason, HealthState
from ingest.tables import CameraHealth
from kernel.announce import take_announced
from kernel.bus import Delivery, Event
from patrol.models import InspectionMethod, InspectionStatus, Takeover
from patrol.tables import Inspection, Tour, TourCoverage, VideoWall, WallAlarm, WallState
from patrol.wall_runner import WallRunner
from registry.models import Camera
from tests.bureau import Bureau, ManualClock

ZONE = ZoneInfo("Asia/Shanghai")
ALL_CAMERAS = sorted(f"S{d}{s}-{k}" for d in (1, 2) for s in (1, 2, 3) for k in ("CORR", "DORM", "GATE", "YARD"))


def make_runner(clock: ManualClock) -> WallRunner:
    return WallRunner(StoredFleetFacts(), PatrolConfig(fleet_refresh_s=30), timezone=ZONE, clock=clock)


def add_wall(
    bureau: Bureau, *, layout: str = "4", selector: dict[str, object] | None = None, **wall: object
) -> tuple[int, int]:
    with bureau.factory() as session:
        tour = Tour(name=f"tour-{layout}-{len(wall)}", selector=selector or {}, dwell_s=10, layout=layout)
        session.add(tour)
        session.flush()
        row = VideoWall(
            name=f"wall-{tour.id}",
            layout=layout,
            screens=1,
            takeover=Takeover.TILE,
            districts=[],
            schools=[],
            pinned={},
            tour_id=tour.id,
        )
        for name, value in wall.items():
            setattr(row, name, value)
        session.add(row)
        session.commit()
        return row.id, tour.id


def tick(bureau: Bureau, runner: WallRunner, *deliveries: Delivery) -> tuple[int, list[Event]]:
    """As the patrol service does: each event's alarms in a transaction of their own, then the tick."""
    announced: list[Event] = []
    for delivery in deliveries:
        with bureau.factory() as session:
            try:
                runner.raise_alarms(session, delivery)
                session.commit()
            except IntegrityError:
                session.rollback()
            announced += take_announced(session)
    with bureau.factory() as session:
        shown = runner.tick(session)
        session.commit()
        return shown, announced + take_announced(session)


def showing(bureau: Bureau, wall_id: int) -> list[str]:
    with bureau.factory() as session:
        state = session.get(WallState, wall_id)
        assert state is not None
        return [str(state.showing[k]) for k in sorted(state.showing, key=int)]


def set_health(session: Session, camera_id: int, state: HealthState, at: datetime) -> None:
    row = session.get(CameraHealth, camera_id)
    if row is None:
        row = CameraHealth(camera_id=camera_id, state=state, reason=HealthReason.OK, since=at, updated_at=at)
        session.add(row)
    row.state, row.since, row.updated_at = state, at, at
    row.reason = HealthReason.TIMEOUT if state is HealthState.OFFLINE else HealthReason.OK


def started(camera_code: str, n: int = 1) -> Delivery:
    event = Event(
        id=str(uuid.UUID(int=n)),  # the same n: the same event, delivered again
        topic="events",
        type="event.started",
        source="test",
        payload={"camera_code": camera_code, "type": "intrusion", "severity": "major", "n": n},
    )
    return Delivery("events", "patrol-walls", f"{n}-0", 1, event)


def test_pages_rotate_every_dwell_and_cover_every_camera(bureau: Bureau, clock: ManualClock) -> None:
    wall_id, _ = add_wall(bureau)
    runner = make_runner(clock)
    assert tick(bureau, runner)[0] == 1
    assert showing(bureau, wall_id) == ALL_CAMERAS[:4]
    clock.advance(seconds=9)
    assert tick(bureau, runner)[0] == 0  # the dwell is not over
    clock.advance(seconds=1)
    shown, events = tick(bureau, runner)
    assert shown == 1 and showing(bureau, wall_id) == ALL_CAMERAS[4:8]
    assert [e.type for e in events] == ["wall.page"] and events[0].payload["wall_id"] == wall_id
    for _ in range(4):
        clock.advance(seconds=10)
        tick(bureau, runner)
    with bureau.factory() as session:
        covered = session.scalars(select(TourCoverage).where(TourCoverage.day == date(2026, 12, 1))).all()
        assert len(covered) == 24 and {c.shows for c in covered} == {1}
        state = session.get(WallState, wall_id)
        assert state is not None and state.tour_state is not None
        assert state.tour_state["round"] == 2  # all 24 shown: the next round begins


def test_offline_cameras_are_skipped_then_shown_when_back(bureau: Bureau, clock: ManualClock) -> None:
    wall_id, _ = add_wall(bureau)
    with bureau.factory() as session:
        set_health(session, bureau.cameras["S11-DORM"], HealthState.OFFLINE, clock.now)
        session.commit()
    runner = make_runner(clock)
    tick(bureau, runner)
    assert showing(bureau, wall_id) == ["S11-CORR", "S11-GATE", "S11-YARD", "S12-CORR"]
    with bureau.factory() as session:
        set_health(session, bureau.cameras["S11-DORM"], HealthState.ONLINE, clock.now)
        session.commit()
    clock.advance(seconds=30)  # the fleet (and its health) is read again
    tick(bureau, runner)
    assert showing(bureau, wall_id)[0] == "S11-DORM"  # back: first on the next page


def test_alarm_takes_the_big_tile_pauses_rotation_until_acknowledged(bureau: Bureau, clock: ManualClock) -> None:
    wall_id, _ = add_wall(bureau, layout="1+5", districts=["D2"])
    runner = make_runner(clock)
    tick(bureau, runner)
    before = showing(bureau, wall_id)
    shown, events = tick(bureau, runner, started("S11-GATE", 1))  # district D1: not this wall's
    assert shown == 0 and events == []
    _, events = tick(bureau, runner, started("S21-YARD", 2), started("S22-GATE", 3))
    assert [e.type for e in events].count("wall.alarm") == 2
    assert showing(bureau, wall_id) == ["S21-YARD", *before[1:]]
    tick(bureau, runner, started("S21-YARD", 2))  # the same event delivered again: still two alarms
    clock.advance(seconds=60)
    assert tick(bureau, runner)[0] == 0  # paused: no page while an alarm holds the wall
    with bureau.factory() as session:
        alarms = session.scalars(select(WallAlarm).order_by(WallAlarm.id)).all()
        assert [a.camera_code for a in alarms] == ["S21-YARD", "S22-GATE"]
        alarms[0].acknowledged_at = clock.now
        session.commit()
    tick(bureau, runner)
    assert showing(bureau, wall_id)[0] == "S22-GATE"  # the queued alarm takes over
    with bureau.factory() as session:
        alarm = session.get(WallAlarm, alarms[1].id)
        assert alarm is not None
        alarm.acknowledged_at = clock.now
        session.commit()
    assert tick(bureau, runner)[0] == 1  # the last one acknowledged: the tour's next page at once
    assert showing(bureau, wall_id) == ALL_CAMERAS[6:12]


def test_whole_wall_takeover(bureau: Bureau, clock: ManualClock) -> None:
    wall_id, _ = add_wall(bureau, takeover=Takeover.WALL, pinned={"3": "S23-GATE"})
    runner = make_runner(clock)
    tick(bureau, runner)
    tick(bureau, runner, started("S12-CORR"))
    assert showing(bureau, wall_id) == ["S12-CORR", "S12-CORR", "S12-CORR", "S23-GATE"]


def test_a_restarted_runner_continues_the_round(bureau: Bureau, clock: ManualClock) -> None:
    wall_id, _ = add_wall(bureau)
    first = make_runner(clock)
    tick(bureau, first)
    clock.advance(seconds=10)
    tick(bureau, first)
    second = make_runner(clock)  # the service restarted
    tick(bureau, second)
    assert showing(bureau, wall_id) == ALL_CAMERAS[4:8]  # restored as stored, the dwell not over yet
    clock.advance(seconds=10)
    tick(bureau, second)
    assert showing(bureau, wall_id) == ALL_CAMERAS[8:12]


def test_a_changed_tour_keeps_its_place_and_an_inspection_takes_the_wall(
    bureau: Bureau, clock: ManualClock
) -> None:
    wall_id, tour_id = add_wall(bureau)
    runner = make_runner(clock)
    tick(bureau, runner)
    clock.advance(seconds=10)
    tick(bureau, runner)  # shown: S11-*, S12-*
    with bureau.factory() as session:
        tour = session.get(Tour, tour_id)
        assert tour is not None
        tour.selector = {"scene_types": ["gate", "corridor"]}
        tour.updated_at = clock.now
        session.commit()
    tick(bureau, runner)
    assert showing(bureau, wall_id) == ["S13-CORR", "S13-GATE", "S21-CORR", "S21-GATE"]  # after S12, re-planned
    with bureau.factory() as session:
        inspection = Inspection(
            school_id=bureau.schools["S22"],
            method=InspectionMethod.DIRECTED,
            inspector_id=bureau.users["inspector"],
            status=InspectionStatus.OPEN,
            started_at=clock.now,
        )
        session.add(inspection)
        session.flush()
        wall = session.get(VideoWall, wall_id)
        assert wall is not None
        wall.inspection_id, wall.updated_at = inspection.id, datetime.now(UTC)
        session.commit()
    tick(bureau, runner)
    assert showing(bureau, wall_id) == ["S22-CORR", "S22-DORM", "S22-GATE", "S22-YARD"]
    with bureau.factory() as session:
        wall = session.get(VideoWall, wall_id)
        assert wall is not None
        wall.inspection_id, wall.updated_at = None, datetime.now(UTC)
        session.commit()
    tick(bureau, runner)
    assert showing(bureau, wall_id) == ["S22-CORR", "S22-GATE", "S23-CORR", "S23-GATE"]  # the tour goes on


def test_one_bad_event_is_dropped_and_the_others_raise_their_alarms(bureau: Bureau, clock: ManualClock) -> None:
    wall_id, _ = add_wall(bureau)
    runner = make_runner(clock)
    tick(bureau, runner)
    ghost = Event(
        topic="events",
        type="event.started",
        source="test",
        payload={"camera_code": "S12-GATE", "event_id": 999_999, "severity": "general"},  # no such event row
    )
    _, events = tick(bureau, runner, Delivery("events", "g", "9-0", 1, ghost), started("S13-GATE", 4))
    assert [e.payload["camera_code"] for e in events if e.type == "wall.alarm"] == ["S13-GATE"]
    with bureau.factory() as session:
        assert [a.camera_code for a in session.scalars(select(WallAlarm))] == ["S13-GATE"]
    assert showing(bureau, wall_id)[0] == "S13-GATE"


def test_a_camera_given_the_tour_s_tag_joins_the_tour(bureau: Bureau, clock: ManualClock) -> None:
    wall_id, _ = add_wall(bureau, selector={"tags": ["entrance"]})
    runner = make_runner(clock)
    tick(bureau, runner)
    assert showing(bureau, wall_id) == []
    with bureau.factory() as session:
        camera = session.get(Camera, bureau.cameras["S21-YARD"])
        assert camera is not None
        camera.tags = ["entrance"]
        session.commit()
    clock.advance(seconds=30)  # the next read of the fleet
    tick(bureau, runner)
    clock.advance(seconds=10)
    tick(bureau, runner)
    assert showing(bureau, wall_id) == ["S21-YARD"]
