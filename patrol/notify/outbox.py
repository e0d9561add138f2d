"""The outbox: what to send is committed before anything is sent, claimed by one dispatcher at a time, and
every attempt is logged.

* **Enqueue** (:func:`enqueue`): one :class:`~patrol.tables.OutboxItem` per subject, receiver, channel and step
  under a unique ``dedupe_key``, so an event handed out again by the bus (at-least-once) adds nothing. The item
  goes into a single message or a storm summary (:mod:`patrol.notify.storm`).
* **Claim** (:func:`claim`): due rows (pending, failed and due for a retry, or claimed by a dispatcher whose
  lease ran out) are taken with a conditional UPDATE, after ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two
  dispatchers never take the same row; the attempt is counted at the claim, so a dispatcher dying mid-send
  still uses up an attempt.
* **Finish** (:func:`finish`): sent, or failed with the next attempt after an exponential back-off with jitter,
  or dead after ``max_attempts`` — or dead at once when nothing in it is worth sending any more (escalations of
  events acknowledged while they waited), with the reason; each attempt is a
  :class:`~patrol.tables.DeliveryAttempt` row.

A message lost between the receiver's answer and :func:`finish` (a crash) is sent again after its lease: the
receiver sees the same message id (the idempotency key) twice and can drop the repeat.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Boolean, Integer, String, and_, column, or_, select, table, update
from sqlalchemy.orm import Session

from config.notify import Language, RetryConfig, StormConfig
from patrol.notify.base import Recipient
from patrol.notify.storm import new_message, place
from patrol.tables import (
    DeliveryAttempt,
    MessageKind,
    MessageStatus,
    NotifyStep,
    OutboxItem,
    OutboxMessage,
)

log = logging.getLogger(__name__)
# The users' contacts by column name (SQLAlchemy Core): patrol must not import web, whose table it is.
_users = table(
    "users",
    column("id", Integer),
    column("username", String),
    column("display_name", String),
    column("phone", String),
    column("email", String),
    column("active", Boolean),
)
GROUP = "group"
"""The receiver key of a group channel (robot, webhook): one message names all its recipients."""


@dataclass(frozen=True, slots=True)
class Content:
    """What an item says, whatever channel carries it."""

    kind: str
    title: str
    text: str
    occurred_at: datetime
    severity: str = ""
    school_code: str = ""
    camera_code: str = ""
    event_id: int | None = None

    def to_json(self) -> dict[str, Any]:
        """As JSON values (an escalation watch keeps it)."""
        data = asdict(self)
        data["occurred_at"] = self.occurred_at.isoformat()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Content:
        """Read :meth:`to_json` output."""
        return cls(**{**data, "occurred_at": datetime.fromisoformat(str(data["occurred_at"]))})


@dataclass(frozen=True, slots=True)
class Target:
    """Where an item goes: a channel, and the people it is for."""

    channel: str
    per_person: bool
    contact_field: str
    """For a per-person channel: the Recipient field it needs (``phone``, ``email``)."""


def item_key(subject: str, receiver_key: str, channel: str, step: NotifyStep) -> str:
    """The de-duplication key of an item."""
    return f"{subject}|{receiver_key}|{channel}|{step.value}"


def recipients_of(session: Session, user_ids: Sequence[int]) -> list[Recipient]:
    """The active users with these ids as recipients, in the order given."""
    if not user_ids:
        return []
    rows = session.execute(
        select(_users.c.id, _users.c.username, _users.c.display_name, _users.c.phone, _users.c.email).where(
            _users.c.id.in_(user_ids), _users.c.active.is_(True)
        )
    )
    found = {
        uid: Recipient(uid, shown or name, phone or "", email or "") for uid, name, shown, phone, email in rows
    }
    return [found[i] for i in user_ids if i in found]


def enqueue(
    session: Session,
    *,
    subject: str,
    step: NotifyStep,
    target: Target,
    recipients: Sequence[Recipient],
    content: Content,
    now: datetime,
    storm: StormConfig,
    language: Language,
) -> int:
    """Add ``content`` for ``recipients`` on one channel; how many items were new (0: all there already).

    A per-person channel gets an item per recipient (a recipient without the channel's contact gets a dead
    message saying so, visible in the outbox); a group channel one item naming them all — and one naming
    nobody when nobody is on duty, since the duty group still reads it.
    """
    if target.per_person:
        added = 0
        for person in recipients:
            receiver = f"user:{person.user_id}"
            missing = (
                "" if getattr(person, target.contact_field) else f"{person.name} has no {target.contact_field}"
            )
            added += _add(
                session,
                subject,
                step,
                target.channel,
                receiver,
                [person.user_id],
                content,
                now,
                storm,
                missing,
                language,
            )
        return added
    people = [p.user_id for p in recipients]
    return _add(session, subject, step, target.channel, GROUP, people, content, now, storm, "", language)


def _add(
    session: Session,
    subject: str,
    step: NotifyStep,
    channel: str,
    receiver: str,
    people: list[int],
    content: Content,
    now: datetime,
    storm: StormConfig,
    missing: str,
    language: Language,
) -> int:
    key = item_key(subject, receiver, channel, step)
    if session.scalar(select(OutboxItem.id).where(OutboxItem.dedupe_key == key)) is not None:
        return 0  # routed before (the bus handed the event out again): nothing more
    if missing:
        message = new_message(
            channel=channel,
            receiver_key=receiver,
            recipients=people,
            dedupe_key=key,
            title=content.title,
            kind=MessageKind.SINGLE,
            due=None,
            now=now,
            status=MessageStatus.DEAD,
            error=f"not sendable: {missing}",
        )
        session.add(message)
        session.flush()
        log.warning("notification %s on %s is dead: %s", subject, channel, missing)
    else:
        message = place(
            session,
            channel=channel,
            receiver_key=receiver,
            recipients=people,
            dedupe_key=key,
            title=content.title,
            severity=content.severity,
            now=now,
            config=storm,
            language=language,
        )
    session.add(
        OutboxItem(
            dedupe_key=key,
            message_id=message.id,
            subject=subject[:100],
            step=step,
            channel=channel,
            receiver_key=receiver,
            event_id=content.event_id,
            kind=content.kind[:64],
            severity=content.severity[:16],
            school_code=content.school_code[:32],
            camera_code=content.camera_code[:64],
            title=content.title[:200],
            text=content.text[:2000],
            occurred_at=content.occurred_at,
            created_at=now,
        )
    )
    session.flush()
    return 1


def _due(now: datetime) -> Any:
    return or_(
        and_(
            OutboxMessage.status.in_((MessageStatus.PENDING, MessageStatus.FAILED)),
            OutboxMessage.next_attempt_at <= now,
        ),
        and_(OutboxMessage.status == MessageStatus.SENDING, OutboxMessage.claimed_until < now),
    )


def claim(
    session: Session,
    *,
    now: datetime,
    worker: str,
    limit: int,
    lease_s: float,
    max_attempts: int,
    message_id: str | None = None,
) -> list[str]:
    """Claim up to ``limit`` due messages (or just ``message_id``) for ``worker``; their ids. Commits.

    A message whose dispatcher's lease ran out is logged as a failed attempt; out of attempts, it is dead.
    """
    stmt = select(OutboxMessage.id, OutboxMessage.status, OutboxMessage.claimed_by, OutboxMessage.attempts).where(
        _due(now)
    )
    if message_id is not None:
        stmt = stmt.where(OutboxMessage.id == message_id)
    stmt = stmt.order_by(OutboxMessage.next_attempt_at, OutboxMessage.created_at).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = session.execute(stmt).all()
    if not rows:
        session.rollback()
        return []
    stale = {mid: (by, attempts) for mid, status, by, attempts in rows if status is MessageStatus.SENDING}
    for mid, (by, attempts) in stale.items():
        error = f"dispatcher {by} stopped before reporting attempt {attempts} (its lease ran out)"
        session.add(
            DeliveryAttempt(
                message_id=mid, attempt=attempts, at=now, ok=False, error=error, duration_ms=0, dispatcher=by or ""
            )
        )
        if attempts >= max_attempts:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == mid, _due(now))
                .values(
                    status=MessageStatus.DEAD,
                    next_attempt_at=None,
                    claimed_by=None,
                    claimed_until=None,
                    last_error=error,
                    updated_at=now,
                )
            )
            log.error("notification %s is dead: %s", mid, error)
    wanted = [mid for mid, *_ in rows if mid not in stale or stale[mid][1] < max_attempts]
    claimed: list[str] = []
    if wanted:
        claimed = list(
            session.scalars(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(wanted), _due(now))
                .values(
                    status=MessageStatus.SENDING,
                    claimed_by=worker,
                    claimed_until=now + timedelta(seconds=lease_s),
                    attempts=OutboxMessage.attempts + 1,
                    updated_at=now,
                )
                .returning(OutboxMessage.id)
            )
        )
    session.commit()
    return claimed


def backoff_s(attempt: int, retry: RetryConfig, rng: random.Random) -> float:
    """The wait after failed attempt ``attempt`` (1-based): doubling from the first, capped, ± jitter."""
    base = min(retry.backoff_max_s, retry.backoff_initial_s * 2 ** max(0, attempt - 1))
    return max(0.0, base * (1 + rng.uniform(-retry.jitter, retry.jitter)))


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt went."""

    ok: bool
    status_code: int | None
    error: str
    """What went wrong; on a sent message, what it left out and why (else '')."""
    duration_ms: int
    final: bool = False
    """Not sent and never to be (nothing left in it worth sending): the message ends dead, ``error`` saying why."""


