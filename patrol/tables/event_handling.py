"""How the duty room handles an analytics event: acknowledge → dispatch → resolve, with notes.

``event_dispositions`` holds the current state of an event that someone has acted on (no row: not acted on yet);
``event_actions`` is the history of every action and note.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kernel.clock import utcnow
from kernel.db import Base, UTCDateTime, str_enum


class EventStatus(StrEnum):
    """Where an event is in the duty room's handling."""

    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    RESOLVED = "resolved"


class EventActionKind(StrEnum):
    """One step of the handling, or a note."""

    ACKNOWLEDGE = "acknowledge"
    DISPATCH = "dispatch"
    RESOLVE = "resolve"
    NOTE = "note"


class EventDisposition(Base):
    """The handling state of one event."""

    __tablename__ = "event_dispositions"
    __table_args__ = (Index("ix_event_dispositions_status", "status"),)

    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[EventStatus] = mapped_column(str_enum(EventStatus, "event_status"), nullable=False)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    dispatched_to: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    dispatched_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class EventAction(Base):
    """One action on an event, with its note."""

    __tablename__ = "event_actions"
    __table_args__ = (Index("ix_event_actions_event_at", "event_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), nullable=False)
    action: Mapped[EventActionKind] = mapped_column(str_enum(EventActionKind, "event_action_kind"), nullable=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    note: Mapped[str] = mapped_column(String(1000), default="", nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
