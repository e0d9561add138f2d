"""Incidents and their reporting clocks: classified major, an incident must be reported by the school to the
bureau (phone 15 min, writing 30 min) and by the bureau to the city (phone 20 min, writing 40 min).

The duty room files, classifies and reports; a major incident is closed by the leader on duty, a general one by
the duty room, and only once every report is made. Each clock shows its deadline and the seconds left (negative
when overdue) at the app clock's now. A scoped user sees and works on the incidents of its own schools only
(:mod:`web.scopes`): the others are 404.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from patrol import incidents
from patrol.incidents import MAX_TEXT_CHARS
from patrol.models import ClockKind, IncidentStatus, Severity
from patrol.tables import Incident, IncidentClock, IncidentFollowUp
from registry.models import District, School
from web.auth import CurrentUser
from web.deps import AppFacts, AppSettings, Clock, DbSession, UnitOfWork
from web.models import Role, User
from web.permissions import DutyUser
from web.schemas import Page, UserRef, user_refs
from web.scopes import Scope, not_found

router = APIRouter(prefix="/api", tags=["incidents"])

CLOSERS_OF_MAJOR = (Role.LEADER_ON_DUTY, Role.ADMINISTRATOR)
Row = tuple[Incident, str, str, str]
"""An incident with its school code and name and district code."""


def incident_for(session: Session, incident_id: int, user: User, *, for_update: bool = False) -> Incident:
    """The incident, if its school is in ``user``'s scope (404 otherwise, as for a missing one)."""
    incident = incidents.get_incident(session, incident_id, for_update=for_update)
    if not Scope.of(user).allows_school(session, incident.school_id):
        raise not_found(f"incident with id {incident_id}")
    return incident


def check_close(user: User, incident: Incident) -> None:
    """A major incident is closed by the leader on duty (or an administrator), a general one by the duty room."""
    if incident.severity is Severity.MAJOR and user.role not in CLOSERS_OF_MAJOR:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a {user.role.value} may not close major incident {incident.id} "
            "(needs leader_on_duty or administrator)",
        )


class IncidentCreate(BaseModel):
    """A new incident: from an event (``event_id``), or at a school (``school_code``, ``occurred_at``, title)."""

    model_config = ConfigDict(extra="forbid")

    event_id: int | None = Field(None, ge=1, description="The event (school and time from it)")
    school_code: str | None = Field(None, min_length=1, max_length=32, description="School (manual incidents)")
    occurred_at: AwareDatetime | None = Field(None, description="When it happened (manual incidents)")
    title: str | None = Field(None, min_length=1, max_length=200, description="What happened (default: the event)")
    summary: str | None = Field(None, max_length=MAX_TEXT_CHARS, description="Details")
    severity: Severity = Field(Severity.GENERAL, description="major starts the reporting clocks at once")

    @model_validator(mode="after")
    def _manual_or_event(self) -> IncidentCreate:
        if self.event_id is not None:
            if self.school_code is not None or self.occurred_at is not None:
                raise ValueError("an incident from an event takes the event's school and time: give only event_id")
        elif self.school_code is None or self.occurred_at is None or self.title is None:
            raise ValueError("give event_id, or school_code, occurred_at and title")
        return self


class ClockPublic(BaseModel):
    """A reporting clock at the app's now."""

    kind: ClockKind = Field(description="school_phone, bureau_phone, school_written or bureau_written")
    started_at: datetime = Field(description="When it started (the classification as major)")
    deadline: datetime = Field(description="Report by")
    seconds_remaining: float | None = Field(
        description="Until the deadline, negative when overdue; null once done"
    )
    done: bool = Field(description="The report was made")
    late: bool = Field(description="Made after the deadline, or still not made past it")
    done_at: datetime | None = Field(None, description="When the report was marked made")
    done_by: UserRef | None = Field(None, description="Who marked it")
    note: str = Field(description="Note of the report")
    escalated_at: datetime | None = Field(None, description="When its lateness was escalated")
    escalated_to: UserRef | None = Field(
        None,
        description="The leader on duty it was escalated to (null with escalated_at: nobody was rostered; it is "
        "escalated again as soon as a leader is on duty)",
    )


