"""The duty room's handling of an analytics event: acknowledge → dispatch → resolve, with notes.

The state machine (a missing ``event_dispositions`` row reads as ``new``)::

    new ──acknowledge──▶ acknowledged ──dispatch──▶ dispatched ──resolve──▶ resolved
                              └──────────────resolve──────────────▲   (dispatch again: re-dispatch)

A new event cannot be resolved or dispatched before somebody acknowledged it (the history then always says who
took it on); notes go on an event in any state. Every step is one conditional UPDATE (``WHERE status IN the
allowed states``), so of two officers acknowledging at the same moment exactly one wins and the other gets a
:class:`EventStateConflictError` (the API answers 409 naming who was first). Each step adds an
``event_actions`` row and announces ``event.acknowledged`` / ``event.dispatched`` / ``event.resolved`` /
``event.note`` on the ``duty`` topic, published after the commit.

Acknowledging an event acknowledges its open wall alarms (the walls resume rotation within a tick of the wall
runner); acknowledging a wall alarm acknowledges its event (:func:`acknowledge_event_of_alarm`, called by the
walls API). Both paths lock the event's disposition row first, so they serialize instead of deadlocking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from pydantic import JsonValue
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from analytics.tables import SafetyEvent
from kernel.announce import announce
from kernel.db import dialect_insert
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.tables.event_handling import EventAction, EventActionKind, EventDisposition, EventStatus
from patrol.tables.walls import WallAlarm
from patrol.topics import duty_event, wall_event
from registry.models import Camera, District, School

MAX_NOTE_CHARS = 1000
MAX_DISPATCH_CHARS = 200
VIA_CONSOLE = "console"
VIA_WALL = "wall"

_TRANSITIONS: dict[EventActionKind, tuple[frozenset[EventStatus], EventStatus, str]] = {
    EventActionKind.ACKNOWLEDGE: (frozenset({EventStatus.NEW}), EventStatus.ACKNOWLEDGED, "only a new event"),
    EventActionKind.DISPATCH: (
        frozenset({EventStatus.ACKNOWLEDGED, EventStatus.DISPATCHED}),
        EventStatus.DISPATCHED,
        "only an acknowledged or dispatched event",
    ),
    EventActionKind.RESOLVE: (
        frozenset({EventStatus.ACKNOWLEDGED, EventStatus.DISPATCHED}),
        EventStatus.RESOLVED,
        "only an acknowledged or dispatched event",
    ),
}
_BUS_TYPES = {
    EventActionKind.ACKNOWLEDGE: "event.acknowledged",
    EventActionKind.DISPATCH: "event.dispatched",
    EventActionKind.RESOLVE: "event.resolved",
    EventActionKind.NOTE: "event.note",
}
_VERBS = {
    EventActionKind.ACKNOWLEDGE: "acknowledged",
    EventActionKind.DISPATCH: "dispatched",
    EventActionKind.RESOLVE: "resolved",
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: a user's id (None: the system) and login name, copied into the announcements."""

    user_id: int | None
    username: str


class EventStateConflictError(PatrolConflictError):
    """The event's state does not allow the step (e.g. acknowledged a moment ago by somebody else).

    ``status`` is the state found; ``by_user``/``at`` who moved it there and when (None when unknown)."""

    def __init__(self, message: str, *, status: EventStatus, by_user: int | None, at: datetime | None) -> None:
        super().__init__(message)
        self.status = status
        self.by_user = by_user
        self.at = at


@dataclass(frozen=True, slots=True)
class EventWhere:
    """Where an event happened, for announcements and the feed's scope filter."""

    camera_code: str
    school_code: str
    district_code: str


def status_of(disposition: EventDisposition | None) -> EventStatus:
    """The handling state of an event whose disposition row is ``disposition`` (None: not acted on yet)."""
    return disposition.status if disposition is not None else EventStatus.NEW


def get_event(session: Session, event_id: int) -> SafetyEvent:
    """The event, or :class:`PatrolNotFoundError`."""
    event = session.get(SafetyEvent, event_id)
    if event is None:
        raise PatrolNotFoundError(f"no event {event_id}")
    return event


def where_of(session: Session, event: SafetyEvent) -> EventWhere:
    """The camera, school and district codes of ``event``."""
    row = session.execute(
        select(Camera.code, School.code, District.code)
        .join(School, School.id == Camera.school_id)
        .join(District, District.id == School.district_id)
        .where(Camera.id == event.camera_id)
    ).one()
    return EventWhere(str(row[0]), str(row[1]), str(row[2]))


def history(session: Session, event_id: int) -> list[EventAction]:
    """Every action and note on the event, oldest first."""
    return list(
        session.scalars(
            select(EventAction).where(EventAction.event_id == event_id).order_by(EventAction.at, EventAction.id)
        )
    )


