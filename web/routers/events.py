"""Campus-safety events raised by the analytics rules, their evidence pictures, and their handling in the duty
room: acknowledge → dispatch → resolve, with notes (:mod:`patrol.event_handling`).

Every read is limited to the user's scope (an event of another school answers 404). The duty room (duty officer,
leader on duty, administrator) acknowledges, dispatches and resolves; a school's safety officer may also add
notes to its own school's events (what the school did); the auditor and the inspector only read. Every action is
written to the audit log in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from analytics.tables import SafetyEvent
from patrol import event_handling
from patrol.event_handling import MAX_DISPATCH_CHARS, MAX_NOTE_CHARS, Actor, EventStateConflictError
from patrol.tables.event_handling import EventActionKind, EventDisposition, EventStatus
from registry.models import Camera, District, School
from web.audit import AuditAction, record_audit
from web.auth import client_address
from web.deps import AppSettings, Clock, DbSession, UnitOfWork
from web.models import Role, User
from web.permissions import DutyUser, require_roles
from web.schemas import UserRef, user_refs
from web.scopes import Scope, UserScope, not_found

router = APIRouter(prefix="/api", tags=["events"])

NOTE_WRITERS = (Role.DUTY_OFFICER, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR, Role.SCHOOL_SAFETY_OFFICER)
NoteUser = Annotated[User, Depends(require_roles(*NOTE_WRITERS))]
"""Who may add notes to an event: the duty room and the school's safety officer."""
TOTAL_HEADER = "X-Total-Count"
EventId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Event id")]
Row = tuple[SafetyEvent, str, str, str, str, EventDisposition | None]


class DispositionPublic(BaseModel):
    """Who took the event on, whom it was dispatched to, who resolved it, and when."""

    acknowledged_by: UserRef | None = Field(None, description="Who acknowledged it")
    acknowledged_at: datetime | None = Field(None, description="When it was acknowledged")
    dispatched_to: str = Field("", description="Whom it was (last) dispatched to")
    dispatched_by: UserRef | None = Field(None, description="Who dispatched it")
    dispatched_at: datetime | None = Field(None, description="When it was (last) dispatched")
    resolved_by: UserRef | None = Field(None, description="Who resolved it")
    resolved_at: datetime | None = Field(None, description="When it was resolved")
    updated_at: datetime | None = Field(None, description="Last action or note (null: never acted on)")


class EventPublic(BaseModel):
    """One event, with its handling state."""

    id: int = Field(description="Event id")
    type: str = Field(
        description="intrusion, loitering, crowding, line_crossing, guard_post_empty, water_area, fall"
    )
    rule: str = Field(description="The camera's rule that raised it")
    severity: str = Field(description="general or major")
    camera_code: str = Field(description="Camera code")
    school_code: str = Field(description="School code")
    school_name: str = Field(description="School name")
    district_code: str = Field("", description="District code")
    zone: str = Field(description="Zone or line of the rule")
    started_at: datetime = Field(description="When the condition began")
    ended_at: datetime | None = Field(None, description="When it ended (null: still going on)")
    track_ids: list[int] = Field(description="Tracks behind it")
    confidence: float = Field(description="Best detection score seen")
    detail: str = Field(description="What the rule saw, e.g. 7 people")
    evidence_url: str | None = Field(None, description="JPEG with the zone and boxes drawn")
    status: EventStatus = Field(EventStatus.NEW, description="Handling: new, acknowledged, dispatched, resolved")
    disposition: DispositionPublic = Field(default_factory=DispositionPublic, description="Who did what, when")


class EventActionPublic(BaseModel):
    """One step of the handling, or a note."""

    id: int = Field(description="Action id")
    action: EventActionKind = Field(description="acknowledge, dispatch, resolve or note")
    user: UserRef | None = Field(None, description="Who did it (null: a deleted user)")
    note: str = Field(description="The note (for a dispatch: whom to, then the note)")
    at: datetime = Field(description="When")


class EventDetail(EventPublic):
    """An event with its whole handling history."""

    actions: list[EventActionPublic] = Field(description="Actions and notes, oldest first")


