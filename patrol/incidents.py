"""Incidents and their reporting clocks (DESIGN.md, "Rules taken from the reference documents").

An incident classified major (较大以上) starts four clocks at its classification: the school reports to the bureau
by phone (15 min) and in writing (30 min), the bureau's duty room to the city by phone (20 min) and in writing
(40 min), as configured in ``patrol.clocks``. The officer marks each report made; a clock past its deadline is
escalated once to the leader who was on duty when it ran out (or, with nobody rostered then, the leader on duty
now); one escalated while nobody at all was rostered is escalated again as soon as a leader is on duty.
Follow-up reports (续报) are logged. An incident belongs to the report of the local day it was classified on (or
occurred, when it never was), even when its clocks run past midnight.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from config.patrol import ClockConfig
from kernel.announce import announce
from kernel.calendar import local_day_bounds
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.facts import FleetFacts
from patrol.models import ClockKind, IncidentStatus, Severity
from patrol.roster import local_time, on_duty
from patrol.tables import DutyShift, Incident, IncidentClock, IncidentFollowUp
from patrol.topics import duty_event
from registry.models import School

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 4000
CLOCK_ORDER = (ClockKind.SCHOOL_PHONE, ClockKind.BUREAU_PHONE, ClockKind.SCHOOL_WRITTEN, ClockKind.BUREAU_WRITTEN)


def clock_minutes(config: ClockConfig) -> dict[ClockKind, int]:
    """Minutes from classification to each clock's deadline."""
    return {
        ClockKind.SCHOOL_PHONE: config.school_phone_min,
        ClockKind.SCHOOL_WRITTEN: config.school_written_min,
        ClockKind.BUREAU_PHONE: config.bureau_phone_min,
        ClockKind.BUREAU_WRITTEN: config.bureau_written_min,
    }


@dataclass(frozen=True, slots=True)
class ClockState:
    """A clock as the duty officer sees it at one moment."""

    kind: ClockKind
    started_at: datetime
    deadline: datetime
    seconds_remaining: float | None
    """Until the deadline (negative when overdue); None once done."""
    done: bool
    late: bool
    """Done after its deadline, or still open past it."""
    done_at: datetime | None
    done_by: int | None
    note: str
    escalated_at: datetime | None
    escalated_to: int | None


def clock_state(clock: IncidentClock, now: datetime) -> ClockState:
    """``clock`` at ``now``."""
    done = clock.done_at is not None
    late = clock.done_at > clock.deadline if clock.done_at is not None else now > clock.deadline
    return ClockState(
        kind=clock.kind,
        started_at=clock.started_at,
        deadline=clock.deadline,
        seconds_remaining=None if done else (clock.deadline - now).total_seconds(),
        done=done,
        late=late,
        done_at=clock.done_at,
        done_by=clock.done_by,
        note=clock.note,
        escalated_at=clock.escalated_at,
        escalated_to=clock.escalated_to,
    )


def report_day(incident: Incident, zone: ZoneInfo) -> date:
    """The local day whose report the incident belongs to: the day it was classified major, else occurred."""
    return (incident.classified_at or incident.occurred_at).astimezone(zone).date()


def in_report_of(start: datetime, end: datetime) -> ColumnElement[bool]:
    """Incidents whose report day (see :func:`report_day`) falls in ``[start, end)``, as a query condition."""
    classified = Incident.classified_at.is_not(None) & (Incident.classified_at >= start)
    classified &= Incident.classified_at < end
    unclassified = (
        Incident.classified_at.is_(None) & (Incident.occurred_at >= start) & (Incident.occurred_at < end)
    )
    return classified | unclassified


def incidents_of_day(session: Session, day: date, zone: ZoneInfo) -> list[Incident]:
    """The incidents of ``day``'s report (see :func:`report_day`), oldest first."""
    start, end = local_day_bounds(day, zone)
    return list(session.scalars(select(Incident).where(in_report_of(start, end)).order_by(Incident.occurred_at)))


