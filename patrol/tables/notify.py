"""The notifier's outbox: messages to send (written before any send), what each carries, every attempt, and the
events watched for escalation.

``notify_items`` is the unit of de-duplication: one row per (subject, receiver, channel, step), under a unique
key, so the same event never reaches the same receiver twice on a channel at one step. Each item belongs to one
message of ``notify_outbox``: a message carries one item, or a storm summary many.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kernel.db import Base, UTCDateTime, str_enum


class MessageStatus(StrEnum):
    """Where a message is: waiting, being sent by a dispatcher, sent, failed (retried later) or dead."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"


class MessageKind(StrEnum):
    """One item per message, a storm summary of many, or an administrator's test message."""

    SINGLE = "single"
    SUMMARY = "summary"
    TEST = "test"


class NotifyStep(StrEnum):
    """Why a receiver gets an item: first notice, escalation of an unacknowledged event, a duty item, a test."""

    FIRST = "first"
    ESCALATION = "escalation"
    DUTY = "duty"
    TEST = "test"


class OutboxMessage(Base):
    """One message to one receiver on one channel."""

    __tablename__ = "notify_outbox"
    __table_args__ = (
        Index("ix_notify_outbox_due", "status", "next_attempt_at"),
        Index("ix_notify_outbox_created", "created_at"),
        Index("ix_notify_outbox_receiver", "channel", "receiver_key", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    """The message id (a UUID): also the idempotency key receivers see."""
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    channel: Mapped[str] = mapped_column(String(64), nullable=False)
    receiver_key: Mapped[str] = mapped_column(String(100), nullable=False)
    """``user:<id>`` for a person's channel (SMS, email), ``group`` for a robot or webhook."""
    recipients: Mapped[list[Any]] = mapped_column(JSON, default=list, nullable=False)
    """User ids the message is for (mentioned in a group, or the one person)."""
    kind: Mapped[MessageKind] = mapped_column(str_enum(MessageKind, "notify_message_kind"), nullable=False)
    status: Mapped[MessageStatus] = mapped_column(str_enum(MessageStatus, "notify_message_status"), nullable=False)
    title: Mapped[str] = mapped_column(String(200), default="", nullable=False)
    item_count: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When it is due (null once sent or dead); a storm summary is due at its window's end."""
    claimed_by: Mapped[str | None] = mapped_column(String(200), nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_error: Mapped[str] = mapped_column(String(1000), default="", nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class OutboxItem(Base):
    """One subject (an event, a duty item) for one receiver on one channel at one step, in one message."""

    __tablename__ = "notify_items"
    __table_args__ = (
        Index("ix_notify_items_storm", "channel", "receiver_key", "created_at"),
        Index("ix_notify_items_message", "message_id"),
        Index("ix_notify_items_subject", "subject"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    """``<subject>|<receiver>|<channel>|<step>``."""
    message_id: Mapped[str] = mapped_column(ForeignKey("notify_outbox.id", ondelete="CASCADE"), nullable=False)
    subject: Mapped[str] = mapped_column(String(100), nullable=False)
    """``event:<id>``, ``duty:<bus event id>`` or ``test:<uuid>``."""
    step: Mapped[NotifyStep] = mapped_column(str_enum(NotifyStep, "notify_step"), nullable=False)
    channel: Mapped[str] = mapped_column(String(64), nullable=False)
    receiver_key: Mapped[str] = mapped_column(String(100), nullable=False)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"), nullable=True)
    kind: Mapped[str] = mapped_column(String(64), nullable=False)
    """The event type (``intrusion``) or the duty event type (``clock.overdue``)."""
    severity: Mapped[str] = mapped_column(String(16), default="", nullable=False)
    school_code: Mapped[str] = mapped_column(String(32), default="", nullable=False)
    camera_code: Mapped[str] = mapped_column(String(64), default="", nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    text: Mapped[str] = mapped_column(String(2000), default="", nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class DeliveryAttempt(Base):
    """One attempt to send a message: when, the receiver's status code or the error, how long it took."""

    __tablename__ = "notify_attempts"
    __table_args__ = (Index("ix_notify_attempts_message_at", "message_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("notify_outbox.id", ondelete="CASCADE"), nullable=False)
    attempt: Mapped[int] = mapped_column(Integer, nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    ok: Mapped[bool] = mapped_column(Boolean, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(String(1000), default="", nullable=False)
    duration_ms: Mapped[int] = mapped_column(Integer, nullable=False)
    dispatcher: Mapped[str] = mapped_column(String(200), default="", nullable=False)


class EscalationWatch(Base):
    """An event sent to the officers on duty, watched until acknowledged or escalated to the leader on duty."""

    __tablename__ = "notify_watches"
    __table_args__ = (Index("ix_notify_watches_due", "escalated_at", "acknowledged_at", "escalate_at"),)

    subject: Mapped[str] = mapped_column(String(100), primary_key=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id", ondelete="SET NULL"), nullable=True)
    content: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    """What the escalation message says (kind, severity, school, camera, title, text, occurred_at)."""
    notified_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    escalate_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When the notifier found it acknowledged (on the console or on a wall) before it was due."""
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    escalated_to: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), nullable=True)
