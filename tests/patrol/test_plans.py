"""Patrol plans and their tasks: day rules, windows past midnight, shifts at the window's start, verdicts only
inside the window, done and missed tasks, hazards from abnormal verdicts, cameras fixed at creation, DST."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from config.patrol import HazardConfig
from config.rules import CalendarConfig, DateRange
from kernel.announce import take_announced
from kernel.calendar import SchoolCalendar
from kernel.db import session_scope
from patrol.camera_sets import CameraSet
from patrol.errors import PatrolConflictError, PatrolError
from patrol.hazards import HazardRequest
from patrol.models import DayRule, EvidenceStage, HazardSource, TaskStatus, Verdict
from patrol.plan_tasks import VerdictResult, record_verdict
from patrol.plans import (
    PlanSpec,
    Schedule,
    create_due_tasks,
    create_plan,
    delete_plan,
    local_instant,
    mark_missed,
    next_window,
    plan_calendar,
    update_plan,
    window_on,
)
from patrol.tables import (
    DutyShift,
    DutyShiftOfficer,
    Hazard,
    HazardEvidence,
    PatrolPlan,
    PatrolTask,
    PatrolTaskItem,
)
from registry.models import Camera, SceneType
from tests.bureau import Bureau

SH = ZoneInfo("Asia/Shanghai")
NY = ZoneInfo("America/New_York")
# Autumn term; Thursday 3 December a holiday; Saturday 5 December a make-up school day (调休).
HOLIDAY = date(2026, 12, 3)
MAKE_UP_SATURDAY = date(2026, 12, 5)
CALENDAR = SchoolCalendar(
    CalendarConfig(
        terms=(DateRange(start=date(2026, 9, 1), end=date(2027, 1, 22), name="autumn term"),),
        holidays=(DateRange(start=HOLIDAY, end=HOLIDAY, name="校庆"),),
        make_up_days=(MAKE_UP_SATURDAY,),
    )
)
AHEAD = timedelta(hours=36)
GATES_D1 = CameraSet(districts=("D1",), scene_types=(SceneType.GATE,))
TWO_CAMERAS = CameraSet(cameras=("S11-GATE", "S12-GATE"))
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo = SH) -> datetime:
    """The aware UTC instant of a local time."""
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


def spec(
    name: str = "gates",
    camera_set: CameraSet = GATES_D1,
    day_rule: DayRule = DayRule.EVERY_DAY,
    start: time = time(7),
    end: time = time(8),
    **more: Any,
) -> PlanSpec:
    return PlanSpec(name=name, camera_set=camera_set, day_rule=day_rule, start=start, end=end, **more)


@pytest.fixture
def session(bureau: Bureau) -> Iterator[Session]:
    with bureau.factory() as s:
        yield s


def plan(session: Session, *args: Any, **kwargs: Any) -> PatrolPlan:
    return create_plan(session, spec(*args, **kwargs), now=at(date(2026, 11, 30), 9))


def tasks_of(session: Session, plan_id: int) -> list[PatrolTask]:
    return list(
        session.scalars(select(PatrolTask).where(PatrolTask.plan_id == plan_id).order_by(PatrolTask.window_start))
    )


def item_count(session: Session, task_id: int) -> int:
    return session.scalar(select(func.count(PatrolTaskItem.id)).where(PatrolTaskItem.task_id == task_id)) or 0


def add_shift(session: Session, bureau: Bureau, start: datetime, end: datetime, label: str) -> DutyShift:
    shift = DutyShift(
        label=label, starts_at=start, ends_at=end, leader_id=bureau.users["leader1"], created_at=start
    )
    session.add(shift)
    session.flush()
    session.add(DutyShiftOfficer(shift_id=shift.id, user_id=bureau.users["officer1"], position=0))
    session.flush()
    return shift


def verdict(
    session: Session,
    bureau: Bureau,
    task: PatrolTask,
    code: str,
    now: datetime,
    value: Verdict = Verdict.NORMAL,
    **kwargs: Any,
) -> VerdictResult:
    kwargs.setdefault("note", "")
    kwargs.setdefault("snapshot", None)
    return record_verdict(
        session,
        task.id,
        code,
        value,
        by_user=bureau.users["officer1"],
        now=now,
        zone=SH,
        hazard_config=HazardConfig(),
        **kwargs,
    )


# --- the plan ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"start": time(7), "end": time(7)}, "a window needs a length"),
        ({"day_rule": DayRule.WEEKDAYS}, "needs at least one weekday"),
        ({"weekdays": ("mon",)}, "only with day_rule weekdays"),
        ({"day_rule": DayRule.WEEKDAYS, "weekdays": ("mon", "mon")}, "each weekday is listed once"),
        ({"start": time(7, tzinfo=UTC)}, "has a UTC offset"),
        ({"name": "   "}, "needs a name"),
    ],
)
def test_plan_settings_are_validated(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        spec(**changes)


def test_camera_set_and_name_are_checked(session: Session) -> None:
    with pytest.raises(PatrolError, match=r"unknown district 'D9'.*unknown camera 'NOPE'"):
        plan(session, camera_set=CameraSet(districts=("D9",), cameras=("NOPE",)))
    with pytest.raises(PatrolError, match="matches no enabled camera"):
        plan(session, camera_set=CameraSet(schools=("S11",), scene_types=(SceneType.CANTEEN,)))
    plan(session, name="gates")
    with pytest.raises(PatrolConflictError, match="named 'gates' exists already"):
        plan(session, name="gates")
    assert session.scalar(select(func.count(PatrolPlan.id))) == 1


# --- windows and days ---------------------------------------------------------------------------------------


def test_school_days_skip_a_holiday_and_include_a_make_up_saturday(session: Session) -> None:
    school = plan(session, day_rule=DayRule.SCHOOL_DAYS)
    weekly = plan(session, name="mon-wed", day_rule=DayRule.WEEKDAYS, weekdays=("mon", "wed"))
    now = at(date(2026, 12, 1), 10)  # Tuesday, after today's 07:00-08:00 window
    create_due_tasks(session, now, ahead=timedelta(days=6), calendar=CALENDAR)
    assert [t.day for t in tasks_of(session, school.id)] == [
        date(2026, 12, 2),
        date(2026, 12, 4),  # Thursday 3rd: holiday
        MAKE_UP_SATURDAY,  # Sunday 6th: no school
        date(2026, 12, 7),
    ]
    assert [t.day for t in tasks_of(session, weekly.id)] == [date(2026, 12, 2), date(2026, 12, 7)]
    first = tasks_of(session, school.id)[0]
    assert (first.window_start, first.window_end) == (at(date(2026, 12, 2), 7), at(date(2026, 12, 2), 8))
    # Outside the term there are no school days.
    assert window_on(Schedule.of(school), date(2027, 2, 1), CALENDAR) is None


def test_an_evening_window(session: Session) -> None:
    evening = plan(session, name="dorm corridors", start=time(22), end=time(22, 30))
    now = at(date(2026, 12, 1), 10)
    assert create_due_tasks(session, now, ahead=timedelta(hours=13), calendar=CALENDAR) == 1
    [task] = tasks_of(session, evening.id)
    assert task.day == date(2026, 12, 1)
    assert task.window_start == datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert task.window_end == datetime(2026, 12, 1, 14, 30, tzinfo=UTC)
    assert task.status is TaskStatus.PENDING and task.shift_id is None
    assert item_count(session, task.id) == 3


def test_a_window_past_midnight_belongs_to_the_day_it_starts_on(session: Session) -> None:
    night = plan(session, name="night", day_rule=DayRule.SCHOOL_DAYS, start=time(23, 30), end=time(0, 30))
    friday, saturday = date(2026, 12, 11), date(2026, 12, 12)
    # Just after midnight: Friday's window is still open and is Friday's task, ending on Saturday.
    now = at(saturday, 0, 10)
    assert create_due_tasks(session, now, ahead=timedelta(hours=48), calendar=CALENDAR) == 1
    [task] = tasks_of(session, night.id)
    assert task.day == friday
    assert (task.window_start, task.window_end) == (at(friday, 23, 30), at(saturday, 0, 30))
    # Sunday's window would end on Monday, a school day; the rule is judged on Sunday, so there is none.
    assert window_on(Schedule.of(night), date(2026, 12, 13), CALENDAR) is None
    sunday_night = window_on(Schedule.of(night), date(2026, 12, 14), CALENDAR)
    assert sunday_night is not None and sunday_night.end == at(date(2026, 12, 15), 0, 30)
    # A window that has ended is not created any more.
    late = plan(session, name="night too", start=time(23, 30), end=time(0, 30))
    assert create_due_tasks(session, at(saturday, 0, 40), ahead=timedelta(hours=1), calendar=CALENDAR) == 0
    assert tasks_of(session, late.id) == []
    assert next_window(Schedule.of(late), at(saturday, 0, 40), CALENDAR) is not None


def test_creating_tasks_is_idempotent(session: Session) -> None:
    gates = plan(session)
    now = at(date(2026, 12, 1), 6)
    assert create_due_tasks(session, now, ahead=AHEAD, calendar=CALENDAR) == 2  # today and tomorrow 07:00
    assert create_due_tasks(session, now, ahead=AHEAD, calendar=CALENDAR) == 0
    later = now + timedelta(minutes=90)  # today's window is open, tomorrow's not yet
    assert create_due_tasks(session, later, ahead=AHEAD, calendar=CALENDAR) == 0
    assert [t.day for t in tasks_of(session, gates.id)] == [date(2026, 12, 1), date(2026, 12, 2)]
    assert session.scalar(select(func.count(PatrolTaskItem.id))) == 6
    disabled = plan(session, name="off", enabled=False)
    assert create_due_tasks(session, later, ahead=AHEAD, calendar=CALENDAR) == 0
    assert tasks_of(session, disabled.id) == []


def test_items_are_inserted_in_bulk(session: Session) -> None:
    """One statement inserts a task's items, however many cameras it has."""
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    engine = session.get_bind()
    now = at(date(2026, 12, 1), 6)
    counts = []
    event.listen(engine, "before_cursor_execute", count)
    try:
        for name, camera_set, cameras in (
            ("one", CameraSet(cameras=("S11-GATE",)), 1),
            ("fleet", CameraSet(), 24),
        ):
            created = plan(session, name=name, camera_set=camera_set, start=time(6, 30), end=time(6, 45))
            session.flush()
            statements.clear()
            create_due_tasks(session, now, ahead=timedelta(hours=1), calendar=CALENDAR)
            session.flush()
            counts.append(sum("patrol_task_items" in x for x in statements))
            [task] = tasks_of(session, created.id)
            assert item_count(session, task.id) == cameras
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert counts == [1, 1], counts  # one INSERT of the items, for 1 camera as for 24


