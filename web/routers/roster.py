"""The duty roster: shifts (a leader on duty and duty officers), who is on duty now, handover notes.

People are named by username in requests and shown as id, username and display name in responses. A
bureau-scoped administrator rosters shifts (one by one or generated from a pattern; every change audited); the
shift on duty writes handover notes and the shift taking over acknowledges them. Every scope reads the roster
(who is on duty is whom a school calls: :mod:`web.scopes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrol import roster
from patrol.roster import GeneratedShifts, ShiftPattern
from patrol.tables import DutyShift, HandoverNote
from web.auth import CurrentUser
from web.deps import AppSettings, Clock, DbSession, UnitOfWork
from web.models import Role, ScopeKind, User
from web.permissions import BureauAdminUser, DutyUser
from web.routers.audit import record_change
from web.schemas import UserRef, user_refs

router = APIRouter(prefix="/api", tags=["roster"])

Username = Annotated[str, Field(min_length=1, max_length=64, description="A username")]
LEADER_ROLES = (Role.LEADER_ON_DUTY, Role.ADMINISTRATOR)
OFFICER_ROLES = (Role.DUTY_OFFICER,)


class ShiftBase(BaseModel):
    """Fields every shift representation has."""

    label: str = Field("", max_length=64, description="A name for the shift, e.g. 12-01 night")
    starts_at: AwareDatetime = Field(description="Start (on duty from this instant)")
    ends_at: AwareDatetime = Field(description="End (no longer on duty at this instant)")


class ShiftCreate(ShiftBase):
    """A new shift (or the replacement of one)."""

    model_config = ConfigDict(extra="forbid")

    leader: Username = Field(description="Username of the leader on duty (leader_on_duty or administrator)")
    officers: list[Username] = Field(
        min_length=1, max_length=20, description="Usernames of the duty officers, first called first"
    )


class ShiftPublic(ShiftBase):
    """A shift as the API shows it."""

    id: int = Field(description="Shift id")
    leader: UserRef | None = Field(description="Leader on duty")
    officers: list[UserRef] = Field(description="Duty officers, first called first")
    created_at: datetime = Field(description="When it was rostered")


class OnDutyPublic(BaseModel):
    """Who is on duty at one instant, and who takes over."""

    at: datetime = Field(description="The instant")
    shift: ShiftPublic | None = Field(description="The shift on duty (null: nobody rostered)")
    next: ShiftPublic | None = Field(description="The next shift to start")


class GenerateRequest(BaseModel):
    """Shifts for some days from a pattern of local boundary times and rotations."""

    model_config = ConfigDict(extra="forbid")

    first_day: date = Field(description="First local day")
    days: int = Field(ge=1, le=62, description="How many days")
    boundaries: list[time] = Field(
        min_length=1,
        max_length=12,
        description="Local times the shifts change, in order, e.g. 08:00 and 20:00 (the last shift of a day "
        "ends at the first boundary of the next day)",
    )
    teams: list[list[Username]] = Field(
        min_length=1, max_length=50, description="Officer teams, taking the slots in turn"
    )
    leaders: list[Username] = Field(
        min_length=1, max_length=50, description="Leaders taking the slots in turn (list one twice for a day)"
    )


class SkippedPublic(BaseModel):
    """A slot of the pattern that was not rostered."""

    starts_at: datetime = Field(description="Slot start")
    ends_at: datetime = Field(description="Slot end")
    reason: str = Field(description="Why it was skipped")
    conflicting_shift_id: int | None = Field(None, description="The existing shift it would overlap")


class GeneratedPublic(BaseModel):
    """What a generation did."""

    created: list[ShiftPublic] = Field(description="Shifts rostered")
    skipped: list[SkippedPublic] = Field(description="Slots skipped")


class HandoverCreate(BaseModel):
    """A handover note of the shift on duty."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1, max_length=roster.MAX_HANDOVER_CHARS, description="What the next shift must know"
    )


class HandoverPublic(BaseModel):
    """A handover note."""

    id: int = Field(description="Note id")
    shift_id: int = Field(description="The shift that wrote it")
    author: UserRef | None = Field(description="Who wrote it")
    text: str = Field(description="The note")
    created_at: datetime = Field(description="When it was written")
    acknowledged_by: UserRef | None = Field(None, description="Who of the next shift acknowledged it")
    acknowledged_at: datetime | None = Field(None, description="When")