def get_incident(session: Session, incident_id: int, *, for_update: bool = False) -> Incident:
    """The incident with this id (locked for the transaction when ``for_update``)."""
    stmt = select(Incident).where(Incident.id == incident_id)
    if for_update:
        stmt = stmt.with_for_update()
    incident = session.scalars(stmt).one_or_none()
    if incident is None:
        raise PatrolNotFoundError(f"no incident with id {incident_id}")
    return incident


def clocks_of(session: Session, incident_ids: Sequence[int]) -> dict[int, list[IncidentClock]]:
    """The clocks of each incident in :data:`CLOCK_ORDER` (one query)."""
    found: dict[int, list[IncidentClock]] = {i: [] for i in incident_ids}
    if not incident_ids:
        return found
    for clock in session.scalars(select(IncidentClock).where(IncidentClock.incident_id.in_(incident_ids))):
        found[clock.incident_id].append(clock)
    for clocks in found.values():
        clocks.sort(key=lambda c: CLOCK_ORDER.index(c.kind))
    return found


def _text(text: str, what: str, *, required: bool) -> str:
    text = text.strip()
    if required and not text:
        raise PatrolError(f"{what} needs text")
    if len(text) > MAX_TEXT_CHARS:
        raise PatrolError(f"{what} has at most {MAX_TEXT_CHARS} characters, not {len(text)}")
    return text


def _school_code(session: Session, school_id: int) -> str | None:
    school = session.get(School, school_id)
    return school.code if school else None


def create_incident(
    session: Session,
    *,
    school_id: int,
    title: str,
    occurred_at: datetime,
    now: datetime,
    zone: ZoneInfo,
    by_user: int | None,
    summary: str = "",
    event_id: int | None = None,
    severity: Severity = Severity.GENERAL,
    clocks: ClockConfig | None = None,
) -> Incident:
    """A new open incident (announces ``incident.created``); created major, its clocks start at once.

    ``zone``: the local time of messages (``instance.timezone``).
    """
    title = _text(title, "an incident title", required=True)
    if len(title) > 200:
        raise PatrolError(f"an incident title has at most 200 characters, not {len(title)}")
    if occurred_at.tzinfo is None:
        raise PatrolError("occurred_at needs a timezone (ISO 8601 with an offset, e.g. +08:00)")
    if occurred_at > now:
        raise PatrolError(
            f"the incident cannot occur in the future ({local_time(occurred_at, zone)} is after "
            f"{local_time(now, zone)})"
        )
    school_code = _school_code(session, school_id)
    if school_code is None:
        raise PatrolNotFoundError(f"no school with id {school_id}")
    incident = Incident(
        title=title,
        school_id=school_id,
        event_id=event_id,
        severity=Severity.GENERAL,
        status=IncidentStatus.OPEN,
        summary=_text(summary, "an incident summary", required=False),
        occurred_at=occurred_at,
        created_at=now,
        created_by=by_user,
    )
    session.add(incident)
    session.flush()
    announce(
        session,
        duty_event(
            "incident.created",
            {
                "incident_id": incident.id,
                "school_code": school_code,
                "title": title,
                "occurred_at": occurred_at.astimezone(UTC).isoformat(),
                "event_id": event_id,
            },
        ),
    )
    if severity is Severity.MAJOR:
        if clocks is None:
            raise PatrolError("a major incident needs the clock configuration to start its clocks")
        classify(session, incident, Severity.MAJOR, now=now, zone=zone, by_user=by_user, clocks=clocks)
    return incident