def acknowledge(
    session: Session,
    event: SafetyEvent,
    *,
    actor: Actor,
    now: datetime,
    note: str = "",
    zone: tzinfo = UTC,
) -> EventDisposition:
    """Take the event on (new → acknowledged) and acknowledge its open wall alarms."""
    disposition = _step(session, event, EventActionKind.ACKNOWLEDGE, actor=actor, now=now, note=note, zone=zone)
    _acknowledge_wall_alarms(session, event, actor=actor, now=now)
    return disposition


def dispatch(
    session: Session,
    event: SafetyEvent,
    *,
    to: str,
    actor: Actor,
    now: datetime,
    note: str = "",
    to_user_id: int | None = None,
    zone: tzinfo = UTC,
) -> EventDisposition:
    """Send somebody (``to``: free text such as ``school security S11 / 110``, or a user's name) to the scene
    (acknowledged or dispatched → dispatched; dispatching again records who was sent instead)."""
    to = to.strip()
    if not to:
        raise PatrolError("say whom the event is dispatched to")
    if len(to) > MAX_DISPATCH_CHARS:
        raise PatrolError(f"'dispatched to' has at most {MAX_DISPATCH_CHARS} characters, not {len(to)}")
    return _step(
        session,
        event,
        EventActionKind.DISPATCH,
        actor=actor,
        now=now,
        note=note,
        zone=zone,
        dispatched_to=to,
        to_user_id=to_user_id,
    )


def resolve(
    session: Session, event: SafetyEvent, *, note: str, actor: Actor, now: datetime, zone: tzinfo = UTC
) -> EventDisposition:
    """Close the event (acknowledged or dispatched → resolved); the note saying how is required."""
    _note(note, required=True)
    return _step(session, event, EventActionKind.RESOLVE, actor=actor, now=now, note=note, zone=zone)


def add_note(session: Session, event: SafetyEvent, *, note: str, actor: Actor, now: datetime) -> EventAction:
    """A note on the event's history, in any state."""
    text = _note(note, required=True)
    action = EventAction(event_id=event.id, action=EventActionKind.NOTE, user_id=actor.user_id, note=text, at=now)
    session.add(action)
    session.execute(update(EventDisposition).where(EventDisposition.event_id == event.id).values(updated_at=now))
    session.flush()
    current = session.get(EventDisposition, event.id, populate_existing=True)
    _announce(session, event, EventActionKind.NOTE, status_of(current), actor, now, text, via=VIA_CONSOLE)
    return action


def acknowledge_event_of_alarm(session: Session, alarm: WallAlarm, *, actor: Actor, now: datetime) -> bool:
    """Call from a wall alarm's acknowledgement before marking the alarms: locks the alarm's event (its
    disposition row, as :func:`acknowledge` does first), re-reads the alarm and raises
    :class:`PatrolConflictError` if it was acknowledged meanwhile, and acknowledges the event if it is still
    new. True when the event was acknowledged by this call."""
    event = session.get(SafetyEvent, alarm.event_id) if alarm.event_id is not None else None
    current: EventDisposition | None = None
    if event is not None:
        _ensure_disposition(session, event.id, now)
        current = session.scalars(
            select(EventDisposition).where(EventDisposition.event_id == event.id).with_for_update()
        ).one()
    session.refresh(alarm, with_for_update=True)
    if alarm.acknowledged_at is not None:
        raise PatrolConflictError(f"alarm {alarm.id} was acknowledged a moment ago")
    if event is None or current is None or current.status is not EventStatus.NEW:
        return False
    _step(
        session,
        event,
        EventActionKind.ACKNOWLEDGE,
        actor=actor,
        now=now,
        note=f"acknowledged on the video wall (alarm {alarm.id})",
        zone=UTC,
        via=VIA_WALL,
    )
    return True


# -- internals ----------------------------------------------------------------------------------------------


def _note(note: str, *, required: bool) -> str:
    note = note.strip()
    if required and not note:
        raise PatrolError("a note is required (say what was done)")
    if len(note) > MAX_NOTE_CHARS:
        raise PatrolError(f"a note has at most {MAX_NOTE_CHARS} characters, not {len(note)}")
    return note


def _ensure_disposition(session: Session, event_id: int, now: datetime) -> None:
    # One INSERT .. ON CONFLICT DO NOTHING: two first actions at once never collide on the primary key.
    session.execute(
        dialect_insert(session, EventDisposition)
        .values(event_id=event_id, status=EventStatus.NEW, dispatched_to="", updated_at=now)
        .on_conflict_do_nothing()
    )


