"""Console users: a role (what they may do) and a scope (which schools they may see)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, Enum, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kernel.clock import utcnow
from kernel.db import Base, UTCDateTime, str_enum


class Role(StrEnum):
    """What a console user may do."""

    DUTY_OFFICER = "duty_officer"
    LEADER_ON_DUTY = "leader_on_duty"
    INSPECTOR = "inspector"
    SCHOOL_SAFETY_OFFICER = "school_safety_officer"
    ADMINISTRATOR = "administrator"
    AUDITOR = "auditor"


class ScopeKind(StrEnum):
    """How much of the fleet a user sees: the whole bureau, one district, or one school."""

    BUREAU = "bureau"
    DISTRICT = "district"
    SCHOOL = "school"


class User(Base):
    """A person who logs in to the console."""

    __tablename__ = "users"
    __table_args__ = (
        # A district scope names its district, a school scope its school, a bureau scope neither.
        CheckConstraint(
            "(scope = 'bureau' AND district_id IS NULL AND school_id IS NULL)"
            " OR (scope = 'district' AND district_id IS NOT NULL AND school_id IS NULL)"
            " OR (scope = 'school' AND school_id IS NOT NULL AND district_id IS NULL)",
            name="scope_target",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(128), default="", nullable=False)
    password_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            name="user_role",
            native_enum=False,
            length=32,
            values_callable=lambda e: [m.value for m in e],
        ),
        nullable=False,
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    scope: Mapped[ScopeKind] = mapped_column(
        str_enum(ScopeKind, "user_scope"), default=ScopeKind.BUREAU, nullable=False
    )
    district_id: Mapped[int | None] = mapped_column(
        ForeignKey("districts.id", ondelete="RESTRICT"), nullable=True, index=True
    )
    school_id: Mapped[int | None] = mapped_column(
        ForeignKey("schools.id", ondelete="RESTRICT"), nullable=True, index=True
    )
    # Bumped when the password changes or the account is disabled: sessions carrying an older value end.
    session_version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    phone: Mapped[str] = mapped_column(String(40), default="", nullable=False)
    email: Mapped[str] = mapped_column(String(200), default="", nullable=False)
