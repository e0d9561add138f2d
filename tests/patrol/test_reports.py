"""Daily and zero reports: figures from real rows, local day boundaries, the zero rule, the schedule, PDF, CSV."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.tables import SafetyEvent
from campuswatch.patrol_facts import StoredFleetFacts
from config.patrol import ReportConfig
from ingest.models import HealthReason, HealthState
from ingest.tables import CameraHealthTransition
from kernel.announce import take_announced
from kernel.calendar import local_day_bounds
from patrol.errors import PatrolConflictError, PatrolError
from patrol.models import (
    ClockKind,
    DayRule,
    HazardSource,
    HazardStatus,
    IncidentStatus,
    InspectionMethod,
    InspectionStatus,
    QuotaPeriod,
    Severity,
    TaskStatus,
    Verdict,
)
from patrol.report_csv import CSV_BOM, render_csv
from patrol.report_figures import DailyFigures, ZeroBreaker
from patrol.report_pdf import FONT_PACKAGE, ReportFontError, render_pdf
from patrol.reports import (
    daily_figures,
    generate_due,
    generate_report,
)
from patrol.tables import (
    DailyReport,
    DutyShift,
    DutyShiftOfficer,
    Hazard,
    Incident,
    IncidentClock,
    Inspection,
    InspectionFinding,
    PatrolPlan,
    PatrolTask,
    PatrolTaskItem,
    SpotCheckDraw,
    SpotCheckQuota,
    TourCoverage,
)
from tests.bureau import Bureau

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 12, 1)  # a Tuesday
FACTS = StoredFleetFacts()
CONFIG = ReportConfig(at=time(8, 0))
CHART_BLUE = b".082353 .396078 .752941 rg"  # the fill of the charts' bars (#1565c0)


def at(hour: int, minute: int = 0, day: date = DAY) -> datetime:
    """Local ``hour:minute`` of ``day`` in Asia/Shanghai, as UTC."""
    return datetime.combine(day, time(hour, minute), tzinfo=TZ).astimezone(UTC)


def tour(s: Session, b: Bureau, codes: list[str], day: date = DAY) -> None:
    for code in codes:
        s.add(TourCoverage(day=day, camera_id=b.cameras[code], first_shown_at=at(9, day=day), last_shown_at=at(9)))


def task(s: Session, b: Bureau, status: TaskStatus, verdicts: list[Verdict | None], name: str = "gates") -> int:
    plan = s.scalars(select(PatrolPlan).where(PatrolPlan.name == name)).first()
    if plan is None:
        plan = PatrolPlan(name=name, selector={}, day_rule=DayRule.EVERY_DAY, start=time(7), end=time(8))
        s.add(plan)
        s.flush()
    start = at(7 + len(s.scalars(select(PatrolTask.id)).all()))
    row = PatrolTask(
        plan_id=plan.id, day=DAY, window_start=start, window_end=start + timedelta(hours=1), status=status
    )
    row.created_at = at(0)
    s.add(row)
    s.flush()
    for position, verdict in enumerate(verdicts):
        camera = b.cameras[["S11-GATE", "S12-GATE", "S13-GATE"][position]]
        checked = start if verdict is not None else None
        s.add(
            PatrolTaskItem(
                task_id=row.id, camera_id=camera, position=position, verdict=verdict, checked_at=checked
            )
        )
    return row.id


def event(
    s: Session, b: Bureau, code: str, started: datetime, kind: str = "intrusion", severity: str = "general"
) -> None:
    camera = b.cameras[code]
    school = b.schools[code.split("-", maxsplit=1)[0]]
    s.add(
        SafetyEvent(
            camera_id=camera, school_id=school, type=kind, rule=kind, severity=severity, started_at=started
        )
    )


def hazard(
    s: Session,
    b: Bureau,
    created: datetime,
    deadline: datetime,
    *,
    closed: datetime | None = None,
    title: str = "broken fence",
    severity: Severity = Severity.GENERAL,
) -> int:
    row = Hazard(
        school_id=b.schools["S11"],
        source=HazardSource.MANUAL,
        title=title,
        severity=severity,
        status=HazardStatus.CLOSED if closed else HazardStatus.OPEN,
        deadline=deadline,
        created_at=created,
        updated_at=closed or created,
        closed_at=closed,
    )
    s.add(row)
    s.flush()
    return row.id


def offline(s: Session, b: Bureau, code: str, when: datetime, state: HealthState = HealthState.OFFLINE) -> None:
    reason = HealthReason.TIMEOUT if state is HealthState.OFFLINE else HealthReason.OK
    s.add(CameraHealthTransition(camera_id=b.cameras[code], at=when, state=state, reason=reason))


def inspection(
    s: Session, b: Bureau, school: str, started: datetime, signed: datetime | None, verdicts: list[Verdict]
) -> int:
    row = Inspection(
        school_id=b.schools[school],
        method=InspectionMethod.RANDOM,
        inspector_id=b.users["inspector"],
        status=InspectionStatus.SIGNED if signed else InspectionStatus.OPEN,
        started_at=started,
        signed_at=signed,
        signed_name="Inspector" if signed else None,
    )
    s.add(row)
    s.flush()
    for verdict in verdicts:
        s.add(InspectionFinding(inspection_id=row.id, verdict=verdict, created_at=started + timedelta(minutes=5)))
    return row.id


def incident(s: Session, b: Bureau, occurred: datetime, severity: Severity, done: list[int | None]) -> int:
    row = Incident(
        title="fight at the gate",
        school_id=b.schools["S21"],
        severity=severity,
        status=IncidentStatus.OPEN,
        occurred_at=occurred,
        created_at=occurred,
    )
    s.add(row)
    s.flush()
    kinds = [(ClockKind.SCHOOL_PHONE, 15), (ClockKind.SCHOOL_WRITTEN, 30), (ClockKind.BUREAU_PHONE, 20)]
    for (kind, minutes), done_after in zip(kinds, done, strict=False):
        deadline = occurred + timedelta(minutes=minutes)
        done_at = None if done_after is None else occurred + timedelta(minutes=done_after)
        s.add(
            IncidentClock(incident_id=row.id, kind=kind, started_at=occurred, deadline=deadline, done_at=done_at)
        )
    return row.id


def figures(b: Bureau, day: date = DAY) -> DailyFigures:
    with b.factory() as s:
        return daily_figures(s, day, FACTS, timezone=TZ)


def test_day_bounds_are_local_midnights() -> None:
    assert local_day_bounds(DAY, TZ) == (
        datetime(2026, 11, 30, 16, tzinfo=UTC),
        datetime(2026, 12, 1, 16, tzinfo=UTC),
    )
    assert local_day_bounds(DAY, ZoneInfo("UTC")) == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2026, 12, 2, tzinfo=UTC),
    )


def test_a_quiet_day_is_a_zero_report_and_still_reports_coverage_and_offline_cameras(bureau: Bureau) -> None:
    with bureau.factory() as s:
        tour(s, bureau, ["S11-GATE", "S11-DORM", "S12-GATE", "S21-GATE"])
        tour(s, bureau, ["S13-GATE"], day=DAY - timedelta(days=1))  # the day before: not this day's coverage
        task(s, bureau, TaskStatus.DONE, [Verdict.NORMAL, Verdict.NORMAL])
        offline(s, bureau, "S22-YARD", at(12))
        offline(s, bureau, "S11-CORR", at(20, day=DAY - timedelta(days=2)))  # offline since before the day
        offline(s, bureau, "S12-CORR", at(0, day=DAY + timedelta(days=1)))  # the next day: not offline on DAY
        hazard(s, bureau, at(9, day=DAY - timedelta(days=10)), at(9, day=DAY - timedelta(days=3)), title="old")
        inspection(s, bureau, "S12", at(14), at(15), [Verdict.NORMAL])
        event(s, bureau, "S11-GATE", at(23, 59, day=DAY - timedelta(days=1)))  # the evening before
        s.commit()
    f = figures(bureau)
    assert f.zero is True and f.reasons == []
    assert (f.coverage.cameras, f.coverage.toured, f.coverage.share) == (24, 4, round(4 / 24, 4))
    assert [(d.district_code, d.cameras, d.toured) for d in f.coverage.by_district] == [
        ("D1", 12, 3),
        ("D2", 12, 1),
    ]
    assert (f.tasks.total, f.tasks.done, f.tasks.verdicts, f.tasks.abnormal, f.tasks.not_done) == (1, 1, 2, 0, [])
    assert f.offline.cameras == 2 and f.offline.schools == 2
    assert [(o.school_code, o.district_code, o.cameras) for o in f.offline.by_school] == [
        ("S11", "D1", ["S11-CORR"]),
        ("S22", "D2", ["S22-YARD"]),
    ]
    assert (f.hazards.found, f.hazards.overdue, f.hazards.open) == (0, 1, 1)
    assert [h.title for h in f.hazards.overdue_list] == ["old"]
    assert (f.spot_checks.started, f.spot_checks.signed, f.spot_checks.findings) == (1, 1, 1)
    assert f.events.total == 0 and f.incidents.total == 0
    assert DailyFigures.model_validate_json(f.model_dump_json()) == f  # JSON round trip


def test_figures_of_a_busy_day(bureau: Bureau) -> None:
    users = bureau.users
    with bureau.factory() as s:
        done = task(s, bureau, TaskStatus.DONE, [Verdict.NORMAL, Verdict.ABNORMAL])
        missed = task(s, bureau, TaskStatus.MISSED, [Verdict.NORMAL, None], name="dorms")
        pending = task(s, bureau, TaskStatus.PENDING, [None])
        for hour, code, kind, severity in [
            (8, "S11-GATE", "intrusion", "general"),
            (9, "S11-GATE", "crowding", "major"),
            (10, "S11-YARD", "intrusion", "general"),
            (11, "S21-GATE", "loitering", "general"),
        ]:
            event(s, bureau, code, at(hour), kind, severity)
        hazard(s, bureau, at(10), at(10, day=DAY + timedelta(days=7)), title="new", severity=Severity.MAJOR)
        hazard(s, bureau, at(9, day=DAY - timedelta(days=5)), at(9, day=DAY - timedelta(days=1)), closed=at(15))
        major = incident(s, bureau, at(13), Severity.MAJOR, [10, 35, None])
        incident(s, bureau, at(14), Severity.GENERAL, [])
        signed = inspection(s, bureau, "S13", at(9), at(11), [Verdict.NORMAL, Verdict.ABNORMAL])
        inspection(s, bureau, "S23", at(16), None, [])
        inspection(s, bureau, "S22", at(15, day=DAY - timedelta(days=1)), at(10), [])  # started the day before
        quotas = [
            SpotCheckQuota(name="daily", period=QuotaPeriod.DAY, min_count=2, max_count=2, seed=1),
            SpotCheckQuota(name="weekly", period=QuotaPeriod.WEEK, min_count=6, max_count=10, seed=2),
        ]
        s.add_all(quotas)
        s.flush()
        draws = [
            (quotas[0], DAY, ["S13", "S21"]),
            (quotas[0], DAY - timedelta(days=1), ["S11", "S12"]),  # yesterday's daily draw: not this day's
            (quotas[1], date(2026, 11, 30), ["S13", "S22", "S23"]),  # this week's (Monday)
        ]
        for quota, start, codes in draws:
            draw = SpotCheckDraw(
                quota_id=quota.id,
                period_start=start,
                count=len(codes),
                seed=1,
                schools=codes,
                inputs={},
                inputs_sha256="0" * 64,
                drawn_at=at(0, day=start),
            )
            s.add(draw)
            s.flush()
            if quota.name == "daily" and start == DAY:
                s.get_one(Inspection, signed).draw_id = draw.id
        shift = DutyShift(
            label="day", starts_at=at(8), ends_at=at(20), leader_id=users["leader1"], created_at=at(0)
        )
        s.add(shift)
        for label, starts, ends in [
            ("next", at(20), at(8, day=DAY + timedelta(days=1))),
            ("before", at(8, day=DAY - timedelta(days=1)), at(0)),
        ]:
            s.add(
                DutyShift(
                    label=label, starts_at=starts, ends_at=ends, leader_id=users["leader2"], created_at=at(0)
                )
            )
        s.flush()
        s.add_all(
            [
                DutyShiftOfficer(shift_id=shift.id, user_id=users["officer2"], position=1),
                DutyShiftOfficer(shift_id=shift.id, user_id=users["officer1"], position=0),
            ]
        )
        s.commit()
    f = figures(bureau)
    assert f.zero is False
    assert f.reasons == list(ZeroBreaker)  # every condition at once, in the rule's order
    assert (f.tasks.total, f.tasks.done, f.tasks.missed, f.tasks.pending) == (3, 1, 1, 1)
    assert (f.tasks.verdicts, f.tasks.abnormal) == (3, 1)
    assert [(t.task_id, t.plan_name, t.status, t.checked, t.cameras) for t in f.tasks.not_done] == [
        (missed, "dorms", TaskStatus.MISSED, 1, 2),
        (pending, "gates", TaskStatus.PENDING, 0, 1),
    ]
    assert done not in {t.task_id for t in f.tasks.not_done}
    assert f.events.total == 4 and f.events.major == 1
    assert f.events.by_type == {"crowding": 1, "intrusion": 2, "loitering": 1}
    assert f.events.by_severity == {"general": 3, "major": 1}
    assert [(t.school_code, t.school_name, t.count) for t in f.events.top_schools] == [
        ("S11", "第11中学", 3),
        ("S21", "第21中学", 1),
    ]
    assert (f.hazards.found, f.hazards.found_major, f.hazards.rectified, f.hazards.overdue, f.hazards.open) == (
        1,
        1,
        1,
        0,
        1,
    )
    assert (f.incidents.total, f.incidents.major) == (2, 1)
    [listed] = f.incidents.majors
    assert listed.id == major and listed.school_code == "S21" and listed.clocks_met is False
    assert [(c.kind, c.state) for c in listed.clocks] == [
        (ClockKind.SCHOOL_PHONE, "met"),
        (ClockKind.BUREAU_PHONE, "not_done"),
        (ClockKind.SCHOOL_WRITTEN, "late"),
    ]
    sc = f.spot_checks
    assert (sc.started, sc.signed, sc.findings, sc.abnormal) == (2, 2, 2, 1)
    assert [(i.school_code, i.findings, i.abnormal, i.signed_name) for i in sc.signed_list] == [
        ("S22", 0, 0, "Inspector"),
        ("S13", 2, 1, "Inspector"),
    ]
    assert [(d.quota_name, d.period, d.schools, d.inspected) for d in sc.draws] == [
        ("weekly", QuotaPeriod.WEEK, ["S13", "S22", "S23"], 0),
        ("daily", QuotaPeriod.DAY, ["S13", "S21"], 1),
    ]
    assert [(d.label, d.leader_id, d.officer_ids) for d in f.duty] == [  # "before" ended at midnight
        ("day", users["leader1"], [users["officer1"], users["officer2"]]),
        ("next", users["leader2"], []),
    ]
    assert f.user_ids() == {users["leader1"], users["leader2"], users["officer1"], users["officer2"]}


def test_events_and_hazards_belong_to_their_local_day(bureau: Bureau) -> None:
    with bureau.factory() as s:
        event(s, bureau, "S11-GATE", at(0, 0))  # the first minute of DAY
        event(s, bureau, "S11-GATE", at(23, 59))  # the last minute of DAY
        event(s, bureau, "S12-GATE", at(0, 0, day=DAY + timedelta(days=1)))  # midnight: the next day's
        hazard(s, bureau, at(23, 59), at(23, 59, day=DAY + timedelta(days=3)))
        hazard(s, bureau, at(0, 0, day=DAY + timedelta(days=1)), at(0, 0, day=DAY + timedelta(days=3)))
        s.commit()
    today, tomorrow = figures(bureau), figures(bureau, DAY + timedelta(days=1))
    assert today.events.total == 2 and today.events.top_schools[0].school_code == "S11"
    assert tomorrow.events.total == 1 and tomorrow.events.top_schools[0].school_code == "S12"
    assert (today.hazards.found, today.hazards.open) == (1, 1)
    assert (tomorrow.hazards.found, tomorrow.hazards.open) == (1, 2)


def test_hazards_overdue_at_the_end_of_the_day(bureau: Bureau) -> None:
    before, after = DAY - timedelta(days=3), DAY + timedelta(days=1)
    with bureau.factory() as s:
        hazard(s, bureau, at(9, day=before), at(12), title="due at noon, open")  # overdue
        hazard(s, bureau, at(9, day=before), at(12), closed=at(9, day=after), title="closed late")  # overdue
        hazard(s, bureau, at(9, day=before), at(12), closed=at(18), title="closed that evening")  # rectified
        hazard(s, bureau, at(9, day=before), at(23, 59), title="due at 23:59")  # overdue: before the end
        hazard(s, bureau, at(9, day=before), at(0, day=after), title="due at midnight")  # open, not overdue
        hazard(s, bureau, at(9, day=before), at(9, day=before + timedelta(days=1)), closed=at(9, day=before))
        s.commit()
    h = figures(bureau).hazards
    assert (h.found, h.rectified, h.overdue, h.open) == (0, 1, 3, 4)
    assert [x.title for x in h.overdue_list] == ["due at noon, open", "closed late", "due at 23:59"]


ZERO_BREAKERS: dict[ZeroBreaker, Callable[[Session, Bureau], object]] = {
    ZeroBreaker.EVENTS: lambda s, b: event(s, b, "S11-GATE", at(23, 59)),
    ZeroBreaker.INCIDENTS: lambda s, b: incident(s, b, at(3), Severity.GENERAL, []),
    ZeroBreaker.HAZARDS_FOUND: lambda s, b: hazard(s, b, at(0), at(0, day=DAY + timedelta(days=7))),
    ZeroBreaker.ABNORMAL_VERDICTS: lambda s, b: task(s, b, TaskStatus.DONE, [Verdict.NORMAL, Verdict.ABNORMAL]),
    ZeroBreaker.ABNORMAL_FINDINGS: lambda s, b: inspection(s, b, "S11", at(9), None, [Verdict.ABNORMAL]),
    ZeroBreaker.TASKS_NOT_DONE: lambda s, b: task(s, b, TaskStatus.MISSED, [None]),
}


@pytest.mark.parametrize("breaker", list(ZeroBreaker))
def test_each_condition_breaks_the_zero_report(bureau: Bureau, breaker: ZeroBreaker) -> None:
    with bureau.factory() as s:
        ZERO_BREAKERS[breaker](s, bureau)
        s.commit()
    f = figures(bureau)
    assert f.zero is False and f.reasons == [breaker]
    assert figures(bureau, DAY - timedelta(days=1)).zero is True  # the day before is untouched


def test_a_task_still_pending_when_the_report_is_made_is_not_done(bureau: Bureau) -> None:
    with bureau.factory() as s:
        task(s, bureau, TaskStatus.PENDING, [Verdict.NORMAL, None])
        s.commit()
    f = figures(bureau)
    assert f.reasons == [ZeroBreaker.TASKS_NOT_DONE] and f.tasks.pending == 1
    assert [t.status for t in f.tasks.not_done] == [TaskStatus.PENDING]


def test_generate_report_stores_announces_and_refuses_a_day_not_over(bureau: Bureau) -> None:
    with bureau.factory() as s:
        with pytest.raises(PatrolError, match="2026-12-01 is not over yet"):
            generate_report(s, DAY, FACTS, timezone=TZ, bureau_name="青岛市教育局", now=at(23, 59))
        report = generate_report(
            s, DAY, FACTS, timezone=TZ, bureau_name="青岛市教育局", now=at(0, day=DAY + timedelta(days=1))
        )
        [announced] = take_announced(s)
        assert announced.topic == "duty" and announced.type == "report.daily"
        assert announced.payload["day"] == "2026-12-01" and announced.payload["zero"] is True
        assert announced.payload["pdf_url"] == "/api/reports/2026-12-01.pdf" and announced.payload["events"] == 0
        assert announced.payload["replaced"] is False
        s.commit()
        assert report.zero is True and report.published_at == report.generated_at
        assert report.figures["day"] == "2026-12-01" and report.pdf.startswith(b"%PDF")
        assert report.csv.startswith(CSV_BOM)
        with pytest.raises(PatrolConflictError, match="already generated"):
            generate_report(s, DAY, FACTS, timezone=TZ, now=at(9, day=DAY + timedelta(days=1)))
        event(s, bureau, "S11-GATE", at(12))
        s.flush()
        again = generate_report(s, DAY, FACTS, timezone=TZ, now=at(9, day=DAY + timedelta(days=1)), replace=True)
        assert again.id == report.id and again.zero is False and again.figures["reasons"] == ["events"]
        assert take_announced(s)[0].payload["replaced"] is True
        s.commit()
        assert len(s.scalars(select(DailyReport)).all()) == 1


def _days(s: Session) -> list[date]:
    return list(s.scalars(select(DailyReport.day).order_by(DailyReport.day)))


def test_generate_due_at_the_configured_time_once(bureau: Bureau) -> None:
    next_day = DAY + timedelta(days=1)
    with bureau.factory() as s:
        assert generate_due(s, at(7, 59, day=next_day), FACTS, config=CONFIG, timezone=TZ) is None
        assert _days(s) == []
        made = generate_due(s, at(8, 0, day=next_day), FACTS, config=CONFIG, timezone=TZ)
        assert made is not None and made.day == DAY
        s.commit()
        assert generate_due(s, at(8, 0, day=next_day), FACTS, config=CONFIG, timezone=TZ) is None  # idempotent
        assert generate_due(s, at(23, 0, day=next_day), FACTS, config=CONFIG, timezone=TZ) is None
        assert (
            generate_due(s, at(7, 0, day=next_day + timedelta(days=1)), FACTS, config=CONFIG, timezone=TZ) is None
        )
        made = generate_due(s, at(8, 30, day=next_day + timedelta(days=1)), FACTS, config=CONFIG, timezone=TZ)
        assert made is not None and made.day == next_day
        s.commit()
        assert _days(s) == [DAY, next_day]
        off = ReportConfig(enabled=False)
        assert generate_due(s, at(9, day=DAY + timedelta(days=5)), FACTS, config=off, timezone=TZ) is None
        assert _days(s) == [DAY, next_day]


def test_generate_due_catches_up_missed_days_at_most_a_week_back(bureau: Bureau) -> None:
    with bureau.factory() as s:
        generate_report(s, DAY, FACTS, timezone=TZ, now=at(8, day=DAY + timedelta(days=1)))
        s.commit()
        made = generate_due(s, at(9, day=DAY + timedelta(days=4)), FACTS, config=CONFIG, timezone=TZ)
        assert made is not None and made.day == DAY + timedelta(days=3)  # the newest of those made
        assert _days(s) == [DAY + timedelta(days=n) for n in range(4)]
        # Down for two weeks: only the last seven days come back.
        made = generate_due(s, at(9, day=DAY + timedelta(days=20)), FACTS, config=CONFIG, timezone=TZ)
        assert made is not None and made.day == DAY + timedelta(days=19)
        assert _days(s)[4:] == [DAY + timedelta(days=n) for n in range(13, 20)]
        # Before the configured time the day before yesterday is due (if missing), not yesterday.
        made = generate_due(s, at(7, day=DAY + timedelta(days=22)), FACTS, config=CONFIG, timezone=TZ)
        assert made is not None and made.day == DAY + timedelta(days=20)
        s.commit()


def _pdf_text(pdf: bytes) -> tuple[PdfReader, str]:
    reader = PdfReader(io.BytesIO(pdf))
    return reader, "\n".join(page.extract_text() for page in reader.pages)


def test_the_pdf_of_a_zero_day(bureau: Bureau) -> None:
    with bureau.factory() as s:
        tour(s, bureau, ["S11-GATE", "S21-GATE"])
        s.commit()
    f = figures(bureau)
    generated = at(8, day=DAY + timedelta(days=1))
    pdf = render_pdf(f, bureau_name="青岛市教育局", generated_at=generated, names={})
    reader, text = _pdf_text(pdf)
    assert pdf.startswith(b"%PDF") and len(reader.pages) >= 1
    assert "青岛市教育局" in text and "2026-12-01" in text and "2026年12月1日" in text
    assert "无事报平安" in text and "有事报情况" not in text
    assert "生成时间 generated at：2026-12-02 08:00:00" in text
    assert f"第 1 页 / 共 {len(reader.pages)} 页" in text
    assert "分区轮巡覆盖率" in text and "第1区" in text  # the coverage chart and its labels
    assert reader.metadata is not None and reader.metadata.title == "青岛市教育局 校园安全日报 2026-12-01"
    assert b"WenQuanYi" in pdf and b"/FontFile2" in pdf and b"/Helvetica" not in pdf  # only the embedded font
    ops = b"".join(content.get_data() for page in reader.pages if (content := page.get_contents()) is not None)
    assert ops.count(CHART_BLUE) >= 2 and ops.count(b" re") >= 4  # the coverage bars (two districts), drawn
    assert render_pdf(f, bureau_name="青岛市教育局", generated_at=generated, names={}) == pdf  # deterministic


def test_the_pdf_of_a_busy_day_lists_what_happened(bureau: Bureau) -> None:
    with bureau.factory() as s:
        task(s, bureau, TaskStatus.MISSED, [None], name="宿舍巡查")
        event(s, bureau, "S11-GATE", at(9), "intrusion")
        offline(s, bureau, "S22-YARD", at(12))
        hazard(s, bureau, at(9, day=DAY - timedelta(days=9)), at(9, day=DAY - timedelta(days=2)), title="围墙破损")
        incident(s, bureau, at(13), Severity.MAJOR, [10])
        s.add(
            DutyShift(
                label="白班", starts_at=at(8), ends_at=at(20), leader_id=bureau.users["leader1"], created_at=at(0)
            )
        )
        s.commit()
    names = {bureau.users["leader1"]: "王带班"}
    pdf = render_pdf(
        figures(bureau), bureau_name="青岛市教育局", generated_at=at(8, day=DAY + timedelta(days=1)), names=names
    )
    _, text = _pdf_text(pdf)
    assert "有事报情况" in text and "无事报平安" not in text
    assert "发生预警事件" in text and "巡查任务未完成" in text
    for shown in (
        "宿舍巡查",
        "漏巡",
        "S22-YARD",
        "围墙破损",
        "王带班",
        "白班",
        "入侵",
        "学校电话报告（15分钟）",
        "按时",
    ):
        assert shown in text, shown


def test_a_missing_font_names_the_debian_package(bureau: Bureau, tmp_path: Path) -> None:
    with pytest.raises(ReportFontError, match=re.escape(FONT_PACKAGE)):
        render_pdf(figures(bureau), bureau_name="x", generated_at=at(9), font_path=tmp_path / "none.ttc")
    assert FONT_PACKAGE == "fonts-wqy-microhei"


def test_the_csv_parses_and_carries_the_figures(bureau: Bureau) -> None:
    with bureau.factory() as s:
        tour(s, bureau, ["S11-GATE", "S11-DORM", "S12-GATE"])
        task(s, bureau, TaskStatus.MISSED, [None], name="宿舍巡查")
        event(s, bureau, "S11-GATE", at(9), "intrusion")
        event(s, bureau, "S12-GATE", at(10), "crowding", "major")
        offline(s, bureau, "S22-YARD", at(12))
        s.commit()
    text = render_csv(figures(bureau), names={})
    assert text.startswith(CSV_BOM)
    rows = list(csv.reader(io.StringIO(text.removeprefix(CSV_BOM))))
    metrics = {row[0]: row[2] for row in rows if len(row) == 3}
    assert (
        metrics["day"] == "2026-12-01"
        and metrics["zero"] == "否"
        and metrics["reasons"] == "events tasks_not_done"
    )
    assert metrics["coverage.cameras"] == "24" and metrics["coverage.toured"] == "3"
    assert (
        metrics["coverage.share"] == "12.5%" and metrics["events.total"] == "2" and metrics["events.major"] == "1"
    )
    assert metrics["tasks.missed"] == "1" and metrics["offline.cameras"] == "1"

    def section(key: str) -> list[list[str]]:
        start = next(i for i, row in enumerate(rows) if row[:1] == [f"[{key}]"])
        end = next((i for i in range(start + 1, len(rows)) if not rows[i]), len(rows))
        return rows[start + 1 : end]

    assert section("events_by_type") == [["type", "count"], ["crowding", "1"], ["intrusion", "1"]]
    offline_rows = section("offline_cameras")
    assert offline_rows[0] == ["school_code", "school_name", "district_code", "cameras"]
    assert offline_rows[1] == ["S22", "第22中学", "D2", "S22-YARD"]
    tasks = section("tasks_not_done")
    assert tasks[1][2] == "宿舍巡查" and tasks[1][5] == "missed"
    assert [r[0] for r in section("coverage_by_district")[1:]] == ["D1", "D2"]