def _step(
    session: Session,
    event: SafetyEvent,
    kind: EventActionKind,
    *,
    actor: Actor,
    now: datetime,
    note: str,
    zone: tzinfo,
    dispatched_to: str = "",
    to_user_id: int | None = None,
    via: str = VIA_CONSOLE,
) -> EventDisposition:
    allowed, to, rule = _TRANSITIONS[kind]
    text = _note(note, required=False)
    _ensure_disposition(session, event.id, now)
    values: dict[str, object] = {"status": to, "updated_at": now}
    if kind is EventActionKind.ACKNOWLEDGE:
        values |= {"acknowledged_by": actor.user_id, "acknowledged_at": now}
    elif kind is EventActionKind.DISPATCH:
        values |= {"dispatched_by": actor.user_id, "dispatched_at": now, "dispatched_to": dispatched_to}
    else:
        values |= {"resolved_by": actor.user_id, "resolved_at": now}
    # The conditional UPDATE is the decision: a concurrent step waits for the row lock (PostgreSQL) or the
    # write lock (SQLite) and then finds the status moved on, so it changes nothing.
    moved = session.scalar(
        update(EventDisposition)
        .where(EventDisposition.event_id == event.id, EventDisposition.status.in_(sorted(allowed)))
        .values(**values)
        .returning(EventDisposition.event_id)
        .execution_options(synchronize_session=False)
    )
    current = session.get(EventDisposition, event.id, populate_existing=True)
    if moved is None or current is None:
        raise _conflict(event.id, current, kind, rule, zone)
    stored = " → ".join(part for part in (dispatched_to, text) if part) if dispatched_to else text
    session.add(EventAction(event_id=event.id, action=kind, user_id=actor.user_id, note=stored[:1000], at=now))
    session.flush()
    _announce(
        session, event, kind, to, actor, now, text, via=via, dispatched_to=dispatched_to, to_user_id=to_user_id
    )
    return current


def _conflict(
    event_id: int, current: EventDisposition | None, kind: EventActionKind, rule: str, zone: tzinfo
) -> EventStateConflictError:
    status = status_of(current)
    by_user, at = None, None
    if current is not None:
        if status is EventStatus.ACKNOWLEDGED:
            by_user, at = current.acknowledged_by, current.acknowledged_at
        elif status is EventStatus.DISPATCHED:
            by_user, at = current.dispatched_by, current.dispatched_at
        elif status is EventStatus.RESOLVED:
            by_user, at = current.resolved_by, current.resolved_at
    when = f" since {at.astimezone(zone).isoformat(timespec='minutes')}" if at is not None else ""
    hint = " (acknowledge it first)" if status is EventStatus.NEW else ""
    message = f"event {event_id} is {status.value}{when}: {rule} can be {_VERBS[kind]}{hint}"
    return EventStateConflictError(message, status=status, by_user=by_user, at=at)


def _announce(
    session: Session,
    event: SafetyEvent,
    kind: EventActionKind,
    status: EventStatus,
    actor: Actor,
    now: datetime,
    note: str,
    *,
    via: str,
    dispatched_to: str = "",
    to_user_id: int | None = None,
) -> None:
    where = where_of(session, event)
    payload: dict[str, JsonValue] = {
        "event_id": event.id,
        "action": kind.value,
        "status": status.value,
        "type": event.type,
        "severity": event.severity,
        "camera_code": where.camera_code,
        "school_code": where.school_code,
        "district_code": where.district_code,
        "by_user_id": actor.user_id,
        "by_username": actor.username,
        "note": note,
        "at": now.astimezone(UTC).isoformat(),
        "via": via,
    }
    if kind is EventActionKind.DISPATCH:
        payload |= {"dispatched_to": dispatched_to, "to_user_id": to_user_id}
    announce(session, duty_event(_BUS_TYPES[kind], payload))


def _acknowledge_wall_alarms(session: Session, event: SafetyEvent, *, actor: Actor, now: datetime) -> int:
    """Acknowledge the event's open alarms on every wall (after the disposition row is locked)."""
    alarms = session.scalars(
        select(WallAlarm)
        .where(WallAlarm.event_id == event.id, WallAlarm.acknowledged_at.is_(None))
        .order_by(WallAlarm.id)
        .with_for_update()
    ).all()
    for alarm in alarms:
        alarm.acknowledged_at, alarm.acknowledged_by = now, actor.user_id
        announce(
            session,
            wall_event(
                "wall.alarm_acknowledged",
                {
                    "wall_id": alarm.wall_id,
                    "alarm_id": alarm.id,
                    "event_id": alarm.event_id,
                    "camera_code": alarm.camera_code,
                    "school_code": alarm.school_code,
                    "by_user_id": actor.user_id,
                    "by_username": actor.username,
                    "via": "event",
                },
            ),
        )
    session.flush()
    return len(alarms)
