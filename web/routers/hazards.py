"""Hazards (隐患 → 整改): filed by the duty room or an inspector, rectified by the school, verified by the leader.

Steps are one endpoint each: ``start`` (open → rectifying) and ``submit`` (rectifying → submitted, needs an
after picture) by the school or the duty room on its behalf; ``reopen`` (submitted or closed → rectifying, with
a note) by the duty room; ``verify`` (submitted → closed) by the leader on duty. Pictures are uploaded as
multipart files: before pictures by whoever files hazards, after pictures by whoever rectifies them. A scoped
user sees, files and works on the hazards of its own schools only (:mod:`web.scopes`): the others are 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, cast

from fastapi import APIRouter, File, Form, HTTPException, Query, Response, UploadFile, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from patrol import hazards
from patrol.hazards import MAX_NOTE_CHARS, NOT_CLOSED
from patrol.models import EvidenceStage, HazardSource, HazardStatus, Severity
from patrol.tables import Hazard, HazardAction, HazardEvidence
from registry.models import Camera, District, School
from web.auth import CurrentUser
from web.deps import AppFacts, AppSettings, Clock, DbSession, UnitOfWork
from web.models import User
from web.permissions import (
    HAZARD_FILERS,
    HAZARD_RECTIFIERS,
    DutyUser,
    FilerUser,
    HazardWorkerUser,
    LeaderUser,
    RectifierUser,
)
from web.schemas import Page, UserRef, user_refs
from web.scopes import Scope, not_found
from web.uploads import read_picture

router = APIRouter(prefix="/api", tags=["hazards"])

Row = tuple[Hazard, str, str, str, str | None]
"""A hazard with its school code and name, district code and camera code."""
Note = Annotated[str, Field(max_length=MAX_NOTE_CHARS, description="What was done or why")]


# --- Who may see and touch which hazard: the one place for it. ---


def hazard_for(session: Session, hazard_id: int, user: User, *, for_update: bool = False) -> Hazard:
    """The hazard, if its school is in ``user``'s scope (404 otherwise, as for a missing one)."""
    hazard = hazards.get_hazard(session, hazard_id, for_update=for_update)
    if not Scope.of(user).allows_school(session, hazard.school_id):
        raise not_found(f"hazard with id {hazard_id}")
    return hazard


def visible(stmt: Select[Row], user: User) -> Select[Row]:
    """``stmt`` limited to the hazards of the schools in ``user``'s scope."""
    return stmt.where(Scope.of(user).schools(Hazard.school_id))


def check_upload(user: User, stage: EvidenceStage) -> None:
    """Before pictures come from whoever files hazards, after pictures from whoever rectifies them."""
    allowed = HAZARD_FILERS if stage is EvidenceStage.BEFORE else HAZARD_RECTIFIERS
    if user.role not in allowed:
        names = ", ".join(sorted(r.value for r in allowed))
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"a {user.role.value} may not upload {stage.value} pictures (needs: {names})",
        )


# --- Schemas ---


class HazardCreate(BaseModel):
    """A new hazard: at a school (``school_code`` and ``title``), or from an analytics event (``event_id``)."""

    model_config = ConfigDict(extra="forbid")

    event_id: int | None = Field(None, ge=1, description="The event it was found from (school and camera from it)")
    school_code: str | None = Field(None, min_length=1, max_length=32, description="School (manual hazards)")
    camera_code: str | None = Field(None, min_length=1, max_length=64, description="Camera it was seen on")
    title: str | None = Field(None, min_length=1, max_length=200, description="What is wrong (default: the event)")
    description: str | None = Field(None, max_length=4000, description="Details")
    severity: Severity | None = Field(None, description="general or major (default: the event's, else general)")
    deadline: AwareDatetime | None = Field(None, description="Rectify by (default: by severity, configured days)")

    @model_validator(mode="after")
    def _manual_or_event(self) -> HazardCreate:
        if self.event_id is not None:
            if self.school_code is not None or self.camera_code is not None:
                raise ValueError("a hazard from an event takes the event's school and camera: give only event_id")
        elif self.school_code is None or self.title is None:
            raise ValueError("give event_id, or school_code and title")
        return self


