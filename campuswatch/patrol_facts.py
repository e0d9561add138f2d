"""The patrol's :class:`~patrol.facts.FleetFacts`, read from what ingest and analytics stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from analytics.tables import SafetyEvent
from ingest.models import HealthState
from ingest.tables import CameraHealth, CameraHealthTransition
from patrol.facts import EventFact
from registry.models import Camera, School


class StoredFleetFacts:
    """Camera health from ``camera_health`` and its transitions; events from ``events``."""

    def offline_cameras(self, session: Session) -> set[str]:
        """Enabled cameras whose current health is offline."""
        stmt = (
            select(Camera.code)
            .join(CameraHealth, CameraHealth.camera_id == Camera.id)
            .where(Camera.enabled.is_(True), CameraHealth.state == HealthState.OFFLINE)
        )
        return set(session.scalars(stmt))

    def offline_between(self, session: Session, start: datetime, end: datetime) -> set[str]:
        """Cameras that went offline inside the interval, or were offline when it began."""
        went_offline = (
            select(Camera.code)
            .join(CameraHealthTransition, CameraHealthTransition.camera_id == Camera.id)
            .where(
                Camera.enabled.is_(True),
                CameraHealthTransition.state == HealthState.OFFLINE,
                CameraHealthTransition.at >= start,
                CameraHealthTransition.at < end,
            )
        )
        codes = set(session.scalars(went_offline))
        # Offline since before the start: its last transition before the start was to offline.
        latest = (
            select(CameraHealthTransition.camera_id, func.max(CameraHealthTransition.at).label("at"))
            .where(CameraHealthTransition.at < start)
            .group_by(CameraHealthTransition.camera_id)
            .subquery()
        )
        offline_at_start = (
            select(Camera.code)
            .join(CameraHealthTransition, CameraHealthTransition.camera_id == Camera.id)
            .join(
                latest,
                and_(
                    latest.c.camera_id == CameraHealthTransition.camera_id,
                    latest.c.at == CameraHealthTransition.at,
                ),
            )
            .where(Camera.enabled.is_(True), CameraHealthTransition.state == HealthState.OFFLINE)
        )
        codes |= set(session.scalars(offline_at_start))
        # Offline now and since before the end (the transitions may have been pruned).
        codes |= set(
            session.scalars(
                select(Camera.code)
                .join(CameraHealth, CameraHealth.camera_id == Camera.id)
                .where(
                    Camera.enabled.is_(True),
                    CameraHealth.state == HealthState.OFFLINE,
                    CameraHealth.since < end,
                )
            )
        )
        return codes

    def events_between(self, session: Session, start: datetime, end: datetime) -> list[EventFact]:
        """Events that started in ``[start, end)`` (their evidence pictures are not read)."""
        stmt = _event_query().where(SafetyEvent.started_at >= start, SafetyEvent.started_at < end)
        return [EventFact(*row) for row in session.execute(stmt.order_by(SafetyEvent.started_at, SafetyEvent.id))]

    def events_by_school(self, session: Session, start: datetime, end: datetime) -> dict[int, int]:
        """Events that started in ``[start, end)`` per school, in one GROUP BY query."""
        stmt = (
            select(SafetyEvent.school_id, func.count(SafetyEvent.id))
            .where(SafetyEvent.started_at >= start, SafetyEvent.started_at < end)
            .group_by(SafetyEvent.school_id)
        )
        return {school_id: int(n) for school_id, n in session.execute(stmt).tuples()}

    def event(self, session: Session, event_id: int) -> EventFact | None:
        """One event by id."""
        row = session.execute(_event_query().where(SafetyEvent.id == event_id)).one_or_none()
        return None if row is None else EventFact(*row)


def _event_query() -> Select[tuple[int, str, str, int, str, int, str, datetime, datetime | None, str]]:
    # Columns in EventFact's order; the evidence JPEG stays in the database.
    return (
        select(
            SafetyEvent.id,
            SafetyEvent.type,
            SafetyEvent.severity,
            SafetyEvent.camera_id,
            Camera.code,
            SafetyEvent.school_id,
            School.code,
            SafetyEvent.started_at,
            SafetyEvent.ended_at,
            SafetyEvent.detail,
        )
        .join(Camera, Camera.id == SafetyEvent.camera_id)
        .join(School, School.id == SafetyEvent.school_id)
    )
