"""Inspections of spot checks: sessions on a school's cameras, findings with snapshots, signatures and their
audit.

Inspecting and signing are the inspectors' work (inspector, leader on duty, administrator); every logged-in
role reads. Only the inspector who started an inspection adds findings to it, moves it to a wall and signs it.
A scoped user sees (and inspects) only the schools of its scope, and puts an inspection only on a wall it sees
(:mod:`web.scopes`): the others are 404.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, HTTPException, Query, Request, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrol import inspections as insp
from patrol.camera_sets import Code
from patrol.hazards import HazardRequest
from patrol.models import InspectionMethod, InspectionStatus, Severity, Verdict
from patrol.tables import Inspection, InspectionFinding, SpotCheckDraw, VideoWall
from registry.models import District, SceneType, School
from web.deps import AppSettings, Clock, DbSession, UnitOfWork
from web.models import User
from web.permissions import InspectorUser
from web.routers.spot_checks import quota_for
from web.routers.walls import covers_wall
from web.schemas import Page, UserRef, user_refs
from web.scopes import Scope, UserScope, not_found
from web.uploads import latest_thumbnail, read_picture

router = APIRouter(prefix="/api", tags=["inspections"])

Limit = Annotated[int, Query(ge=1, le=1000, description="Most rows returned")]
Offset = Annotated[int, Query(ge=0, description="Rows skipped")]


class InspectionCreate(BaseModel):
    """A new inspection session."""

    model_config = ConfigDict(extra="forbid")

    school_code: Code = Field(description="School inspected")
    method: InspectionMethod = Field(InspectionMethod.RANDOM, description="How the school is checked")
    draw_id: int | None = Field(None, ge=1, description="The draw that named the school (random only)")
    wall_id: int | None = Field(None, ge=1, description="Wall that shows the school's cameras meanwhile")
    summary: str = Field("", max_length=insp.MAX_SUMMARY, description="Purpose or summary")


class WallRequest(BaseModel):
    """Where the inspection's cameras are shown."""

    model_config = ConfigDict(extra="forbid")

    wall_id: int | None = Field(ge=1, description="Wall id; null: on no wall (its tour resumes)")


class SignRequest(BaseModel):
    """The inspector's signature."""

    model_config = ConfigDict(extra="forbid")

    signed_name: str = Field(min_length=1, max_length=100, description="The inspector's name as signed")
    summary: str | None = Field(None, max_length=insp.MAX_SUMMARY, description="Final summary (kept if omitted)")


class FindingForm(BaseModel):
    """A finding, sent as multipart/form-data (the snapshot is an optional JPEG file part)."""

    model_config = ConfigDict(extra="forbid")

    verdict: Verdict = Field(description="normal or abnormal")
    camera_code: Code | None = Field(None, description="Camera of the school; omitted: the school as a whole")
    note: str = Field("", max_length=insp.MAX_NOTE, description="What was seen")
    snapshot: UploadFile | None = Field(None, description="JPEG snapshot, at most 5 MiB")
    thumbnail: bool = Field(False, description="Use the camera's latest thumbnail as the snapshot")
    open_hazard: bool = Field(False, description="Open a hazard from this (abnormal) finding")
    hazard_title: str = Field("", max_length=200, description="Hazard title; empty: from the note")
    hazard_severity: Severity = Field(Severity.GENERAL, description="Hazard severity")
    hazard_deadline: datetime | None = Field(None, description="Rectification deadline; omitted: the default")


class FindingPublic(BaseModel):
    """One finding."""

    id: int = Field(description="Finding id")
    camera_code: str | None = Field(None, description="Camera; null: the school as a whole")
    verdict: Verdict = Field(description="normal or abnormal")
    note: str = Field(description="What was seen")
    snapshot_url: str | None = Field(None, description="JPEG snapshot")
    snapshot_sha256: str | None = Field(None, description="SHA-256 of the snapshot")
    created_at: datetime = Field(description="When it was recorded")
    hazard_id: int | None = Field(None, description="Hazard opened from it")


class InspectionCameraPublic(BaseModel):
    """A camera of the inspected school."""

    code: str = Field(description="Camera code")
    name: str = Field(description="Camera name")
    scene_type: SceneType = Field(description="What it looks at")
    key_scene: bool = Field(description="Key scene")
    thumbnail_url: str = Field(description="Its latest keyframe")


class SignaturePublic(BaseModel):
    """The inspector's signature of the record."""

    signed_name: str = Field(description="Name as signed")
    signed_at: datetime = Field(description="When")
    content_sha256: str = Field(description="SHA-256 of the canonical JSON of the signed content")