class IncidentPublic(BaseModel):
    """An incident with its clocks."""

    id: int = Field(description="Incident id")
    title: str = Field(description="What happened")
    school_code: str = Field(description="School")
    school_name: str = Field(description="School name")
    district_code: str = Field(description="District of the school")
    event_id: int | None = Field(None, description="The analytics event it came from")
    severity: Severity = Field(description="general or major")
    status: IncidentStatus = Field(description="open or closed")
    summary: str = Field(description="Details")
    occurred_at: datetime = Field(description="When it happened")
    report_day: date = Field(description="Local day whose daily report it belongs to (the day it was classified)")
    created_at: datetime = Field(description="When it was filed")
    created_by: UserRef | None = Field(None, description="Who filed it")
    classified_at: datetime | None = Field(None, description="When it was classified major (the clocks' start)")
    classified_by: UserRef | None = Field(None, description="Who classified it")
    closed_at: datetime | None = Field(None, description="When it was closed")
    clocks: list[ClockPublic] = Field(description="Reporting clocks (major incidents)")
    overdue_clocks: int = Field(ge=0, description="Clocks past their deadline and not done")


class FollowUpPublic(BaseModel):
    """A follow-up report (续报)."""

    id: int = Field(description="Follow-up id")
    at: datetime = Field(description="When it was reported")
    by: UserRef | None = Field(None, description="Who reported it")
    text: str = Field(description="The report")


class IncidentDetail(IncidentPublic):
    """An incident with its clocks and follow-up reports."""

    followups: list[FollowUpPublic] = Field(description="Follow-up reports in time order")


class ClassifyRequest(BaseModel):
    """The incident's classification."""

    model_config = ConfigDict(extra="forbid")

    severity: Severity = Field(
        description="major (较大以上) starts the reporting clocks; classifying again does not"
    )


class ClockDoneRequest(BaseModel):
    """A report was made."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=MAX_TEXT_CHARS, description="To whom, how, what was said")


class FollowUpCreate(BaseModel):
    """A follow-up report."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="What is new")


class CloseRequest(BaseModel):
    """Close the incident."""

    model_config = ConfigDict(extra="forbid")

    summary: str | None = Field(
        None, max_length=MAX_TEXT_CHARS, description="Final summary (replaces the summary)"
    )


def _select() -> Select[Row]:
    return (
        select(Incident, School.code, School.name, District.code)
        .join(School, School.id == Incident.school_id)
        .join(District, District.id == School.district_id)
    )


def _clock_public(clock: IncidentClock, now: datetime, refs: dict[int, UserRef]) -> ClockPublic:
    state = incidents.clock_state(clock, now)
    return ClockPublic(
        kind=state.kind,
        started_at=state.started_at,
        deadline=state.deadline,
        seconds_remaining=state.seconds_remaining,
        done=state.done,
        late=state.late,
        done_at=state.done_at,
        done_by=refs.get(state.done_by) if state.done_by is not None else None,
        note=state.note,
        escalated_at=state.escalated_at,
        escalated_to=refs.get(state.escalated_to) if state.escalated_to is not None else None,
    )


def _publics(session: Session, rows: Sequence[Row], now: datetime, zone: ZoneInfo) -> list[IncidentPublic]:
    clocks = incidents.clocks_of(session, [r[0].id for r in rows])
    refs = user_refs(
        session,
        [
            *(u for r in rows for u in (r[0].created_by, r[0].classified_by)),
            *(u for cs in clocks.values() for c in cs for u in (c.done_by, c.escalated_to)),
        ],
    )
    out = []
    for incident, school_code, school_name, district_code in rows:
        shown = [_clock_public(c, now, refs) for c in clocks[incident.id]]
        out.append(
            IncidentPublic(
                id=incident.id,
                title=incident.title,
                school_code=school_code,
                school_name=school_name,
                district_code=district_code,
                event_id=incident.event_id,
                severity=incident.severity,
                status=incident.status,
                summary=incident.summary,
                occurred_at=incident.occurred_at,
                report_day=incidents.report_day(incident, zone),
                created_at=incident.created_at,
                created_by=refs.get(incident.created_by) if incident.created_by is not None else None,
                classified_at=incident.classified_at,
                classified_by=refs.get(incident.classified_by) if incident.classified_by is not None else None,
                closed_at=incident.closed_at,
                clocks=shown,
                overdue_clocks=sum(1 for c in shown if not c.done and c.late),
            )
        )
    return out