def finish(
    session: Session,
    message_id: str,
    *,
    worker: str,
    now: datetime,
    outcome: Outcome,
    retry: RetryConfig,
    rng: random.Random,
) -> MessageStatus | None:
    """Log the attempt and move the message on (sent, failed with its next attempt, or dead: out of attempts, or
    not to be sent at all); its new status, or None when another dispatcher took it over meanwhile (its lease
    ran out). Commits."""
    message = session.get(OutboxMessage, message_id, with_for_update=True)
    if message is None:
        session.rollback()
        return None
    session.add(
        DeliveryAttempt(
            message_id=message_id,
            attempt=message.attempts,
            at=now,
            ok=outcome.ok,
            status_code=outcome.status_code,
            error=outcome.error[:1000],
            duration_ms=outcome.duration_ms,
            dispatcher=worker[:200],
        )
    )
    if message.status is not MessageStatus.SENDING or message.claimed_by != worker:
        log.warning(
            "notification %s was taken over by %s before %s reported", message_id, message.claimed_by, worker
        )
        session.commit()
        return None
    message.claimed_by, message.claimed_until, message.updated_at = None, None, now
    if outcome.ok:
        message.status, message.sent_at, message.next_attempt_at, message.last_error = (
            MessageStatus.SENT,
            now,
            None,
            "",
        )
    elif outcome.final:
        message.status, message.next_attempt_at = MessageStatus.DEAD, None
        message.last_error = outcome.error[:1000]
        log.info("notification %s on %s is not sent: %s", message_id, message.channel, message.last_error)
    elif message.attempts >= retry.max_attempts:
        message.status, message.next_attempt_at = MessageStatus.DEAD, None
        message.last_error = f"dead after {message.attempts} attempts: {outcome.error}"[:1000]
        log.error("notification %s on %s is dead: %s", message_id, message.channel, message.last_error)
    else:
        wait = backoff_s(message.attempts, retry, rng)
        message.status, message.next_attempt_at = MessageStatus.FAILED, now + timedelta(seconds=wait)
        message.last_error = outcome.error[:1000]
        log.warning(
            "notification %s on %s failed (attempt %d, again in %.1f s): %s",
            message_id,
            message.channel,
            message.attempts,
            wait,
            outcome.error,
        )
    status = message.status
    session.commit()
    return status


