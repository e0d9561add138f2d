"""Stored walls, tours, the walls' runtime state, their alarms, and which cameras were toured each day."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from kernel.clock import utcnow
from kernel.db import Base, UTCDateTime, str_enum
from patrol.models import Takeover
from registry.models import TimestampMixin


class Tour(TimestampMixin, Base):
    """A tour (轮巡): a camera set shown page by page, ``dwell_s`` seconds a page, on a layout."""

    __tablename__ = "tours"
    __table_args__ = (
        CheckConstraint("dwell_s >= 5 AND dwell_s <= 300", name="dwell"),
        CheckConstraint("key_repeat >= 1 AND key_repeat <= 10", name="key_repeat"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(String(500), default="", nullable=False)
    selector: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    """A :class:`patrol.camera_sets.CameraSet`, as JSON."""
    dwell_s: Mapped[int] = mapped_column(Integer, nullable=False)
    layout: Mapped[str] = mapped_column(String(8), nullable=False)
    key_repeat: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


class VideoWall(TimestampMixin, Base):
    """A video wall's configuration: layout over screens, pinned tiles, what it watches, its tour."""

    __tablename__ = "walls"
    __table_args__ = (CheckConstraint("screens >= 1 AND screens <= 16", name="screens"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    layout: Mapped[str] = mapped_column(String(8), nullable=False)
    screens: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    takeover: Mapped[Takeover] = mapped_column(str_enum(Takeover, "wall_takeover"), nullable=False)
    districts: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    schools: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    pinned: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    """Tile index (as a string: JSON keys) -> camera code."""
    tour_id: Mapped[int | None] = mapped_column(ForeignKey("tours.id", ondelete="SET NULL"), nullable=True)
    inspection_id: Mapped[int | None] = mapped_column(
        ForeignKey("inspections.id", ondelete="SET NULL"), nullable=True
    )
    """An open spot-check inspection whose school's cameras the wall shows instead of its tour."""


class WallState(Base):
    """What a wall shows now and where its tour is; written by the patrol service only."""

    __tablename__ = "wall_states"

    wall_id: Mapped[int] = mapped_column(ForeignKey("walls.id", ondelete="CASCADE"), primary_key=True)
    tour_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The tour ``tour_state`` belongs to (a new tour on the wall starts from its beginning)."""
    tour_state: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    showing: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    """Tile index (string) -> camera code."""
    alarm_tiles: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    """The tiles the alarm shown holds (empty while rotating)."""
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_rotation_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class WallAlarm(Base):
    """An alarm raised on a wall; it holds a tile (and rotation) until acknowledged."""

    __tablename__ = "wall_alarms"
    __table_args__ = (
        UniqueConstraint("wall_id", "alarm_key", name="uq_wall_alarms_wall_key"),
        Index("ix_wall_alarms_wall_open", "wall_id", "acknowledged_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    wall_id: Mapped[int] = mapped_column(ForeignKey("walls.id", ondelete="CASCADE"), nullable=False)
    alarm_key: Mapped[str] = mapped_column(String(64), nullable=False)
    """What the alarm is about, e.g. ``event:123``: the same alarm is raised once per wall."""
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"), nullable=True)
    camera_code: Mapped[str] = mapped_column(String(64), nullable=False)
    school_code: Mapped[str] = mapped_column(String(32), nullable=False)
    district_code: Mapped[str] = mapped_column(String(32), nullable=False)
    title: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    severity: Mapped[str] = mapped_column(String(16), default="general", nullable=False)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


class TourCoverage(Base):
    """A camera shown on a wall on a (local) day: the daily report's patrol coverage."""

    __tablename__ = "tour_coverage"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    first_shown_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_shown_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    shows: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