class InspectionPublic(BaseModel):
    """An inspection session."""

    id: int = Field(description="Inspection id")
    school_code: str = Field(description="School code")
    school_name: str = Field(description="School name")
    district_code: str = Field(description="District code")
    method: InspectionMethod = Field(description="How the school is checked")
    status: InspectionStatus = Field(description="open or signed")
    draw_id: int | None = Field(None, description="Draw that named the school")
    inspector: UserRef | None = Field(None, description="The inspector who started it (null: a deleted user)")
    started_at: datetime = Field(description="When it started")
    summary: str = Field(description="Summary")
    wall_ids: list[int] = Field(description="Walls showing its cameras now")
    finding_count: int = Field(ge=0, description="Findings recorded")
    abnormal_count: int = Field(ge=0, description="Abnormal findings")
    signature: SignaturePublic | None = Field(None, description="Null until signed")


class InspectionDetail(InspectionPublic):
    """An inspection with its cameras and findings."""

    cameras: list[InspectionCameraPublic] = Field(description="The school's enabled cameras")
    findings: list[FindingPublic] = Field(description="Findings, oldest first")


class InspectionVerificationPublic(BaseModel):
    """The signed content hash recomputed from the stored rows."""

    inspection_id: int = Field(description="Inspection id")
    signed: bool = Field(description="Whether it is signed")
    ok: bool = Field(description="Signed and unchanged since")
    verdict: str = Field(description="One line for a person")
    stored_sha256: str | None = Field(None, description="Hash stored at signing")
    computed_sha256: str = Field(description="Hash of the stored rows now")
    problems: list[str] = Field(description="What does not match")


def _inspections_public(session: DbSession, rows: list[Inspection]) -> list[InspectionPublic]:
    ids = [i.id for i in rows]
    schools = {
        sid: (code, name, district)
        for sid, code, name, district in session.execute(
            select(School.id, School.code, School.name, District.code)
            .join(District, District.id == School.district_id)
            .where(School.id.in_({i.school_id for i in rows}))
        ).tuples()
    }
    users = user_refs(session, (i.inspector_id for i in rows))
    counts: dict[int, dict[Verdict, int]] = {}
    for iid, verdict, n in session.execute(
        select(InspectionFinding.inspection_id, InspectionFinding.verdict, func.count(InspectionFinding.id))
        .where(InspectionFinding.inspection_id.in_(ids))
        .group_by(InspectionFinding.inspection_id, InspectionFinding.verdict)
    ).tuples():
        counts.setdefault(iid, {})[verdict] = n
    walls: dict[int, list[int]] = {}
    for wall_id, shown in session.execute(
        select(VideoWall.id, VideoWall.inspection_id)
        .where(VideoWall.inspection_id.in_(ids))
        .order_by(VideoWall.id)
    ).tuples():
        if shown is not None:
            walls.setdefault(shown, []).append(wall_id)
    result = []
    for i in rows:
        code, name, district = schools[i.school_id]
        by_verdict = counts.get(i.id, {})
        signature = None
        if i.signed_at is not None and i.signed_name is not None and i.content_sha256 is not None:
            signature = SignaturePublic(
                signed_name=i.signed_name, signed_at=i.signed_at, content_sha256=i.content_sha256
            )
        result.append(
            InspectionPublic(
                id=i.id,
                school_code=code,
                school_name=name,
                district_code=district,
                method=i.method,
                status=i.status,
                draw_id=i.draw_id,
                inspector=users.get(i.inspector_id),
                started_at=i.started_at,
                summary=i.summary,
                wall_ids=walls.get(i.id, []),
                finding_count=sum(by_verdict.values()),
                abnormal_count=by_verdict.get(Verdict.ABNORMAL, 0),
                signature=signature,
            )
        )
    return result


def _inspection_detail(session: DbSession, inspection: Inspection) -> InspectionDetail:
    cameras = [
        InspectionCameraPublic(
            code=c.code,
            name=c.name,
            scene_type=c.scene_type,
            key_scene=c.key_scene,
            thumbnail_url=f"/api/cameras/{c.code}/thumbnail.jpg",
        )
        for c in insp.inspection_cameras(session, inspection)
    ]
    findings = [_finding_public(f, code) for f, code in insp.findings_of(session, inspection.id)]
    public = _inspections_public(session, [inspection])[0]
    return InspectionDetail(**public.model_dump(), cameras=cameras, findings=findings)


def _finding_public(finding: InspectionFinding, camera_code: str | None) -> FindingPublic:
    snapshot = f"/api/inspections/{finding.inspection_id}/findings/{finding.id}/snapshot.jpg"
    return FindingPublic(
        id=finding.id,
        camera_code=camera_code,
        verdict=finding.verdict,
        note=finding.note,
        snapshot_url=snapshot if finding.snapshot_jpeg is not None else None,
        snapshot_sha256=finding.snapshot_sha256,
        created_at=finding.created_at,
        hazard_id=finding.hazard_id,
    )


