"""The wall rotator: drives every stored wall — tour pages every dwell, alarms that take tiles, inspections.

One :class:`WallRunner` (in the patrol service, one per deployment) is the only writer of ``wall_states`` and of
``tour_coverage``. Each analytics event taken from the bus raises an alarm (a ``wall_alarms`` row) on every wall
that watches the event's school or district (:meth:`WallRunner.raise_alarms`). On every tick it

1. re-reads the fleet (enabled cameras, offline ones) every ``patrol.fleet_refresh_s``, and the walls and tours
   when their rows change, re-planning a tour only when its cameras changed;
2. puts the stored unacknowledged alarms on their walls (an acknowledgement made through the API is seen here:
   the next alarm takes over, or after the last one the tour shows its next page at once);
3. shows the next page on every wall whose dwell is over and that no alarm holds, records which cameras were
   shown today, and stores the wall's state and its tour's place (a restart continues the round).

A wall with an open spot-check inspection (``walls.inspection_id``) shows that school's cameras instead of its
tour, page after page, until the inspection is signed; then the tour goes on where it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import JsonValue, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.patrol import PatrolConfig
from kernel.announce import announce
from kernel.bus import Delivery, Event
from kernel.clock import utcnow
from patrol.camera_sets import CameraRef, camera_set_from_json, load_fleet, select_cameras
from patrol.coverage import record_shown
from patrol.errors import PatrolError
from patrol.facts import FleetFacts
from patrol.tables import Inspection, Tour, VideoWall, WallAlarm, WallState
from patrol.topics import wall_event
from patrol.tours import TourPlanner, TourState
from patrol.wall import Alarm, Wall

log = logging.getLogger(__name__)

INSPECTION_DWELL_S = 10.0
"""Seconds a page of an inspection's cameras stays up on a wall without a tour."""


@dataclass
class _Run:
    """What the runner keeps of one wall between ticks."""

    wall_id: int
    name: str
    stamp: tuple[Any, ...]
    wall: Wall
    tour_id: int | None = None
    tour_name: str = ""
    dwell_s: float = INSPECTION_DWELL_S
    codes: tuple[str, ...] = ()
    planner: TourPlanner | None = None
    inspection_id: int | None = None
    inspection_planner: TourPlanner | None = None
    rotated_at: datetime | None = None
    next_rotation_at: datetime | None = None
    dirty: bool = True
    alarm_ids: list[int] = field(default_factory=list)
    key_repeat: int = 1
    stored_state: TourState | None = None
    """The tour's place as stored before a restart, until the tour is planned again."""


