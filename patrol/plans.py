"""Patrol plans (定时定点巡查): a camera set checked on some days inside a local time window, and the patrol
tasks the plans become.

A plan runs on school days (the school calendar: terms, holidays, make-up days), on every day, or on a list of
weekdays, from a local ``start`` to a local ``end``; an ``end`` before the ``start`` runs past midnight, and that
window belongs to the day it starts on (the day rule is judged on that day). Each window becomes one
:class:`~patrol.tables.PatrolTask` for the shift on duty when it opens, with one item per camera of the set as
it resolves when the task is created. Changing a plan's camera set rebuilds the cameras of its tasks not open
yet; tasks already open keep theirs. A task is done when every camera has a verdict and missed when its window
ends first (:func:`mark_missed`).

Local times are in the timezone of the calendar handed in: build it with :func:`plan_calendar`, which takes
the school days from the school calendar and the zone from ``instance.timezone``. Where a zone has
daylight-saving changes, a window is the shortest span that holds every instant whose local clock reading falls
inside it: a start the clock shows twice (autumn overlap) means its first occurrence, an end shown twice its
second, and a time the clock skips (spring gap) means the instant the clock jumps. A window wholly inside a
gap does not happen that day.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from config.rules import WEEKDAYS, CalendarConfig, Weekday
from kernel.announce import announce
from kernel.calendar import SchoolCalendar
from patrol.camera_sets import CameraRef, CameraSet, camera_set_from_json, resolve, unknown_codes
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.models import DayRule, TaskStatus
from patrol.roster import assign_unopened_tasks, shift_at
from patrol.tables import PatrolPlan, PatrolTask, PatrolTaskItem
from patrol.topics import duty_event

log = logging.getLogger(__name__)

NEXT_WINDOW_HORIZON_DAYS = 400
"""How far ahead :func:`next_window` looks (a school-day plan may wait out a long holiday)."""


class PlanSpec(BaseModel):
    """What an administrator sets on a patrol plan."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, description="Unique name, e.g. 上学时段校门巡查")
    description: str = Field("", max_length=500, description="What the officers check and why")
    camera_set: CameraSet = Field(description="The cameras checked (districts, schools, scenes, tags, a list)")
    day_rule: DayRule = Field(description="school_days (school calendar), every_day, or weekdays (the list)")
    weekdays: tuple[Weekday, ...] = Field(
        (), max_length=7, description="With day_rule weekdays: the days the window starts on, e.g. mon"
    )
    start: time = Field(description="Local time the window opens, e.g. 07:00")
    end: time = Field(description="Local time it closes, e.g. 08:00; before start: the next day (past midnight)")
    enabled: bool = Field(True, description="Disabled plans create no tasks")

    @field_validator("name", "description")
    @classmethod
    def _stripped(cls, value: str) -> str:
        return value.strip()

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        if not value:
            raise ValueError("a patrol plan needs a name")
        return value

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError(f"{value.isoformat()} has a UTC offset: give the local time of day, e.g. 07:00")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.start == self.end:
            raise ValueError(f"start and end are both {self.start.isoformat()}: a window needs a length")
        if self.day_rule is DayRule.WEEKDAYS and not self.weekdays:
            raise ValueError("day_rule weekdays needs at least one weekday, e.g. ['mon', 'wed']")
        if self.day_rule is not DayRule.WEEKDAYS and self.weekdays:
            raise ValueError(f"weekdays are given only with day_rule weekdays, not {self.day_rule.value}")
        if len(set(self.weekdays)) != len(self.weekdays):
            raise ValueError("each weekday is listed once")
        return self

    @property
    def past_midnight(self) -> bool:
        """Whether the window ends on the next day."""
        return self.end < self.start


