"""The figures of a daily report (日报告、零报告): typed, JSON-serialisable models (see :mod:`patrol.reports`)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, JsonValue

from patrol.models import ClockKind, IncidentStatus, QuotaPeriod, Severity, TaskStatus

TOP_SCHOOLS = 10
"""Schools listed by their number of events."""
LIST_LIMIT = 200
"""Overdue hazards listed (the count is always complete)."""


class ZeroBreaker(StrEnum):
    """What makes a day not a zero report."""

    EVENTS = "events"
    INCIDENTS = "incidents"
    HAZARDS_FOUND = "hazards_found"
    ABNORMAL_VERDICTS = "abnormal_verdicts"
    ABNORMAL_FINDINGS = "abnormal_findings"
    TASKS_NOT_DONE = "tasks_not_done"


ZERO_BREAKER_LABELS: dict[str, str] = {
    ZeroBreaker.EVENTS: "发生预警事件",
    ZeroBreaker.INCIDENTS: "发生突发事件",
    ZeroBreaker.HAZARDS_FOUND: "发现隐患",
    ZeroBreaker.ABNORMAL_VERDICTS: "巡查发现异常",
    ZeroBreaker.ABNORMAL_FINDINGS: "抽查发现异常",
    ZeroBreaker.TASKS_NOT_DONE: "巡查任务未完成",
}


def _count(description: str) -> int:
    return Field(ge=0, description=description)


class DistrictCoverage(BaseModel):
    """Patrol coverage of one district."""

    district_code: str = Field(max_length=32, description="District code")
    district_name: str = Field(max_length=128, description="District name")
    cameras: int = _count("Enabled cameras")
    toured: int = _count("Enabled cameras shown on a wall that day")
    share: float = Field(ge=0, le=1, description="toured / cameras (0 without cameras)")


class Coverage(BaseModel):
    """Patrol coverage: the share of enabled cameras shown on a wall that day."""

    cameras: int = _count("Enabled cameras")
    toured: int = _count("Enabled cameras shown on a wall that day")
    share: float = Field(ge=0, le=1, description="toured / cameras (0 without cameras)")
    by_district: list[DistrictCoverage] = Field(description="By district, by district code")


class TaskNotDone(BaseModel):
    """A plan task of the day that was missed or is still pending."""

    task_id: int = Field(ge=1, description="Task id")
    plan_id: int = Field(ge=1, description="Plan id")
    plan_name: str = Field(max_length=100, description="Plan name")
    window_start: datetime = Field(description="Window start (UTC)")
    window_end: datetime = Field(description="Window end (UTC)")
    status: TaskStatus = Field(description="missed, or pending when the report was made")
    cameras: int = _count("Cameras of the task")
    checked: int = _count("Cameras with a verdict")


class Tasks(BaseModel):
    """Patrol-plan tasks of the day and the verdicts recorded on them."""

    total: int = _count("Tasks of the day")
    done: int = _count("Done")
    missed: int = _count("Missed (window ended first)")
    pending: int = _count("Still pending when the report was made (counted as not done)")
    verdicts: int = _count("Verdicts recorded")
    abnormal: int = _count("Abnormal verdicts")
    not_done: list[TaskNotDone] = Field(description="Missed and pending tasks, by window start")


class SchoolCount(BaseModel):
    """A school and a number."""

    school_code: str = Field(max_length=32, description="School code")
    school_name: str = Field(max_length=200, description="School name")
    count: int = _count("How many")


class Events(BaseModel):
    """Analytics events that started that day."""

    total: int = _count("Events")
    major: int = _count("Major events")
    by_type: dict[str, int] = Field(description="Event type -> count, by type")
    by_severity: dict[str, int] = Field(description="Severity -> count, by severity")
    top_schools: list[SchoolCount] = Field(description=f"The {TOP_SCHOOLS} schools with the most events")


class HazardListed(BaseModel):
    """A hazard in a list of the report."""

    id: int = Field(ge=1, description="Hazard id")
    school_code: str = Field(max_length=32, description="School code")
    school_name: str = Field(max_length=200, description="School name")
    title: str = Field(max_length=200, description="Title")
    severity: Severity = Field(description="general or major")
    deadline: datetime = Field(description="Rectification deadline (UTC)")


class Hazards(BaseModel):
    """Hazards found, rectified, overdue and open."""

    found: int = _count("Found that day")
    found_major: int = _count("Major ones found that day")
    rectified: int = _count("Closed (verified rectified) that day")
    overdue: int = _count("Open at the end of the day with a deadline before it")
    open: int = _count("Open at the end of the day")
    overdue_list: list[HazardListed] = Field(description=f"Overdue hazards, oldest deadline first (≤{LIST_LIMIT})")


class SchoolOffline(BaseModel):
    """A school's cameras that were offline that day."""

    school_code: str = Field(max_length=32, description="School code")
    school_name: str = Field(max_length=200, description="School name")
    district_code: str = Field(max_length=32, description="District code")
    cameras: list[str] = Field(description="Camera codes")