def _followups_public(session: Session, followups: Sequence[IncidentFollowUp]) -> list[FollowUpPublic]:
    refs = user_refs(session, [f.by_user for f in followups])
    return [
        FollowUpPublic(id=f.id, at=f.at, by=refs.get(f.by_user) if f.by_user is not None else None, text=f.text)
        for f in followups
    ]


def _detail(session: Session, incident: Incident, now: datetime, zone: ZoneInfo) -> IncidentDetail:
    row = session.execute(_select().where(Incident.id == incident.id)).tuples().one()
    public = _publics(session, [row], now, zone)[0]
    followups = _followups_public(session, incidents.followups_of(session, incident.id))
    return IncidentDetail(**public.model_dump(), followups=followups)


def _zone(settings: AppSettings) -> ZoneInfo:
    return ZoneInfo(settings.instance.timezone)


@router.post("/incidents", status_code=status.HTTP_201_CREATED, summary="File an incident")
def create_incident(
    body: IncidentCreate, work: UnitOfWork, user: DutyUser, clock: Clock, settings: AppSettings, facts: AppFacts
) -> IncidentDetail:
    """An incident from an event (its school and start time) or at a school; created major, its clocks start
    now. 409 when the event already has an open incident."""
    now, clocks, zone = clock(), settings.patrol.clocks, _zone(settings)
    scope = Scope.of(user)
    if body.event_id is not None:
        fact = facts.event(work.session, body.event_id)
        if fact is None or not scope.allows_school(work.session, fact.school_id):
            raise not_found(f"event with id {body.event_id}")
        incident = incidents.incident_from_event(
            work.session,
            facts,
            body.event_id,
            now=now,
            zone=zone,
            by_user=user.id,
            title=body.title,
            summary=body.summary,
            severity=body.severity,
            clocks=clocks,
        )
    else:
        assert body.school_code is not None and body.occurred_at is not None and body.title is not None
        school_id = work.session.scalar(select(School.id).where(School.code == body.school_code))
        if school_id is None or not scope.allows_school(work.session, school_id):
            raise not_found(f"school with code {body.school_code!r}")
        incident = incidents.create_incident(
            work.session,
            school_id=school_id,
            title=body.title,
            occurred_at=body.occurred_at,
            now=now,
            zone=zone,
            by_user=user.id,
            summary=body.summary or "",
            severity=body.severity,
            clocks=clocks,
        )
    work.commit()
    return _detail(work.session, incident, now, zone)


@router.get("/incidents", summary="List incidents")
def list_incidents(
    session: DbSession,
    user: CurrentUser,
    clock: Clock,
    settings: AppSettings,
    incident_status: Annotated[
        IncidentStatus | None, Query(alias="status", description="Only this status")
    ] = None,
    severity: Annotated[Severity | None, Query(description="Only this severity")] = None,
    school: Annotated[str | None, Query(max_length=32, description="Only this school code")] = None,
    district: Annotated[str | None, Query(max_length=32, description="Only this district code")] = None,
    since: Annotated[
        AwareDatetime | None, Query(description="Occurred at or after (ISO 8601 with offset)")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="Occurred before")] = None,
    overdue: Annotated[
        bool, Query(description="Only incidents with a clock past its deadline and not done")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most rows returned")] = 100,
    offset: Annotated[int, Query(ge=0, description="Rows skipped")] = 0,
) -> Page[IncidentPublic]:
    """Incidents of the user's schools, newest first, with their clocks and the number matching."""
    now = clock()
    stmt = _select().where(Scope.of(user).schools(Incident.school_id))
    if incident_status is not None:
        stmt = stmt.where(Incident.status == incident_status)
    if severity is not None:
        stmt = stmt.where(Incident.severity == severity)
    if school is not None:
        stmt = stmt.where(School.code == school)
    if district is not None:
        stmt = stmt.where(District.code == district)
    if since is not None:
        stmt = stmt.where(Incident.occurred_at >= since)
    if until is not None:
        stmt = stmt.where(Incident.occurred_at < until)
    if overdue:
        stmt = stmt.where(
            exists().where(
                IncidentClock.incident_id == Incident.id,
                IncidentClock.done_at.is_(None),
                IncidentClock.deadline < now,
            )
        )
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(
        stmt.order_by(Incident.occurred_at.desc(), Incident.id.desc()).limit(limit).offset(offset)
    )
    return Page(
        total=total, offset=offset, limit=limit, items=_publics(session, rows.tuples().all(), now, _zone(settings))
    )


