"""What the patrol needs to know from upstream packages (camera health, analytics events), as typed facts.

``patrol`` does not read ingest's or analytics' tables: the application layer hands it a :class:`FleetFacts`
(``campuswatch.patrol_facts.StoredFleetFacts`` reads them from the database).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session


@dataclass(frozen=True, slots=True)
class EventFact:
    """An analytics event as the patrol sees it."""

    id: int
    type: str
    severity: str
    camera_id: int
    camera_code: str
    school_id: int
    school_code: str
    started_at: datetime
    ended_at: datetime | None
    detail: str


class FleetFacts(Protocol):
    """Read-only facts about the fleet, each read in the caller's session."""

    def offline_cameras(self, session: Session) -> set[str]:
        """Codes of the enabled cameras that are offline now (never read counts as unknown, not offline)."""
        ...

    def offline_between(self, session: Session, start: datetime, end: datetime) -> set[str]:
        """Codes of the cameras that were offline at some time in ``[start, end)``."""
        ...

    def events_between(self, session: Session, start: datetime, end: datetime) -> list[EventFact]:
        """Events that started in ``[start, end)``, oldest first."""
        ...

    def events_by_school(self, session: Session, start: datetime, end: datetime) -> dict[int, int]:
        """How many events started in ``[start, end)`` at each school: school id → count (schools with none are
        missing). Counted in the database, not by loading the events."""
        ...

    def event(self, session: Session, event_id: int) -> EventFact | None:
        """One event, or None."""
        ...