def incident_from_event(
    session: Session,
    facts: FleetFacts,
    event_id: int,
    *,
    now: datetime,
    zone: ZoneInfo,
    by_user: int | None,
    title: str | None = None,
    summary: str | None = None,
    severity: Severity = Severity.GENERAL,
    clocks: ClockConfig | None = None,
) -> Incident:
    """An incident at the event's school and time, unless the event already has an open one."""
    fact = facts.event(session, event_id)
    if fact is None:
        raise PatrolNotFoundError(f"no event with id {event_id}")
    existing = session.scalars(
        select(Incident).where(Incident.event_id == event_id, Incident.status == IncidentStatus.OPEN)
    ).first()
    if existing is not None:
        raise PatrolConflictError(f"event {event_id} already has open incident {existing.id}")
    return create_incident(
        session,
        school_id=fact.school_id,
        title=title or f"{fact.type} at {fact.camera_code}",
        occurred_at=fact.started_at,
        now=now,
        zone=zone,
        by_user=by_user,
        summary=fact.detail if summary is None else summary,
        event_id=event_id,
        severity=severity,
        clocks=clocks,
    )


def _check_open(incident: Incident, doing: str) -> None:
    if incident.status is IncidentStatus.CLOSED:
        raise PatrolConflictError(f"incident {incident.id} is closed: it cannot be {doing}")


def classify(
    session: Session,
    incident: Incident,
    severity: Severity,
    *,
    now: datetime,
    zone: ZoneInfo,
    by_user: int | None,
    clocks: ClockConfig,
) -> bool:
    """Classify the incident; True when this started its clocks (first classified major, ``incident.major``).

    Classifying a major incident major again changes nothing (its clocks keep running from the first time); a
    major incident is not downgraded, since its reports are already due.
    """
    _check_open(incident, "classified")
    if incident.classified_at is not None:
        if severity is Severity.MAJOR:
            return False
        at = local_time(incident.classified_at, zone)
        raise PatrolConflictError(
            f"incident {incident.id} was classified major at {at}: its reports are due and it is not downgraded"
        )
    if severity is Severity.GENERAL:
        incident.severity = Severity.GENERAL
        return False
    incident.severity = Severity.MAJOR
    incident.classified_at = now
    incident.classified_by = by_user
    minutes = clock_minutes(clocks)
    for kind in CLOCK_ORDER:
        session.add(
            IncidentClock(
                incident_id=incident.id,
                kind=kind,
                started_at=now,
                deadline=now + timedelta(minutes=minutes[kind]),
                note="",
            )
        )
    announce(
        session,
        duty_event(
            "incident.major",
            {
                "incident_id": incident.id,
                "school_code": _school_code(session, incident.school_id),
                "title": incident.title,
                "classified_at": now.astimezone(UTC).isoformat(),
                "deadlines": {
                    kind.value: (now + timedelta(minutes=minutes[kind])).astimezone(UTC).isoformat()
                    for kind in CLOCK_ORDER
                },
            },
        ),
    )
    session.flush()
    return True


def mark_done(
    session: Session,
    incident: Incident,
    kind: ClockKind,
    *,
    now: datetime,
    zone: ZoneInfo,
    by_user: int | None,
    note: str = "",
) -> IncidentClock:
    """The report of clock ``kind`` was made; after the deadline it counts as late (see :func:`clock_state`)."""
    _check_open(incident, "reported on")
    clock = session.scalars(
        select(IncidentClock).where(IncidentClock.incident_id == incident.id, IncidentClock.kind == kind)
    ).one_or_none()
    if clock is None:
        raise PatrolNotFoundError(
            f"incident {incident.id} has no {kind.value} clock: only a major incident has reporting clocks"
        )
    if clock.done_at is not None:
        at = local_time(clock.done_at, zone)
        raise PatrolConflictError(f"the {kind.value} report of incident {incident.id} was marked done at {at}")
    clock.done_at, clock.done_by = now, by_user
    clock.note = _text(note, "a report note", required=False)
    return clock


def add_followup(
    session: Session, incident: Incident, text: str, *, now: datetime, by_user: int | None
) -> IncidentFollowUp:
    """A follow-up report (续报) of an open incident."""
    _check_open(incident, "followed up")
    followup = IncidentFollowUp(
        incident_id=incident.id, at=now, by_user=by_user, text=_text(text, "a follow-up report", required=True)
    )
    session.add(followup)
    session.flush()
    return followup