def test_a_plan_whose_stored_camera_set_is_broken_does_not_stop_the_others(session: Session) -> None:
    broken = plan(session, name="broken")
    fine = plan(session, name="fine")
    broken.selector = {"districts": "not a list", "colour": "red"}
    session.flush()
    assert create_due_tasks(session, at(date(2026, 12, 1), 6), ahead=AHEAD, calendar=CALENDAR) == 2
    assert tasks_of(session, broken.id) == [] and len(tasks_of(session, fine.id)) == 2


# --- shifts ---------------------------------------------------------------------------------------------------


def test_tasks_go_to_the_shift_on_duty_when_the_window_opens(session: Session, bureau: Bureau) -> None:
    day, next_day = date(2026, 12, 1), date(2026, 12, 2)
    day_shift = add_shift(session, bureau, at(day, 8), at(day, 20), "day")
    evening = add_shift(session, bureau, at(day, 20), at(next_day, 0), "evening")
    night = add_shift(session, bureau, at(next_day, 0), at(next_day, 8), "night")
    windows = {
        "19:30": (time(19, 30), time(20, 30), day_shift.id),  # spans the 20:00 change: the day shift's
        "20:00": (time(20), time(20, 30), evening.id),  # opens at the change: the new shift's
        "23:30": (time(23, 30), time(0, 30), evening.id),  # past midnight, opens before it
        "00:00": (time(0), time(0, 30), night.id),  # opens at midnight: the night shift's
    }
    plans = {label: plan(session, name=label, start=s, end=e) for label, (s, e, _) in windows.items()}
    create_due_tasks(session, at(day, 10), ahead=timedelta(hours=15), calendar=CALENDAR)
    for label, (_, _, shift_id) in windows.items():
        task = next(t for t in tasks_of(session, plans[label].id) if t.window_start > at(day, 10))
        assert task.shift_id == shift_id, label
    [midnight] = [t for t in tasks_of(session, plans["00:00"].id) if t.window_start > at(day, 10)]
    assert midnight.day == next_day