@router.get("/incidents/{incident_id}", summary="One incident")
def get_incident(
    incident_id: int, session: DbSession, user: CurrentUser, clock: Clock, settings: AppSettings
) -> IncidentDetail:
    """An incident with its clocks and follow-up reports."""
    return _detail(session, incident_for(session, incident_id, user), clock(), _zone(settings))


@router.post("/incidents/{incident_id}/classify", summary="Classify an incident")
def classify_incident(
    incident_id: int, body: ClassifyRequest, work: UnitOfWork, user: DutyUser, clock: Clock, settings: AppSettings
) -> IncidentDetail:
    """Major starts the four reporting clocks now (once: classifying again does not restart them); a major
    incident is not downgraded (409)."""
    now = clock()
    incident = incident_for(work.session, incident_id, user, for_update=True)
    incidents.classify(
        work.session,
        incident,
        body.severity,
        now=now,
        zone=_zone(settings),
        by_user=user.id,
        clocks=settings.patrol.clocks,
    )
    work.commit()
    return _detail(work.session, incident, now, _zone(settings))


@router.post("/incidents/{incident_id}/clocks/{kind}/done", summary="Mark a report made")
def mark_clock_done(
    incident_id: int,
    kind: ClockKind,
    body: ClockDoneRequest,
    work: UnitOfWork,
    user: DutyUser,
    clock: Clock,
    settings: AppSettings,
) -> ClockPublic:
    """The report of this clock was made; after the deadline it is recorded as late. 409 when already marked."""
    now = clock()
    incident = incident_for(work.session, incident_id, user, for_update=True)
    done = incidents.mark_done(
        work.session, incident, kind, now=now, zone=_zone(settings), by_user=user.id, note=body.note
    )
    work.commit()
    return _clock_public(done, now, user_refs(work.session, [done.done_by, done.escalated_to]))


@router.post(
    "/incidents/{incident_id}/followups", status_code=status.HTTP_201_CREATED, summary="Log a follow-up report"
)
def add_followup(
    incident_id: int, body: FollowUpCreate, work: UnitOfWork, user: DutyUser, clock: Clock
) -> FollowUpPublic:
    """A follow-up report (续报) of an open incident."""
    incident = incident_for(work.session, incident_id, user, for_update=True)
    followup = incidents.add_followup(work.session, incident, body.text, now=clock(), by_user=user.id)
    work.commit()
    return _followups_public(work.session, [followup])[0]


@router.get("/incidents/{incident_id}/followups", summary="Follow-up reports")
def list_followups(incident_id: int, session: DbSession, user: CurrentUser) -> list[FollowUpPublic]:
    """The follow-up reports of an incident, in time order."""
    incident = incident_for(session, incident_id, user)
    return _followups_public(session, incidents.followups_of(session, incident.id))


@router.post("/incidents/{incident_id}/close", summary="Close an incident")
def close_incident(
    incident_id: int, body: CloseRequest, work: UnitOfWork, user: DutyUser, clock: Clock, settings: AppSettings
) -> IncidentDetail:
    """Close once every report is made (409 otherwise); a major incident by the leader on duty (403 for others)."""
    now = clock()
    incident = incident_for(work.session, incident_id, user, for_update=True)
    check_close(user, incident)
    incidents.close(work.session, incident, now=now, summary=body.summary)
    work.commit()
    return _detail(work.session, incident, now, _zone(settings))