class HazardPublic(BaseModel):
    """A hazard as lists show it."""

    id: int = Field(description="Hazard id")
    school_code: str = Field(description="School")
    school_name: str = Field(description="School name")
    district_code: str = Field(description="District of the school")
    camera_code: str | None = Field(None, description="Camera it was seen on")
    source: HazardSource = Field(description="patrol, spot_check, event or manual")
    source_id: int | None = Field(None, description="The patrol task item, inspection finding or event")
    title: str = Field(description="What is wrong")
    description: str = Field(description="Details")
    severity: Severity = Field(description="general or major")
    status: HazardStatus = Field(description="open, rectifying, submitted or closed")
    deadline: datetime = Field(description="Rectify by")
    overdue: bool = Field(description="Not closed and past its deadline")
    hours_overdue: float = Field(ge=0, description="Hours past the deadline (0 when not overdue)")
    created_by: UserRef | None = Field(None, description="Who filed it (null: the patrol service)")
    created_at: datetime = Field(description="When it was filed")
    updated_at: datetime = Field(description="Last change")
    closed_at: datetime | None = Field(None, description="When it was verified closed")
    reopened: int = Field(ge=0, description="Times reopened")
    reminded_at: datetime | None = Field(None, description="Last overdue reminder")
    escalation_level: int = Field(
        ge=0, description="Escalation level reached (one per escalate_after_h overdue; 0: not escalated)"
    )


class HazardActionPublic(BaseModel):
    """A step of a hazard's history."""

    id: int = Field(description="Action id")
    action: str = Field(
        description="created, started, submitted, verified, reopened, evidence, note, reminded, escalated, "
        "escalated_to_nobody (due while nobody was rostered: made again once a leader is on duty)"
    )
    from_status: HazardStatus | None = Field(None, description="Status before")
    to_status: HazardStatus | None = Field(None, description="Status after")
    note: str = Field(description="Note")
    by: UserRef | None = Field(None, description="Who (null: the patrol service)")
    at: datetime = Field(description="When")


class EvidencePublic(BaseModel):
    """A picture of the hazard as found (before) or of its rectification (after)."""

    id: int = Field(description="Evidence id")
    stage: EvidenceStage = Field(description="before or after")
    content_type: str = Field(description="image/jpeg or image/png")
    size: int = Field(ge=0, description="Bytes")
    sha256: str = Field(description="SHA-256 of the file")
    note: str = Field(description="Note")
    uploaded_by: UserRef | None = Field(None, description="Who uploaded it")
    uploaded_at: datetime = Field(description="When")
    url: str = Field(description="Where to download it")


class HazardDetail(HazardPublic):
    """A hazard with its history and pictures."""

    actions: list[HazardActionPublic] = Field(description="Every step, oldest first")
    evidence: list[EvidencePublic] = Field(description="Pictures, oldest first")


class StepRequest(BaseModel):
    """A step of the hazard."""

    model_config = ConfigDict(extra="forbid")

    note: Note = ""