def plan_calendar(calendar: CalendarConfig, timezone: str) -> SchoolCalendar:
    """The calendar of patrol plans: the school days of ``calendar`` (``analytics.calendar``), the local times
    of ``timezone`` (``instance.timezone``, the one zone of local times)."""
    if calendar.timezone == timezone:
        return SchoolCalendar(calendar)
    return SchoolCalendar(calendar.model_copy(update={"timezone": timezone}))


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a plan runs (the part of a plan :func:`window_on` needs)."""

    day_rule: DayRule
    weekdays: frozenset[str]
    start: time
    end: time

    @classmethod
    def of(cls, plan: PatrolPlan | PlanSpec) -> Schedule:
        """The schedule of a stored plan or a spec."""
        return cls(plan.day_rule, frozenset(str(d) for d in plan.weekdays), plan.start, plan.end)


@dataclass(frozen=True, slots=True)
class Window:
    """One window of a plan: the local day it opens on and its aware UTC start and end."""

    day: date
    start: datetime
    end: datetime


def local_instant(local: datetime, zone: ZoneInfo, *, last: bool = False) -> datetime:
    """The aware UTC instant of the naive local time ``local`` in ``zone``.

    A time the clock shows twice is its first occurrence (``last``: its second); a time the clock skips is the
    instant of the jump (see the module docstring).
    """
    occurrences = set()
    for fold in (0, 1):
        utc = local.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if utc.astimezone(zone).replace(tzinfo=None) == local:
            occurrences.add(utc)
    if occurrences:
        return max(occurrences) if last else min(occurrences)
    # In a gap both folds give instants, one before the jump and one after it: bisect to the jump (seconds).
    guesses = sorted(local.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
    after = guesses[1].astimezone(zone).utcoffset()
    low, high = int(guesses[0].timestamp()), int(guesses[1].timestamp())
    while high - low > 1:
        mid = (low + high) // 2
        if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == after:
            high = mid
        else:
            low = mid
    return datetime.fromtimestamp(high, UTC)


def runs_on(schedule: Schedule, day: date, calendar: SchoolCalendar) -> bool:
    """Whether a window of ``schedule`` opens on the local ``day``."""
    if schedule.day_rule is DayRule.EVERY_DAY:
        return True
    if schedule.day_rule is DayRule.WEEKDAYS:
        return WEEKDAYS[day.weekday()] in schedule.weekdays
    return calendar.is_school_day(day)


def window_on(schedule: Schedule, day: date, calendar: SchoolCalendar) -> Window | None:
    """The window of ``schedule`` that opens on the local ``day``, or None if it does not run that day."""
    if not runs_on(schedule, day, calendar):
        return None
    end_day = day + timedelta(days=1) if schedule.end < schedule.start else day
    start = local_instant(datetime.combine(day, schedule.start), calendar.zone)
    end = local_instant(datetime.combine(end_day, schedule.end), calendar.zone, last=True)
    if end <= start:
        return None  # wholly inside a daylight-saving gap: the clock never shows it that day
    return Window(day, start, end)


def windows_between(schedule: Schedule, first: date, last: date, calendar: SchoolCalendar) -> Iterable[Window]:
    """The windows opening on the local days ``first`` to ``last`` (both included)."""
    day = first
    while day <= last:
        window = window_on(schedule, day, calendar)
        if window is not None:
            yield window
        day += timedelta(days=1)


def next_window(
    schedule: Schedule, now: datetime, calendar: SchoolCalendar, *, horizon_days: int = NEXT_WINDOW_HORIZON_DAYS
) -> Window | None:
    """The window open at ``now``, or else the next one to open (None if none within ``horizon_days``)."""
    today = calendar.local(now).date()
    for window in windows_between(
        schedule, today - timedelta(days=1), today + timedelta(days=horizon_days), calendar
    ):
        if window.end > now:
            return window
    return None


# --- plans -------------------------------------------------------------------------------------------------


def check_camera_set(session: Session, camera_set: CameraSet) -> list[CameraRef]:
    """The cameras of ``camera_set``; unknown codes, or a set matching no enabled camera, are errors."""
    problems = unknown_codes(session, camera_set)
    if problems:
        raise PatrolError("the camera set names codes the registry does not know: " + "; ".join(problems))
    cameras = resolve(session, camera_set)
    if not cameras:
        raise PatrolError(f"the camera set ({camera_set.describe()}) matches no enabled camera")
    return cameras


def get_plan(session: Session, plan_id: int) -> PatrolPlan:
    """The plan ``plan_id``."""
    plan = session.get(PatrolPlan, plan_id)
    if plan is None:
        raise PatrolNotFoundError(f"no patrol plan with id {plan_id}")
    return plan


def plan_spec(plan: PatrolPlan) -> PlanSpec:
    """A stored plan as the spec it was saved from."""
    return PlanSpec(
        name=plan.name,
        description=plan.description,
        camera_set=camera_set_from_json(plan.selector),
        day_rule=plan.day_rule,
        weekdays=tuple(plan.weekdays),
        start=plan.start,
        end=plan.end,
        enabled=plan.enabled,
    )


def _check_name(session: Session, name: str, plan_id: int | None) -> None:
    other = session.scalar(select(PatrolPlan.id).where(PatrolPlan.name == name))
    if other is not None and other != plan_id:
        raise PatrolConflictError(f"a patrol plan named {name!r} exists already (id {other})")


def _apply(plan: PatrolPlan, spec: PlanSpec, now: datetime) -> None:
    plan.name = spec.name
    plan.description = spec.description
    plan.selector = spec.camera_set.model_dump(mode="json")
    plan.day_rule = spec.day_rule
    plan.weekdays = [d for d in WEEKDAYS if d in spec.weekdays]
    plan.start = spec.start
    plan.end = spec.end
    plan.enabled = spec.enabled
    plan.updated_at = now


def create_plan(session: Session, spec: PlanSpec, *, now: datetime) -> PatrolPlan:
    """Store a new plan after checking its camera set; its tasks come from :func:`create_due_tasks`."""
    _check_name(session, spec.name, None)
    check_camera_set(session, spec.camera_set)
    plan = PatrolPlan(created_at=now)
    _apply(plan, spec, now)
    session.add(plan)
    session.flush()
    return plan


@dataclass(frozen=True, slots=True)
class PlanUpdate:
    """What :func:`update_plan` did."""

    plan: PatrolPlan
    withdrawn: int
    """Unopened tasks deleted: the plan no longer has their window (:func:`create_due_tasks` makes the new)."""
    rebuilt: int
    """Unopened tasks kept whose cameras were replaced by the new camera set's."""