def test_a_shift_rostered_later_is_filled_in_until_the_window_opens(session: Session, bureau: Bureau) -> None:
    day = date(2026, 12, 1)
    evening = plan(session, name="evening", start=time(22), end=time(22, 30))
    morning = plan(session, name="morning", start=time(10, 30), end=time(11))
    now = at(day, 10)
    assert create_due_tasks(session, now, ahead=timedelta(hours=13), calendar=CALENDAR) == 2
    [task] = tasks_of(session, evening.id)
    assert task.shift_id is None
    shift = add_shift(session, bureau, at(day, 8), at(day, 23), "long day")
    later = at(day, 10, 40)  # the morning window has opened: its task stays without a shift
    assert create_due_tasks(session, later, ahead=timedelta(hours=13), calendar=CALENDAR) == 1
    assert task.shift_id == shift.id
    assert tasks_of(session, morning.id)[0].shift_id is None
    assert create_due_tasks(session, later, ahead=timedelta(hours=13), calendar=CALENDAR) == 0


# --- verdicts ------------------------------------------------------------------------------------------------


def _evening_task(session: Session, camera_set: CameraSet = TWO_CAMERAS) -> PatrolTask:
    evening = plan(session, name="evening", camera_set=camera_set, start=time(22), end=time(22, 30))
    create_due_tasks(session, at(date(2026, 12, 1), 10), ahead=timedelta(hours=13), calendar=CALENDAR)
    [task] = tasks_of(session, evening.id)
    return task