class Offline(BaseModel):
    """Enabled cameras offline at some time that day."""

    cameras: int = _count("Cameras")
    schools: int = _count("Schools with an offline camera")
    by_school: list[SchoolOffline] = Field(description="By school code")


class InspectionSigned(BaseModel):
    """A spot-check inspection signed that day."""

    id: int = Field(ge=1, description="Inspection id")
    school_code: str = Field(max_length=32, description="School code")
    school_name: str = Field(max_length=200, description="School name")
    method: str = Field(max_length=32, description="How it was checked")
    signed_name: str = Field(max_length=100, description="Inspector's signature")
    signed_at: datetime = Field(description="When it was signed (UTC)")
    findings: int = _count("Findings")
    abnormal: int = _count("Abnormal findings")


class DrawListed(BaseModel):
    """A spot-check draw whose period holds the day."""

    draw_id: int = Field(ge=1, description="Draw id")
    quota_name: str = Field(max_length=100, description="Quota")
    period: QuotaPeriod = Field(description="day or week")
    period_start: date = Field(description="First day of the period")
    schools: list[str] = Field(description="School codes drawn")
    inspected: int = _count("Drawn schools with a signed inspection by the end of the day")


class SpotChecks(BaseModel):
    """Spot checks (随机抽查) of the day."""

    started: int = _count("Inspections started")
    signed: int = _count("Inspections signed")
    findings: int = _count("Findings made")
    abnormal: int = _count("Abnormal findings made")
    signed_list: list[InspectionSigned] = Field(description="Inspections signed, by signing time")
    draws: list[DrawListed] = Field(description="Draws of the day and of its week")


class ClockListed(BaseModel):
    """A reporting clock of a major incident."""

    kind: ClockKind = Field(description="Which report")
    deadline: datetime = Field(description="Deadline (UTC)")
    done_at: datetime | None = Field(description="When the report was made (null: not made)")
    state: Literal["met", "late", "not_done"] = Field(description="Met by the deadline, late, or not done")


class IncidentListed(BaseModel):
    """A major incident of the day."""

    id: int = Field(ge=1, description="Incident id")
    title: str = Field(max_length=200, description="Title")
    school_code: str = Field(max_length=32, description="School code")
    school_name: str = Field(max_length=200, description="School name")
    occurred_at: datetime = Field(description="When it occurred (UTC)")
    status: IncidentStatus = Field(description="open or closed")
    clocks: list[ClockListed] = Field(description="Its reporting clocks, by deadline")
    clocks_met: bool = Field(description="Every clock met by its deadline")


class Incidents(BaseModel):
    """Incidents that occurred that day."""

    total: int = _count("Incidents")
    major: int = _count("Major incidents")
    majors: list[IncidentListed] = Field(description="Major incidents with their clocks")


class ShiftListed(BaseModel):
    """A duty shift overlapping the day."""

    shift_id: int = Field(ge=1, description="Shift id")
    label: str = Field(max_length=64, description="Label")
    starts_at: datetime = Field(description="Start (UTC)")
    ends_at: datetime = Field(description="End (UTC)")
    leader_id: int = Field(ge=1, description="User id of the leader on duty")
    officer_ids: list[int] = Field(description="User ids of the duty officers, first called first")


