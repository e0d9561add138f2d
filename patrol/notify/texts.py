"""What the notifier's messages say, in the bureau's language (``notify.language``): ``zh-CN`` or ``en``.

Every title and text the notifier composes is built from :data:`PHRASES` (templates for :meth:`str.format`)
and the names of the codes it shows (:data:`EVENT_TYPES`, :data:`SEVERITIES`, :data:`CLOCK_KINDS`,
:data:`HAZARD_STATUSES`, :data:`DUTY_TYPES`). Each entry has both languages with the same placeholders (a test
checks it). A code with no name here (a rule type added later) is shown as it is, never dropped.

What comes from elsewhere is passed through untranslated: school names, camera codes, zones, an event's
detail, the titles people typed for incidents and hazards.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from config.notify import Language

Names = Mapping[str, Mapping[Language, str]]

EVENT_TYPES: Final[Names] = {
    # The analytics rule types (config/rules.py).
    "intrusion": {"zh-CN": "区域入侵", "en": "intrusion"},
    "line_crossing": {"zh-CN": "越线（翻越围墙）", "en": "line crossing"},
    "loitering": {"zh-CN": "徘徊逗留", "en": "loitering"},
    "crowding": {"zh-CN": "人员聚集", "en": "crowding"},
    "guard_post_empty": {"zh-CN": "门岗无人（脱岗）", "en": "guard post empty"},
    "water_area": {"zh-CN": "进入危险水域", "en": "water area"},
    "fall": {"zh-CN": "人员倒地", "en": "fall"},
}
"""The analytics event (rule) types."""

SEVERITIES: Final[Names] = {
    "major": {"zh-CN": "重大", "en": "major"},
    "general": {"zh-CN": "一般", "en": "general"},
}
"""An analytics event's severity."""

CLOCK_KINDS: Final[Names] = {
    # patrol.models.ClockKind: who reports a major incident to whom, and how.
    "school_phone": {"zh-CN": "学校向教育局电话报告", "en": "school's phone report to the bureau"},
    "school_written": {"zh-CN": "学校向教育局书面报告", "en": "school's written report to the bureau"},
    "bureau_phone": {"zh-CN": "教育局向市政府电话报告", "en": "bureau's phone report to the city"},
    "bureau_written": {"zh-CN": "教育局向市政府书面报告", "en": "bureau's written report to the city"},
}
"""The reporting clocks of a major incident."""

HAZARD_STATUSES: Final[Names] = {
    # patrol.models.HazardStatus, named as the console names them.
    "open": {"zh-CN": "待整改", "en": "open"},
    "rectifying": {"zh-CN": "整改中", "en": "rectifying"},
    "submitted": {"zh-CN": "待验收", "en": "submitted"},
    "closed": {"zh-CN": "已销号", "en": "closed"},
}
"""Where a hazard's rectification stands."""

DUTY_TYPES: Final[Names] = {
    # The event types of bus topic ``duty`` (patrol/topics.py): any of them may be routed by ``notify.duty``.
    "task.done": {"zh-CN": "巡查任务已完成", "en": "patrol task done"},
    "task.missed": {"zh-CN": "巡查任务漏巡", "en": "patrol task missed"},
    "hazard.created": {"zh-CN": "新增隐患", "en": "new hazard"},
    "hazard.status": {"zh-CN": "隐患状态变更", "en": "hazard status changed"},
    "hazard.overdue": {"zh-CN": "隐患整改逾期", "en": "hazard overdue"},
    "hazard.escalated": {"zh-CN": "隐患逾期升级", "en": "hazard escalated"},
    "incident.created": {"zh-CN": "新增事件", "en": "new incident"},
    "incident.major": {"zh-CN": "较大及以上事件", "en": "major incident"},
    "clock.overdue": {"zh-CN": "上报超时", "en": "reporting clock overdue"},
    "spotcheck.drawn": {"zh-CN": "随机抽查已抽取", "en": "spot check drawn"},
    "report.daily": {"zh-CN": "日报", "en": "daily report"},
    "event.acknowledged": {"zh-CN": "告警已确认", "en": "alarm acknowledged"},
    "event.dispatched": {"zh-CN": "告警已派遣", "en": "alarm dispatched"},
    "event.resolved": {"zh-CN": "告警已处置", "en": "alarm resolved"},
    "event.note": {"zh-CN": "告警备注", "en": "alarm note"},
}
"""The duty items (their bus event types)."""