def test_verdicts_only_inside_the_window(session: Session, bureau: Bureau) -> None:
    task = _evening_task(session)
    day = date(2026, 12, 1)
    with pytest.raises(PatrolConflictError, match=r"not open yet: it opens at 2026-12-01T22:00\+08:00"):
        verdict(session, bureau, task, "S11-GATE", at(day, 21, 59))
    result = verdict(session, bureau, task, "S11-GATE", at(day, 22), note="gate shut")
    assert result.item.verdict is Verdict.NORMAL and result.item.note == "gate shut"
    assert result.item.checked_by == bureau.users["officer1"] and not result.completed
    with pytest.raises(PatrolConflictError, match=r"closed \(missed\): its window closed at 2026-12-01T22:30"):
        verdict(session, bureau, task, "S12-GATE", at(day, 22, 30))
    with pytest.raises(PatrolError, match="'S13-GATE' is not one of patrol task"):
        verdict(session, bureau, task, "S13-GATE", at(day, 22, 10))


def test_the_task_is_done_when_every_camera_has_a_verdict(session: Session, bureau: Bureau) -> None:
    task = _evening_task(session)
    day = date(2026, 12, 1)
    verdict(session, bureau, task, "S11-GATE", at(day, 22, 5))
    take_announced(session)
    result = verdict(session, bureau, task, "S12-GATE", at(day, 22, 10), snapshot=JPEG)
    assert result.completed and task.status is TaskStatus.DONE and task.completed_at == at(day, 22, 10)
    [done] = take_announced(session)
    assert done.type == "task.done" and done.payload["cameras_total"] == 2
    # Again inside the window: the verdict is replaced; the task stays done.
    again = verdict(session, bureau, task, "S12-GATE", at(day, 22, 20), Verdict.ABNORMAL, note="light off")
    assert not again.completed and task.status is TaskStatus.DONE and task.completed_at == at(day, 22, 10)
    assert (again.item.verdict, again.item.note, again.item.snapshot_jpeg) == (Verdict.ABNORMAL, "light off", None)
    assert take_announced(session) == []
    assert mark_missed(session, at(day, 23)) == 0
    with pytest.raises(PatrolConflictError, match=r"closed \(done\)"):
        verdict(session, bureau, task, "S12-GATE", at(day, 22, 30))


