"""Who is told what: analytics events to the officers on duty, then the leader on duty when nobody acknowledged
them in time; duty items (clock and hazard escalations, major incidents, the daily report) to whom the
configuration says.

An analytics event (``event.started`` on topic ``events``) of a configured type and severity goes to the duty
officers on duty at once, on every channel, and gets an :class:`~patrol.tables.EscalationWatch`. When
``escalate_after_min`` has passed, :meth:`Router.escalate_due` looks whether it was acknowledged — on the
console (``EventDisposition.acknowledged_at``, or any later step) or on a wall (``WallAlarm.acknowledged_at``)
— and if not, sends it to the leader on duty. While nobody is rostered the escalation waits for the next
leader on duty. Everything is keyed by subject, so routing the same bus event twice sends nothing twice.
Titles and texts are written in ``notify.language`` (:mod:`patrol.notify.texts`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import JsonValue
from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from config.notify import Language, NotifyConfig
from kernel.bus import Event
from patrol.notify.base import Channel, Recipient
from patrol.notify.outbox import Content, Target, enqueue, recipients_of
from patrol.notify.texts import CLOCK_KINDS, DUTY_TYPES, EVENT_TYPES, HAZARD_STATUSES, SEVERITIES, name_of, phrase
from patrol.roster import local_time, on_duty
from patrol.tables import EscalationWatch, EventDisposition, EventStatus, NotifyStep, WallAlarm
from patrol.topics import ANALYTICS_EVENTS_TOPIC, DUTY_TOPIC

log = logging.getLogger(__name__)
STARTED = "event.started"


def _str(payload: Mapping[str, JsonValue], key: str, default: str = "") -> str:
    value = payload.get(key)
    return default if value is None else str(value)


def _time(payload: Mapping[str, JsonValue], key: str, default: datetime) -> datetime:
    value = payload.get(key)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return default
        return parsed if parsed.tzinfo is not None else default
    return default


def event_content(event: Event, language: Language) -> Content:
    """What an analytics event's message says."""
    p = event.payload
    kind = _str(p, "type", "event")
    school = _str(p, "school_name") or _str(p, "school_code")
    camera = _str(p, "camera_code")
    event_id = p.get("event_id")
    detail = _str(p, "detail")
    zone = _str(p, "zone")
    parts = (
        phrase(language, "event.zone", zone=zone) if zone else "",
        detail,
        phrase(language, "event.camera", camera=camera) if camera else "",
    )
    title = phrase(
        language,
        "event.title",
        severity=name_of(SEVERITIES, _str(p, "severity", "general"), language),
        kind=name_of(EVENT_TYPES, kind, language),
        where=f"{school} {camera}".strip(),
    )
    return Content(
        kind=kind,
        title=title,
        text=phrase(language, "event.separator").join(x for x in parts if x),
        occurred_at=_time(p, "started_at", event.time),
        severity=_str(p, "severity"),
        school_code=_str(p, "school_code"),
        camera_code=camera,
        event_id=event_id if isinstance(event_id, int) else None,
    )


def duty_content(event: Event, zone: ZoneInfo, language: Language) -> Content:
    """What a duty item's message says."""
    p = event.payload
    school = _str(p, "school_name") or _str(p, "school_code")
    title_of = _str(p, "title")
    if event.type == "clock.overdue":
        deadline = _time(p, "deadline", event.time)
        kind = name_of(CLOCK_KINDS, _str(p, "kind"), language)
        title = phrase(language, "clock.title", kind=kind, title=title_of)
        text = phrase(language, "clock.text", school=school, deadline=local_time(deadline, zone))
    elif event.type == "hazard.escalated":
        title = phrase(language, "hazard.title", level=_str(p, "level"), title=title_of)
        status = name_of(HAZARD_STATUSES, _str(p, "status"), language)
        text = phrase(language, "hazard.text", school=school, hours=_str(p, "hours_overdue"), status=status)
    elif event.type == "incident.major":
        title = phrase(language, "incident.title", title=title_of)
        text = phrase(language, "incident.text", school=school)
    elif event.type == "report.daily":
        zero = p.get("zero") is True
        title = phrase(language, "daily.title_zero" if zero else "daily.title", day=_str(p, "day"))
        counts = ("events", "major_events", "incidents", "hazards_overdue", "offline_cameras")
        text = phrase(language, "daily.text", url=_str(p, "url"), **{c: _str(p, c, "0") for c in counts})
    else:
        kind = name_of(DUTY_TYPES, event.type, language)
        title = phrase(language, "duty.title", kind=kind, title=title_of) if title_of else kind
        text = school
    return Content(
        kind=event.type, title=title, text=text, occurred_at=event.time, school_code=_str(p, "school_code")
    )


def acknowledged(session: Session, event_id: int) -> bool:
    """Whether the event was acknowledged on the console (or handled further) or on any wall."""
    handled = select(EventDisposition.event_id).where(
        EventDisposition.event_id == event_id,
        or_(EventDisposition.acknowledged_at.is_not(None), EventDisposition.status != EventStatus.NEW),
    )
    on_wall = select(WallAlarm.id).where(WallAlarm.event_id == event_id, WallAlarm.acknowledged_at.is_not(None))
    return bool(session.scalar(select(or_(exists(handled), exists(on_wall)))))


