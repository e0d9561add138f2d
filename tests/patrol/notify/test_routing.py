"""Routing (SQLite and PostgreSQL): the officers on duty first, the leader on duty after N minutes unless the
event was acknowledged (on the console or on a wall), duty-topic escalations and reports, storm control, and
the worker's threads inside the patrol service."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from campuswatch.patrol_facts import StoredFleetFacts
from config import load_settings
from kernel.bus import Delivery, InMemoryBus
from kernel.clock import utcnow
from patrol.models import Takeover
from patrol.notify import WebhookReceiver
from patrol.service import PatrolService
from patrol.tables import (
    EscalationWatch,
    MessageKind,
    MessageStatus,
    NotifyStep,
    VideoWall,
    WallAlarm,
)
from patrol.topics import duty_event
from tests.bureau import Bureau, ManualClock
from tests.patrol.notify.helpers import (
    SECRET,
    acknowledge_on_console,
    event_id_of,
    items,
    messages,
    notify_config,
    prepare,
    stored_event,
    user_ids,
    webhook,
    worker,
)


def _acknowledge_on_wall(bureau: Bureau, event_id: int, clock: ManualClock) -> None:
    with bureau.factory() as session:
        wall = VideoWall(name="main", layout="4", takeover=Takeover.TILE, districts=[], schools=[], pinned={})
        session.add(wall)
        session.flush()
        session.add(
            WallAlarm(
                wall_id=wall.id,
                alarm_key=f"event:{event_id}",
                event_id=event_id,
                camera_code="S12-GATE",
                school_code="S12",
                district_code="D1",
                raised_at=clock.now,
                acknowledged_at=clock.now,
                acknowledged_by=bureau.users["officer2"],
            )
        )
        session.commit()


def test_unacknowledged_events_escalate_to_the_leader_after_n_minutes_and_acknowledged_ones_do_not(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    notifier = worker(duty, bus, clock, notify_config(webhook(hook.url)))
    ignored = stored_event(duty, clock.now, camera="S11-GATE")
    on_console = stored_event(duty, clock.now, camera="S12-GATE")
    on_wall = stored_event(duty, clock.now, camera="S13-GATE")
    for event in (ignored, on_console, on_wall):
        bus.publish(event)
    assert notifier.route_pending() == 3
    assert notifier.dispatcher.run_once() == 3
    clock.advance(minutes=2)
    acknowledge_on_console(duty, event_id_of(on_console), clock)
    _acknowledge_on_wall(duty, event_id_of(on_wall), clock)
    clock.advance(minutes=2, seconds=59)
    assert notifier.check_escalations() == 0  # 4:59 after: not yet
    clock.advance(seconds=1)
    assert notifier.check_escalations() == 1
    assert notifier.check_escalations() == 0  # once
    assert notifier.dispatcher.run_once() == 1
    escalation = hook.accepted()[-1].body
    assert escalation["title"] == "Not acknowledged: major intrusion at 第11中学 S11-GATE"
    assert [r["user_id"] for r in escalation["recipients"]] == [duty.users["leader1"]]
    assert escalation["items"][0]["step"] == "escalation"
    with duty.factory() as session:
        watches = {w.event_id: w for w in session.scalars(select(EscalationWatch))}
    assert watches[event_id_of(ignored)].escalated_to == duty.users["leader1"]
    for acked in (on_console, on_wall):
        watch = watches[event_id_of(acked)]
        assert watch.escalated_at is None and watch.acknowledged_at is not None
    # Redelivered after the escalation: still nothing new for anybody.
    assert notifier.route_one(Delivery("events", "notify", "again-1", 3, ignored)) == 0
    assert len(hook.accepted()) == 4


def test_an_escalation_waits_for_a_leader_when_nobody_is_rostered(
    bureau: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    notifier = worker(bureau, bus, clock, notify_config(webhook(hook.url)))
    bus.publish(stored_event(bureau, clock.now))
    assert notifier.route_pending() == 1  # nobody on duty: the duty group still reads it, naming nobody
    assert notifier.dispatcher.run_once() == 1
    clock.advance(minutes=6)
    assert notifier.check_escalations() == 0
    prepare(bureau, clock)  # a shift starts
    assert notifier.check_escalations() == 1
    assert notifier.dispatcher.run_once() == 1
    first, escalation = (r.body for r in hook.accepted())
    assert first["recipients"] == []
    assert [r["user_id"] for r in escalation["recipients"]] == [bureau.users["leader1"]]
    assert escalation["title"].startswith("Not acknowledged: ")


def test_a_storm_becomes_one_summary_and_nothing_is_lost(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    notifier = worker(duty, bus, clock, notify_config(webhook(hook.url)))
    kinds = ("GATE", "DORM", "CORR", "YARD")
    events = [stored_event(duty, clock.now, camera=f"S11-{k}") for k in kinds * 2]
    events += [stored_event(duty, clock.now, camera=f"S12-{k}", kind="loitering") for k in kinds]
    for event in events:  # 12 alarms within 6 s
        clock.advance(seconds=0.5)
        bus.publish(event)
        notifier.route_pending()
    assert len(items(duty)) == 12
    singles = [m for m in messages(duty) if m.kind is MessageKind.SINGLE]
    (summary,) = [m for m in messages(duty) if m.kind is MessageKind.SUMMARY]
    assert len(singles) == 3 and summary.item_count == 9
    assert notifier.dispatcher.run_once() == 3
    assert notifier.dispatcher.run_once() == 0  # the summary is held until its window ends
    clock.advance(seconds=60)
    assert notifier.dispatcher.run_once() == 1
    body = hook.accepted()[-1].body
    assert body["kind"] == "summary"
    assert body["title"] == "9 more alarms within 60 s"
    assert body["text"].startswith("9 more alarms within 60 s: 5 intrusion at S11, 4 loitering at S12")
    assert "… and 4 more" in body["text"]
    assert len(body["items"]) == 9  # every event is in the message's data
    with duty.factory() as session:
        assert len(list(session.scalars(select(EscalationWatch)))) == 12  # each event still tracked
    assert {m.status for m in messages(duty)} == {MessageStatus.SENT}
    assert len(hook.accepted()) == 4


def test_duty_items_go_to_the_leader_or_everybody_on_duty(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    notifier = worker(duty, bus, clock, notify_config(webhook(hook.url)))
    overdue = duty_event(
        "clock.overdue",
        {
            "incident_id": 1,
            "title": "学生受伤",
            "school_code": "S11",
            "kind": "bureau_phone",
            "deadline": (clock.now - timedelta(minutes=1)).isoformat(),
            "leader_id": duty.users["leader2"],
        },
    )
    report = duty_event("report.daily", {"day": "2026-11-30", "zero": True, "events": 0, "url": "/api/reports/x"})
    for event in (overdue, report, duty_event("hazard.status", {"hazard_id": 1})):
        bus.publish(event)
    assert notifier.route_pending() == 2  # hazard.status is not a phone alert
    bus.publish(overdue)  # announced again: nothing more
    assert notifier.route_pending() == 0
    assert notifier.dispatcher.run_once() == 2
    by_title = {r.body["title"]: r.body for r in hook.accepted()}
    clock_msg = by_title["Reporting clock overdue (bureau's phone report to the city): 学生受伤"]
    assert [r["user_id"] for r in clock_msg["recipients"]] == [duty.users["leader2"]]
    daily = by_title["Daily report 2026-11-30 (zero report)"]
    assert sorted(r["user_id"] for r in daily["recipients"]) == user_ids(duty, "officer1", "officer2", "leader1")
    assert {i.step for i in items(duty)} == {NotifyStep.DUTY}


def test_events_not_configured_are_not_sent(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    config = notify_config(webhook(hook.url)).model_copy(
        update={"events": notify_config().events.model_copy(update={"severities": ("major",)})}
    )
    notifier = worker(duty, bus, clock, config)
    bus.publish(stored_event(duty, clock.now, severity="general"))
    ended = stored_event(duty, clock.now)
    bus.publish(ended.model_copy(update={"type": "event.ended"}))
    old = stored_event(duty, clock.now - timedelta(hours=2))
    bus.publish(old)
    assert notifier.route_pending() == 0
    assert messages(duty) == []


def test_the_patrol_service_runs_the_notifier_threads(
    tmp_path: Path, bureau: Bureau, bus: InMemoryBus, hook: WebhookReceiver
) -> None:
    now = ManualClock(utcnow())
    prepare(bureau, now)
    settings = load_settings(
        None,
        data_dir=tmp_path / "data",
        patrol={"tick_s": 0.05, "schedule_every_s": 5},
        notify={
            "poll_s": 0.05,
            "channels": [{"type": "webhook", "name": "hook", "url": hook.url, "secret": SECRET}],
        },
    )
    service = PatrolService(settings, bureau.factory, bus, StoredFleetFacts(), name="svc")
    assert service.notifier is not None
    service.start()
    try:
        bus.publish(stored_event(bureau, utcnow()))
        started = time.monotonic()
        received = hook.wait_for(1, timeout_s=10)
        assert len(received) == 1, "the webhook got nothing within 10 s"
        assert time.monotonic() - started < 5
    finally:
        service.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("notify-")]
    assert received[0].body["title"] == "【重大】区域入侵：第11中学 S11-GATE"  # the default language: zh-CN