def _rostered_ids(session: Session, leaders: Sequence[str], officers: Sequence[str]) -> dict[str, int]:
    """The ids of the leaders and officers named, checked (422 naming whoever cannot be rostered so)."""
    names = {*leaders, *officers}
    users = {u.username: u for u in session.scalars(select(User).where(User.username.in_(names)))}
    unknown = sorted(names - set(users))
    if unknown:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"unknown users: {', '.join(unknown)}")
    inactive = sorted(n for n in names if not users[n].active)
    if inactive:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"inactive users: {', '.join(inactive)}")
    narrow = sorted(n for n in names if users[n].scope is not ScopeKind.BUREAU)
    if narrow:
        # The duty room's shift watches the whole bureau: its phones get every school's alarms.
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"only bureau-wide accounts can be on the duty roster, not: {', '.join(narrow)}",
        )
    for what, wanted, roles in (
        ("leaders on duty (leader_on_duty or administrator)", leaders, LEADER_ROLES),
        ("duty officers (duty_officer)", officers, OFFICER_ROLES),
    ):
        wrong = sorted({n for n in wanted if users[n].role not in roles})
        if wrong:
            named = ", ".join(f"{n} ({users[n].role.value})" for n in wrong)
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"not {what}: {named}")
    return {n: u.id for n, u in users.items()}


def shifts_public(session: Session, shifts: Sequence[DutyShift]) -> list[ShiftPublic]:
    """The API view of shifts (two queries for all of them)."""
    officers = roster.officers_of(session, [s.id for s in shifts])
    refs = user_refs(session, [*(s.leader_id for s in shifts), *(u for ids in officers.values() for u in ids)])
    return [
        ShiftPublic(
            id=s.id,
            label=s.label,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            leader=refs.get(s.leader_id),
            officers=[refs[u] for u in officers.get(s.id, []) if u in refs],
            created_at=s.created_at,
        )
        for s in shifts
    ]


def _one(session: Session, shift: DutyShift | None) -> ShiftPublic | None:
    return None if shift is None else shifts_public(session, [shift])[0]


def _handovers_public(session: Session, notes: Sequence[HandoverNote]) -> list[HandoverPublic]:
    refs = user_refs(session, [*(n.author_id for n in notes), *(n.acknowledged_by for n in notes)])
    return [
        HandoverPublic(
            id=n.id,
            shift_id=n.shift_id,
            author=refs.get(n.author_id) if n.author_id is not None else None,
            text=n.text,
            created_at=n.created_at,
            acknowledged_by=refs.get(n.acknowledged_by) if n.acknowledged_by is not None else None,
            acknowledged_at=n.acknowledged_at,
        )
        for n in notes
    ]


@router.get("/roster/shifts", summary="Shifts in a time range")
def list_shifts(
    session: DbSession,
    _user: CurrentUser,
    clock: Clock,
    start: Annotated[
        AwareDatetime | None, Query(description="From (ISO 8601 with offset; default: a day ago)")
    ] = None,
    end: Annotated[AwareDatetime | None, Query(description="Until (default: a week from start)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most shifts returned")] = 200,
) -> list[ShiftPublic]:
    """Shifts that overlap ``[start, end)``, in time order."""
    start = start or clock() - timedelta(days=1)
    end = end or start + timedelta(days=7)
    if end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "end is after start")
    return shifts_public(session, roster.shifts_between(session, start, end, limit=limit))


def _zone(settings: AppSettings) -> ZoneInfo:
    return ZoneInfo(settings.instance.timezone)


@router.post("/roster/shifts", status_code=status.HTTP_201_CREATED, summary="Roster a shift")
def create_shift(
    body: ShiftCreate,
    request: Request,
    work: UnitOfWork,
    user: BureauAdminUser,
    clock: Clock,
    settings: AppSettings,
) -> ShiftPublic:
    """A new shift; 409 naming the shift it would overlap, 422 naming users who cannot be rostered. Unopened
    patrol tasks in its time that have no shift become its tasks."""
    ids = _rostered_ids(work.session, [body.leader], body.officers)
    shift = roster.create_shift(
        work.session,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        leader_id=ids[body.leader],
        officer_ids=[ids[n] for n in body.officers],
        now=clock(),
        zone=_zone(settings),
        label=body.label,
    )
    work.session.flush()
    record_change(work.session, request, user, f"shift {shift.id}", "create", body.model_dump(mode="json"))
    work.commit()
    return shifts_public(work.session, [shift])[0]


@router.get("/roster/shifts/{shift_id}", summary="One shift")
def get_shift(shift_id: int, session: DbSession, _user: CurrentUser) -> ShiftPublic:
    """A shift with its leader and officers."""
    return shifts_public(session, [roster.get_shift(session, shift_id)])[0]


@router.put("/roster/shifts/{shift_id}", summary="Replace a shift")
def replace_shift(
    shift_id: int,
    body: ShiftCreate,
    request: Request,
    work: UnitOfWork,
    user: BureauAdminUser,
    clock: Clock,
    settings: AppSettings,
) -> ShiftPublic:
    """Change a shift that has not ended (409 for a past shift or an overlap). Its patrol tasks not open yet go
    to the shift that covers their window's start after the change (or none, until one is rostered)."""
    ids = _rostered_ids(work.session, [body.leader], body.officers)
    shift = roster.replace_shift(
        work.session,
        shift_id,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        leader_id=ids[body.leader],
        officer_ids=[ids[n] for n in body.officers],
        now=clock(),
        zone=_zone(settings),
        label=body.label,
    )
    record_change(work.session, request, user, f"shift {shift.id}", "replace", body.model_dump(mode="json"))
    work.commit()
    return shifts_public(work.session, [shift])[0]