def update_plan(
    session: Session, plan_id: int, spec: PlanSpec, *, now: datetime, calendar: SchoolCalendar
) -> PlanUpdate:
    """Replace a plan's settings. The camera set is checked as in :func:`create_plan` unless the plan is saved
    disabled.

    Tasks whose window has opened stay as they are. A task not open yet is withdrawn when the plan no longer
    has its window (disabled, other days or times); :func:`create_due_tasks` then creates the new one. When
    the camera set changed, the unopened tasks kept get the cameras it resolves to now.
    """
    plan = get_plan(session, plan_id)
    _check_name(session, spec.name, plan.id)
    cameras = check_camera_set(session, spec.camera_set) if spec.enabled else []
    try:
        set_changed = camera_set_from_json(plan.selector) != spec.camera_set
    except PatrolError:  # a stored set that no longer parses is replaced
        set_changed = True
    _apply(plan, spec, now)
    schedule = Schedule.of(spec)
    unopened = session.scalars(
        select(PatrolTask).where(
            PatrolTask.plan_id == plan.id,
            PatrolTask.status == TaskStatus.PENDING,
            PatrolTask.window_start > now,
        )
    ).all()
    withdrawn, kept = [], []
    for task in unopened:
        window = window_on(schedule, task.day, calendar) if spec.enabled else None
        if window is None or (window.start, window.end) != (task.window_start, task.window_end):
            withdrawn.append(task.id)
        else:
            kept.append(task.id)
    _delete_tasks(session, withdrawn)
    rebuilt = kept if set_changed else []
    if rebuilt:
        # Unopened tasks have no verdicts yet: their cameras are simply listed anew.
        session.execute(delete(PatrolTaskItem).where(PatrolTaskItem.task_id.in_(rebuilt)))
        _insert_items(session, rebuilt, cameras)
        log.info("patrol plan %s: camera set changed, %d unopened task(s) rebuilt", plan.id, len(rebuilt))
    session.flush()
    return PlanUpdate(plan, len(withdrawn), len(rebuilt))


def delete_plan(session: Session, plan_id: int, *, now: datetime) -> None:
    """Delete a plan and its tasks not open yet; a plan with tasks already open is kept (disable it)."""
    plan = get_plan(session, plan_id)
    opened = session.scalar(
        select(func.count(PatrolTask.id)).where(PatrolTask.plan_id == plan.id, PatrolTask.window_start <= now)
    )
    if opened:
        raise PatrolConflictError(
            f"patrol plan {plan.id} ({plan.name}) has {opened} task(s) whose window has opened: "
            "disable the plan instead, so that their record is kept"
        )
    _delete_tasks(session, list(session.scalars(select(PatrolTask.id).where(PatrolTask.plan_id == plan.id))))
    session.delete(plan)
    session.flush()


def _delete_tasks(session: Session, task_ids: Sequence[int]) -> None:
    if not task_ids:
        return
    session.execute(delete(PatrolTaskItem).where(PatrolTaskItem.task_id.in_(task_ids)))
    session.execute(delete(PatrolTask).where(PatrolTask.id.in_(task_ids)))


# --- tasks -------------------------------------------------------------------------------------------------