class DailyFigures(BaseModel):
    """Everything the report of one local day says (stored as the report's JSON)."""

    day: date = Field(description="The local day")
    timezone: str = Field(max_length=64, description="Its timezone (IANA)")
    starts_at: datetime = Field(description="Start of the day (UTC)")
    ends_at: datetime = Field(description="End of the day, exclusive (UTC)")
    zero: bool = Field(description="A zero report: nothing to report, all safe (无事报平安)")
    reasons: list[ZeroBreaker] = Field(description="Why it is not a zero report (empty when zero)")
    coverage: Coverage = Field(description="Patrol coverage")
    tasks: Tasks = Field(description="Patrol-plan tasks")
    events: Events = Field(description="Analytics events")
    hazards: Hazards = Field(description="Hazards")
    offline: Offline = Field(description="Offline cameras")
    spot_checks: SpotChecks = Field(description="Spot checks")
    incidents: Incidents = Field(description="Incidents")
    duty: list[ShiftListed] = Field(description="Duty shifts overlapping the day")

    def local(self, at: datetime) -> str:
        """``at`` as local ``YYYY-MM-DD HH:MM``."""
        return at.astimezone(ZoneInfo(self.timezone)).strftime("%Y-%m-%d %H:%M")

    def user_ids(self) -> set[int]:
        """Users named by the figures (the duty roster)."""
        return {s.leader_id for s in self.duty} | {u for s in self.duty for u in s.officer_ids}

    def reason_labels(self) -> list[str]:
        """The reasons, in Chinese."""
        return [ZERO_BREAKER_LABELS[r] for r in self.reasons]

    def metric_rows(self) -> list[tuple[str, str, str]]:
        """(metric, Chinese label, value) of every headline figure, for the CSV and the PDF's table."""
        c, t, e, h, o, s, i = (
            self.coverage,
            self.tasks,
            self.events,
            self.hazards,
            self.offline,
            self.spot_checks,
            self.incidents,
        )
        met = sum(1 for x in i.majors if x.clocks_met)
        rows: list[tuple[str, str, object]] = [
            ("zero", "零报告（无事报平安）", "是" if self.zero else "否"),
            ("coverage.cameras", "在用摄像机", c.cameras),
            ("coverage.toured", "已轮巡摄像机", c.toured),
            ("coverage.share", "轮巡覆盖率", f"{c.share:.1%}"),
            ("tasks.total", "巡查任务", t.total),
            ("tasks.done", "已完成", t.done),
            ("tasks.missed", "已漏巡", t.missed),
            ("tasks.pending", "未完成（生成时仍待办）", t.pending),
            ("tasks.abnormal", "巡查异常", t.abnormal),
            ("events.total", "预警事件", e.total),
            ("events.major", "较大以上事件", e.major),
            ("hazards.found", "发现隐患", h.found),
            ("hazards.found_major", "其中重大隐患", h.found_major),
            ("hazards.rectified", "整改完成", h.rectified),
            ("hazards.overdue", "逾期未整改", h.overdue),
            ("hazards.open", "未整改（日终）", h.open),
            ("offline.cameras", "离线摄像机", o.cameras),
            ("offline.schools", "涉及学校", o.schools),
            ("spot_checks.started", "开始抽查", s.started),
            ("spot_checks.signed", "完成抽查（已签名）", s.signed),
            ("spot_checks.findings", "抽查记录", s.findings),
            ("spot_checks.abnormal", "抽查异常", s.abnormal),
            ("incidents.total", "突发事件", i.total),
            ("incidents.major", "较大以上突发事件", i.major),
            ("incidents.clocks_met", "按时报告的较大以上突发事件", met),
        ]
        return [(key, label, str(value)) for key, label, value in rows]


def key_figures(figures: DailyFigures) -> dict[str, JsonValue]:
    """The headline figures of a report (the API list and the ``report.daily`` announcement)."""
    return {
        "zero": figures.zero,
        "coverage_share": figures.coverage.share,
        "tasks_not_done": figures.tasks.missed + figures.tasks.pending,
        "events": figures.events.total,
        "major_events": figures.events.major,
        "incidents": figures.incidents.total,
        "major_incidents": figures.incidents.major,
        "hazards_found": figures.hazards.found,
        "hazards_rectified": figures.hazards.rectified,
        "hazards_overdue": figures.hazards.overdue,
        "offline_cameras": figures.offline.cameras,
        "spot_checks_signed": figures.spot_checks.signed,
    }