@router.delete("/roster/shifts/{shift_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a shift")
def delete_shift(
    shift_id: int,
    request: Request,
    work: UnitOfWork,
    user: BureauAdminUser,
    clock: Clock,
    settings: AppSettings,
) -> Response:
    """Remove a shift that has not ended, with its handover notes (409 for a past shift); its patrol tasks are
    left without a shift until one is rostered in their time."""
    roster.delete_shift(work.session, shift_id, now=clock(), zone=_zone(settings))
    record_change(work.session, request, user, f"shift {shift_id}", "delete")
    work.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/roster/generate", status_code=status.HTTP_201_CREATED, summary="Roster shifts from a pattern")
def generate_shifts(
    body: GenerateRequest,
    request: Request,
    work: UnitOfWork,
    user: BureauAdminUser,
    clock: Clock,
    settings: AppSettings,
) -> GeneratedPublic:
    """Shifts for ``days`` days from ``first_day``, at the local boundary times, teams and leaders in turn.

    Slots that overlap an existing shift, or have already started, are skipped and listed.
    """
    ids = _rostered_ids(work.session, body.leaders, [n for team in body.teams for n in team])
    pattern = ShiftPattern(
        boundaries=tuple(body.boundaries),
        teams=tuple(tuple(ids[n] for n in team) for team in body.teams),
        leaders=tuple(ids[n] for n in body.leaders),
    )
    result: GeneratedShifts = roster.generate_shifts(
        work.session,
        first_day=body.first_day,
        days=body.days,
        pattern=pattern,
        zone=_zone(settings),
        now=clock(),
    )
    work.session.flush()
    changes = body.model_dump(mode="json") | {"created": [s.id for s in result.created]}
    record_change(work.session, request, user, "roster", "generate", changes)
    work.commit()
    return GeneratedPublic(
        created=shifts_public(work.session, result.created),
        skipped=[
            SkippedPublic(
                starts_at=k.starts_at,
                ends_at=k.ends_at,
                reason=k.reason,
                conflicting_shift_id=k.conflicting_shift_id,
            )
            for k in result.skipped
        ],
    )


@router.get("/roster/now", summary="Who is on duty now")
def now_on_duty(session: DbSession, _user: CurrentUser, clock: Clock) -> OnDutyPublic:
    """The shift on duty now (its leader and officers) and the next shift to start."""
    now = clock()
    current = roster.shift_at(session, now)
    following = roster.next_shift(session, now)
    return OnDutyPublic(at=now, shift=_one(session, current), next=_one(session, following))


@router.get("/roster/shifts/{shift_id}/handovers", summary="Handover notes of a shift")
def list_handovers(shift_id: int, session: DbSession, _user: CurrentUser) -> list[HandoverPublic]:
    """The notes the shift handed over, oldest first."""
    return _handovers_public(session, roster.handovers_of(session, shift_id))


def _require_on(session: Session, shift: DutyShift, user: User, doing: str) -> None:
    if user.id not in roster.people_of(session, shift):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"{user.username} is not on shift {shift.id}: only its people {doing}"
        )


@router.post(
    "/roster/shifts/{shift_id}/handovers", status_code=status.HTTP_201_CREATED, summary="Write a handover note"
)
def write_handover(
    shift_id: int, body: HandoverCreate, work: UnitOfWork, user: DutyUser, clock: Clock, settings: AppSettings
) -> HandoverPublic:
    """A note of the shift on duty, by its leader or one of its officers (403 for others, 409 off duty)."""
    shift = roster.get_shift(work.session, shift_id)
    _require_on(work.session, shift, user, "write its handover notes")
    note = roster.write_handover(
        work.session, shift.id, author_id=user.id, text=body.text, now=clock(), zone=_zone(settings)
    )
    work.commit()
    return _handovers_public(work.session, [note])[0]


@router.post("/roster/handovers/{note_id}/acknowledge", summary="Acknowledge a handover note")
def acknowledge_handover(
    note_id: int, work: UnitOfWork, user: DutyUser, clock: Clock, settings: AppSettings
) -> HandoverPublic:
    """The shift taking over has read the note (its leader or one of its officers; once)."""
    note = roster.get_handover(work.session, note_id)
    following = roster.shift_after(work.session, roster.get_shift(work.session, note.shift_id))
    if following is not None:
        _require_on(work.session, following, user, "acknowledge the notes handed to it")
    note = roster.acknowledge_handover(work.session, note_id, user_id=user.id, now=clock(), zone=_zone(settings))
    work.commit()
    return _handovers_public(work.session, [note])[0]
