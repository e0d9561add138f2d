"""Stored patrol plans (定时定点巡查), the tasks they become, and a verdict per camera of each task."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from kernel.db import Base, UTCDateTime, str_enum
from patrol.models import DayRule, TaskStatus, Verdict
from registry.models import TimestampMixin


class PatrolPlan(TimestampMixin, Base):
    """A scheduled fixed-scene check: a camera set, on some days, inside a local time window."""

    __tablename__ = "patrol_plans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    description: Mapped[str] = mapped_column(String(500), default="", nullable=False)
    selector: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    """A :class:`patrol.camera_sets.CameraSet`, as JSON."""
    day_rule: Mapped[DayRule] = mapped_column(str_enum(DayRule, "plan_day_rule"), nullable=False)
    weekdays: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    """With ``day_rule`` weekdays: ``["mon", ...]``."""
    start: Mapped[time] = mapped_column(Time, nullable=False)
    end: Mapped[time] = mapped_column(Time, nullable=False)
    """Local times; an end before the start runs past midnight into the next day."""
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)


class PatrolTask(Base):
    """One window of a plan, for the shift on duty when it opens."""

    __tablename__ = "patrol_tasks"
    __table_args__ = (
        UniqueConstraint("plan_id", "window_start", name="uq_patrol_tasks_plan_window"),
        Index("ix_patrol_tasks_status_end", "status", "window_end"),
        Index("ix_patrol_tasks_day", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("patrol_plans.id", ondelete="CASCADE"), nullable=False)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    """The local day the window opens on."""
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    shift_id: Mapped[int | None] = mapped_column(ForeignKey("duty_shifts.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[TaskStatus] = mapped_column(str_enum(TaskStatus, "patrol_task_status"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    missed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PatrolTaskItem(Base):
    """One camera of a task and its verdict (null until recorded), with the snapshot kept as evidence."""

    __tablename__ = "patrol_task_items"
    __table_args__ = (UniqueConstraint("task_id", "camera_id", name="uq_patrol_task_items_task_camera"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("patrol_tasks.id", ondelete="CASCADE"), nullable=False)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    verdict: Mapped[Verdict | None] = mapped_column(str_enum(Verdict, "patrol_verdict"), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="", nullable=False)
    snapshot_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    checked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
    hazard_id: Mapped[int | None] = mapped_column(ForeignKey("hazards.id", ondelete="SET NULL"), nullable=True)
