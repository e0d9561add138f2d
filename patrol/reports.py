"""The daily report and zero report (日报告、零报告): the figures of one local day, as JSON, CSV and PDF.

Every day a report goes up; a day with nothing to report still gets an explicit "all safe" report
(有事报情况、无事报平安). The figures of day D cover ``[00:00, 24:00)`` local time (``timezone``, Asia/Shanghai
by default) and are read once D is over, at ``patrol.report.at`` on D+1:

- coverage: enabled cameras shown on a wall on D (``tour_coverage``), overall and by district;
- plan tasks of D (``patrol_tasks.day``): done, missed, and still pending when the report is made (not done);
  verdicts recorded on the day's tasks, abnormal ones;
- events that started on D, by type, by severity and by school;
- hazards found on D, rectified (closed) on D, overdue at the end of D (open then — not closed, or closed
  later — with a deadline before the end of D), and open at the end of D;
- cameras offline at some time on D, by school;
- spot checks: inspections started and signed on D, findings made on D (abnormal ones), the draws whose
  period holds D and how many of their schools were inspected by the end of D;
- incidents of D — classified major on D, or (never classified major) occurred on D, as
  :func:`patrol.incidents.report_day` says — the major ones with their reporting clocks (met: done by the
  deadline);
- the duty shifts overlapping D.

**Zero report.** D is a zero report when it had no event, no incident, no hazard found, no abnormal patrol
verdict (on D's tasks), no abnormal spot-check finding (made on D) and no plan task of D left not done (missed,
or still pending). Offline cameras, coverage, overdue or open hazards and the spot-check work are reported either
way and do not break a zero report. :attr:`DailyFigures.reasons` lists what broke it.

**Schedule.** :func:`generate_due` makes the reports that are due: once local ``now`` is at or past
``config.at`` on day T, the report of T-1 is due (before it, the report of T-2). Missed days (the service was
down) are caught up, oldest first, but only the days after the newest stored report and at most
:data:`CATCH_UP_DAYS` back; a fresh installation (no report yet) starts with the report due that morning,
rather than issuing "all safe" reports for days it never watched. Older gaps are filled by hand
(``POST /api/reports/{day}/generate``).

**Names.** Figures carry user ids (the duty roster). The PDF prints names: :func:`generate_report` reads them
from the ``users`` table by its column names (SQLAlchemy Core), since ``patrol`` must not import ``web`` and
the patrol tables already reference ``users.id`` by name; :func:`~patrol.report_pdf.render_pdf` itself takes
a plain ``names`` mapping, so it stays a pure function of its inputs.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import JsonValue
from sqlalchemy import Integer, String, and_, case, column, func, or_, select, table
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from config.patrol import ReportConfig
from config.schema import InstanceConfig
from kernel.announce import announce
from kernel.calendar import local_day_bounds
from patrol.errors import PatrolConflictError, PatrolError
from patrol.facts import FleetFacts
from patrol.incidents import in_report_of
from patrol.models import QuotaPeriod, Severity, TaskStatus, Verdict
from patrol.report_csv import render_csv
from patrol.report_figures import (
    LIST_LIMIT,
    TOP_SCHOOLS,
    ClockListed,
    Coverage,
    DailyFigures,
    DistrictCoverage,
    DrawListed,
    Events,
    HazardListed,
    Hazards,
    IncidentListed,
    Incidents,
    InspectionSigned,
    Offline,
    SchoolCount,
    SchoolOffline,
    ShiftListed,
    SpotChecks,
    TaskNotDone,
    Tasks,
    ZeroBreaker,
    key_figures,
)
from patrol.report_pdf import render_pdf
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
from patrol.topics import duty_event
from registry.models import Camera, District, School

log = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
CATCH_UP_DAYS = 7
"""How many days back :func:`generate_due` catches up missed reports."""
DEFAULT_BUREAU_NAME: str = InstanceConfig.model_fields["name"].default

_TimeColumn = InstrumentedAttribute[datetime] | InstrumentedAttribute[datetime | None]
_users = table("users", column("id", Integer), column("username", String), column("display_name", String))


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _within(col: _TimeColumn, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(col >= start, col < end)


def _sum(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def daily_figures(
    session: Session, day: date, facts: FleetFacts, *, timezone: ZoneInfo = SHANGHAI
) -> DailyFigures:
    """The figures of the local day ``day`` (a fixed number of queries, whatever the size of the fleet)."""
    start, end = local_day_bounds(day, timezone)
    tasks = _tasks(session, day)
    events = _events(session, facts, start, end)
    hazards = _hazards(session, start, end)
    spot_checks = _spot_checks(session, day, start, end)
    incidents = _incidents(session, start, end)
    reasons = [
        reason
        for reason, present in (
            (ZeroBreaker.EVENTS, events.total),
            (ZeroBreaker.INCIDENTS, incidents.total),
            (ZeroBreaker.HAZARDS_FOUND, hazards.found),
            (ZeroBreaker.ABNORMAL_VERDICTS, tasks.abnormal),
            (ZeroBreaker.ABNORMAL_FINDINGS, spot_checks.abnormal),
            (ZeroBreaker.TASKS_NOT_DONE, tasks.missed + tasks.pending),
        )
        if present
    ]
    return DailyFigures(
        day=day,
        timezone=timezone.key,
        starts_at=start,
        ends_at=end,
        zero=not reasons,
        reasons=reasons,
        coverage=_coverage(session, day),
        tasks=tasks,
        events=events,
        hazards=hazards,
        offline=_offline(session, facts, start, end),
        spot_checks=spot_checks,
        incidents=incidents,
        duty=_duty(session, start, end),
    )


def _coverage(session: Session, day: date) -> Coverage:
    # Counted by the database, per district: a dozen rows come back, not the fleet.
    rows = session.execute(
        select(District.code, District.name, func.count(Camera.id), func.count(TourCoverage.camera_id))
        .join(School, School.district_id == District.id)
        .join(Camera, Camera.school_id == School.id)
        .outerjoin(TourCoverage, and_(TourCoverage.camera_id == Camera.id, TourCoverage.day == day))
        .where(Camera.enabled.is_(True))
        .group_by(District.code, District.name)
        .order_by(District.code)
    ).all()
    cameras, toured = sum(r[2] for r in rows), sum(r[3] for r in rows)
    return Coverage(
        cameras=cameras,
        toured=toured,
        share=_share(toured, cameras),
        by_district=[
            DistrictCoverage(district_code=code, district_name=name, cameras=n, toured=t, share=_share(t, n))
            for code, name, n, t in rows
        ],
    )


def _offline(session: Session, facts: FleetFacts, start: datetime, end: datetime) -> Offline:
    codes = sorted(facts.offline_between(session, start, end))
    rows = session.execute(
        select(Camera.code, School.code, School.name, District.code)
        .join(School, School.id == Camera.school_id)
        .join(District, District.id == School.district_id)
        .where(Camera.code.in_(codes), Camera.enabled.is_(True))
        .order_by(School.code, Camera.code)
    ).all()
    schools: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for camera_code, school_code, school_name, district_code in rows:
        schools[school_code, school_name, district_code].append(camera_code)
    return Offline(
        cameras=len(rows),
        schools=len(schools),
        by_school=[
            SchoolOffline(school_code=code, school_name=name, district_code=district, cameras=cameras)
            for (code, name, district), cameras in schools.items()
        ],
    )


def _tasks(session: Session, day: date) -> Tasks:
    rows = session.execute(
        select(PatrolTask, PatrolPlan.name)
        .join(PatrolPlan, PatrolPlan.id == PatrolTask.plan_id)
        .where(PatrolTask.day == day)
        .order_by(PatrolTask.window_start, PatrolTask.id)
    ).all()
    items = {
        task_id: (cameras, checked, abnormal)
        for task_id, cameras, checked, abnormal in session.execute(
            select(
                PatrolTaskItem.task_id,
                func.count(),
                func.count(PatrolTaskItem.verdict),
                _sum(PatrolTaskItem.verdict == Verdict.ABNORMAL),
            )
            .join(PatrolTask, PatrolTask.id == PatrolTaskItem.task_id)
            .where(PatrolTask.day == day)
            .group_by(PatrolTaskItem.task_id)
        )
    }
    statuses = Counter(task.status for task, _ in rows)
    return Tasks(
        total=len(rows),
        done=statuses[TaskStatus.DONE],
        missed=statuses[TaskStatus.MISSED],
        pending=statuses[TaskStatus.PENDING],
        verdicts=sum(checked for _, checked, _ in items.values()),
        abnormal=sum(abnormal for _, _, abnormal in items.values()),
        not_done=[
            TaskNotDone(
                task_id=task.id,
                plan_id=task.plan_id,
                plan_name=plan_name,
                window_start=task.window_start,
                window_end=task.window_end,
                status=task.status,
                cameras=items.get(task.id, (0, 0, 0))[0],
                checked=items.get(task.id, (0, 0, 0))[1],
            )
            for task, plan_name in rows
            if task.status is not TaskStatus.DONE
        ],
    )


def _events(session: Session, facts: FleetFacts, start: datetime, end: datetime) -> Events:
    events = facts.events_between(session, start, end)
    by_type = Counter(e.type for e in events)
    by_severity = Counter(e.severity for e in events)
    per_school = Counter(e.school_code for e in events)
    top = sorted(per_school.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SCHOOLS]
    wanted = [code for code, _ in top]
    names = dict(session.execute(select(School.code, School.name).where(School.code.in_(wanted))).tuples().all())
    return Events(
        total=len(events),
        major=by_severity[Severity.MAJOR.value],
        by_type=dict(sorted(by_type.items())),
        by_severity=dict(sorted(by_severity.items())),
        top_schools=[SchoolCount(school_code=c, school_name=names.get(c, c), count=n) for c, n in top],
    )


def _hazards(session: Session, start: datetime, end: datetime) -> Hazards:
    open_at_end = and_(Hazard.created_at < end, or_(Hazard.closed_at.is_(None), Hazard.closed_at >= end))
    overdue = and_(open_at_end, Hazard.deadline < end)
    found = _within(Hazard.created_at, start, end)
    counts = session.execute(
        select(
            _sum(found),
            _sum(and_(found, Hazard.severity == Severity.MAJOR)),
            _sum(_within(Hazard.closed_at, start, end)),
            _sum(overdue),
            _sum(open_at_end),
        ).where(Hazard.created_at < end)
    ).one()
    listed = session.execute(
        select(Hazard, School.code, School.name)
        .join(School, School.id == Hazard.school_id)
        .where(overdue)
        .order_by(Hazard.deadline, Hazard.id)
        .limit(LIST_LIMIT)
    ).all()
    return Hazards(
        found=counts[0],
        found_major=counts[1],
        rectified=counts[2],
        overdue=counts[3],
        open=counts[4],
        overdue_list=[
            HazardListed(
                id=h.id,
                school_code=code,
                school_name=name,
                title=h.title,
                severity=h.severity,
                deadline=h.deadline,
            )
            for h, code, name in listed
        ],
    )


def _spot_checks(session: Session, day: date, start: datetime, end: datetime) -> SpotChecks:
    inspections = session.execute(
        select(Inspection, School.code, School.name)
        .join(School, School.id == Inspection.school_id)
        .where(or_(_within(Inspection.started_at, start, end), _within(Inspection.signed_at, start, end)))
        .order_by(Inspection.signed_at, Inspection.id)
    ).all()
    signed = [row for row in inspections if row[0].signed_at is not None and start <= row[0].signed_at < end]
    found_total, found_abnormal = session.execute(
        select(func.count(), _sum(InspectionFinding.verdict == Verdict.ABNORMAL)).where(
            _within(InspectionFinding.created_at, start, end)
        )
    ).one()
    per_inspection = {
        inspection_id: (n, abnormal)
        for inspection_id, n, abnormal in session.execute(
            select(
                InspectionFinding.inspection_id, func.count(), _sum(InspectionFinding.verdict == Verdict.ABNORMAL)
            )
            .where(InspectionFinding.inspection_id.in_([row[0].id for row in signed]))
            .group_by(InspectionFinding.inspection_id)
        )
    }
    draws = [
        (draw, quota_name, period)
        for draw, quota_name, period in session.execute(
            select(SpotCheckDraw, SpotCheckQuota.name, SpotCheckQuota.period)
            .join(SpotCheckQuota, SpotCheckQuota.id == SpotCheckDraw.quota_id)
            .where(SpotCheckDraw.period_start > day - timedelta(days=7), SpotCheckDraw.period_start <= day)
            .order_by(SpotCheckDraw.period_start, SpotCheckDraw.id)
        )
        if draw.period_start == day or period is QuotaPeriod.WEEK
    ]
    inspected = dict(
        session.execute(
            select(Inspection.draw_id, func.count(func.distinct(Inspection.school_id)))
            .where(
                Inspection.draw_id.in_([d.id for d, _, _ in draws]),
                Inspection.signed_at.is_not(None),
                Inspection.signed_at < end,
            )
            .group_by(Inspection.draw_id)
        )
        .tuples()
        .all()
    )
    return SpotChecks(
        started=sum(1 for row in inspections if start <= row[0].started_at < end),
        signed=len(signed),
        findings=found_total,
        abnormal=found_abnormal,
        signed_list=[
            InspectionSigned(
                id=i.id,
                school_code=code,
                school_name=name,
                method=i.method.value,
                signed_name=i.signed_name or "",
                signed_at=i.signed_at,
                findings=per_inspection.get(i.id, (0, 0))[0],
                abnormal=per_inspection.get(i.id, (0, 0))[1],
            )
            for i, code, name in signed
            if i.signed_at is not None
        ],
        draws=[
            DrawListed(
                draw_id=d.id,
                quota_name=quota_name,
                period=period,
                period_start=d.period_start,
                schools=[str(s) for s in d.schools],
                inspected=inspected.get(d.id, 0),
            )
            for d, quota_name, period in draws
        ],
    )


def _incidents(session: Session, start: datetime, end: datetime) -> Incidents:
    rows = session.execute(
        select(Incident, School.code, School.name)
        .join(School, School.id == Incident.school_id)
        .where(in_report_of(start, end))
        .order_by(Incident.occurred_at, Incident.id)
    ).all()
    majors = [row for row in rows if row[0].severity is Severity.MAJOR]
    clocks: dict[int, list[ClockListed]] = defaultdict(list)
    for clock in session.scalars(
        select(IncidentClock)
        .where(IncidentClock.incident_id.in_([row[0].id for row in majors]))
        .order_by(IncidentClock.incident_id, IncidentClock.deadline, IncidentClock.id)
    ):
        done = clock.done_at
        state: Literal["met", "late", "not_done"] = (
            "not_done" if done is None else "met" if done <= clock.deadline else "late"
        )
        clocks[clock.incident_id].append(
            ClockListed(kind=clock.kind, deadline=clock.deadline, done_at=done, state=state)
        )
    return Incidents(
        total=len(rows),
        major=len(majors),
        majors=[
            IncidentListed(
                id=incident.id,
                title=incident.title,
                school_code=code,
                school_name=name,
                occurred_at=incident.occurred_at,
                status=incident.status,
                clocks=clocks[incident.id],
                clocks_met=all(c.state == "met" for c in clocks[incident.id]),
            )
            for incident, code, name in majors
        ],
    )


def _duty(session: Session, start: datetime, end: datetime) -> list[ShiftListed]:
    shifts = list(
        session.scalars(
            select(DutyShift)
            .where(DutyShift.starts_at < end, DutyShift.ends_at > start)
            .order_by(DutyShift.starts_at, DutyShift.id)
        )
    )
    officers: dict[int, list[int]] = defaultdict(list)
    for row in session.scalars(
        select(DutyShiftOfficer)
        .where(DutyShiftOfficer.shift_id.in_([s.id for s in shifts]))
        .order_by(DutyShiftOfficer.shift_id, DutyShiftOfficer.position, DutyShiftOfficer.user_id)
    ):
        officers[row.shift_id].append(row.user_id)
    return [
        ShiftListed(
            shift_id=s.id,
            label=s.label,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            leader_id=s.leader_id,
            officer_ids=officers[s.id],
        )
        for s in shifts
    ]


def user_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """Display names (or usernames) of users, read from the ``users`` table by its column names."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = session.execute(
        select(_users.c.id, _users.c.display_name, _users.c.username).where(_users.c.id.in_(wanted))
    )
    return {int(uid): str(display or username) for uid, display, username in rows}


