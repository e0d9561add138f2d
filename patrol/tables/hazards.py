"""Stored hazards (隐患), their history of actions, and the before/after evidence of their rectification."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kernel.db import Base, UTCDateTime, str_enum
from patrol.models import EvidenceStage, HazardSource, HazardStatus, Severity


class Hazard(Base):
    """A hazard assigned to a school, tracked from its finding until verified rectified."""

    __tablename__ = "hazards"
    __table_args__ = (
        Index("ix_hazards_status_deadline", "status", "deadline"),
        Index("ix_hazards_school_status", "school_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="RESTRICT"), nullable=False)
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="SET NULL"), nullable=True)
    source: Mapped[HazardSource] = mapped_column(str_enum(HazardSource, "hazard_source"), nullable=False)
    source_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The patrol task item, inspection finding or event it came from."""
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    severity: Mapped[Severity] = mapped_column(str_enum(Severity, "hazard_severity"), nullable=False)
    status: Mapped[HazardStatus] = mapped_column(str_enum(HazardStatus, "hazard_status"), nullable=False)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reopened: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0, nullable=False)


class HazardAction(Base):
    """One step of a hazard's history: created, a status change, a reminder, an escalation or a note."""

    __tablename__ = "hazard_actions"
    __table_args__ = (Index("ix_hazard_actions_hazard_at", "hazard_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="", nullable=False)
    by_user: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    """Null: the patrol service (reminders, escalations)."""
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class HazardEvidence(Base):
    """A picture of the hazard as found (before) or of its rectification (after)."""

    __tablename__ = "hazard_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hazard_id: Mapped[int] = mapped_column(ForeignKey("hazards.id", ondelete="CASCADE"), nullable=False)
    stage: Mapped[EvidenceStage] = mapped_column(str_enum(EvidenceStage, "evidence_stage"), nullable=False)
    content_type: Mapped[str] = mapped_column(String(64), nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    note: Mapped[str] = mapped_column(Text, default="", nullable=False)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