class Router:
    """Turns bus events into outbox items (see the module docstring); the caller commits each call."""

    def __init__(self, config: NotifyConfig, channels: Mapping[str, Channel[Any]], *, zone: ZoneInfo) -> None:
        self._config = config
        self._targets = [Target(c.name, c.per_person, c.contact_field) for c in channels.values()]
        self._zone = zone

    def route(self, session: Session, event: Event, now: datetime) -> int:
        """Items added for one bus event (0: not one to send, too old, or routed before)."""
        if event.topic == ANALYTICS_EVENTS_TOPIC:
            return self._route_analytics(session, event, now)
        if event.topic == DUTY_TOPIC:
            return self._route_duty(session, event, now)
        return 0

    def _wanted(self, event: Event) -> bool:
        rules = self._config.events
        if not rules.enabled or event.type != STARTED:
            return False
        if _str(event.payload, "severity", "general") not in rules.severities:
            return False
        return not rules.types or _str(event.payload, "type") in rules.types

    def _route_analytics(self, session: Session, event: Event, now: datetime) -> int:
        if not self._wanted(event):
            return 0
        if event.time < now - timedelta(seconds=self._config.events.max_age_s):
            log.warning(
                "event %s is too old to notify (%s)", event.payload.get("event_id"), event.time.isoformat()
            )
            return 0
        content = event_content(event, self._config.language)
        subject = f"event:{content.event_id}" if content.event_id is not None else f"bus:{event.id}"
        duty = on_duty(session, now)
        officers = recipients_of(session, list(duty.officer_ids)) if duty else []
        if not officers:
            log.warning(
                "event %s: no duty officer on duty; only group channels get it until it escalates", subject
            )
        added = self._send(session, subject, NotifyStep.FIRST, officers, content, now)
        if session.get(EscalationWatch, subject) is None:
            session.add(
                EscalationWatch(
                    subject=subject,
                    event_id=content.event_id,
                    content=content.to_json(),
                    notified_at=now,
                    escalate_at=now + timedelta(minutes=self._config.events.escalate_after_min),
                )
            )
            session.flush()
        return added

    def _route_duty(self, session: Session, event: Event, now: datetime) -> int:
        target = self._config.duty.get(event.type)
        if target is None:
            return 0
        duty = on_duty(session, now)
        people: list[int] = []
        if target in ("officers", "all") and duty is not None:
            people += duty.officer_ids
        if target in ("leader", "all"):
            named = event.payload.get("leader_id")
            leader = named if isinstance(named, int) else (duty.leader_id if duty else None)
            if leader is not None:
                people.append(leader)
        recipients = recipients_of(session, list(dict.fromkeys(people)))
        if not recipients:
            log.warning("duty item %s (%s): nobody on duty; only group channels get it", event.id, event.type)
        return self._send(
            session,
            f"duty:{event.id}",
            NotifyStep.DUTY,
            recipients,
            duty_content(event, self._zone, self._config.language),
            now,
        )

    def _send(
        self,
        session: Session,
        subject: str,
        step: NotifyStep,
        recipients: Sequence[Recipient],
        content: Content,
        now: datetime,
    ) -> int:
        return sum(
            enqueue(
                session,
                subject=subject,
                step=step,
                target=target,
                recipients=recipients,
                content=content,
                now=now,
                storm=self._config.storm,
                language=self._config.language,
            )
            for target in self._targets
        )

    def escalate_due(self, session: Session, now: datetime, *, limit: int = 500) -> int:
        """Escalate the watched events due and not acknowledged to the leader on duty; how many escalated.

        Acknowledged ones are closed without a message. Without a leader on duty they wait for the next check.
        """
        due = list(
            session.scalars(
                select(EscalationWatch)
                .where(
                    EscalationWatch.escalated_at.is_(None),
                    EscalationWatch.acknowledged_at.is_(None),
                    EscalationWatch.escalate_at <= now,
                )
                .order_by(EscalationWatch.escalate_at)
                .limit(limit)
            )
        )
        if not due:
            return 0
        duty = on_duty(session, now)
        leader = recipients_of(session, [duty.leader_id]) if duty else []
        escalated = 0
        for watch in due:
            if watch.event_id is not None and acknowledged(session, watch.event_id):
                watch.acknowledged_at = now
                continue
            if not leader:
                log.debug("escalation of %s waits for a leader on duty", watch.subject)
                continue
            escalation = self._escalation(Content.from_json(watch.content), watch.notified_at)
            self._send(session, watch.subject, NotifyStep.ESCALATION, leader, escalation, now)
            watch.escalated_at, watch.escalated_to = now, leader[0].user_id
            escalated += 1
        session.flush()
        if escalated:
            log.warning("%d unacknowledged events escalated to the leader on duty", escalated)
        return escalated

    def _escalation(self, content: Content, notified_at: datetime) -> Content:
        """The leader's message about an unacknowledged event: its first message, saying so."""
        language = self._config.language
        waited = local_time(notified_at, self._zone)
        if content.text:
            text = phrase(language, "escalation.text", text=content.text, at=waited)
        else:
            text = phrase(language, "escalation.text_alone", at=waited)
        title = phrase(language, "escalation.title", title=content.title)
        return replace(content, title=title[:200], text=text)