def report_urls(day: date) -> dict[str, str]:
    """Where the API serves the report of ``day``."""
    base = f"/api/reports/{day.isoformat()}"
    return {"url": base, "pdf_url": f"{base}.pdf", "csv_url": f"{base}.csv"}


def generate_report(
    session: Session,
    day: date,
    facts: FleetFacts,
    *,
    timezone: ZoneInfo = SHANGHAI,
    bureau_name: str = DEFAULT_BUREAU_NAME,
    now: datetime,
    replace: bool = False,
) -> DailyReport:
    """Make (or with ``replace``, make again) the report of the finished local day ``day``; announces
    ``report.daily`` on the duty topic (published after the caller's commit)."""
    end = local_day_bounds(day, timezone)[1]
    if now < end:
        raise PatrolError(
            f"the day {day.isoformat()} is not over yet: it ends at {end.astimezone(timezone).isoformat()}"
        )
    report = session.scalars(select(DailyReport).where(DailyReport.day == day)).first()
    if report is not None and not replace:
        raise PatrolConflictError(
            f"the report of {day.isoformat()} was already generated at {report.generated_at.isoformat()}"
        )
    figures = daily_figures(session, day, facts, timezone=timezone)
    names = user_names(session, figures.user_ids())
    pdf = render_pdf(figures, bureau_name=bureau_name, generated_at=now, names=names)
    replaced = report is not None
    if report is None:
        report = DailyReport(day=day)
        session.add(report)
    report.zero = figures.zero
    report.figures = figures.model_dump(mode="json")
    report.pdf = pdf
    report.csv = render_csv(figures, names)
    report.generated_at = now
    payload: dict[str, JsonValue] = {"day": day.isoformat(), "replaced": replaced, **key_figures(figures)}
    announce(session, duty_event("report.daily", {**payload, **report_urls(day)}))
    report.published_at = now
    session.flush()
    log.info("daily report of %s generated (zero: %s, reasons: %s)", day, figures.zero, figures.reasons)
    return report


def generate_due(
    session: Session,
    now: datetime,
    facts: FleetFacts,
    *,
    config: ReportConfig,
    timezone: ZoneInfo = SHANGHAI,
    bureau_name: str = DEFAULT_BUREAU_NAME,
) -> DailyReport | None:
    """Make the reports that are due at ``now`` and missing (see the module docstring); returns the newest one
    made, or None when nothing was due (idempotent)."""
    if not config.enabled:
        return None
    local = now.astimezone(timezone)
    due = local.date() - timedelta(days=1 if local.time() >= config.at else 2)
    newest = session.scalar(select(func.max(DailyReport.day)))
    if newest is None:  # a fresh installation: today's report only, once it is due
        first = due if local.time() >= config.at else due + timedelta(days=1)
    else:
        first = max(newest + timedelta(days=1), due - timedelta(days=CATCH_UP_DAYS - 1))
    made: DailyReport | None = None
    day = first
    while day <= due:
        made = generate_report(session, day, facts, timezone=timezone, bureau_name=bureau_name, now=now)
        day += timedelta(days=1)
    return made
