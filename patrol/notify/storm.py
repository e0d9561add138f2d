"""Storm control: many events for one receiver on one channel in a window become one summary message.

The first ``threshold`` items that reach a receiver on a channel within ``window_s`` go out one message each,
at once (the first alarm is never held back). Further items in the window join one *summary* message, due at
the end of its window: it counts every item it carries and lists the first ``max_lines`` of them, so nothing
is lost. A summary being sent (or sent) takes no more items: the next ones start a new summary. Items of the
``immediate_severities`` (major events) are never held: each goes out at once in its own message, and still
counts towards the window's threshold. Each item keeps its own row (and its event its own escalation watch),
so a summary changes how many messages go out, never what is tracked.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pydantic import JsonValue
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from config.notify import Language, StormConfig
from patrol.notify.base import Outgoing, Recipient
from patrol.notify.texts import kind_name, phrase
from patrol.roster import local_time
from patrol.tables import MessageKind, MessageStatus, OutboxItem, OutboxMessage


def new_message_id() -> str:
    """A new message id (a UUID)."""
    return str(uuid.uuid4())


def place(
    session: Session,
    *,
    channel: str,
    receiver_key: str,
    recipients: Sequence[int],
    dedupe_key: str,
    title: str,
    severity: str,
    now: datetime,
    config: StormConfig,
    language: Language,
) -> OutboxMessage:
    """The message a new item for ``receiver_key`` on ``channel`` goes into: a new single message (within the
    threshold, or of an immediate severity), or a summary of the storm (an open one not claimed by a dispatcher,
    or a new one)."""
    immediate = severity in config.immediate_severities
    if immediate or _recent(session, channel, receiver_key, now, config) < config.threshold:
        message = new_message(
            channel=channel,
            receiver_key=receiver_key,
            recipients=recipients,
            dedupe_key=dedupe_key,
            title=title,
            kind=MessageKind.SINGLE,
            due=now,
            now=now,
        )
        session.add(message)
        session.flush()
        return message
    open_summary = session.scalars(
        select(OutboxMessage)
        .where(
            OutboxMessage.channel == channel,
            OutboxMessage.receiver_key == receiver_key,
            OutboxMessage.kind == MessageKind.SUMMARY,
            OutboxMessage.status == MessageStatus.PENDING,
            OutboxMessage.claimed_by.is_(None),
            OutboxMessage.next_attempt_at > now,
        )
        .order_by(OutboxMessage.created_at.desc())
        .limit(1)
        .with_for_update()
    ).first()
    if open_summary is not None:
        # Joined only if still unclaimed, in one conditional UPDATE: on SQLite (no FOR UPDATE) a dispatcher may
        # have claimed it since the SELECT, and an item joining a summary being sent would never go out.
        count = open_summary.item_count + 1
        joined = session.scalar(
            update(OutboxMessage)
            .where(
                OutboxMessage.id == open_summary.id,
                OutboxMessage.status == MessageStatus.PENDING,
                OutboxMessage.claimed_by.is_(None),
            )
            .values(
                item_count=OutboxMessage.item_count + 1,
                recipients=sorted({*open_summary.recipients, *recipients}),
                title=summary_title(count, config.window_s, language),
                updated_at=now,
            )
            .returning(OutboxMessage.id)
            .execution_options(synchronize_session=False)
        )
        session.expire(open_summary)
        if joined is not None:
            return open_summary
    message = new_message(
        channel=channel,
        receiver_key=receiver_key,
        recipients=recipients,
        dedupe_key=f"storm|{receiver_key}|{channel}|{uuid.uuid4()}",
        title=summary_title(1, config.window_s, language),
        kind=MessageKind.SUMMARY,
        due=now + timedelta(seconds=config.window_s),
        now=now,
    )
    session.add(message)
    session.flush()
    return message


def _recent(session: Session, channel: str, receiver_key: str, now: datetime, config: StormConfig) -> int:
    """Items for ``receiver_key`` on ``channel`` in the window before ``now`` (of every severity)."""
    since = now - timedelta(seconds=config.window_s)
    found = session.scalar(
        select(func.count())
        .select_from(OutboxItem)
        .where(
            OutboxItem.channel == channel, OutboxItem.receiver_key == receiver_key, OutboxItem.created_at > since
        )
    )
    return found or 0


def new_message(
    *,
    channel: str,
    receiver_key: str,
    recipients: Sequence[int],
    dedupe_key: str,
    title: str,
    kind: MessageKind,
    due: datetime | None,
    now: datetime,
    status: MessageStatus = MessageStatus.PENDING,
    error: str = "",
) -> OutboxMessage:
    """A new outbox row (not added to a session)."""
    return OutboxMessage(
        id=new_message_id(),
        dedupe_key=dedupe_key[:255],
        channel=channel,
        receiver_key=receiver_key,
        recipients=sorted(set(recipients)),
        kind=kind,
        status=status,
        title=title[:200],
        item_count=1,
        attempts=0,
        next_attempt_at=due,
        last_error=error[:1000],
        created_at=now,
        updated_at=now,
    )


def summary_title(count: int, window_s: float, language: Language) -> str:
    """``60 秒内另有 12 条告警`` / ``12 more alarms within 60 s``."""
    return phrase(
        language, "storm.title_one" if count == 1 else "storm.title", count=count, window=f"{window_s:g}"
    )


def _where(item: OutboxItem, language: Language) -> str:
    return item.school_code or item.camera_code or phrase(language, "storm.nowhere")


def render(
    message: OutboxMessage,
    items: Sequence[OutboxItem],
    recipients: Sequence[Recipient],
    *,
    zone: ZoneInfo,
    config: StormConfig,
    language: Language,
) -> Outgoing:
    """The message as channels send it: one item's title and text, or a storm summary of all its items."""
    ordered = sorted(items, key=lambda i: (i.occurred_at, i.id))
    entries: tuple[dict[str, JsonValue], ...] = tuple(
        {
            "subject": i.subject,
            "step": i.step.value,
            "kind": i.kind,
            "severity": i.severity,
            "school_code": i.school_code,
            "camera_code": i.camera_code,
            "event_id": i.event_id,
            "title": i.title,
            "text": i.text,
            "occurred_at": i.occurred_at.isoformat(),
        }
        for i in ordered
    )
    if message.kind is not MessageKind.SUMMARY and ordered:
        item = ordered[0]
        when = local_time(item.occurred_at, zone)
        text = f"{item.title}\n{item.text}\n{when}" if item.text else f"{item.title}\n{when}"
        markdown = f"### {item.title}\n\n{item.text}\n\n{when}" if item.text else f"### {item.title}\n\n{when}"
        title = item.title
    else:
        title, text, markdown = _summary(ordered, zone=zone, config=config, language=language)
    return Outgoing(
        message_id=message.id,
        channel=message.channel,
        kind=message.kind.value,
        title=title,
        text=text,
        markdown=markdown,
        recipients=tuple(recipients),
        created_at=message.created_at,
        items=entries,
    )


def _summary(
    items: Sequence[OutboxItem], *, zone: ZoneInfo, config: StormConfig, language: Language
) -> tuple[str, str, str]:
    count = len(items)
    groups = Counter((i.kind, _where(i, language)) for i in items)
    parts = phrase(language, "storm.group_separator").join(
        phrase(language, "storm.group", count=n, kind=kind_name(kind, language), where=where)
        for (kind, where), n in groups.most_common()
    )
    title = summary_title(count, config.window_s, language)
    head = phrase(language, "storm.head", title=title, parts=parts) if parts else title
    lines = [
        f"- {local_time(i.occurred_at, zone)} {i.title}"
        + (phrase(language, "storm.line_event", event_id=i.event_id) if i.event_id else "")
        for i in items[: config.max_lines]
    ]
    if count > config.max_lines:
        lines.append("- " + phrase(language, "storm.more", count=count - config.max_lines))
    text = "\n".join([head, *lines])
    markdown = "\n".join([f"### {title}", "", parts, "", *lines])
    return title, text, markdown
