"""The patrol service's threads: events on the bus become alarms on the walls, every scheduler job runs, a job
that breaks is logged without stopping the others, and stop() ends the threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from campuswatch.patrol_facts import StoredFleetFacts
from config import load_settings
from kernel.bus import Event, InMemoryBus
from patrol import plans
from patrol.models import Takeover
from patrol.service import PatrolService
from patrol.tables import Tour, VideoWall, WallAlarm, WallState
from tests.bureau import Bureau


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"not within {timeout_s} s: {what}")


def _service(tmp_path: Path, bureau: Bureau, bus: InMemoryBus) -> PatrolService:
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        patrol={"tick_s": 0.05, "schedule_every_s": 0.2, "spot_checks": {"auto_draw": True}},
    )
    return PatrolService(settings, bureau.factory, bus, StoredFleetFacts(), name="test")


def test_events_on_the_bus_take_the_wall_and_the_threads_stop(
    tmp_path: Path, bureau: Bureau, bus: InMemoryBus
) -> None:
    with bureau.factory() as session:
        tour = Tour(name="all", selector={}, dwell_s=10, layout="4")
        session.add(tour)
        session.flush()
        session.add(
            VideoWall(
                name="main",
                layout="4",
                takeover=Takeover.TILE,
                districts=[],
                schools=[],
                pinned={},
                tour_id=tour.id,
            )
        )
        session.commit()
    service = _service(tmp_path, bureau, bus)
    service.start()
    try:
        _wait(lambda: _state_of(bureau) is not None, 5, "the wall's first page")
        bus.publish(Event(topic="events", type="event.started", source="t", payload={"camera_code": "S22-DORM"}))
        _wait(lambda: _alarm_cameras(bureau) == ["S22-DORM"], 5, "the alarm on the wall")
        _wait(lambda: (_state_of(bureau) or {}).get("0") == "S22-DORM", 5, "the alarm's tile")
    finally:
        service.stop(timeout_s=5)
    assert not [t for t in threading.enumerate() if t.name.startswith("patrol-")]


def test_every_job_runs_and_a_broken_one_does_not_stop_the_others(
    tmp_path: Path, bureau: Bureau, bus: InMemoryBus, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = _service(tmp_path, bureau, bus)
    results = service.run_schedule()
    assert set(results) == {
        "plan tasks",
        "missed tasks",
        "overdue hazards",
        "incident clocks",
        "daily report",
        "spot-check draws",
    }
    assert all(value is not None for value in results.values()), results

    def broken(*_args: object) -> int:
        raise RuntimeError("a bug in one job")

    monkeypatch.setattr(plans, "mark_missed", broken)
    again = service.run_schedule()
    assert again["missed tasks"] is None
    assert again["incident clocks"] == 0 and again["overdue hazards"] == 0


def _state_of(bureau: Bureau) -> dict[str, object] | None:
    with bureau.factory() as session:
        state = session.scalars(select(WallState)).first()
        return dict(state.showing) if state is not None else None


def _alarm_cameras(bureau: Bureau) -> list[str]:
    with bureau.factory() as session:
        return [a.camera_code for a in session.scalars(select(WallAlarm))]
