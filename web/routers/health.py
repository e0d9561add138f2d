"""Camera health, thumbnails and video-quality faults, as ingest workers stored them.

A scoped user sees the cameras of its own schools only (counts, lists, faults, thumbnails); any other camera
is a 404, as if it did not exist (:mod:`web.scopes`). Error details are redacted again on the way out: a
stream URL with its credentials never reaches an answer, whoever stored it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from ingest.models import HealthReason, HealthState, QualityFault
from ingest.tables import CameraHealth, CameraHealthTransition, CameraQualityFault
from ingest.thumbnails import ThumbnailError, ThumbnailStore
from kernel.secrets import redact_text
from registry.models import Camera
from web.deps import DbSession
from web.scopes import Scope, UserScope, not_found

router = APIRouter(prefix="/api", tags=["health"])


class FaultPublic(BaseModel):
    """A video-quality fault."""

    id: int = Field(description="Fault id")
    camera_code: str = Field(description="Camera code")
    fault: QualityFault = Field(description="What is wrong with the picture")
    open: bool = Field(description="Still present")
    started_at: datetime = Field(description="When it was found")
    cleared_at: datetime | None = Field(None, description="When it cleared")
    value: float = Field(description="Measured value")
    threshold: float = Field(description="Threshold it crossed")
    snapshot_url: str | None = Field(None, description="JPEG of the keyframe that showed it")


class HealthPublic(BaseModel):
    """A camera's current health and stream figures."""

    camera_code: str = Field(description="Camera code")
    state: HealthState | None = Field(description="online, degraded, offline; null: never read yet")
    reason: HealthReason | None = Field(None, description="Why it is degraded or offline")
    detail: str = Field("", description="The error behind the reason (credentials redacted)")
    since: datetime | None = Field(None, description="In this state since")
    worker_id: str = Field("", description="Ingest worker reading the camera")
    bitrate_kbps: float = Field(0.0, description="Bit rate over the last seconds")
    fps: float = Field(0.0, description="Frames per second received")
    keyframe_interval_s: float = Field(0.0, description="Seconds between keyframes")
    width: int = Field(0, description="Picture width")
    height: int = Field(0, description="Picture height")
    last_frame_at: datetime | None = Field(None, description="Last keyframe decoded")
    reconnects: int = Field(0, description="Reconnects since the worker took the camera")
    faults: list[FaultPublic] = Field(default_factory=list, description="Open video-quality faults")


class TransitionPublic(BaseModel):
    """One change of a camera's health."""

    at: datetime = Field(description="When")
    state: HealthState = Field(description="New state")
    previous_state: HealthState | None = Field(None, description="State before")
    reason: HealthReason = Field(description="Why")
    detail: str = Field("", description="The error behind the reason")
    worker_id: str = Field("", description="Worker that saw it")


class HealthSummary(BaseModel):
    """How many enabled cameras are in each state."""

    online: int = Field(ge=0, description="Cameras online")
    degraded: int = Field(ge=0, description="Cameras degraded")
    offline: int = Field(ge=0, description="Cameras offline")
    unknown: int = Field(ge=0, description="Enabled cameras not read yet")
    open_faults: int = Field(ge=0, description="Open video-quality faults")


def _fault_public(fault: CameraQualityFault, code: str) -> FaultPublic:
    return FaultPublic(
        id=fault.id,
        camera_code=code,
        fault=fault.fault,
        open=fault.open,
        started_at=fault.started_at,
        cleared_at=fault.cleared_at,
        value=fault.value,
        threshold=fault.threshold,
        snapshot_url=f"/api/quality-faults/{fault.id}/snapshot.jpg" if fault.snapshot_jpeg else None,
    )


def _camera_id(session: DbSession, code: str, scope: Scope) -> int:
    """The id of the camera with ``code`` in ``scope`` (404 otherwise)."""
    camera_id = session.scalar(select(Camera.id).where(Camera.code == code, scope.schools(Camera.school_id)))
    if camera_id is None:
        raise not_found(f"camera with code {code!r}")
    return camera_id


@router.get("/health/summary", summary="Fleet health counts")
def health_summary(session: DbSession, scope: UserScope) -> HealthSummary:
    """Enabled cameras (of the user's schools) per health state, and open quality faults."""
    in_scope = scope.schools(Camera.school_id)
    rows = session.execute(
        select(CameraHealth.state, func.count())
        .join(Camera, Camera.id == CameraHealth.camera_id)
        .where(Camera.enabled.is_(True), in_scope)
        .group_by(CameraHealth.state)
    ).all()
    counts: dict[HealthState, int] = {state: int(count) for state, count in rows}
    enabled = session.scalar(select(func.count(Camera.id)).where(Camera.enabled.is_(True), in_scope)) or 0
    faults = (
        session.scalar(
            select(func.count(CameraQualityFault.id))
            .join(Camera, Camera.id == CameraQualityFault.camera_id)
            .where(CameraQualityFault.open.is_(True), in_scope)
        )
        or 0
    )
    known = sum(counts.values())
    return HealthSummary(
        online=counts.get(HealthState.ONLINE, 0),
        degraded=counts.get(HealthState.DEGRADED, 0),
        offline=counts.get(HealthState.OFFLINE, 0),
        unknown=max(0, enabled - known),
        open_faults=faults,
    )


