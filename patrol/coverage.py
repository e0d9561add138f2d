"""Patrol coverage: which cameras were shown on a wall on each local day (the daily report's coverage)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from kernel.db import dialect_insert
from patrol.tables import TourCoverage


def record_shown(session: Session, camera_ids: Sequence[int], at: datetime, timezone: ZoneInfo) -> None:
    """Count one showing of each camera on ``at``'s local day (first and last time kept)."""
    if not camera_ids:
        return
    day = at.astimezone(timezone).date()
    rows = [
        {"day": day, "camera_id": cid, "first_shown_at": at, "last_shown_at": at, "shows": 1} for cid in camera_ids
    ]
    stmt = dialect_insert(session, TourCoverage).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["day", "camera_id"],
            set_={"last_shown_at": stmt.excluded.last_shown_at, "shows": TourCoverage.shows + 1},
        )
    )