class ReopenRequest(BaseModel):
    """Send the hazard back to rectifying."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=MAX_NOTE_CHARS, description="Why the rectification is not accepted")
    deadline: AwareDatetime | None = Field(None, description="A new deadline (restarts reminders and escalations)")


class NoteRequest(BaseModel):
    """A note on the hazard."""

    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=MAX_NOTE_CHARS, description="The note")


# --- Views ---


def _select() -> Select[Row]:
    stmt = (
        select(Hazard, School.code, School.name, District.code, Camera.code)
        .join(School, School.id == Hazard.school_id)
        .join(District, District.id == School.district_id)
        .outerjoin(Camera, Camera.id == Hazard.camera_id)
    )
    return cast(Select[Row], stmt)  # outer joined: the camera code is null without a camera


def _public(row: Row, now: datetime, refs: dict[int, UserRef]) -> HazardPublic:
    hazard, school_code, school_name, district_code, camera_code = row
    overdue = hazard.status is not HazardStatus.CLOSED and hazard.deadline < now
    return HazardPublic(
        id=hazard.id,
        school_code=school_code,
        school_name=school_name,
        district_code=district_code,
        camera_code=camera_code,
        source=hazard.source,
        source_id=hazard.source_id,
        title=hazard.title,
        description=hazard.description,
        severity=hazard.severity,
        status=hazard.status,
        deadline=hazard.deadline,
        overdue=overdue,
        hours_overdue=round((now - hazard.deadline).total_seconds() / 3600, 2) if overdue else 0.0,
        created_by=refs.get(hazard.created_by) if hazard.created_by is not None else None,
        created_at=hazard.created_at,
        updated_at=hazard.updated_at,
        closed_at=hazard.closed_at,
        reopened=hazard.reopened,
        reminded_at=hazard.reminded_at,
        escalation_level=hazard.escalation_level,
    )


def _detail(session: Session, hazard: Hazard, now: datetime) -> HazardDetail:
    row = session.execute(_select().where(Hazard.id == hazard.id)).tuples().one()
    actions = session.scalars(
        select(HazardAction).where(HazardAction.hazard_id == hazard.id).order_by(HazardAction.at, HazardAction.id)
    ).all()
    pictures = session.execute(
        select(
            HazardEvidence.id,
            HazardEvidence.stage,
            HazardEvidence.content_type,
            func.length(HazardEvidence.data),
            HazardEvidence.sha256,
            HazardEvidence.note,
            HazardEvidence.uploaded_by,
            HazardEvidence.uploaded_at,
        )
        .where(HazardEvidence.hazard_id == hazard.id)
        .order_by(HazardEvidence.uploaded_at, HazardEvidence.id)
    ).all()
    refs = user_refs(session, [hazard.created_by, *(a.by_user for a in actions), *(p[6] for p in pictures)])
    public = _public(row, now, refs)
    return HazardDetail(
        **public.model_dump(),
        actions=[
            HazardActionPublic(
                id=a.id,
                action=a.action,
                from_status=HazardStatus(a.from_status) if a.from_status else None,
                to_status=HazardStatus(a.to_status) if a.to_status else None,
                note=a.note,
                by=refs.get(a.by_user) if a.by_user is not None else None,
                at=a.at,
            )
            for a in actions
        ],
        evidence=[
            EvidencePublic(
                id=eid,
                stage=stage,
                content_type=content_type,
                size=size or 0,
                sha256=sha,
                note=note,
                uploaded_by=refs.get(by) if by is not None else None,
                uploaded_at=at,
                url=f"/api/hazards/{hazard.id}/evidence/{eid}",
            )
            for eid, stage, content_type, size, sha, note, by, at in pictures
        ],
    )


def _school_and_camera(
    session: Session, school_code: str, camera_code: str | None, scope: Scope
) -> tuple[int, int | None]:
    """The ids of the school (404 if unknown or outside ``scope``) and of its camera (404 unknown, 422 when it
    hangs at another school)."""
    school_id = session.scalar(select(School.id).where(School.code == school_code))
    if school_id is None or not scope.allows_school(session, school_id):
        raise not_found(f"school with code {school_code!r}")
    if camera_code is None:
        return school_id, None
    camera = session.execute(select(Camera.id, Camera.school_id).where(Camera.code == camera_code)).one_or_none()
    if camera is None or not scope.allows_school(session, camera.school_id):
        raise not_found(f"camera with code {camera_code!r}")
    if camera.school_id != school_id:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"camera {camera_code!r} is not at school {school_code!r}",
        )
    return school_id, camera.id


# --- Endpoints ---


@router.post("/hazards", status_code=status.HTTP_201_CREATED, summary="File a hazard")
def create_hazard(
    body: HazardCreate, work: UnitOfWork, user: FilerUser, clock: Clock, settings: AppSettings, facts: AppFacts
) -> HazardDetail:
    """A hazard at a school, or from an event (its school and camera). Upload its before picture with
    ``POST /api/hazards/{id}/evidence``. 409 when the event already has a hazard not yet closed."""
    now, config = clock(), settings.patrol.hazards
    scope = Scope.of(user)
    if body.event_id is not None:
        fact = facts.event(work.session, body.event_id)
        if fact is None or not scope.allows_school(work.session, fact.school_id):
            raise not_found(f"event with id {body.event_id}")
        hazard = hazards.open_hazard_from_event(
            work.session,
            facts,
            body.event_id,
            now=now,
            config=config,
            by_user=user.id,
            title=body.title,
            description=body.description,
            severity=body.severity,
            deadline=body.deadline,
        )
    else:
        assert body.school_code is not None and body.title is not None  # the model's validator
        school_id, camera_id = _school_and_camera(work.session, body.school_code, body.camera_code, scope)
        hazard = hazards.open_hazard(
            work.session,
            school_id=school_id,
            camera_id=camera_id,
            title=body.title,
            description=body.description or "",
            severity=body.severity or Severity.GENERAL,
            deadline=body.deadline,
            source=HazardSource.MANUAL,
            now=now,
            config=config,
            by_user=user.id,
        )
    work.commit()
    return _detail(work.session, hazard, now)


@router.get("/hazards", summary="List hazards")
def list_hazards(
    session: DbSession,
    user: CurrentUser,
    clock: Clock,
    hazard_status: Annotated[HazardStatus | None, Query(alias="status", description="Only this status")] = None,
    school: Annotated[str | None, Query(max_length=32, description="Only this school code")] = None,
    district: Annotated[str | None, Query(max_length=32, description="Only this district code")] = None,
    source: Annotated[HazardSource | None, Query(description="Only from this source")] = None,
    severity: Annotated[Severity | None, Query(description="Only this severity")] = None,
    overdue: Annotated[bool | None, Query(description="true: only overdue; false: only not overdue")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most rows returned")] = 100,
    offset: Annotated[int, Query(ge=0, description="Rows skipped")] = 0,
) -> Page[HazardPublic]:
    """Hazards, newest first, with the number matching."""
    now = clock()
    stmt = visible(_select(), user)
    if hazard_status is not None:
        stmt = stmt.where(Hazard.status == hazard_status)
    if school is not None:
        stmt = stmt.where(School.code == school)
    if district is not None:
        stmt = stmt.where(District.code == district)
    if source is not None:
        stmt = stmt.where(Hazard.source == source)
    if severity is not None:
        stmt = stmt.where(Hazard.severity == severity)
    if overdue is True:
        stmt = stmt.where(Hazard.status.in_(NOT_CLOSED), Hazard.deadline < now)
    elif overdue is False:
        stmt = stmt.where((Hazard.status == HazardStatus.CLOSED) | (Hazard.deadline >= now))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(Hazard.created_at.desc(), Hazard.id.desc()).limit(limit).offset(offset))
    found = rows.tuples().all()
    refs = user_refs(session, [r[0].created_by for r in found])
    return Page(total=total, offset=offset, limit=limit, items=[_public(r, now, refs) for r in found])


@router.get("/hazards/{hazard_id}", summary="One hazard")
def get_hazard(hazard_id: int, session: DbSession, user: CurrentUser, clock: Clock) -> HazardDetail:
    """A hazard with every step (and who took it) and its pictures."""
    return _detail(session, hazard_for(session, hazard_id, user), clock())


@router.post("/hazards/{hazard_id}/start", summary="Start rectifying")
def start_hazard(
    hazard_id: int, body: StepRequest, work: UnitOfWork, user: RectifierUser, clock: Clock
) -> HazardDetail:
    """open → rectifying (409 from any other status)."""
    now = clock()
    hazard = hazard_for(work.session, hazard_id, user, for_update=True)
    hazards.start_rectifying(work.session, hazard, now=now, by_user=user.id, note=body.note)
    work.commit()
    return _detail(work.session, hazard, now)


@router.post("/hazards/{hazard_id}/submit", summary="Submit the rectification")
def submit_hazard(
    hazard_id: int, body: StepRequest, work: UnitOfWork, user: RectifierUser, clock: Clock
) -> HazardDetail:
    """rectifying → submitted; needs an after picture uploaded since the hazard last went back to rectifying."""
    now = clock()
    hazard = hazard_for(work.session, hazard_id, user, for_update=True)
    hazards.submit(work.session, hazard, now=now, by_user=user.id, note=body.note)
    work.commit()
    return _detail(work.session, hazard, now)


@router.post("/hazards/{hazard_id}/verify", summary="Verify and close")
def verify_hazard(
    hazard_id: int, body: StepRequest, work: UnitOfWork, user: LeaderUser, clock: Clock
) -> HazardDetail:
    """submitted → closed, signed off by the leader on duty (or an administrator)."""
    now = clock()
    hazard = hazard_for(work.session, hazard_id, user, for_update=True)
    hazards.verify(work.session, hazard, now=now, by_user=user.id, note=body.note)
    work.commit()
    return _detail(work.session, hazard, now)


@router.post("/hazards/{hazard_id}/reopen", summary="Reopen")
def reopen_hazard(
    hazard_id: int, body: ReopenRequest, work: UnitOfWork, user: DutyUser, clock: Clock
) -> HazardDetail:
    """submitted or closed → rectifying, with a note saying why (and optionally a new deadline)."""
    now = clock()
    hazard = hazard_for(work.session, hazard_id, user, for_update=True)
    hazards.reopen(work.session, hazard, now=now, by_user=user.id, note=body.note, deadline=body.deadline)
    work.commit()
    return _detail(work.session, hazard, now)


@router.post("/hazards/{hazard_id}/notes", status_code=status.HTTP_201_CREATED, summary="Add a note")
def add_note(
    hazard_id: int, body: NoteRequest, work: UnitOfWork, user: HazardWorkerUser, clock: Clock
) -> HazardActionPublic:
    """A note on the hazard's history, in any status."""
    now = clock()
    hazard = hazard_for(work.session, hazard_id, user, for_update=True)
    action = hazards.add_note(work.session, hazard, now=now, by_user=user.id, note=body.note)
    work.commit()
    return HazardActionPublic(
        id=action.id,
        action=action.action,
        note=action.note,
        by=UserRef(id=user.id, username=user.username, display_name=user.display_name),
        at=action.at,
    )