@router.get("/health", summary="Health of many cameras")
def list_health(
    session: DbSession,
    scope: UserScope,
    camera: Annotated[list[str] | None, Query(max_length=500, description="Camera codes (repeat the key)")] = None,
    state: Annotated[HealthState | None, Query(description="Only cameras in this state")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[HealthPublic]:
    """Current health of the given cameras, or of the cameras in ``state``."""
    stmt = (
        select(Camera.code, CameraHealth)
        .join(CameraHealth, CameraHealth.camera_id == Camera.id)
        .where(scope.schools(Camera.school_id))
    )
    if camera:
        stmt = stmt.where(Camera.code.in_(camera))
    if state:
        stmt = stmt.where(CameraHealth.state == state)
    rows = session.execute(stmt.order_by(Camera.code).limit(limit)).all()
    open_faults: dict[int, list[CameraQualityFault]] = {}
    ids = [row.camera_id for _, row in rows]
    for fault in session.scalars(
        select(CameraQualityFault).where(CameraQualityFault.camera_id.in_(ids), CameraQualityFault.open.is_(True))
    ):
        open_faults.setdefault(fault.camera_id, []).append(fault)
    return [_health_public(code, row, open_faults.get(row.camera_id, [])) for code, row in rows]


def _health_public(code: str, row: CameraHealth, faults: list[CameraQualityFault]) -> HealthPublic:
    return HealthPublic(
        camera_code=code,
        state=row.state,
        reason=row.reason,
        detail=redact_text(row.detail),
        since=row.since,
        worker_id=row.worker_id,
        bitrate_kbps=row.bitrate_kbps,
        fps=row.fps,
        keyframe_interval_s=row.keyframe_interval_s,
        width=row.width,
        height=row.height,
        last_frame_at=row.last_frame_at,
        reconnects=row.reconnects,
        faults=[_fault_public(f, code) for f in faults],
    )


@router.get("/cameras/{code}/health", summary="One camera's health")
def camera_health(code: str, session: DbSession, scope: UserScope) -> HealthPublic:
    """Current health, figures and open faults of a camera (state null if no worker has read it yet)."""
    camera_id = _camera_id(session, code, scope)
    row = session.get(CameraHealth, camera_id)
    if row is None:
        return HealthPublic(camera_code=code, state=None)
    faults = session.scalars(
        select(CameraQualityFault).where(
            CameraQualityFault.camera_id == camera_id, CameraQualityFault.open.is_(True)
        )
    ).all()
    return _health_public(code, row, list(faults))


@router.get("/cameras/{code}/health/history", summary="One camera's health changes")
def camera_health_history(
    code: str,
    session: DbSession,
    scope: UserScope,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[TransitionPublic]:
    """The camera's most recent health changes, newest first."""
    camera_id = _camera_id(session, code, scope)
    rows = session.scalars(
        select(CameraHealthTransition)
        .where(CameraHealthTransition.camera_id == camera_id)
        .order_by(CameraHealthTransition.at.desc(), CameraHealthTransition.id.desc())
        .limit(limit)
    ).all()
    return [
        TransitionPublic(
            at=r.at,
            state=r.state,
            previous_state=r.previous_state,
            reason=r.reason,
            detail=redact_text(r.detail),
            worker_id=r.worker_id,
        )
        for r in rows
    ]


@router.get(
    "/cameras/{code}/thumbnail.jpg",
    summary="Latest keyframe of a camera",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "No thumbnail yet"}},
)
def camera_thumbnail(code: str, request: Request, session: DbSession, scope: UserScope) -> Response:
    """The camera's latest keyframe as a ~320 px JPEG; ``X-Captured-At`` says when it was taken."""
    _camera_id(session, code, scope)
    store: ThumbnailStore = request.app.state.thumbnails
    try:
        thumbnail = store.get(code)
    except ThumbnailError as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(err)) from err
    if thumbnail is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no thumbnail of camera {code!r} yet")
    return Response(
        thumbnail.jpeg,
        media_type="image/jpeg",
        headers={"X-Captured-At": thumbnail.captured_at.isoformat(), "Cache-Control": "no-store"},
    )


@router.get("/quality-faults", summary="Video-quality faults")
def list_faults(
    session: DbSession,
    scope: UserScope,
    open_only: Annotated[bool, Query(alias="open", description="Only faults still present")] = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[FaultPublic]:
    """Faults, newest first."""
    stmt = (
        select(CameraQualityFault, Camera.code)
        .join(Camera, Camera.id == CameraQualityFault.camera_id)
        .where(scope.schools(Camera.school_id))
    )
    if open_only:
        stmt = stmt.where(CameraQualityFault.open.is_(True))
    rows = session.execute(stmt.order_by(CameraQualityFault.started_at.desc()).limit(limit)).all()
    return [_fault_public(fault, code) for fault, code in rows]


@router.get(
    "/quality-faults/{fault_id}/snapshot.jpg",
    summary="The keyframe that showed a fault",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def fault_snapshot(fault_id: int, session: DbSession, scope: UserScope) -> Response:
    """JPEG of the keyframe on which the fault was found."""
    fault = session.scalars(
        select(CameraQualityFault)
        .join(Camera, Camera.id == CameraQualityFault.camera_id)
        .where(CameraQualityFault.id == fault_id, scope.schools(Camera.school_id))
    ).one_or_none()
    if fault is None or fault.snapshot_jpeg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no snapshot for fault {fault_id}")
    return Response(fault.snapshot_jpeg, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})
