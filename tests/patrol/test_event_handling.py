"""Event handling: the acknowledge → dispatch → resolve state machine with notes, its history and bus events,
two officers at once (one wins), and wall alarms acknowledged with their event and the other way round."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.tables import SafetyEvent
from kernel.announce import take_announced
from kernel.db import session_scope
from patrol import event_handling
from patrol.errors import PatrolConflictError, PatrolError
from patrol.event_handling import Actor, EventStateConflictError
from patrol.models import Takeover
from patrol.tables import VideoWall, WallAlarm
from patrol.tables.event_handling import EventAction, EventActionKind, EventDisposition, EventStatus
from tests.bureau import START, Bureau

OFFICER = Actor(None, "officer1")


def add_event(bureau: Bureau, camera: str = "S11-GATE", severity: str = "major") -> int:
    with session_scope(bureau.factory) as session:
        camera_id = bureau.cameras[camera]
        school_id = bureau.schools[camera.split("-", maxsplit=1)[0]]
        event = SafetyEvent(
            camera_id=camera_id,
            school_id=school_id,
            type="intrusion",
            rule="intrusion-rule",
            severity=severity,
            started_at=START,
        )
        session.add(event)
        session.flush()
        return event.id


def officer(bureau: Bureau, name: str = "officer1") -> Actor:
    return Actor(bureau.users[name], name)


def test_the_steps_go_in_order_record_history_and_announce_on_duty(bureau: Bureau) -> None:
    event_id = add_event(bureau)
    me = officer(bureau)
    with bureau.factory() as session:
        event = session.get(SafetyEvent, event_id)
        assert event is not None
        with pytest.raises(EventStateConflictError, match="acknowledge it first"):
            event_handling.resolve(session, event, note="false alarm", actor=me, now=START)
        session.rollback()
        with pytest.raises(EventStateConflictError, match="only an acknowledged or dispatched event"):
            event_handling.dispatch(session, event, to="school security", actor=me, now=START)
        session.rollback()
        take_announced(session)
        done = event_handling.acknowledge(session, event, actor=me, now=START, note="on it")
        assert done.status is EventStatus.ACKNOWLEDGED and done.acknowledged_by == me.user_id
        assert done.acknowledged_at == START
        with pytest.raises(EventStateConflictError) as twice:
            event_handling.acknowledge(session, event, actor=me, now=START)
        assert twice.value.status is EventStatus.ACKNOWLEDGED and twice.value.by_user == me.user_id
        assert "is acknowledged since" in str(twice.value)
        with pytest.raises(PatrolError, match="whom"):
            event_handling.dispatch(session, event, to="  ", actor=me, now=START)
        sent = event_handling.dispatch(
            session, event, to="school security S11 / 110", actor=me, now=START + timedelta(minutes=1)
        )
        assert sent.status is EventStatus.DISPATCHED and sent.dispatched_to == "school security S11 / 110"
        again = event_handling.dispatch(
            session, event, to="police 110", actor=me, now=START + timedelta(minutes=2)
        )
        assert again.dispatched_to == "police 110"  # re-dispatch: the last one is who is on the way
        with pytest.raises(PatrolError, match="note is required"):
            event_handling.resolve(session, event, note=" ", actor=me, now=START)
        event_handling.add_note(
            session, event, note="guard reached the gate", actor=me, now=START + timedelta(minutes=3)
        )
        closed = event_handling.resolve(
            session, event, note="a parent, let in", actor=me, now=START + timedelta(minutes=5)
        )
        assert closed.status is EventStatus.RESOLVED and closed.resolved_at == START + timedelta(minutes=5)
        with pytest.raises(PatrolConflictError):
            event_handling.resolve(session, event, note="again", actor=me, now=START)
        event_handling.add_note(
            session, event, note="followed up with the school", actor=me, now=START + timedelta(minutes=9)
        )
        announced = take_announced(session)
        session.commit()
        steps = [(a.action, a.note) for a in event_handling.history(session, event_id)]
    assert steps == [
        (EventActionKind.ACKNOWLEDGE, "on it"),
        (EventActionKind.DISPATCH, "school security S11 / 110"),
        (EventActionKind.DISPATCH, "police 110"),
        (EventActionKind.NOTE, "guard reached the gate"),
        (EventActionKind.RESOLVE, "a parent, let in"),
        (EventActionKind.NOTE, "followed up with the school"),
    ]
    assert [(e.topic, e.type) for e in announced] == [
        ("duty", "event.acknowledged"),
        ("duty", "event.dispatched"),
        ("duty", "event.dispatched"),
        ("duty", "event.note"),
        ("duty", "event.resolved"),
        ("duty", "event.note"),
    ]
    first = announced[0].payload
    assert first["event_id"] == event_id and first["school_code"] == "S11" and first["district_code"] == "D1"
    assert first["camera_code"] == "S11-GATE" and first["by_username"] == "officer1" and first["via"] == "console"
    assert announced[1].payload["dispatched_to"] == "school security S11 / 110"
    assert announced[-1].payload["status"] == "resolved"


def test_a_rolled_back_step_leaves_nothing_behind(bureau: Bureau) -> None:
    event_id = add_event(bureau)
    with bureau.factory() as session:
        event = session.get(SafetyEvent, event_id)
        assert event is not None
        event_handling.acknowledge(session, event, actor=officer(bureau), now=START)
        session.rollback()
    with bureau.factory() as session:
        assert session.get(EventDisposition, event_id) is None
        assert session.scalars(select(EventAction)).all() == []


def test_two_officers_acknowledging_at_once_one_wins(bureau: Bureau) -> None:
    """Both read the event as new; the conditional UPDATE lets exactly one through (PostgreSQL and SQLite)."""
    event_id = add_event(bureau)
    barrier = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def take_on(name: str) -> None:
        session: Session = bureau.factory()
        try:
            event = session.get(SafetyEvent, event_id)
            assert event is not None
            assert event_handling.status_of(session.get(EventDisposition, event_id)) is EventStatus.NEW
            barrier.wait(timeout=10)
            event_handling.acknowledge(session, event, actor=officer(bureau, name), now=START)
            session.commit()
            outcomes[name] = "won"
        except EventStateConflictError as err:
            session.rollback()
            outcomes[name] = f"lost: {err.status.value}"
        finally:
            session.close()

    threads = [threading.Thread(target=take_on, args=(n,)) for n in ("officer1", "officer2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes.values()) == ["lost: acknowledged", "won"], outcomes
    winner = next(n for n, o in outcomes.items() if o == "won")
    with bureau.factory() as session:
        disposition = session.get(EventDisposition, event_id)
        assert disposition is not None and disposition.acknowledged_by == bureau.users[winner]
        actions = session.scalars(select(EventAction).where(EventAction.event_id == event_id)).all()
        assert [a.user_id for a in actions] == [bureau.users[winner]]


def _walls_with_alarm(bureau: Bureau, event_id: int) -> list[int]:
    with session_scope(bureau.factory) as session:
        ids = []
        for name, districts in (("bureau", []), ("d1", ["D1"])):
            wall = VideoWall(name=name, layout="4", takeover=Takeover.TILE, districts=districts, schools=[])
            session.add(wall)
            session.flush()
            alarm = WallAlarm(
                wall_id=wall.id,
                alarm_key=f"event:{event_id}",
                event_id=event_id,
                camera_code="S11-GATE",
                school_code="S11",
                district_code="D1",
                title="intrusion",
                severity="major",
                raised_at=START,
            )
            session.add(alarm)
            session.flush()
            ids.append(alarm.id)
        return ids


def test_acknowledging_the_event_acknowledges_its_wall_alarms(bureau: Bureau) -> None:
    event_id = add_event(bureau)
    alarm_ids = _walls_with_alarm(bureau, event_id)
    with bureau.factory() as session:
        event = session.get(SafetyEvent, event_id)
        assert event is not None
        take_announced(session)
        event_handling.acknowledge(session, event, actor=officer(bureau), now=START)
        announced = take_announced(session)
        session.commit()
        alarms = session.scalars(select(WallAlarm).order_by(WallAlarm.id)).all()
    assert [a.id for a in alarms] == alarm_ids
    assert all(a.acknowledged_at == START and a.acknowledged_by == bureau.users["officer1"] for a in alarms)
    walls = [e for e in announced if e.topic == "walls"]
    assert [(e.type, e.payload["alarm_id"], e.payload["school_code"]) for e in walls] == [
        ("wall.alarm_acknowledged", alarm_ids[0], "S11"),
        ("wall.alarm_acknowledged", alarm_ids[1], "S11"),
    ]


def test_acknowledging_the_wall_alarm_acknowledges_its_event(bureau: Bureau) -> None:
    event_id = add_event(bureau)
    alarm_id = _walls_with_alarm(bureau, event_id)[0]
    with bureau.factory() as session:
        alarm = session.get(WallAlarm, alarm_id)
        assert alarm is not None
        take_announced(session)
        assert event_handling.acknowledge_event_of_alarm(session, alarm, actor=officer(bureau), now=START)
        announced = take_announced(session)
        session.commit()
        disposition = session.get(EventDisposition, event_id)
        assert disposition is not None and disposition.status is EventStatus.ACKNOWLEDGED
        assert [a.note for a in event_handling.history(session, event_id)] == [
            f"acknowledged on the video wall (alarm {alarm_id})"
        ]
    assert [(e.type, e.payload["via"]) for e in announced] == [("event.acknowledged", "wall")]
    # The event was acknowledged already: acknowledging another of its alarms leaves the event as it is.
    with bureau.factory() as session:
        other = session.scalars(select(WallAlarm).where(WallAlarm.id != alarm_id)).one()
        assert not event_handling.acknowledge_event_of_alarm(session, other, actor=officer(bureau), now=START)
        session.rollback()


def test_an_alarm_acknowledged_meanwhile_is_a_conflict(bureau: Bureau) -> None:
    event_id = add_event(bureau)
    alarm_id = _walls_with_alarm(bureau, event_id)[0]
    with bureau.factory() as stale:
        alarm = stale.get(WallAlarm, alarm_id)
        assert alarm is not None and alarm.acknowledged_at is None
        with bureau.factory() as session:  # somebody acknowledges the event first
            event = session.get(SafetyEvent, event_id)
            assert event is not None
            event_handling.acknowledge(session, event, actor=officer(bureau, "officer2"), now=START)
            session.commit()
        with pytest.raises(PatrolConflictError, match=f"alarm {alarm_id} was acknowledged a moment ago"):
            event_handling.acknowledge_event_of_alarm(stale, alarm, actor=officer(bureau), now=START)