@router.post(
    "/hazards/{hazard_id}/evidence",
    status_code=status.HTTP_201_CREATED,
    summary="Upload a picture",
    responses={413: {"description": "The file is larger than 5 MiB"}},
)
def upload_evidence(
    hazard_id: int,
    work: UnitOfWork,
    user: HazardWorkerUser,
    clock: Clock,
    file: Annotated[UploadFile, File(description="A JPEG or PNG picture, at most 5 MiB")],
    stage: Annotated[EvidenceStage, Form(description="before (as found) or after (rectified)")],
    note: Annotated[str, Form(max_length=MAX_NOTE_CHARS, description="What it shows")] = "",
) -> EvidencePublic:
    """A before picture (by whoever files hazards) or an after picture (by whoever rectifies them)."""
    check_upload(user, stage)
    data = read_picture(file, what="the picture", png=True) or b""  # an empty part: refused below, 422
    now = clock()
    hazard = hazard_for(work.session, hazard_id, user, for_update=True)
    evidence = hazards.upload_evidence(work.session, hazard, stage, data, now=now, by_user=user.id, note=note)
    work.commit()
    return EvidencePublic(
        id=evidence.id,
        stage=evidence.stage,
        content_type=evidence.content_type,
        size=len(data),
        sha256=evidence.sha256,
        note=evidence.note,
        uploaded_by=UserRef(id=user.id, username=user.username, display_name=user.display_name),
        uploaded_at=evidence.uploaded_at,
        url=f"/api/hazards/{hazard.id}/evidence/{evidence.id}",
    )


@router.get(
    "/hazards/{hazard_id}/evidence/{evidence_id}",
    summary="Download a picture",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
def download_evidence(hazard_id: int, evidence_id: int, session: DbSession, user: CurrentUser) -> Response:
    """The picture as uploaded, with its content type."""
    hazard = hazard_for(session, hazard_id, user)
    evidence = session.get(HazardEvidence, evidence_id)
    if evidence is None or evidence.hazard_id != hazard.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"hazard {hazard_id} has no picture {evidence_id}")
    return Response(
        evidence.data,
        media_type=evidence.content_type,
        headers={"Cache-Control": "private, max-age=86400", "ETag": f'"{evidence.sha256}"'},
    )
