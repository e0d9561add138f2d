"""Stored spot-check quotas, their seeded draws (with the inputs to re-derive them), inspections and findings."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kernel.db import Base, UTCDateTime, str_enum
from patrol.models import InspectionMethod, InspectionStatus, QuotaPeriod, Verdict
from registry.models import TimestampMixin


class SpotCheckQuota(TimestampMixin, Base):
    """How many schools to draw per day or week (e.g. 5 a day, 6–10 a week), and from where."""

    __tablename__ = "spot_check_quotas"
    __table_args__ = (CheckConstraint("min_count >= 1 AND max_count >= min_count", name="counts"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    period: Mapped[QuotaPeriod] = mapped_column(str_enum(QuotaPeriod, "quota_period"), nullable=False)
    min_count: Mapped[int] = mapped_column(Integer, nullable=False)
    max_count: Mapped[int] = mapped_column(Integer, nullable=False)
    exclude_days: Mapped[int] = mapped_column(Integer, default=7, nullable=False)
    districts: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    """District codes to draw from; empty: the whole bureau."""
    weights: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    """:class:`patrol.spot_checks.RiskWeights` fields, as JSON."""
    seed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


class SpotCheckDraw(Base):
    """One period's draw, with its seed and every input, so that anyone can derive it again."""

    __tablename__ = "spot_check_draws"
    __table_args__ = (UniqueConstraint("quota_id", "period_start", name="uq_spot_check_draws_quota_period"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    quota_id: Mapped[int] = mapped_column(ForeignKey("spot_check_quotas.id", ondelete="CASCADE"), nullable=False)
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    count: Mapped[int] = mapped_column(Integer, nullable=False)
    seed: Mapped[int] = mapped_column(BigInteger, nullable=False)
    schools: Mapped[list[Any]] = mapped_column(JSON, nullable=False)
    """School codes drawn, in draw order."""
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    """Every school's risk and last check, the weights and the exclusion window, as they were at the draw."""
    inputs_sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    drawn_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    drawn_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


class Inspection(Base):
    """An inspector's session on one school's cameras; signing seals its findings with a content hash."""

    __tablename__ = "inspections"
    __table_args__ = (
        Index("ix_inspections_school_started", "school_id", "started_at"),
        # One random inspection per school of a draw (directed ones have no draw: NULLs never collide).
        UniqueConstraint("draw_id", "school_id", name="uq_inspections_draw_school"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="RESTRICT"), nullable=False)
    draw_id: Mapped[int | None] = mapped_column(
        ForeignKey("spot_check_draws.id", ondelete="SET NULL"), nullable=True
    )
    method: Mapped[InspectionMethod] = mapped_column(
        str_enum(InspectionMethod, "inspection_method"), nullable=False
    )
    inspector_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    status: Mapped[InspectionStatus] = mapped_column(
        str_enum(InspectionStatus, "inspection_status"), nullable=False
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    summary: Mapped[str] = mapped_column(Text, default="", nullable=False)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    signed_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


class InspectionFinding(Base):
    """What the inspector found on one camera (or the school as a whole), with a snapshot."""

    __tablename__ = "inspection_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    inspection_id: Mapped[int] = mapped_column(ForeignKey("inspections.id", ondelete="CASCADE"), nullable=False)
    camera_id: Mapped[int | None] = mapped_column(ForeignKey("cameras.id", ondelete="SET NULL"), nullable=True)
    verdict: Mapped[Verdict] = mapped_column(str_enum(Verdict, "finding_verdict"), nullable=False)
    note: Mapped[str] = mapped_column(Text, default="", nullable=False)
    snapshot_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    snapshot_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    hazard_id: Mapped[int | None] = mapped_column(ForeignKey("hazards.id", ondelete="SET NULL"), nullable=True)
