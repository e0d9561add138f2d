"""Console users: a role (what they may do) and a scope (which schools they may see); and their logins."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, Enum, ForeignKey, Index, Integer, String
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


class SessionEndReason(StrEnum):
    """Why a login session ended."""

    LOGOUT = "logout"
    ADMINISTRATOR = "administrator"
    EXPIRED = "expired"


class LoginSession(Base):
    """One login: the server's side of a console session cookie, so that one session can end on its own.

    The cookie carries a random token (256 bits); the row's key is the token's SHA-256 (hex), so the table (a
    backup, a read-only SQL account) holds nothing that logs anyone in. ``session_version`` is the user's at
    login (a newer one ends the session, as for the cookie's copy); ``expires_at`` is login time plus
    ``web.session_max_age_s``, the cookie's own lifetime. Rows are kept when they end (``ended_at``)."""

    __tablename__ = "login_sessions"
    __table_args__ = (Index("ix_login_sessions_user_created", "user_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    session_version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    # Written at most once a minute (web.auth.LAST_SEEN_EVERY_S), not at every request.
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    end_reason: Mapped[SessionEndReason | None] = mapped_column(
        str_enum(SessionEndReason, "login_session_end_reason"), nullable=True
    )
    ip: Mapped[str] = mapped_column(String(64), default="", nullable=False)
    user_agent: Mapped[str] = mapped_column(String(200), default="", nullable=False)

    @property
    def handle(self) -> str:
        """The short public name of this session (the first 12 hex digits of its key): shown to
        administrators and in the audit log, never enough to log in."""
        return self.id[:SESSION_HANDLE_LENGTH]


SESSION_HANDLE_LENGTH = 12
"""Hex digits of a login session's public handle (48 bits: unique among one user's sessions)."""
