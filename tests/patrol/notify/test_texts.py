"""The messages in the bureau's language (``notify.language``, zh-CN by default): a single alarm, its
escalation, a storm summary and duty items as the duty phone receives them, and the catalogue itself (both
languages of every phrase and name, with the same placeholders)."""

from __future__ import annotations

import string
from datetime import timedelta

import pytest
from pydantic import ValidationError

from config.notify import NotifyConfig, StormConfig
from kernel.bus import InMemoryBus
from patrol.models import ClockKind, HazardStatus
from patrol.notify import WebhookReceiver
from patrol.notify.texts import (
    CLOCK_KINDS,
    DUTY_TYPES,
    EVENT_TYPES,
    HAZARD_STATUSES,
    PHRASES,
    SEVERITIES,
    kind_name,
    phrase,
)
from patrol.topics import duty_event
from tests.bureau import Bureau, ManualClock
from tests.patrol.notify.helpers import notify_config, stored_event, user_ids, webhook, worker

RULE_TYPES = ("intrusion", "line_crossing", "loitering", "crowding", "guard_post_empty", "water_area", "fall")
"""Every ``type`` of config.rules' rule models."""


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_every_phrase_and_name_has_both_languages_with_the_same_placeholders() -> None:
    for table in (PHRASES, EVENT_TYPES, SEVERITIES, CLOCK_KINDS, HAZARD_STATUSES, DUTY_TYPES):
        for key, texts in table.items():
            assert set(texts) == {"zh-CN", "en"}, key
            assert all(texts.values()), key
            assert _placeholders(texts["zh-CN"]) == _placeholders(texts["en"]), key
    assert set(EVENT_TYPES) == set(RULE_TYPES)
    assert set(CLOCK_KINDS) == {k.value for k in ClockKind}
    assert set(HAZARD_STATUSES) == {s.value for s in HazardStatus}
    assert set(SEVERITIES) == {"general", "major"}
    assert kind_name("line_crossing", "zh-CN") == "越线（翻越围墙）"
    assert kind_name("report.daily", "zh-CN") == "日报"
    assert kind_name("smoke", "zh-CN") == "smoke"  # a type added later is shown as it is
    assert phrase("en", "storm.title", count=3, window="60") == "3 more alarms within 60 s"


def test_the_language_defaults_to_chinese_and_is_checked() -> None:
    assert NotifyConfig().language == "zh-CN"
    assert NotifyConfig(language="en").language == "en"
    with pytest.raises(ValidationError, match="language"):
        NotifyConfig.model_validate({"language": "fr"})


def test_a_single_alarm_and_its_escalation_in_chinese(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    notifier = worker(duty, bus, clock, notify_config(webhook(hook.url), language="zh-CN"))
    bus.publish(stored_event(duty, clock.now))
    assert notifier.route_pending() == 1
    assert notifier.dispatcher.run_once() == 1
    clock.advance(minutes=5)
    assert notifier.check_escalations() == 1
    assert notifier.dispatcher.run_once() == 1
    first, escalation = (r.body for r in hook.accepted())
    assert first["title"] == "【重大】区域入侵：第11中学 S11-GATE"
    assert first["text"] == (
        "【重大】区域入侵：第11中学 S11-GATE\n区域：fence；2 people；摄像机：S11-GATE\n2026-12-01T10:00+08:00"
    )
    assert escalation["title"] == "超时未确认：【重大】区域入侵：第11中学 S11-GATE"
    assert escalation["items"][0]["text"] == (
        "区域：fence；2 people；摄像机：S11-GATE；已于 2026-12-01T10:00+08:00 通知值班员，至今无人确认"
    )
    assert [r["user_id"] for r in escalation["recipients"]] == [duty.users["leader1"]]


def test_a_storm_summary_in_chinese(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    storm = StormConfig(window_s=60, threshold=1, max_lines=2)
    notifier = worker(duty, bus, clock, notify_config(webhook(hook.url), language="zh-CN", storm=storm))
    cameras = ("S11-GATE", "S11-DORM", "S11-CORR", "S12-GATE")
    for camera in cameras:
        clock.advance(seconds=1)
        bus.publish(stored_event(duty, clock.now, camera=camera, kind="loitering", severity="general"))
        notifier.route_pending()
    assert notifier.dispatcher.run_once() == 1
    clock.advance(seconds=60)
    assert notifier.dispatcher.run_once() == 1
    summary = hook.accepted()[-1].body
    assert summary["kind"] == "summary"
    assert summary["title"] == "60 秒内另有 3 条告警"
    head, first, second, more = summary["text"].split("\n")
    assert head == "60 秒内另有 3 条告警：S11 徘徊逗留 2 条，S12 徘徊逗留 1 条"
    assert first.startswith("- 2026-12-01T10:00+08:00 【一般】徘徊逗留：第11中学 S11-DORM（事件编号 ")
    assert second.startswith("- 2026-12-01T10:00+08:00 【一般】徘徊逗留：第11中学 S11-CORR（事件编号 ")
    assert more == "- ……另有 1 条，请登录平台查看"


def test_duty_items_in_chinese(duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver) -> None:
    notifier = worker(duty, bus, clock, notify_config(webhook(hook.url), language="zh-CN"))
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
    hazard = duty_event(
        "hazard.escalated",
        {
            "title": "围墙破损",
            "school_name": "第11中学",
            "level": 2,
            "hours_overdue": 49.5,
            "status": "rectifying",
        },
    )
    report = duty_event(
        "report.daily",
        {
            "day": "2026-11-30",
            "zero": True,
            "events": 0,
            "major_events": 0,
            "incidents": 0,
            "hazards_overdue": 1,
            "offline_cameras": 2,
            "url": "/api/reports/2026-11-30",
        },
    )
    for event in (overdue, hazard, report):
        bus.publish(event)
    assert notifier.route_pending() == 3
    assert notifier.dispatcher.run_once() == 3
    by_title = {r.body["title"]: r.body for r in hook.accepted()}
    assert set(by_title) == {
        "上报超时：学生受伤（教育局向市政府电话报告）",
        "隐患逾期未整改（升级至第 2 级）：围墙破损",
        "2026-11-30 日报（零报告）",
    }
    clock_msg = by_title["上报超时：学生受伤（教育局向市政府电话报告）"]
    assert clock_msg["items"][0]["text"] == "S11，应于 2026-12-01T09:59+08:00 前完成，已提请带班领导督办"
    assert [r["user_id"] for r in clock_msg["recipients"]] == [duty.users["leader2"]]
    assert by_title["隐患逾期未整改（升级至第 2 级）：围墙破损"]["items"][0]["text"] == (
        "第11中学，已超过整改期限 49.5 小时（整改中）"
    )
    daily = by_title["2026-11-30 日报（零报告）"]
    assert daily["items"][0]["text"] == (
        "告警 0 条（重大 0 条），事件 0 起，逾期隐患 1 项，离线摄像机 2 路；详见 /api/reports/2026-11-30"
    )
    assert sorted(r["user_id"] for r in daily["recipients"]) == user_ids(duty, "officer1", "officer2", "leader1")