class AcknowledgeBody(BaseModel):
    """Acknowledging an event (the note is optional)."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=MAX_NOTE_CHARS, description="Optional note")


class DispatchBody(BaseModel):
    """Dispatching an event to somebody: free text, or a user of the console (``user``: a login name)."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field("", max_length=MAX_DISPATCH_CHARS, description="Whom to, e.g. 'school security S11 / 110'")
    user: str | None = Field(None, max_length=64, description="Or a console user's login name")
    note: str = Field("", max_length=MAX_NOTE_CHARS, description="Optional note")

    @model_validator(mode="after")
    def _somebody(self) -> DispatchBody:
        if not self.to.strip() and not self.user:
            raise ValueError("give 'to' (free text) or 'user' (a login name)")
        return self


class NoteBody(BaseModel):
    """A note: required for resolving (how it ended) and for a plain note."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=MAX_NOTE_CHARS, description="The note")


def _query(scope: Scope) -> Select[tuple[SafetyEvent, str, str, str, str, EventDisposition]]:
    return (
        select(SafetyEvent, Camera.code, School.code, School.name, District.code, EventDisposition)
        .join(Camera, Camera.id == SafetyEvent.camera_id)
        .join(School, School.id == SafetyEvent.school_id)
        .join(District, District.id == School.district_id)
        .outerjoin(EventDisposition, EventDisposition.event_id == SafetyEvent.id)
        .where(scope.schools(SafetyEvent.school_id))
    )


def _public(row: Row, users: dict[int, UserRef]) -> EventPublic:
    event, camera_code, school_code, school_name, district_code, disposition = row
    handling = DispositionPublic()
    if disposition is not None:
        handling = DispositionPublic(
            acknowledged_by=users.get(disposition.acknowledged_by) if disposition.acknowledged_by else None,
            acknowledged_at=disposition.acknowledged_at,
            dispatched_to=disposition.dispatched_to,
            dispatched_by=users.get(disposition.dispatched_by) if disposition.dispatched_by else None,
            dispatched_at=disposition.dispatched_at,
            resolved_by=users.get(disposition.resolved_by) if disposition.resolved_by else None,
            resolved_at=disposition.resolved_at,
            updated_at=disposition.updated_at,
        )
    return EventPublic(
        id=event.id,
        type=event.type,
        rule=event.rule,
        severity=event.severity,
        camera_code=camera_code,
        school_code=school_code,
        school_name=school_name,
        district_code=district_code,
        zone=event.zone,
        started_at=event.started_at,
        ended_at=event.ended_at,
        track_ids=[int(t) for t in event.track_ids.split(",") if t],
        confidence=event.confidence,
        detail=event.detail,
        evidence_url=f"/api/events/{event.id}/evidence.jpg" if event.evidence_jpeg else None,
        status=event_handling.status_of(disposition),
        disposition=handling,
    )


def _user_ids(rows: list[Row]) -> list[int | None]:
    ids: list[int | None] = []
    for row in rows:
        d = row[5]
        if d is not None:
            ids += [d.acknowledged_by, d.dispatched_by, d.resolved_by]
    return ids


@router.get("/events", summary="Campus-safety events")
def list_events(
    session: DbSession,
    scope: UserScope,
    response: Response,
    camera: Annotated[str | None, Query(description="Only this camera code")] = None,
    school: Annotated[str | None, Query(description="Only this school code")] = None,
    event_type: Annotated[str | None, Query(alias="type", description="Only this event type")] = None,
    since: Annotated[datetime | None, Query(description="Started at or after (ISO 8601 with offset)")] = None,
    open_only: Annotated[bool, Query(alias="open", description="Only events still going on")] = False,
    handling: Annotated[
        list[EventStatus] | None,
        Query(alias="status", description="Only events in these handling states (repeat for several)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most events returned")] = 200,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Events skipped")] = 0,
) -> list[EventPublic]:
    """Events in the user's scope, newest first; the header ``X-Total-Count`` says how many match."""
    stmt = _query(scope)
    if camera is not None:
        stmt = stmt.where(Camera.code == camera)
    if school is not None:
        stmt = stmt.where(School.code == school)
    if event_type is not None:
        stmt = stmt.where(SafetyEvent.type == event_type)
    if since is not None:
        if since.tzinfo is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since needs a UTC offset, e.g. +08:00")
        stmt = stmt.where(SafetyEvent.started_at >= since)
    if open_only:
        stmt = stmt.where(SafetyEvent.ended_at.is_(None))
    if handling:
        wanted = set(handling)
        clause: ColumnElement[bool] = EventDisposition.status.in_(sorted(wanted))
        if EventStatus.NEW in wanted:
            clause = or_(clause, EventDisposition.event_id.is_(None))
        stmt = stmt.where(clause)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    response.headers[TOTAL_HEADER] = str(total)
    order = (SafetyEvent.started_at.desc(), SafetyEvent.id.desc())
    rows: list[Row] = [
        (e, camera_code, school_code, name, district_code, d)
        for e, camera_code, school_code, name, district_code, d in session.execute(
            stmt.order_by(*order).offset(offset).limit(limit)
        )
    ]
    users = user_refs(session, _user_ids(rows))
    return [_public(row, users) for row in rows]