def followups_of(session: Session, incident_id: int) -> list[IncidentFollowUp]:
    """The follow-up reports of an incident, in time order."""
    return list(
        session.scalars(
            select(IncidentFollowUp)
            .where(IncidentFollowUp.incident_id == incident_id)
            .order_by(IncidentFollowUp.at, IncidentFollowUp.id)
        )
    )


def close(session: Session, incident: Incident, *, now: datetime, summary: str | None = None) -> None:
    """Close the incident once every report is made (who may close it is the caller's rule)."""
    _check_open(incident, "closed again")
    open_kinds = [c.kind.value for c in clocks_of(session, [incident.id])[incident.id] if c.done_at is None]
    if open_kinds:
        raise PatrolConflictError(
            f"incident {incident.id} still has reports to make ({', '.join(open_kinds)}): mark them done first"
        )
    if summary is not None:
        incident.summary = _text(summary, "an incident summary", required=False)
    incident.status = IncidentStatus.CLOSED
    incident.closed_at = now


def _leader_at(shifts: Sequence[DutyShift], at: datetime) -> int | None:
    for shift in shifts:
        if shift.starts_at <= at < shift.ends_at:
            return shift.leader_id
    return None


def check_clocks(session: Session, now: datetime) -> int:
    """Escalate the open clocks past their deadline; how many were escalated (``clock.overdue`` each).

    A clock is escalated once, to the leader on duty when it ran out (its deadline), or, when nobody was
    rostered then, the leader on duty now (``clock.overdue`` names the leader, null when there is none). A clock
    escalated to nobody is escalated again, once, to the leader on duty at a later check as soon as there is
    one (until then it is not announced again).
    """
    rows = session.execute(
        select(IncidentClock, Incident, School.code)
        .join(Incident, Incident.id == IncidentClock.incident_id)
        .join(School, School.id == Incident.school_id)
        .where(
            IncidentClock.done_at.is_(None),
            IncidentClock.deadline < now,
            or_(IncidentClock.escalated_at.is_(None), IncidentClock.escalated_to.is_(None)),
        )
        .order_by(IncidentClock.deadline, IncidentClock.id)
    ).all()
    if not rows:
        return 0
    duty_now = on_duty(session, now)
    fresh = [(c, i, code) for c, i, code in rows if c.escalated_at is None]
    # Escalated to nobody before: again only once a leader is on duty.
    again = [(c, i, code) for c, i, code in rows if c.escalated_at is not None] if duty_now else []
    # The shifts of every new deadline, in one query.
    shifts: list[DutyShift] = []
    if fresh:
        first = min(clock.deadline for clock, _, _ in fresh)
        last = max(clock.deadline for clock, _, _ in fresh)
        shifts = list(
            session.scalars(select(DutyShift).where(DutyShift.starts_at <= last, DutyShift.ends_at > first))
        )
    escalated = 0
    for clock, incident, school_code in sorted(fresh + again, key=lambda r: (r[0].deadline, r[0].id)):
        leader_id = _leader_at(shifts, clock.deadline) if clock.escalated_at is None else None
        if leader_id is None and duty_now is not None:
            leader_id = duty_now.leader_id
        clock.escalated_at, clock.escalated_to = now, leader_id
        escalated += 1
        announce(
            session,
            duty_event(
                "clock.overdue",
                {
                    "incident_id": incident.id,
                    "title": incident.title,
                    "school_code": school_code,
                    "kind": clock.kind.value,
                    "deadline": clock.deadline.astimezone(UTC).isoformat(),
                    "leader_id": leader_id,
                },
            ),
        )
    if escalated:
        log.warning(
            "%d reporting clocks overdue, escalated (%d again, to a leader now on duty)", escalated, len(again)
        )
    return escalated