PHRASES: Final[Names] = {
    # An analytics event (routing.event_content).
    "event.title": {"zh-CN": "【{severity}】{kind}：{where}", "en": "{severity} {kind} at {where}"},
    "event.zone": {"zh-CN": "区域：{zone}", "en": "zone {zone}"},
    "event.camera": {"zh-CN": "摄像机：{camera}", "en": "camera {camera}"},
    "event.separator": {"zh-CN": "；", "en": ", "},
    # Its escalation to the leader on duty (Router.escalate_due).
    "escalation.title": {"zh-CN": "超时未确认：{title}", "en": "Not acknowledged: {title}"},
    "escalation.text": {
        "zh-CN": "{text}；已于 {at} 通知值班员，至今无人确认",
        "en": "{text}; sent to the duty officers at {at}, not acknowledged",
    },
    "escalation.text_alone": {
        "zh-CN": "已于 {at} 通知值班员，至今无人确认",
        "en": "sent to the duty officers at {at}, not acknowledged",
    },
    # Duty items (routing.duty_content).
    "clock.title": {"zh-CN": "上报超时：{title}（{kind}）", "en": "Reporting clock overdue ({kind}): {title}"},
    "clock.text": {
        "zh-CN": "{school}，应于 {deadline} 前完成，已提请带班领导督办",
        "en": "{school}, due {deadline}; escalated to the leader on duty",
    },
    "hazard.title": {
        "zh-CN": "隐患逾期未整改（升级至第 {level} 级）：{title}",
        "en": "Hazard overdue, level {level}: {title}",
    },
    "hazard.text": {
        "zh-CN": "{school}，已超过整改期限 {hours} 小时（{status}）",
        "en": "{school}, {hours} h past its deadline ({status})",
    },
    "incident.title": {"zh-CN": "较大及以上事件：{title}", "en": "Major incident: {title}"},
    "incident.text": {"zh-CN": "{school}；上报计时已开始", "en": "{school}; reporting clocks started"},
    "daily.title": {"zh-CN": "{day} 日报", "en": "Daily report {day}"},
    "daily.title_zero": {"zh-CN": "{day} 日报（零报告）", "en": "Daily report {day} (zero report)"},
    "daily.text": {
        "zh-CN": (
            "告警 {events} 条（重大 {major_events} 条），事件 {incidents} 起，逾期隐患 {hazards_overdue} 项，"
            "离线摄像机 {offline_cameras} 路；详见 {url}"
        ),
        "en": (
            "{events} events ({major_events} major), {incidents} incidents, {hazards_overdue} hazards overdue, "
            "{offline_cameras} cameras offline: {url}"
        ),
    },
    "duty.title": {"zh-CN": "{kind}：{title}", "en": "{kind}: {title}"},
    # A storm summary (storm.render).
    "storm.title": {"zh-CN": "{window} 秒内另有 {count} 条告警", "en": "{count} more alarms within {window} s"},
    "storm.title_one": {"zh-CN": "{window} 秒内另有 {count} 条告警", "en": "{count} more alarm within {window} s"},
    "storm.head": {"zh-CN": "{title}：{parts}", "en": "{title}: {parts}"},
    "storm.group": {"zh-CN": "{where} {kind} {count} 条", "en": "{count} {kind} at {where}"},
    "storm.group_separator": {"zh-CN": "，", "en": ", "},
    "storm.line_event": {"zh-CN": "（事件编号 {event_id}）", "en": " (event {event_id})"},
    "storm.more": {"zh-CN": "……另有 {count} 条，请登录平台查看", "en": "… and {count} more (see the console)"},
    "storm.nowhere": {"zh-CN": "教育局", "en": "the bureau"},
}
"""Message templates by key."""


def phrase(language: Language, key: str, **values: object) -> str:
    """The phrase ``key`` in ``language``, filled in with ``values``."""
    return PHRASES[key][language].format(**values)


def name_of(names: Names, code: str, language: Language) -> str:
    """The name of ``code`` in ``language`` (``code`` itself when it has none)."""
    found = names.get(code)
    return found[language] if found is not None else code


def kind_name(kind: str, language: Language) -> str:
    """What an item is about: an analytics event type or a duty item type, by name."""
    return name_of(EVENT_TYPES, kind, language) if kind in EVENT_TYPES else name_of(DUTY_TYPES, kind, language)
