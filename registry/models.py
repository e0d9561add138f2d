"""Registry tables: districts, schools and cameras."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from kernel.clock import utcnow
from kernel.db import Base, UTCDateTime, str_enum


class SchoolKind(StrEnum):
    """What kind of school it is."""

    KINDERGARTEN = "kindergarten"
    PRIMARY = "primary"
    MIDDLE = "middle"
    HIGH = "high"
    VOCATIONAL = "vocational"
    OTHER = "other"


class SceneType(StrEnum):
    """What a camera looks at; rules and diagnosis thresholds depend on it."""

    GATE = "gate"
    PLAYGROUND = "playground"
    CANTEEN = "canteen"
    DORMITORY = "dormitory"
    CORRIDOR = "corridor"
    PERIMETER = "perimeter"
    WATER = "water"
    GUARD_POST = "guard_post"
    CLASSROOM = "classroom"
    OTHER = "other"


class TimestampMixin:
    """Creation and last-change times."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False)


class District(TimestampMixin, Base):
    """An administrative district (区/市) of the bureau."""

    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(128), nullable=False)

    schools: Mapped[list[School]] = relationship(back_populates="district")


class School(TimestampMixin, Base):
    """A school, kindergarten or vocational college."""

    __tablename__ = "schools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[SchoolKind] = mapped_column(str_enum(SchoolKind, "school_kind"), nullable=False)
    address: Mapped[str] = mapped_column(String(300), default="", nullable=False)
    contact_name: Mapped[str] = mapped_column(String(100), default="", nullable=False)
    contact_phone: Mapped[str] = mapped_column(String(40), default="", nullable=False)

    district: Mapped[District] = relationship(back_populates="schools")
    cameras: Mapped[list[Camera]] = relationship(back_populates="school")


class Camera(TimestampMixin, Base):
    """A camera. URLs are stored without credentials; the password is encrypted at rest."""

    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="RESTRICT"), index=True)
    scene_type: Mapped[SceneType] = mapped_column(str_enum(SceneType, "scene_type"), nullable=False)
    main_url: Mapped[str] = mapped_column(String(500), nullable=False)
    sub_url: Mapped[str | None] = mapped_column(String(500), nullable=True)
    username: Mapped[str | None] = mapped_column(String(100), nullable=True)
    password_encrypted: Mapped[str | None] = mapped_column(Text, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    key_scene: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    tags: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    location: Mapped[str] = mapped_column(String(300), default="", nullable=False)

    school: Mapped[School] = relationship(back_populates="cameras")