def enqueue_test(
    session: Session, *, target: Target, recipients: Sequence[Recipient], content: Content, now: datetime
) -> list[str]:
    """An administrator's test message on one channel (no storm control, no de-duplication across tests);
    the new message ids. A per-person channel gets one message per recipient with the contact."""
    subject = f"test:{uuid.uuid4()}"
    groups: list[tuple[str, list[int]]]
    if target.per_person:
        groups = [(f"user:{p.user_id}", [p.user_id]) for p in recipients if getattr(p, target.contact_field)]
    else:
        groups = [(GROUP, [p.user_id for p in recipients])]
    ids = []
    for receiver, people in groups:
        key = item_key(subject, receiver, target.channel, NotifyStep.TEST)
        message = new_message(
            channel=target.channel,
            receiver_key=receiver,
            recipients=people,
            dedupe_key=key,
            title=content.title,
            kind=MessageKind.TEST,
            due=now,
            now=now,
        )
        session.add(message)
        session.flush()
        session.add(
            OutboxItem(
                dedupe_key=key,
                message_id=message.id,
                subject=subject,
                step=NotifyStep.TEST,
                channel=target.channel,
                receiver_key=receiver,
                kind=content.kind,
                title=content.title[:200],
                text=content.text[:2000],
                occurred_at=content.occurred_at,
                created_at=now,
            )
        )
        ids.append(message.id)
    session.flush()
    return ids