def _row(session: Session, scope: Scope, event_id: int) -> Row:
    found = session.execute(_query(scope).where(SafetyEvent.id == event_id)).one_or_none()
    if found is None:
        raise not_found(f"event {event_id}")
    event, camera_code, school_code, name, district_code, disposition = found
    return event, camera_code, school_code, name, district_code, disposition


def _detail(session: Session, scope: Scope, event_id: int) -> EventDetail:
    row = _row(session, scope, event_id)
    actions = event_handling.history(session, event_id)
    users = user_refs(session, [*_user_ids([row]), *(a.user_id for a in actions)])
    return EventDetail(
        **_public(row, users).model_dump(),
        actions=[
            EventActionPublic(
                id=a.id, action=a.action, user=users.get(a.user_id) if a.user_id else None, note=a.note, at=a.at
            )
            for a in actions
        ],
    )


@router.get("/events/{event_id}", summary="An event with its handling history")
def get_event(event_id: EventId, session: DbSession, scope: UserScope) -> EventDetail:
    """The event, its handling state and every action and note on it."""
    return _detail(session, scope, event_id)


@router.get(
    "/events/{event_id}/evidence.jpg",
    summary="An event's evidence picture",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def event_evidence(event_id: EventId, session: DbSession, scope: UserScope) -> Response:
    """The frame that confirmed the event, with the zone (yellow) and the boxes (red) drawn."""
    event = session.get(SafetyEvent, event_id)
    if event is None or event.evidence_jpeg is None or not scope.allows_school(session, event.school_id):
        raise not_found(f"evidence for event {event_id}")
    return Response(
        event.evidence_jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )


def _acting_on(session: Session, scope: Scope, event_id: int) -> tuple[SafetyEvent, Row]:
    row = _row(session, scope, event_id)
    return row[0], row


def _conflict(session: Session, err: EventStateConflictError, settings: AppSettings) -> HTTPException:
    """The 409 naming who moved the event on, and when in the instance's time zone."""
    parts = [f"event is {err.status.value}"]
    if err.by_user is not None:
        who = user_refs(session, [err.by_user]).get(err.by_user)
        if who is not None:
            parts.append(f"by {who.display_name or who.username} ({who.username})")
    if err.at is not None:
        parts.append(err.at.astimezone(ZoneInfo(settings.instance.timezone)).isoformat(timespec="minutes"))
    return HTTPException(status.HTTP_409_CONFLICT, f"{err} — {' '.join(parts)}")


def _audit(request: Request, session: Session, user: User, row: Row, action: str, **detail: object) -> None:
    event, camera_code, school_code, _name, _district, _d = row
    record_audit(
        session,
        AuditAction.EVENT_ACTION,
        actor=user,
        target=f"event {event.id} {event.type} {camera_code}",
        ip=client_address(request),
        detail={"event_id": event.id, "action": action, "school_code": school_code, **detail},
    )


def _actor(user: User) -> Actor:
    return Actor(user.id, user.username)


@router.post("/events/{event_id}/acknowledge", summary="Acknowledge an event")
def acknowledge_event(
    event_id: EventId,
    request: Request,
    work: UnitOfWork,
    user: DutyUser,
    scope: UserScope,
    clock: Clock,
    settings: AppSettings,
    body: AcknowledgeBody | None = None,
) -> EventDetail:
    """Take the event on (new → acknowledged); its alarms on the video walls are acknowledged with it, so the
    walls resume rotating. 409 when somebody acknowledged it first (the answer names who)."""
    session = work.session
    event, row = _acting_on(session, scope, event_id)
    note = body.note if body else ""
    zone = ZoneInfo(settings.instance.timezone)
    try:
        event_handling.acknowledge(session, event, actor=_actor(user), now=clock(), note=note, zone=zone)
    except EventStateConflictError as err:
        raise _conflict(session, err, settings) from err
    _audit(request, session, user, row, "acknowledge", note=note.strip())
    work.commit()
    return _detail(session, scope, event_id)


@router.post("/events/{event_id}/dispatch", summary="Dispatch an event")
def dispatch_event(
    event_id: EventId,
    body: DispatchBody,
    request: Request,
    work: UnitOfWork,
    user: DutyUser,
    scope: UserScope,
    clock: Clock,
    settings: AppSettings,
) -> EventDetail:
    """Send somebody to the scene (acknowledged or dispatched → dispatched): free text such as
    ``school security S11 / 110``, or a console user who can see the event's school."""
    session = work.session
    event, row = _acting_on(session, scope, event_id)
    to, to_user_id = body.to.strip(), None
    if body.user:
        target = session.scalars(select(User).where(User.username == body.user)).one_or_none()
        if target is None or not target.active:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"no active user {body.user!r}")
        if not Scope.of(target).allows_school(session, event.school_id):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"user {body.user!r} cannot see school {row[2]}"
            )
        named = f"{target.display_name or target.username} ({target.username})"
        if target.phone:
            named += f" {target.phone}"
        to, to_user_id = (f"{named} — {to}" if to else named)[:MAX_DISPATCH_CHARS], target.id
    try:
        event_handling.dispatch(
            session,
            event,
            to=to,
            actor=_actor(user),
            now=clock(),
            note=body.note,
            to_user_id=to_user_id,
            zone=ZoneInfo(settings.instance.timezone),
        )
    except EventStateConflictError as err:
        raise _conflict(session, err, settings) from err
    _audit(request, session, user, row, "dispatch", to=to, to_user_id=to_user_id, note=body.note.strip())
    work.commit()
    return _detail(session, scope, event_id)


