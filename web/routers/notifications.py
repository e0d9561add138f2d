"""The notifier's outbox: what was sent to the duty phones, how each attempt went, and test messages.

Reading needs a bureau-wide duty room role, administrator or auditor (the outbox names people and events of
every school); sending a test message needs a bureau-wide administrator.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from patrol.notify import Dispatcher, NotifyError, get_channel
from patrol.notify.outbox import Content, Target, enqueue_test, recipients_of
from patrol.tables import DeliveryAttempt, MessageKind, MessageStatus, NotifyStep, OutboxItem, OutboxMessage
from web.audit import AuditAction, record_audit
from web.auth import client_address
from web.deps import AppSettings, Clock, DbSession
from web.models import Role, User
from web.permissions import require_bureau_roles
from web.schemas import Page, UserRef, user_refs
from web.scopes import not_found

router = APIRouter(prefix="/api/notifications", tags=["notifications"])

NotifyReader = Annotated[
    User,
    Depends(require_bureau_roles(Role.DUTY_OFFICER, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR, Role.AUDITOR)),
]
"""Reading the outbox: a bureau-scoped duty officer, leader on duty, administrator or auditor."""
NotifyAdmin = Annotated[User, Depends(require_bureau_roles(Role.ADMINISTRATOR))]
"""Sending test messages: a bureau-scoped administrator."""


class NotificationPublic(BaseModel):
    """One outbox message."""

    id: str = Field(description="Message id (the receivers' idempotency key)")
    channel: str = Field(description="Channel name from the configuration")
    receiver_key: str = Field(description="user:<id> (SMS, email) or group (robots, webhook)")
    recipients: list[UserRef] = Field(description="The people it is for")
    kind: MessageKind = Field(description="single, summary (a storm's events together) or test")
    status: MessageStatus = Field(
        description="pending, sending, sent, failed (retried later) or dead (out of attempts, not sendable, or "
        "not needed any more: its escalations' events were acknowledged first; last_error says which)"
    )
    title: str = Field(description="What it says, in short")
    item_count: int = Field(ge=0, description="Events or duty items it carries")
    steps: list[NotifyStep] = Field(description="Why: first notice, escalation, duty item, test")
    event_ids: list[int] = Field(description="The analytics events it is about")
    attempts: int = Field(ge=0, description="Attempts so far")
    next_attempt_at: datetime | None = Field(None, description="When it is (next) due; null once sent or dead")
    last_error: str = Field(description="Why the last attempt failed ('' when none did)")
    created_at: datetime = Field(description="When it was written to the outbox")
    sent_at: datetime | None = Field(None, description="When the receiver accepted it")


class AttemptPublic(BaseModel):
    """One attempt to send a message."""

    attempt: int = Field(ge=0, description="Attempt number, from 1")
    at: datetime = Field(description="When it ended")
    ok: bool = Field(description="Whether the receiver accepted it")
    status_code: int | None = Field(None, description="The receiver's HTTP status or SMTP reply code")
    error: str = Field(
        description="What went wrong; when ok, what was left out and why (escalations acknowledged meanwhile), "
        "else ''"
    )
    duration_ms: int = Field(ge=0, description="How long it took")
    dispatcher: str = Field(description="The dispatcher that made it")


class TestMessageCreate(BaseModel):
    """A test message on one channel."""

    channel: str = Field(min_length=1, max_length=64, description="Channel name from the configuration")
    text: str = Field("campuswatch test message", min_length=1, max_length=500, description="What it says")
    to: list[str] = Field(
        default_factory=list, max_length=20, description="User names it is for (default: yourself)"
    )


def _public(session: Session, messages: list[OutboxMessage]) -> list[NotificationPublic]:
    ids = [m.id for m in messages]
    steps: dict[str, set[NotifyStep]] = defaultdict(set)
    events: dict[str, set[int]] = defaultdict(set)
    if ids:
        for message_id, step, event_id in session.execute(
            select(OutboxItem.message_id, OutboxItem.step, OutboxItem.event_id).where(
                OutboxItem.message_id.in_(ids)
            )
        ):
            steps[message_id].add(step)
            if event_id is not None:
                events[message_id].add(event_id)
    users = user_refs(session, (int(u) for m in messages for u in m.recipients))
    return [
        NotificationPublic(
            id=m.id,
            channel=m.channel,
            receiver_key=m.receiver_key,
            recipients=[users[int(u)] for u in m.recipients if int(u) in users],
            kind=m.kind,
            status=m.status,
            title=m.title,
            item_count=m.item_count,
            steps=sorted(steps[m.id]),
            event_ids=sorted(events[m.id]),
            attempts=m.attempts,
            next_attempt_at=m.next_attempt_at,
            last_error=m.last_error,
            created_at=m.created_at,
            sent_at=m.sent_at,
        )
        for m in messages
    ]


@router.get("", summary="The notifier's outbox")
def list_notifications(
    session: DbSession,
    _user: NotifyReader,
    message_status: Annotated[MessageStatus | None, Query(alias="status", description="Only this status")] = None,
    channel: Annotated[str | None, Query(max_length=64, description="Only this channel")] = None,
    kind: Annotated[MessageKind | None, Query(description="Only this kind")] = None,
    step: Annotated[NotifyStep | None, Query(description="Only messages with an item of this step")] = None,
    event_id: Annotated[int | None, Query(ge=1, description="Only messages about this event")] = None,
    since: Annotated[datetime | None, Query(description="Written at or after (ISO 8601 with offset)")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Most rows returned")] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Rows skipped")] = 0,
) -> Page[NotificationPublic]:
    """Messages, newest first, with their recipients, steps, events and delivery state."""
    stmt = select(OutboxMessage)
    if message_status is not None:
        stmt = stmt.where(OutboxMessage.status == message_status)
    if channel is not None:
        stmt = stmt.where(OutboxMessage.channel == channel)
    if kind is not None:
        stmt = stmt.where(OutboxMessage.kind == kind)
    if step is not None or event_id is not None:
        about = select(OutboxItem.message_id)
        if step is not None:
            about = about.where(OutboxItem.step == step)
        if event_id is not None:
            about = about.where(OutboxItem.event_id == event_id)
        stmt = stmt.where(OutboxMessage.id.in_(about))
    if since is not None:
        if since.tzinfo is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since needs a UTC offset, e.g. +08:00")
        stmt = stmt.where(OutboxMessage.created_at >= since)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = list(
        session.scalars(
            stmt.order_by(OutboxMessage.created_at.desc(), OutboxMessage.id).limit(limit).offset(offset)
        )
    )
    return Page(total=total, offset=offset, limit=limit, items=_public(session, rows))


@router.get("/{message_id}/attempts", summary="A message's delivery log")
def list_attempts(message_id: str, session: DbSession, _user: NotifyReader) -> list[AttemptPublic]:
    """Every attempt to send the message, oldest first."""
    if session.get(OutboxMessage, message_id) is None:
        raise not_found(f"notification {message_id}")
    rows = session.scalars(
        select(DeliveryAttempt)
        .where(DeliveryAttempt.message_id == message_id)
        .order_by(DeliveryAttempt.at, DeliveryAttempt.id)
    )
    return [
        AttemptPublic(
            attempt=a.attempt,
            at=a.at,
            ok=a.ok,
            status_code=a.status_code,
            error=a.error,
            duration_ms=max(0, a.duration_ms),
            dispatcher=a.dispatcher,
        )
        for a in rows
    ]


@router.post("/test", status_code=status.HTTP_201_CREATED, summary="Send a test message on a channel")
def send_test(
    body: TestMessageCreate,
    request: Request,
    session: DbSession,
    user: NotifyAdmin,
    settings: AppSettings,
    clock: Clock,
) -> list[NotificationPublic]:
    """Write a test message to the outbox and send it at once; the message(s) with how the send went (a failed
    one is retried like any other)."""
    channel = get_channel(settings.notify.channels, body.channel)  # 404 unknown, 409 disabled
    names = body.to or [user.username]
    found = {u.username: u.id for u in session.scalars(select(User).where(User.username.in_(names)))}
    missing = sorted(set(names) - set(found))
    if missing:
        raise not_found(f"user {', '.join(missing)}")
    recipients = recipients_of(session, [found[n] for n in names])
    if channel.per_person and not any(channel.contact(r) for r in recipients):
        raise NotifyError(f"nobody of {', '.join(names)} has a {channel.contact_field} for channel {channel.name}")
    now = clock()
    content = Content(
        kind="test",
        title=f"Test message from {user.display_name or user.username}",
        text=body.text,
        occurred_at=now,
    )
    target = Target(channel.name, channel.per_person, channel.contact_field)
    ids = enqueue_test(session, target=target, recipients=recipients, content=content, now=now)
    record_audit(
        session,
        AuditAction.CONFIG_CHANGE,
        actor=user,
        target=f"notify channel {channel.name}",
        ip=client_address(request),
        detail={"test_message": ids, "to": names},
        at=now,
    )
    session.commit()
    factory: sessionmaker[Session] = request.app.state.session_factory
    dispatcher = Dispatcher(
        factory,
        settings.notify,
        {channel.name: channel},
        zone=ZoneInfo(settings.instance.timezone),
        name=f"web-test-{user.username}",
        clock=clock,
    )
    for message_id in ids:
        dispatcher.send_now(message_id)
    session.expire_all()
    messages = list(session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))))
    return _public(session, messages)
