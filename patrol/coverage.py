"""Patrol coverage: which cameras were shown on a wall on each local day (the daily report's coverage)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from patrol.errors import PatrolError
from patrol.tables import TourCoverage


def record_shown(session: Session, camera_ids: Sequence[int], at: datetime, timezone: ZoneInfo) -> None:
    """Count one showing of each camera on ``at``'s local day (first and last time kept)."""
    if not camera_ids:
        return
    day = at.astimezone(timezone).date()
    rows = [
        {"day": day, "camera_id": cid, "first_shown_at": at, "last_shown_at": at, "shows": 1} for cid in camera_ids
    ]
    dialect = session.get_bind().dialect.name
    insert: Callable[[type[TourCoverage]], sqlite.Insert | postgresql.Insert]
    if dialect == "sqlite":
        insert = sqlite.insert
    elif dialect == "postgresql":
        insert = postgresql.insert
    else:
        raise PatrolError(f"coverage is stored on SQLite or PostgreSQL, not {dialect}")
    stmt = insert(TourCoverage).values(rows)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["day", "camera_id"],
            set_={"last_shown_at": stmt.excluded.last_shown_at, "shows": TourCoverage.shows + 1},
        )
    )