def test_a_task_not_done_in_its_window_is_missed_and_reported(session: Session, bureau: Bureau) -> None:
    task = _evening_task(session)
    day = date(2026, 12, 1)
    shift = add_shift(session, bureau, at(day, 20), at(day, 23, 59), "evening")
    task.shift_id = shift.id
    verdict(session, bureau, task, "S11-GATE", at(day, 22, 5))
    take_announced(session)
    assert mark_missed(session, at(day, 22, 29)) == 0
    assert mark_missed(session, at(day, 22, 30)) == 1
    assert task.status is TaskStatus.MISSED and task.missed_at == at(day, 22, 30)
    [missed] = take_announced(session)
    assert (missed.topic, missed.type) == ("duty", "task.missed")
    assert missed.payload == {
        "task_id": task.id,
        "plan_id": task.plan_id,
        "plan_name": "evening",
        "day": "2026-12-01",
        "window_start": "2026-12-01T14:00:00+00:00",
        "window_end": "2026-12-01T14:30:00+00:00",
        "shift_id": shift.id,
        "cameras_done": 1,
        "cameras_total": 2,
    }
    assert mark_missed(session, at(day, 22, 31)) == 0
    assert take_announced(session) == []
    with pytest.raises(PatrolConflictError, match="was missed"):
        verdict(session, bureau, task, "S12-GATE", at(day, 22, 31))