def inspection_for(session: Session, inspection_id: int, scope: Scope) -> Inspection:
    """The inspection, if its school is in ``scope`` (404 otherwise)."""
    inspection = insp.get_inspection(session, inspection_id)
    if not scope.allows_school(session, inspection.school_id):
        raise not_found(f"inspection with id {inspection_id}")
    return inspection


def _check_wall(session: Session, wall_id: int | None, scope: Scope) -> None:
    """A wall named for an inspection must be one the user sees (404 otherwise)."""
    if wall_id is None or scope.is_bureau:
        return
    wall = session.get(VideoWall, wall_id)
    if wall is None or not covers_wall(scope.codes(session), wall):
        raise not_found(f"wall {wall_id}")


def _own(session: DbSession, inspection_id: int, user: User, action: str) -> Inspection:
    """The inspection, if ``user`` is its inspector (403 otherwise: nobody acts for the inspector; 404 outside
    the user's scope)."""
    inspection = inspection_for(session, inspection_id, Scope.of(user))
    if inspection.inspector_id != user.id:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"inspection {inspection_id} belongs to another inspector: only they may {action}",
        )
    return inspection


@router.post("/inspections", status_code=status.HTTP_201_CREATED, summary="Start an inspection")
def start_inspection(
    body: InspectionCreate, work: UnitOfWork, user: InspectorUser, scope: UserScope, clock: Clock
) -> InspectionDetail:
    """Open an inspection of a school by the logged-in inspector; a random one names its draw; with a wall, the
    wall shows the school's cameras instead of its tour until the inspection is signed (409 if the wall is
    taken by another open inspection). A school, wall or draw outside the user's scope is a 404."""
    session = work.session
    school_id = session.scalar(select(School.id).where(School.code == body.school_code))
    if school_id is not None and not scope.allows_school(session, school_id):
        raise not_found(f"school with code {body.school_code!r}")
    _check_wall(session, body.wall_id, scope)
    if body.draw_id is not None and not scope.is_bureau:
        draw = session.get(SpotCheckDraw, body.draw_id)
        if draw is not None:
            quota_for(session, draw.quota_id, scope)
    inspection = insp.start_inspection(
        work.session,
        school_code=body.school_code,
        method=body.method,
        inspector_id=user.id,
        now=clock(),
        draw_id=body.draw_id,
        wall_id=body.wall_id,
        summary=body.summary,
    )
    work.commit()
    return _inspection_detail(work.session, inspection)


@router.get("/inspections", summary="Inspections")
def list_inspections(
    session: DbSession,
    scope: UserScope,
    school: Annotated[str | None, Query(max_length=64, description="Only this school code")] = None,
    inspection_status: Annotated[
        InspectionStatus | None, Query(alias="status", description="open or signed")
    ] = None,
    draw: Annotated[int | None, Query(ge=1, description="Only this draw's inspections")] = None,
    inspector: Annotated[str | None, Query(max_length=64, description="Only this inspector's username")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[InspectionPublic]:
    """Inspections of the user's schools, newest first, with the number matching."""
    stmt = select(Inspection).where(scope.schools(Inspection.school_id))
    if school is not None:
        stmt = stmt.join(School, School.id == Inspection.school_id).where(School.code == school)
    if inspection_status is not None:
        stmt = stmt.where(Inspection.status == inspection_status)
    if draw is not None:
        stmt = stmt.where(Inspection.draw_id == draw)
    if inspector is not None:
        stmt = stmt.join(User, User.id == Inspection.inspector_id).where(User.username == inspector)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Inspection.started_at.desc(), Inspection.id.desc()).limit(limit).offset(offset)
    ).all()
    return Page(total=total, offset=offset, limit=limit, items=_inspections_public(session, list(rows)))


@router.get("/inspections/{inspection_id}", summary="One inspection")
def get_inspection(inspection_id: int, session: DbSession, scope: UserScope) -> InspectionDetail:
    """An inspection with the school's cameras, its findings and its signature."""
    return _inspection_detail(session, inspection_for(session, inspection_id, scope))