@router.post("/events/{event_id}/resolve", summary="Resolve an event")
def resolve_event(
    event_id: EventId,
    body: NoteBody,
    request: Request,
    work: UnitOfWork,
    user: DutyUser,
    scope: UserScope,
    clock: Clock,
    settings: AppSettings,
) -> EventDetail:
    """Close the event (acknowledged or dispatched → resolved) with a note saying how it ended."""
    session = work.session
    event, row = _acting_on(session, scope, event_id)
    try:
        event_handling.resolve(
            session,
            event,
            note=body.note,
            actor=_actor(user),
            now=clock(),
            zone=ZoneInfo(settings.instance.timezone),
        )
    except EventStateConflictError as err:
        raise _conflict(session, err, settings) from err
    _audit(request, session, user, row, "resolve", note=body.note.strip())
    work.commit()
    return _detail(session, scope, event_id)


@router.post("/events/{event_id}/notes", summary="Add a note to an event", status_code=status.HTTP_201_CREATED)
def note_event(
    event_id: EventId,
    body: NoteBody,
    request: Request,
    work: UnitOfWork,
    user: NoteUser,
    scope: UserScope,
    clock: Clock,
) -> EventDetail:
    """A note on the event's history, in any state (the duty room, or the school's own safety officer)."""
    session = work.session
    event, row = _acting_on(session, scope, event_id)
    event_handling.add_note(session, event, note=body.note, actor=_actor(user), now=clock())
    _audit(request, session, user, row, "note", note=body.note.strip())
    work.commit()
    return _detail(session, scope, event_id)
