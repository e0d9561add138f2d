"""Stored camera health: the current status of every camera, its transitions, and video-quality faults."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from ingest.models import HealthReason, HealthState, QualityFault
from kernel.db import Base, UTCDateTime, str_enum


class CameraHealth(Base):
    """The current health and stream figures of one camera (one row per camera that has been read)."""

    __tablename__ = "camera_health"

    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[HealthState] = mapped_column(str_enum(HealthState, "health_state"), nullable=False)
    reason: Mapped[HealthReason] = mapped_column(str_enum(HealthReason, "health_reason"), nullable=False)
    detail: Mapped[str] = mapped_column(String(300), default="", nullable=False)
    since: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    worker_id: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    bitrate_kbps: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    fps: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    keyframe_interval_s: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    width: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    height: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_frame_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    reconnects: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    decode_errors: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class CameraHealthTransition(Base):
    """One change of a camera's health state, kept as history."""

    __tablename__ = "camera_health_transitions"
    __table_args__ = (Index("ix_camera_health_transitions_camera_at", "camera_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    state: Mapped[HealthState] = mapped_column(str_enum(HealthState, "health_state"), nullable=False)
    reason: Mapped[HealthReason] = mapped_column(str_enum(HealthReason, "health_reason"), nullable=False)
    previous_state: Mapped[HealthState | None] = mapped_column(
        str_enum(HealthState, "previous_health_state"), nullable=True
    )
    detail: Mapped[str] = mapped_column(String(300), default="", nullable=False)
    worker_id: Mapped[str] = mapped_column(String(200), default="", nullable=False)


class CameraQualityFault(Base):
    """A video-quality fault of a camera from when it was found until it cleared, and the keyframe showing it."""

    __tablename__ = "camera_quality_faults"
    __table_args__ = (Index("ix_camera_quality_faults_camera_open", "camera_id", "open"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False)
    fault: Mapped[QualityFault] = mapped_column(str_enum(QualityFault, "quality_fault"), nullable=False)
    open: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    value: Mapped[float] = mapped_column(Float, nullable=False)
    threshold: Mapped[float] = mapped_column(Float, nullable=False)
    snapshot_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