class WallRunner:
    """Drives the walls; call :meth:`tick` from one thread (see the module docstring)."""

    def __init__(
        self,
        facts: FleetFacts,
        config: PatrolConfig,
        *,
        timezone: ZoneInfo,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._facts = facts
        self._config = config
        self._zone = timezone
        self._clock = clock
        self._runs: dict[int, _Run] = {}
        self._fleet: list[CameraRef] = []
        self._by_code: dict[str, CameraRef] = {}
        self._offline: set[str] = set()
        self._fleet_read_at: datetime | None = None
        self._tours: dict[int, Tour] = {}

    @property
    def walls(self) -> dict[int, Wall]:
        """The walls as the runner holds them now, by id."""
        return {wall_id: run.wall for wall_id, run in self._runs.items()}

    def reset(self) -> None:
        """Forget everything held in memory (after a tick whose transaction failed): the next tick reads the walls
        and their stored state again, so memory never runs ahead of the database."""
        self._runs.clear()
        self._fleet, self._by_code, self._offline, self._fleet_read_at = [], {}, set(), None

    def raise_alarms(self, session: Session, delivery: Delivery) -> int:
        """Store an analytics event's alarm on every wall that watches it (announcing ``wall.alarm``); how many.

        Call it in a transaction of its own per event, before :meth:`tick` (which puts the alarms on the walls):
        an event that cannot be stored then costs only its own alarms.
        """
        now = self._clock()
        self._load_walls(session, now, self._refresh_fleet(session, now))
        raised = self._raise_alarms(session, delivery, now)
        for event in raised:
            announce(session, event)
        return len(raised)

    def tick(self, session: Session) -> int:
        """One pass over every wall (see the module docstring); the number of pages shown. The caller commits
        and then publishes what was announced."""
        now = self._clock()
        fleet_changed = self._refresh_fleet(session, now)
        self._load_walls(session, now, fleet_changed)
        self._sync_alarms(session, now)
        shown = 0
        for run in self._runs.values():
            if run.wall.paused or run.next_rotation_at is None or now < run.next_rotation_at:
                continue
            self._rotate(session, run, now)
            shown += 1
        for run in self._runs.values():
            if run.dirty:
                self._store(session, run, now)
        return shown

    # -- fleet, walls and tours ---------------------------------------------------------------------------------

    def _refresh_fleet(self, session: Session, now: datetime) -> bool:
        due = self._fleet_read_at is None or now - self._fleet_read_at >= timedelta(
            seconds=self._config.fleet_refresh_s
        )
        if not due:
            return False
        fleet = load_fleet(session)
        changed = fleet != self._fleet  # codes, scenes, tags, key scenes, schools: what camera sets select on
        self._fleet, self._by_code = fleet, {c.code: c for c in fleet}
        self._offline = self._facts.offline_cameras(session)
        self._fleet_read_at = now
        return changed or not self._runs

    def _load_walls(self, session: Session, now: datetime, fleet_changed: bool) -> None:
        walls = {w.id: w for w in session.scalars(select(VideoWall))}
        self._tours = {t.id: t for t in session.scalars(select(Tour))}
        for gone in set(self._runs) - set(walls):
            del self._runs[gone]
        for wall_id, row in walls.items():
            tour = self._tours.get(row.tour_id) if row.tour_id is not None else None
            stamp = (row.updated_at, row.inspection_id, tour.updated_at if tour else None, row.tour_id)
            run = self._runs.get(wall_id)
            if run is not None and run.stamp == stamp:
                if fleet_changed:
                    self._plan(session, run, row, tour)
                continue
            try:
                wall = wall_of(row)
            except PatrolError as err:
                log.error("wall %r cannot be shown: %s", row.name, err)
                self._runs.pop(wall_id, None)
                continue
            if run is None:
                run = self._restore(session, row, wall, stamp)
                self._runs[wall_id] = run
            else:
                wall.showing.update({t: c for t, c in run.wall.showing.items() if t in wall.rotating})
                run.wall, run.stamp, run.name = wall, stamp, row.name
                run.alarm_ids = []  # re-synced below: the rebuilt wall takes its alarm again
                run.next_rotation_at = now  # a changed wall or tour fills its tiles at once
            self._plan(session, run, row, tour)

    def _restore(self, session: Session, row: VideoWall, wall: Wall, stamp: tuple[Any, ...]) -> _Run:
        run = _Run(row.id, row.name, stamp, wall)
        state = session.get(WallState, row.id)
        if state is None:
            run.next_rotation_at = self._clock()
            return run
        wall.showing.update({int(t): str(c) for t, c in state.showing.items() if int(t) in wall.rotating})
        run.rotated_at, run.next_rotation_at = state.rotated_at, state.next_rotation_at or self._clock()
        if state.tour_id is not None and state.tour_id == row.tour_id and state.tour_state:
            run.tour_id = state.tour_id
            try:
                run.stored_state = TourState.model_validate(state.tour_state)
            except ValidationError as err:
                log.error(
                    "wall %r: its stored tour place is unreadable, the round starts again: %s", row.name, err
                )
        return run

    def _plan(self, session: Session, run: _Run, row: VideoWall, tour: Tour | None) -> None:
        """(Re-)plan the wall's tour when its cameras changed, keeping its place in the round."""
        tour = tour if tour is not None and tour.enabled else None
        if tour is None:
            run.tour_id, run.tour_name, run.planner, run.codes = None, "", None, ()
        else:
            cameras = select_cameras(self._fleet, camera_set_from_json(tour.selector))
            codes = tuple(c.code for c in cameras)
            replan = run.tour_id != tour.id or codes != run.codes or run.key_repeat != tour.key_repeat
            if run.planner is None or replan:
                state = self._carried_state(run, tour) or TourState()
                keys = frozenset(c.code for c in cameras if c.key_scene)
                tiles = max(1, len(run.wall.rotating))
                try:
                    run.planner = TourPlanner(codes, tiles, keys, tour.key_repeat, state.model_copy(deep=True))
                except PatrolError as err:
                    log.error("tour %r on wall %r starts its round again: %s", tour.name, run.name, err)
                    run.planner = TourPlanner(codes, tiles, keys, tour.key_repeat)
                run.codes = codes
            run.tour_id, run.tour_name, run.dwell_s = tour.id, tour.name, float(tour.dwell_s)
            run.planner.tiles = max(1, len(run.wall.rotating))
            run.key_repeat = tour.key_repeat
        if row.inspection_id != run.inspection_id:
            run.inspection_id = row.inspection_id
            run.inspection_planner = self._inspection_planner(session, run) if row.inspection_id else None
            run.next_rotation_at = self._clock()

    def _carried_state(self, run: _Run, tour: Tour) -> TourState | None:
        if run.planner is not None and run.tour_id == tour.id:
            return run.planner.state
        if run.stored_state is not None and run.tour_id == tour.id:
            return run.stored_state
        return None

    def _inspection_planner(self, session: Session, run: _Run) -> TourPlanner | None:
        inspection = session.get(Inspection, run.inspection_id)
        if inspection is None:
            return None
        codes = [c.code for c in self._fleet if c.school_id == inspection.school_id]
        if not codes:
            log.warning("inspection %s: its school has no enabled camera to show", inspection.id)
            return None
        return TourPlanner(codes, tiles=max(1, len(run.wall.rotating)))

    # -- alarms -------------------------------------------------------------------------------------------------

    def _raise_alarms(self, session: Session, delivery: Delivery, now: datetime) -> list[Event]:
        """Store the event's alarm on every wall that watches it; the ``wall.alarm`` announcements to make."""
        event = delivery.event
        if event.type != "event.started":
            return []
        payload = event.payload
        severity = str(payload.get("severity", "general"))
        if severity not in self._config.alarm_severities:
            return []
        camera_code = str(payload.get("camera_code", ""))
        camera = self._by_code.get(camera_code)
        if camera is None:
            log.warning("alarm for unknown or disabled camera %r ignored", camera_code)
            return []
        event_id = payload.get("event_id")
        key = f"event:{event_id}" if event_id is not None else f"bus:{event.id}"
        alarm = Alarm(key, camera.code, camera.school_code, camera.district_code)
        watching = [run for run in self._runs.values() if run.wall.watches(alarm)]
        if not watching:
            return []
        existing = set(
            session.scalars(
                select(WallAlarm.wall_id).where(
                    WallAlarm.alarm_key == key, WallAlarm.wall_id.in_([r.wall_id for r in watching])
                )
            )
        )
        title = f"{payload.get('type', 'alarm')} · {camera.school_name} · {camera.name}"[:200]
        raised: list[Event] = []
        for run in watching:
            if run.wall_id in existing:
                continue  # a redelivered event: raised once per wall
            row = WallAlarm(
                wall_id=run.wall_id,
                alarm_key=key,
                event_id=event_id if isinstance(event_id, int) else None,
                camera_code=camera.code,
                school_code=camera.school_code,
                district_code=camera.district_code,
                title=title,
                severity=severity,
                raised_at=now,
            )
            session.add(row)
            session.flush()
            raised.append(
                wall_event(
                    "wall.alarm",
                    {
                        "wall_id": run.wall_id,
                        "alarm_id": row.id,
                        "event_id": row.event_id,
                        "camera_code": camera.code,
                        "school_code": camera.school_code,
                        "title": title,
                        "severity": severity,
                    },
                )
            )
        return raised

    def _sync_alarms(self, session: Session, now: datetime) -> None:
        rows = session.scalars(
            select(WallAlarm)
            .where(WallAlarm.acknowledged_at.is_(None), WallAlarm.wall_id.in_(list(self._runs)))
            .order_by(WallAlarm.raised_at, WallAlarm.id)
        ).all()
        by_wall: dict[int, list[WallAlarm]] = {}
        for row in rows:
            by_wall.setdefault(row.wall_id, []).append(row)
        for wall_id, run in self._runs.items():
            alarms = by_wall.get(wall_id, [])
            ids = [a.id for a in alarms]
            if ids == run.alarm_ids:
                continue
            run.alarm_ids = ids
            was_paused = run.wall.paused
            changed = run.wall.sync_alarms(
                [Alarm(str(a.id), a.camera_code, a.school_code, a.district_code) for a in alarms]
            )
            if changed:
                run.dirty = True
                if was_paused and not run.wall.paused:
                    run.next_rotation_at = now  # the last alarm acknowledged: rotation resumes at once
                else:
                    self._announce_page(session, run)

    # -- rotation -----------------------------------------------------------------------------------------------

    def _rotate(self, session: Session, run: _Run, now: datetime) -> None:
        planner = run.inspection_planner or run.planner
        size = run.wall.page_size()
        if planner is None:
            run.wall.show_page(())
        else:
            planner.tiles = max(1, size)
            page = planner.next_page(lambda code: code not in self._offline)
            run.wall.show_page(page.cameras)
            shown = [self._by_code[c] for c in page.cameras if c in self._by_code]
            record_shown(session, [c.id for c in shown], now, self._zone)
            if page.round_ended and planner is run.planner:
                log.info(
                    "tour %r on wall %r: round %d done; offline the whole round: %d",
                    run.tour_name,
                    run.name,
                    page.round,
                    len(page.never_online),
                )
        dwell = run.dwell_s if run.planner is not None else INSPECTION_DWELL_S
        run.rotated_at, run.next_rotation_at, run.dirty = now, now + timedelta(seconds=dwell), True
        self._announce_page(session, run)

    def _announce_page(self, session: Session, run: _Run) -> None:
        alarm = run.wall.alarm
        alarm_tiles: list[JsonValue] = [*run.wall.alarm_tiles()]
        announce(
            session,
            wall_event(
                "wall.page",
                {
                    "wall_id": run.wall_id,
                    "tiles": {str(t): c for t, c in sorted(run.wall.showing.items())},
                    "paused": run.wall.paused,
                    "alarm_id": int(alarm.alarm_id) if alarm else None,
                    "alarm_tiles": alarm_tiles,
                    "round": run.planner.state.round if run.planner else None,
                },
            ),
        )

    def _store(self, session: Session, run: _Run, now: datetime) -> None:
        state = session.get(WallState, run.wall_id)
        if state is None:
            state = WallState(wall_id=run.wall_id)
            session.add(state)
        state.tour_id = run.tour_id
        state.tour_state = run.planner.state.model_dump(mode="json") if run.planner else None
        state.showing = {str(t): c for t, c in sorted(run.wall.showing.items())}
        state.alarm_tiles = run.wall.alarm_tiles()
        state.rotated_at, state.next_rotation_at, state.updated_at = run.rotated_at, run.next_rotation_at, now
        run.dirty = False


def wall_of(row: VideoWall) -> Wall:
    """The domain wall of a stored wall (a :class:`PatrolError` if its layout, screens or pins are invalid)."""
    return Wall(
        row.name,
        row.layout,
        screens=row.screens,
        pinned={int(t): str(c) for t, c in row.pinned.items()},
        districts=frozenset(str(d) for d in row.districts),
        schools=frozenset(str(s) for s in row.schools),
        takeover=row.takeover.value,
    )
