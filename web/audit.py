"""The append-only audit log: who did what, when, from where.

Rows are only ever inserted (:func:`record_audit`); the database refuses UPDATE and DELETE on ``audit_log`` with
triggers made by migration 0006, so not even an administrator with SQL access through the app can edit it.
Auditors read it through ``GET /api/audit``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from kernel.clock import utcnow
from kernel.db import Base, UTCDateTime
from web.models import User


class AuditAction(StrEnum):
    """What an audit row records."""

    LOGIN = "login"
    LOGIN_FAILED = "login.failed"
    LOGIN_BLOCKED = "login.blocked"
    LOGOUT = "logout"
    LIVE_VIEW = "live.view"
    EXPORT = "export"
    CONFIG_CHANGE = "config.change"
    EVENT_ACTION = "event.action"


class AuditEntry(Base):
    """One audited action. ``actor_id``/``actor_name`` are copies, not a foreign key: the row outlives the user."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_action_at", "action", "at"),
        Index("ix_audit_log_actor_at", "actor_name", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    actor_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor_name: Mapped[str] = mapped_column(String(64), default="", nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    ip: Mapped[str] = mapped_column(String(64), default="", nullable=False)
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict, nullable=False)


def record_audit(
    session: Session,
    action: AuditAction,
    *,
    actor: User | None = None,
    actor_name: str = "",
    target: str = "",
    ip: str = "",
    detail: dict[str, object] | None = None,
    at: datetime | None = None,
) -> AuditEntry:
    """Add an audit row to ``session`` (the caller commits, with the change it records). ``detail`` holds JSON
    values only and never a credential."""
    entry = AuditEntry(
        at=at or utcnow(),
        actor_id=actor.id if actor is not None else None,
        actor_name=actor.username if actor is not None else actor_name[:64],
        action=action.value,
        target=target[:200],
        ip=ip[:64],
        detail=dict(detail or {}),
    )
    session.add(entry)
    return entry