@router.put("/inspections/{inspection_id}/wall", summary="Show an inspection on a wall")
def set_inspection_wall(
    inspection_id: int, body: WallRequest, work: UnitOfWork, user: InspectorUser, settings: AppSettings
) -> InspectionDetail:
    """Queue the open inspection's cameras on another wall, or on none (the wall's tour resumes)."""
    _own(work.session, inspection_id, user, "move it to a wall")
    _check_wall(work.session, body.wall_id, Scope.of(user))
    inspection = insp.set_wall(
        work.session,
        inspection_id,
        wall_id=body.wall_id,
        by_user=user.id,
        timezone=ZoneInfo(settings.instance.timezone),
    )
    work.commit()
    return _inspection_detail(work.session, inspection)


@router.post(
    "/inspections/{inspection_id}/findings",
    status_code=status.HTTP_201_CREATED,
    summary="Record a finding",
    responses={413: {"description": "Snapshot over 5 MiB"}},
)
def add_finding(
    inspection_id: int,
    form: Annotated[FindingForm, Form(media_type="multipart/form-data")],
    request: Request,
    work: UnitOfWork,
    user: InspectorUser,
    settings: AppSettings,
    clock: Clock,
) -> FindingPublic:
    """A finding on a camera of the school (or the school as a whole), sent as multipart/form-data; the
    snapshot is an uploaded JPEG or, with ``thumbnail=true``, the camera's latest thumbnail. An abnormal
    finding with ``open_hazard=true`` opens a hazard (source spot_check)."""
    _own(work.session, inspection_id, user, "add findings")
    snapshot = _snapshot(form, request)
    if form.hazard_deadline is not None and form.hazard_deadline.tzinfo is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "hazard_deadline needs a UTC offset, e.g. +08:00"
        )
    hazard = None
    if form.open_hazard:
        hazard = HazardRequest(form.hazard_title, form.hazard_severity, form.hazard_deadline)
    finding = insp.add_finding(
        work.session,
        inspection_id,
        by_user=user.id,
        now=clock(),
        verdict=form.verdict,
        camera_code=form.camera_code,
        note=form.note,
        snapshot_jpeg=snapshot,
        hazard=hazard,
        hazard_config=settings.patrol.hazards,
        timezone=ZoneInfo(settings.instance.timezone),
    )
    work.commit()
    return _finding_public(finding, form.camera_code)


def _snapshot(form: FindingForm, request: Request) -> bytes | None:
    """The finding's snapshot: the uploaded file (size-capped, JPEG by its magic bytes) or the thumbnail."""
    if form.snapshot is not None and form.thumbnail:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, "send a snapshot file or thumbnail=true, not both"
        )
    uploaded = read_picture(form.snapshot, what="the snapshot")
    if uploaded is not None:
        return uploaded
    if not form.thumbnail:
        return None
    if form.camera_code is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "thumbnail=true needs a camera_code: the school has no thumbnail",
        )
    jpeg, why_not = latest_thumbnail(request, form.camera_code)
    if jpeg is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"{why_not}: upload a snapshot instead")
    return jpeg


@router.get(
    "/inspections/{inspection_id}/findings/{finding_id}/snapshot.jpg",
    summary="A finding's snapshot",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def finding_snapshot(inspection_id: int, finding_id: int, session: DbSession, scope: UserScope) -> Response:
    """The JPEG kept with the finding."""
    inspection_for(session, inspection_id, scope)
    finding = session.get(InspectionFinding, finding_id)
    if finding is None or finding.inspection_id != inspection_id or finding.snapshot_jpeg is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no snapshot for finding {finding_id} of inspection {inspection_id}"
        )
    return Response(finding.snapshot_jpeg, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})


@router.post("/inspections/{inspection_id}/sign", summary="Sign an inspection")
def sign_inspection(
    inspection_id: int,
    body: SignRequest,
    work: UnitOfWork,
    user: InspectorUser,
    settings: AppSettings,
    clock: Clock,
) -> InspectionDetail:
    """The inspector who started it signs (name, time, SHA-256 of the content); the wall is freed and the
    record becomes read-only (409 for any later change or a second signature)."""
    _own(work.session, inspection_id, user, "sign it")
    inspection = insp.sign_inspection(
        work.session,
        inspection_id,
        by_user=user.id,
        signed_name=body.signed_name,
        now=clock(),
        summary=body.summary,
        timezone=ZoneInfo(settings.instance.timezone),
    )
    work.commit()
    return _inspection_detail(work.session, inspection)


@router.get("/inspections/{inspection_id}/verify", summary="Check an inspection's signature")
def verify_inspection(inspection_id: int, session: DbSession, scope: UserScope) -> InspectionVerificationPublic:
    """Recompute the content hash from the stored rows and compare it with the signed one."""
    inspection_for(session, inspection_id, scope)
    result = insp.verify_inspection(session, inspection_id)
    return InspectionVerificationPublic.model_validate({**asdict(result), "verdict": result.verdict})
