"""Shared set-up of the notifier's database tests: contacts, a roster, stored events and their bus messages."""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import SecretStr
from sqlalchemy import select, update

from analytics.tables import SafetyEvent
from config.notify import ChannelConfig, NotifyConfig, RetryConfig, StormConfig, WebhookChannelConfig
from kernel.bus import Event, EventBus
from patrol import roster
from patrol.notify import NotifyWorker, make_channels
from patrol.tables import EventDisposition, EventStatus, OutboxItem, OutboxMessage
from registry.models import Camera, School
from tests.bureau import Bureau, ManualClock
from web.models import User

ZONE = ZoneInfo("Asia/Shanghai")
SECRET = "duty-webhook-secret"
PHONES = {"officer1": "13800000001", "officer2": "13800000002", "leader1": "13900000001", "leader2": "13900000002"}


def webhook(url: str, **kw: Any) -> WebhookChannelConfig:
    """A webhook channel to ``url`` signed with :data:`SECRET`."""
    return WebhookChannelConfig(name=kw.pop("name", "hook"), url=url, secret=SecretStr(SECRET), **kw)


def notify_config(*channels: ChannelConfig, **kw: Any) -> NotifyConfig:
    """Messages in English (unless ``language`` is given), quick retries without jitter, a storm threshold of 3
    in 60 s that holds every severity (unless ``storm`` is given), escalation after 5 minutes."""
    retry = kw.pop("retry", RetryConfig(max_attempts=4, backoff_initial_s=10, backoff_max_s=60, jitter=0))
    storm = kw.pop("storm", StormConfig(window_s=60, threshold=3, max_lines=5, immediate_severities=()))
    return NotifyConfig(
        channels=channels,
        retry=retry,
        storm=storm,
        events={"escalate_after_min": 5},
        lease_s=30,
        language=kw.pop("language", "en"),
        **kw,
    )


def prepare(bureau: Bureau, clock: ManualClock) -> None:
    """Phones and emails for the duty room, and a shift around the clock's time: officer1 and officer2 with
    leader1."""
    with bureau.factory() as session:
        for name, phone in PHONES.items():
            session.execute(
                update(User).where(User.username == name).values(phone=phone, email=f"{name}@bureau.example")
            )
        roster.create_shift(
            session,
            starts_at=clock.now - timedelta(hours=1),
            ends_at=clock.now + timedelta(hours=11),
            leader_id=bureau.users["leader1"],
            officer_ids=[bureau.users["officer1"], bureau.users["officer2"]],
            now=clock.now - timedelta(hours=2),
            zone=ZONE,
        )
        session.commit()


def stored_event(
    bureau: Bureau,
    at: datetime,
    *,
    camera: str = "S11-GATE",
    kind: str = "intrusion",
    severity: str = "major",
) -> Event:
    """A stored analytics event and its ``event.started`` bus message (as analytics.events makes it)."""
    with bureau.factory() as session:
        cam = session.scalars(select(Camera).where(Camera.code == camera)).one()
        school = session.get(School, cam.school_id)
        assert school is not None
        row = SafetyEvent(
            camera_id=cam.id,
            school_id=school.id,
            type=kind,
            rule=f"{kind}-1",
            severity=severity,
            zone="fence",
            started_at=at,
            detail="2 people",
        )
        session.add(row)
        session.commit()
        payload: dict[str, Any] = {
            "event_id": row.id,
            "type": kind,
            "rule": row.rule,
            "severity": severity,
            "camera_code": camera,
            "school_code": school.code,
            "school_name": school.name,
            "zone": "fence",
            "started_at": at.isoformat(),
            "ended_at": None,
            "detail": "2 people",
        }
    return Event(topic="events", type="event.started", time=at, source="test", payload=payload)


def acknowledge_on_console(bureau: Bureau, event_id: int, clock: ManualClock) -> None:
    """officer1 acknowledges the event on the console (its disposition row, as the console writes it)."""
    with bureau.factory() as session:
        session.add(
            EventDisposition(
                event_id=event_id,
                status=EventStatus.ACKNOWLEDGED,
                acknowledged_by=bureau.users["officer1"],
                acknowledged_at=clock.now,
                updated_at=clock.now,
            )
        )
        session.commit()


def worker(
    bureau: Bureau,
    bus: EventBus,
    clock: ManualClock,
    config: NotifyConfig,
    *,
    name: str = "notify-test",
) -> NotifyWorker:
    """A subscribed notifier worker, driven by hand (no threads)."""
    channels = make_channels(config.channels)
    found = NotifyWorker(
        config, bureau.factory, bus, channels, zone=ZONE, name=name, clock=clock, rng=random.Random(1)
    )
    found.subscribe()
    return found


def messages(bureau: Bureau) -> list[OutboxMessage]:
    """Every outbox row, oldest first."""
    with bureau.factory() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.id)))


def items(bureau: Bureau) -> list[OutboxItem]:
    """Every outbox item, in insertion order."""
    with bureau.factory() as session:
        return list(session.scalars(select(OutboxItem).order_by(OutboxItem.id)))


def user_ids(bureau: Bureau, *names: str) -> list[int]:
    """The ids of these users, sorted."""
    return sorted(bureau.users[n] for n in names)


def status_counts(bureau: Bureau) -> Mapping[str, int]:
    """How many outbox rows are in each status."""
    counts: dict[str, int] = {}
    for message in messages(bureau):
        counts[message.status.value] = counts.get(message.status.value, 0) + 1
    return counts


def event_id_of(event: Event) -> int:
    """The stored event id a bus message carries."""
    found = event.payload["event_id"]
    assert isinstance(found, int)
    return found