def task_progress(session: Session, task_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """``{task id: (cameras with a verdict, cameras)}`` of the given tasks."""
    if not task_ids:
        return {}
    rows = session.execute(
        select(PatrolTaskItem.task_id, func.count(PatrolTaskItem.verdict), func.count(PatrolTaskItem.id))
        .where(PatrolTaskItem.task_id.in_(task_ids))
        .group_by(PatrolTaskItem.task_id)
    ).all()
    return {task_id: (int(done), int(total)) for task_id, done, total in rows}


def create_due_tasks(session: Session, now: datetime, *, ahead: timedelta, calendar: SchoolCalendar) -> int:
    """Create the tasks of every enabled plan's windows that open before ``now + ahead`` and have not ended.

    One task a plan and day (so calling again does nothing new), for the shift on duty when the window opens
    (none if nobody is rostered then: rostering a shift before the window opens gives it the task, and this
    fills any unopened task still without one), with one item per camera the plan's set resolves to now.
    Returns the tasks created plus the shifts filled.
    """
    filled = assign_unopened_tasks(session, now)  # created while nobody was rostered, rostered since
    plans = session.scalars(select(PatrolPlan).where(PatrolPlan.enabled.is_(True)).order_by(PatrolPlan.id)).all()
    if not plans:
        return filled
    first_day = calendar.local(now).date() - timedelta(days=1)  # a window past midnight may still be open
    last_day = calendar.local(now + ahead).date()
    due: dict[int, list[Window]] = {}
    for plan in plans:
        for window in windows_between(Schedule.of(plan), first_day, last_day, calendar):
            if window.start < now + ahead and window.end > now:
                due.setdefault(plan.id, []).append(window)
    if not due:
        return filled
    existing = set(
        session.execute(
            select(PatrolTask.plan_id, PatrolTask.day).where(
                PatrolTask.plan_id.in_(list(due)), PatrolTask.day >= first_day, PatrolTask.day <= last_day
            )
        )
        .tuples()
        .all()
    )
    created = 0
    for plan in plans:
        windows = [w for w in due.get(plan.id, []) if (plan.id, w.day) not in existing]
        if not windows:
            continue
        try:
            camera_set = camera_set_from_json(plan.selector)
        except PatrolError as err:  # one broken plan must not stop the others' tasks
            log.error("patrol plan %s (%s): no task created: %s", plan.id, plan.name, err)
            continue
        cameras = resolve(session, camera_set)
        if not cameras:
            log.warning("patrol plan %s (%s) matches no enabled camera: no task created", plan.id, plan.name)
            continue
        for window in windows:
            _create_task(session, plan, window, cameras, now)
            created += 1
    return created + filled


def _insert_items(session: Session, task_ids: Sequence[int], cameras: Sequence[CameraRef]) -> None:
    rows = [
        {"task_id": task_id, "camera_id": c.id, "position": n, "note": ""}
        for task_id in task_ids
        for n, c in enumerate(cameras)
    ]
    if rows:  # one executemany for all of them (a bureau-wide plan has thousands of cameras)
        session.execute(insert(PatrolTaskItem), rows)


def _create_task(
    session: Session, plan: PatrolPlan, window: Window, cameras: Sequence[CameraRef], now: datetime
) -> PatrolTask:
    shift = shift_at(session, window.start)
    task = PatrolTask(
        plan_id=plan.id,
        day=window.day,
        window_start=window.start,
        window_end=window.end,
        shift_id=shift.id if shift is not None else None,
        status=TaskStatus.PENDING,
        created_at=now,
    )
    session.add(task)
    session.flush()
    _insert_items(session, [task.id], cameras)
    log.info(
        "patrol task %s: plan %s, %s, %d cameras, shift %s",
        task.id,
        plan.name,
        window.day,
        len(cameras),
        task.shift_id,
    )
    return task


def mark_missed(session: Session, now: datetime) -> int:
    """Mark pending tasks whose window has ended missed and announce ``task.missed`` on the duty topic.

    The change is one conditional UPDATE: a task whose last verdict completed it a moment before (another
    transaction) is no longer pending and is left alone; only the tasks the database marked are announced.
    """
    marked = session.execute(
        update(PatrolTask)
        .where(PatrolTask.status == TaskStatus.PENDING, PatrolTask.window_end <= now)
        .values(status=TaskStatus.MISSED, missed_at=now)
        .returning(
            PatrolTask.id,
            PatrolTask.plan_id,
            PatrolTask.day,
            PatrolTask.window_start,
            PatrolTask.window_end,
            PatrolTask.shift_id,
        )
        .execution_options(synchronize_session="fetch")
    ).all()
    if not marked:
        return 0
    rows = sorted(marked, key=lambda r: (r.window_end, r.id))
    plan_ids = {r.plan_id for r in rows}
    names = dict(
        session.execute(select(PatrolPlan.id, PatrolPlan.name).where(PatrolPlan.id.in_(plan_ids))).tuples().all()
    )
    progress = task_progress(session, [r.id for r in rows])
    for row in rows:
        done, total = progress.get(row.id, (0, 0))
        plan_name = names.get(row.plan_id, "")
        announce(
            session,
            duty_event(
                "task.missed",
                {
                    "task_id": row.id,
                    "plan_id": row.plan_id,
                    "plan_name": plan_name,
                    "day": row.day.isoformat(),
                    "window_start": row.window_start.isoformat(),
                    "window_end": row.window_end.isoformat(),
                    "shift_id": row.shift_id,
                    "cameras_done": done,
                    "cameras_total": total,
                },
            ),
        )
        log.info(
            "patrol task %s (%s, %s) missed: %d of %d cameras checked", row.id, plan_name, row.day, done, total
        )
    return len(rows)
