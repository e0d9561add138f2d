"""Campus-safety events raised by the analytics rules, and their evidence pictures."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select

from analytics.tables import SafetyEvent
from registry.models import Camera, School
from web.auth import CurrentUser
from web.deps import DbSession

router = APIRouter(prefix="/api", tags=["events"])


class EventPublic(BaseModel):
    """One event."""

    id: int = Field(description="Event id")
    type: str = Field(
        description="intrusion, loitering, crowding, line_crossing, guard_post_empty, water_area, fall"
    )
    rule: str = Field(description="The camera's rule that raised it")
    severity: str = Field(description="general or major")
    camera_code: str = Field(description="Camera code")
    school_code: str = Field(description="School code")
    school_name: str = Field(description="School name")
    zone: str = Field(description="Zone or line of the rule")
    started_at: datetime = Field(description="When the condition began")
    ended_at: datetime | None = Field(None, description="When it ended (null: still going on)")
    track_ids: list[int] = Field(description="Tracks behind it")
    confidence: float = Field(description="Best detection score seen")
    detail: str = Field(description="What the rule saw, e.g. 7 people")
    evidence_url: str | None = Field(None, description="JPEG with the zone and boxes drawn")


@router.get("/events", summary="Campus-safety events")
def list_events(
    session: DbSession,
    _user: CurrentUser,
    camera: Annotated[str | None, Query(description="Only this camera code")] = None,
    school: Annotated[str | None, Query(description="Only this school code")] = None,
    event_type: Annotated[str | None, Query(alias="type", description="Only this event type")] = None,
    since: Annotated[datetime | None, Query(description="Started at or after (ISO 8601 with offset)")] = None,
    open_only: Annotated[bool, Query(alias="open", description="Only events still going on")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[EventPublic]:
    """Events, newest first."""
    stmt = (
        select(SafetyEvent, Camera.code, School.code, School.name)
        .join(Camera, Camera.id == SafetyEvent.camera_id)
        .join(School, School.id == SafetyEvent.school_id)
    )
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
    rows = session.execute(stmt.order_by(SafetyEvent.started_at.desc(), SafetyEvent.id.desc()).limit(limit)).all()
    return [
        EventPublic(
            id=event.id,
            type=event.type,
            rule=event.rule,
            severity=event.severity,
            camera_code=camera_code,
            school_code=school_code,
            school_name=school_name,
            zone=event.zone,
            started_at=event.started_at,
            ended_at=event.ended_at,
            track_ids=[int(t) for t in event.track_ids.split(",") if t],
            confidence=event.confidence,
            detail=event.detail,
            evidence_url=f"/api/events/{event.id}/evidence.jpg" if event.evidence_jpeg else None,
        )
        for event, camera_code, school_code, school_name in rows
    ]


@router.get(
    "/events/{event_id}/evidence.jpg",
    summary="An event's evidence picture",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def event_evidence(event_id: int, session: DbSession, _user: CurrentUser) -> Response:
    """The frame that confirmed the event, with the zone (yellow) and the boxes (red) drawn."""
    event = session.get(SafetyEvent, event_id)
    if event is None or event.evidence_jpeg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no evidence for event {event_id}")
    return Response(event.evidence_jpeg, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})