def test_a_task_completed_just_before_mark_missed_is_not_marked_missed(bureau: Bureau) -> None:
    """The last verdict commits (10:29:59 in spirit: just before the window closed) between what mark_missed's
    session has read and its update: the task stays done and nothing is announced missed."""
    day = date(2026, 12, 1)
    with session_scope(bureau.factory) as setup:
        task_id = _evening_task(setup).id
        verdict(setup, bureau, setup.get_one(PatrolTask, task_id), "S11-GATE", at(day, 22, 5))
    last_verdict = at(day, 22, 29) + timedelta(seconds=59)
    late = at(day, 22, 30) + timedelta(seconds=1)
    raced: list[str] = []

    def verdict_first(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if raced or not statement.lstrip().upper().startswith("UPDATE PATROL_TASKS"):
            return
        raced.append(statement)  # once: the verdict's own update comes through here too
        with session_scope(bureau.factory) as other:
            done = verdict(other, bureau, other.get_one(PatrolTask, task_id), "S12-GATE", last_verdict)
            assert done.completed

    engine = bureau.factory.kw["bind"]
    with bureau.factory() as session:
        stale = session.get_one(PatrolTask, task_id)  # read while still pending
        assert stale.status is TaskStatus.PENDING
        event.listen(engine, "before_cursor_execute", verdict_first)
        try:
            assert mark_missed(session, late) == 0
        finally:
            event.remove(engine, "before_cursor_execute", verdict_first)
        assert take_announced(session) == []
        session.commit()
    assert raced, "mark_missed updated no task"
    with bureau.factory() as fresh:
        task = fresh.get_one(PatrolTask, task_id)
        assert (task.status, task.completed_at, task.missed_at) == (TaskStatus.DONE, last_verdict, None)


def test_an_abnormal_verdict_opens_a_hazard(session: Session, bureau: Bureau) -> None:
    task = _evening_task(session)
    now = at(date(2026, 12, 1), 22, 5)
    with pytest.raises(PatrolError, match="only an abnormal verdict opens a hazard"):
        verdict(session, bureau, task, "S11-GATE", now, hazard=HazardRequest())
    result = verdict(
        session,
        bureau,
        task,
        "S11-GATE",
        now,
        Verdict.ABNORMAL,
        note="gate left open\nno guard",
        snapshot=JPEG,
        hazard=HazardRequest(),
    )
    assert result.hazard_opened and result.item.hazard_id == result.hazard_id
    hazard = session.get(Hazard, result.hazard_id)
    assert hazard is not None
    assert (hazard.source, hazard.source_id, hazard.title) == (
        HazardSource.PATROL,
        result.item.id,
        "gate left open",
    )
    assert (hazard.camera_id, hazard.school_id) == (bureau.cameras["S11-GATE"], bureau.schools["S11"])
    [evidence] = session.scalars(select(HazardEvidence).where(HazardEvidence.hazard_id == hazard.id))
    assert (evidence.stage, evidence.data) == (EvidenceStage.BEFORE, JPEG)
    assert [e.type for e in take_announced(session)] == ["hazard.created"]
    # Recorded again: the camera keeps its hazard, no second one.
    again = verdict(
        session, bureau, task, "S11-GATE", now, Verdict.ABNORMAL, hazard=HazardRequest(title="still open")
    )
    assert not again.hazard_opened and again.hazard_id == hazard.id
    assert session.scalar(select(func.count(Hazard.id))) == 1


def test_bad_snapshots_and_notes_are_refused(session: Session, bureau: Bureau) -> None:
    task = _evening_task(session)
    now = at(date(2026, 12, 1), 22, 5)
    with pytest.raises(PatrolError, match="a PNG picture: send a JPEG"):
        verdict(session, bureau, task, "S11-GATE", now, snapshot=b"\x89PNG\r\n\x1a\n")
    with pytest.raises(PatrolError, match="not a JPEG"):
        verdict(session, bureau, task, "S11-GATE", now, snapshot=b"GIF89a")
    with pytest.raises(PatrolError, match="at most 2000 characters"):
        verdict(session, bureau, task, "S11-GATE", now, note="x" * 2001)


# --- camera-set and plan changes ------------------------------------------------------------------------------


def test_a_camera_set_change_rebuilds_the_unopened_tasks_and_leaves_opened_ones(
    session: Session, bureau: Bureau
) -> None:
    gates = plan(session)
    day = date(2026, 12, 1)
    shift = add_shift(session, bureau, at(day + timedelta(days=1), 6), at(day + timedelta(days=1), 18), "day")
    create_due_tasks(session, at(day, 6), ahead=AHEAD, calendar=CALENDAR)
    before = tasks_of(session, gates.id)
    assert [item_count(session, t.id) for t in before] == [3, 3]
    session.get_one(Camera, bureau.cameras["S11-GATE"]).enabled = False
    all_gates = CameraSet(districts=("D1", "D2"), scene_types=(SceneType.GATE,))
    # 07:30: today's window has opened, tomorrow's not.
    change = update_plan(session, gates.id, spec(camera_set=all_gates), now=at(day, 7, 30), calendar=CALENDAR)
    assert (change.withdrawn, change.rebuilt) == (0, 1)
    after = tasks_of(session, gates.id)
    assert [t.id for t in after] == [t.id for t in before]  # the same tasks, shift and window
    assert after[1].shift_id == shift.id
    assert [item_count(session, t.id) for t in after] == [3, 5]  # six gates, one disabled
    codes = session.scalars(
        select(Camera.code)
        .join(PatrolTaskItem, PatrolTaskItem.camera_id == Camera.id)
        .where(PatrolTaskItem.task_id == after[1].id)
        .order_by(PatrolTaskItem.position)
    ).all()
    assert codes == ["S12-GATE", "S13-GATE", "S21-GATE", "S22-GATE", "S23-GATE"]
    # Saved again with the same set: nothing is rebuilt.
    same = update_plan(session, gates.id, spec(camera_set=all_gates), now=at(day, 7, 40), calendar=CALENDAR)
    assert (same.withdrawn, same.rebuilt) == (0, 0)


def test_a_schedule_change_withdraws_unopened_tasks_it_no_longer_has(session: Session) -> None:
    gates = plan(session)
    day = date(2026, 12, 1)
    create_due_tasks(session, at(day, 6), ahead=AHEAD, calendar=CALENDAR)
    now = at(day, 7, 30)  # today's task has opened, tomorrow's not
    change = update_plan(session, gates.id, spec(start=time(7, 15), end=time(8, 15)), now=now, calendar=CALENDAR)
    assert (change.withdrawn, change.rebuilt) == (1, 0)
    create_due_tasks(session, now, ahead=AHEAD, calendar=CALENDAR)
    tasks = tasks_of(session, gates.id)
    assert [(t.day, t.window_start) for t in tasks] == [
        (day, at(day, 7)),
        (day + timedelta(days=1), at(day + timedelta(days=1), 7, 15)),
    ]
    change = update_plan(
        session, gates.id, spec(start=time(7, 15), end=time(8, 15), enabled=False), now=now, calendar=CALENDAR
    )
    assert change.withdrawn == 1 and len(tasks_of(session, gates.id)) == 1


def test_a_plan_whose_cameras_went_away_can_be_disabled_but_not_enabled(session: Session, bureau: Bureau) -> None:
    listed = plan(session, camera_set=CameraSet(cameras=("S11-GATE",)))
    session.get_one(Camera, bureau.cameras["S11-GATE"]).enabled = False
    now = at(date(2026, 12, 1), 6)
    with pytest.raises(PatrolError, match="matches no enabled camera"):
        update_plan(
            session, listed.id, spec(camera_set=CameraSet(cameras=("S11-GATE",))), now=now, calendar=CALENDAR
        )
    off = spec(camera_set=CameraSet(cameras=("S11-GATE",)), enabled=False)
    assert update_plan(session, listed.id, off, now=now, calendar=CALENDAR).plan.enabled is False


def test_a_plan_with_opened_tasks_is_kept(session: Session) -> None:
    gates = plan(session)
    day = date(2026, 12, 1)
    create_due_tasks(session, at(day, 6), ahead=AHEAD, calendar=CALENDAR)
    with pytest.raises(PatrolConflictError, match="disable the plan instead"):
        delete_plan(session, gates.id, now=at(day, 7))
    unopened = plan(session, name="later", start=time(9), end=time(10))
    create_due_tasks(session, at(day, 6), ahead=AHEAD, calendar=CALENDAR)
    assert tasks_of(session, unopened.id)
    delete_plan(session, unopened.id, now=at(day, 7))
    assert session.get(PatrolPlan, unopened.id) is None
    assert session.scalar(select(func.count(PatrolTask.id)).where(PatrolTask.plan_id == unopened.id)) == 0


# --- daylight saving ---------------------------------------------------------------------------------------------


def test_plan_local_times_are_in_the_instance_timezone_and_school_days_from_the_calendar() -> None:
    calendar = plan_calendar(CALENDAR.config, "America/New_York")
    assert calendar.zone == NY and CALENDAR.zone == SH
    assert not calendar.is_school_day(HOLIDAY) and calendar.is_school_day(MAKE_UP_SATURDAY)
    window = window_on(Schedule(DayRule.SCHOOL_DAYS, frozenset(), time(7), time(8)), MAKE_UP_SATURDAY, calendar)
    assert window is not None and window.start == at(MAKE_UP_SATURDAY, 7, zone=NY)
    assert plan_calendar(CALENDAR.config, "Asia/Shanghai").config is CALENDAR.config


def test_local_times_across_daylight_saving_changes() -> None:
    spring, autumn = date(2026, 3, 8), date(2026, 11, 1)  # New York: 02:00 -> 03:00, and 02:00 -> 01:00
    assert local_instant(datetime(2026, 3, 8, 2, 30), NY) == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)  # the jump
    assert local_instant(datetime(2026, 11, 1, 1, 30), NY) == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    assert local_instant(datetime(2026, 11, 1, 1, 30), NY, last=True) == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert local_instant(datetime(2026, 12, 1, 7, 0), SH) == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    ny = SchoolCalendar(CalendarConfig(timezone="America/New_York"))

    def window(day: date, start: time, end: time) -> tuple[datetime, datetime] | None:
        found = window_on(Schedule(DayRule.EVERY_DAY, frozenset(), start, end), day, ny)
        return None if found is None else (found.start, found.end)

    # Spring: the part of the window the clock shows; a window wholly in the gap does not happen.
    assert window(spring, time(1, 30), time(2, 30)) == (at(spring, 1, 30, NY), datetime(2026, 3, 8, 7, tzinfo=UTC))
    assert window(spring, time(2, 15), time(2, 45)) is None
    # A night across the jump is an hour shorter: 22:00 EST to 06:00 EDT.
    assert window(spring - timedelta(days=1), time(22), time(6)) == (
        datetime(2026, 3, 8, 3, tzinfo=UTC),
        datetime(2026, 3, 8, 10, tzinfo=UTC),
    )
    # Autumn: from the first 01:00 to the second 01:45 (the clock shows 01:00-01:45 twice).
    assert window(autumn, time(1), time(1, 45)) == (
        datetime(2026, 11, 1, 5, tzinfo=UTC),
        datetime(2026, 11, 1, 6, 45, tzinfo=UTC),
    )
    night = window(autumn - timedelta(days=1), time(22), time(6))
    assert night is not None and night[1] - night[0] == timedelta(hours=9)
