"""Stored campus-safety events: what happened, where, when, on which tracks, with the evidence picture."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from kernel.db import Base, UTCDateTime


class SafetyEvent(Base):
    """One event raised by a rule, from its start until it ended (``ended_at`` is null while it goes on)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_camera_started", "camera_id", "started_at"),
        Index("ix_events_school_started", "school_id", "started_at"),
        Index("ix_events_started", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), nullable=False)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    rule: Mapped[str] = mapped_column(String(64), nullable=False)
    severity: Mapped[str] = mapped_column(String(16), nullable=False)
    zone: Mapped[str] = mapped_column(String(64), default="", nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    track_ids: Mapped[str] = mapped_column(String(300), default="", nullable=False)
    confidence: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    detail: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    evidence_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    worker_id: Mapped[str] = mapped_column(String(200), default="", nullable=False)
