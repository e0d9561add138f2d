"""API: patrol plans (定时定点巡查), the patrol tasks they become, and the duty officers' verdicts per camera.

Plans are configured by bureau-scoped administrators (every change audited); a scoped user reads the plans whose
camera set lies within its scope. A scoped user sees the tasks with at least one of its cameras, and of them
only its cameras (items, progress, verdicts, snapshots) — :mod:`web.scopes`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from kernel.calendar import SchoolCalendar
from patrol.camera_sets import CameraRef, camera_set_from_json, load_fleet, resolve, select_cameras
from patrol.hazards import HazardRequest
from patrol.models import Severity, TaskStatus, Verdict
from patrol.plan_tasks import MAX_NOTE_CHARS, get_task, record_verdict
from patrol.plans import (
    PlanSpec,
    Schedule,
    Window,
    create_plan,
    delete_plan,
    get_plan,
    next_window,
    plan_calendar,
    plan_spec,
    task_progress,
    update_plan,
    window_on,
)
from patrol.roster import on_duty
from patrol.tables import PatrolPlan, PatrolTask, PatrolTaskItem
from registry.models import Camera, School
from web.auth import CurrentUser
from web.deps import AppSettings, Clock, DbSession, UnitOfWork
from web.permissions import BureauAdminUser, DutyUser
from web.routers.audit import record_change
from web.routers.tours import covers_set
from web.schemas import Page, UserRef, user_refs
from web.scopes import Scope, ScopeCodes, UserScope, not_found
from web.uploads import latest_thumbnail, read_picture

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["patrol-plans"])

Limit = Annotated[int, Query(ge=1, le=1000, description="Most rows returned")]
Offset = Annotated[int, Query(ge=0, description="Rows skipped")]
SnapshotSource = Literal["uploaded", "thumbnail", "none"]


class PlanCreate(PlanSpec):
    """A new patrol plan, or a plan's new settings (PUT replaces them all)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class WindowPublic(BaseModel):
    """One window of a plan."""

    day: date = Field(description="Local day the window opens on (a window past midnight belongs to it)")
    start: datetime = Field(description="When it opens")
    end: datetime = Field(description="When it closes")


class PlanPublic(PlanSpec):
    """A patrol plan as stored, with what it resolves to now."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(description="Plan id")
    camera_set_description: str = Field(description="The camera set in words")
    camera_count: int = Field(ge=0, description="Enabled cameras the set resolves to now")
    past_midnight_window: bool = Field(description="The window ends on the day after it opens")
    next_window: WindowPublic | None = Field(
        None, description="The window open now, or else the next one (null: disabled, or none within a year)"
    )
    created_at: datetime = Field(description="Created")
    updated_at: datetime = Field(description="Last changed")


class PreviewDay(BaseModel):
    """Whether and when a plan runs on one day."""

    day: date = Field(description="Local day")
    school_day: bool = Field(description="A school day by the school calendar")
    window: WindowPublic | None = Field(None, description="The window opening that day (null: none)")


class PlanPreview(BaseModel):
    """A plan's windows over some days and the cameras a task would get now (nothing is written)."""

    plan_id: int = Field(description="Plan id")
    camera_count: int = Field(ge=0, description="Cameras a task created now would list")
    days: list[PreviewDay] = Field(description="Day by day")


class TaskPublic(BaseModel):
    """A patrol task and how far it is."""

    id: int = Field(description="Task id")
    plan_id: int = Field(description="Plan it comes from")
    plan_name: str = Field(description="Plan name")
    day: date = Field(description="Local day the window opens on")
    window_start: datetime = Field(description="Verdicts from")
    window_end: datetime = Field(description="Verdicts until (then missed unless done)")
    shift_id: int | None = Field(None, description="The shift on duty at the window's start (null: none rostered)")
    status: TaskStatus = Field(description="pending, done or missed")
    created_at: datetime = Field(description="Created")
    completed_at: datetime | None = Field(None, description="Every camera had a verdict")
    missed_at: datetime | None = Field(None, description="Marked missed")
    cameras_done: int = Field(ge=0, description="Cameras with a verdict")
    cameras_total: int = Field(ge=0, description="Cameras of the task")


class TaskItemPublic(BaseModel):
    """One camera of a task and its verdict."""

    position: int = Field(ge=0, description="Order in the task (district, school, camera)")
    camera_code: str = Field(description="Camera code")
    camera_name: str = Field(description="Camera name")
    school_code: str = Field(description="School code")
    school_name: str = Field(description="School name")
    verdict: Verdict | None = Field(None, description="normal or abnormal; null: not checked yet")
    note: str = Field("", description="The officer's note")
    checked_at: datetime | None = Field(None, description="When the verdict was recorded")
    checked_by: UserRef | None = Field(None, description="The officer who recorded the verdict")
    hazard_id: int | None = Field(None, description="Hazard opened from this verdict")
    snapshot_url: str | None = Field(None, description="The snapshot kept as evidence (JPEG)")


class TaskDetail(TaskPublic):
    """A task with every camera."""

    items: list[TaskItemPublic] = Field(description="Cameras in order")


class VerdictPublic(BaseModel):
    """What recording a verdict did."""

    task: TaskPublic = Field(description="The task after the verdict")
    item: TaskItemPublic = Field(description="The camera's verdict")
    snapshot: SnapshotSource = Field(
        description="Evidence kept: the uploaded picture, the camera's latest thumbnail, or none"
    )
    snapshot_detail: str = Field("", description="Why no snapshot was kept, when none was")
    hazard_opened: bool = Field(description="A hazard was opened by this verdict")
    task_completed: bool = Field(description="This was the task's last verdict: the task is done")


def _calendar(settings: AppSettings) -> SchoolCalendar:
    """School days from the school calendar, local times in ``instance.timezone``."""
    return plan_calendar(settings.analytics.calendar, settings.instance.timezone)


def _window_public(window: Window | None) -> WindowPublic | None:
    return None if window is None else WindowPublic(day=window.day, start=window.start, end=window.end)


def _plan_public(
    session: Session,
    plan: PatrolPlan,
    now: datetime,
    calendar: SchoolCalendar,
    fleet: Sequence[CameraRef] | None = None,
) -> PlanPublic:
    """The API view of a plan; its cameras counted in ``fleet`` when given (one read of the fleet per list)."""
    spec = plan_spec(plan)
    cameras = select_cameras(fleet, spec.camera_set) if fleet is not None else resolve(session, spec.camera_set)
    upcoming = next_window(Schedule.of(plan), now, calendar) if plan.enabled else None
    return PlanPublic(
        **spec.model_dump(),
        id=plan.id,
        camera_set_description=spec.camera_set.describe(),
        camera_count=len(cameras),
        past_midnight_window=spec.past_midnight,
        next_window=_window_public(upcoming),
        created_at=plan.created_at,
        updated_at=plan.updated_at,
    )


def _plan(session: Session, plan_id: int, codes: ScopeCodes) -> PatrolPlan:
    """The plan, if its camera set lies within ``codes`` (404 otherwise)."""
    plan = get_plan(session, plan_id)
    if not covers_set(codes, camera_set_from_json(plan.selector)):
        raise not_found(f"patrol plan with id {plan_id}")
    return plan


def _spec_changes(before: PlanSpec, after: PlanSpec) -> dict[str, object]:
    """``{field: [before, after]}`` of the fields that differ."""
    old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
    return {k: [old[k], new[k]] for k in new if old.get(k) != new[k]}


@router.get("/patrol-plans", summary="List patrol plans")
def list_plans(
    session: DbSession,
    settings: AppSettings,
    clock: Clock,
    scope: UserScope,
    enabled: Annotated[bool | None, Query(description="Only enabled (true) or disabled (false) plans")] = None,
    limit: Limit = 200,
) -> list[PlanPublic]:
    """Plans in the user's scope by name, each with its camera count now and its next window."""
    stmt = select(PatrolPlan).order_by(PatrolPlan.name)
    if enabled is not None:
        stmt = stmt.where(PatrolPlan.enabled.is_(enabled))
    codes = scope.codes(session)
    plans = [p for p in session.scalars(stmt) if covers_set(codes, camera_set_from_json(p.selector))][:limit]
    now, calendar = clock(), _calendar(settings)
    fleet = load_fleet(session) if plans else []
    return [_plan_public(session, plan, now, calendar, fleet) for plan in plans]


@router.post("/patrol-plans", status_code=status.HTTP_201_CREATED, summary="Create a patrol plan")
def create_patrol_plan(
    body: PlanCreate,
    request: Request,
    work: UnitOfWork,
    settings: AppSettings,
    clock: Clock,
    user: BureauAdminUser,
) -> PlanPublic:
    """A new plan; its camera set must name known codes and match at least one enabled camera."""
    now = clock()
    plan = create_plan(work.session, body, now=now)
    work.session.flush()
    record_change(work.session, request, user, f"patrol plan {plan.id}", "create", body.model_dump(mode="json"))
    work.commit()
    return _plan_public(work.session, plan, now, _calendar(settings))


@router.get("/patrol-plans/{plan_id}", summary="One patrol plan")
def get_patrol_plan(
    plan_id: int, session: DbSession, settings: AppSettings, clock: Clock, scope: UserScope
) -> PlanPublic:
    """A plan with its camera count now and its next window."""
    return _plan_public(session, _plan(session, plan_id, scope.codes(session)), clock(), _calendar(settings))


@router.put("/patrol-plans/{plan_id}", summary="Change a patrol plan")
def update_patrol_plan(
    plan_id: int,
    body: PlanCreate,
    request: Request,
    work: UnitOfWork,
    settings: AppSettings,
    clock: Clock,
    user: BureauAdminUser,
) -> PlanPublic:
    """Replace a plan's settings. Tasks already open stay as they are; unopened tasks the plan no longer has are
    withdrawn (the patrol service creates the new ones); a new camera set replaces the cameras of the unopened
    tasks kept."""
    now, calendar = clock(), _calendar(settings)
    before = plan_spec(get_plan(work.session, plan_id))
    change = update_plan(work.session, plan_id, body, now=now, calendar=calendar)
    record_change(work.session, request, user, f"patrol plan {plan_id}", "update", _spec_changes(before, body))
    work.commit()
    if change.withdrawn or change.rebuilt:
        log.info(
            "patrol plan %s changed: %d unopened task(s) withdrawn, %d given the new cameras",
            change.plan.id,
            change.withdrawn,
            change.rebuilt,
        )
    return _plan_public(work.session, change.plan, now, calendar)


@router.delete("/patrol-plans/{plan_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a patrol plan")
def delete_patrol_plan(
    plan_id: int, request: Request, work: UnitOfWork, clock: Clock, user: BureauAdminUser
) -> Response:
    """Delete a plan and its unopened tasks; 409 if a task of it has opened (disable the plan instead)."""
    name = get_plan(work.session, plan_id).name
    delete_plan(work.session, plan_id, now=clock())
    record_change(work.session, request, user, f"patrol plan {plan_id}", "delete", {"name": name})
    work.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/patrol-plans/{plan_id}/preview", summary="Preview a patrol plan's windows")
def preview_patrol_plan(
    plan_id: int,
    session: DbSession,
    settings: AppSettings,
    clock: Clock,
    scope: UserScope,
    day: Annotated[date | None, Query(description="First local day (default: today)")] = None,
    days: Annotated[int, Query(ge=1, le=62, description="How many days")] = 7,
) -> PlanPreview:
    """The plan's window on each day from ``day``, and the cameras a task created now would list."""
    plan = _plan(session, plan_id, scope.codes(session))
    calendar = _calendar(settings)
    first = day or calendar.local(clock()).date()
    schedule = Schedule.of(plan)
    out = []
    for n in range(days):
        current = first + timedelta(days=n)
        out.append(
            PreviewDay(
                day=current,
                school_day=calendar.is_school_day(current),
                window=_window_public(window_on(schedule, current, calendar)),
            )
        )
    count = len(resolve(session, camera_set_from_json(plan.selector)))
    return PlanPreview(plan_id=plan.id, camera_count=count, days=out)


# --- tasks -------------------------------------------------------------------------------------------------


def _task_public(task: PatrolTask, plan_name: str, progress: tuple[int, int]) -> TaskPublic:
    return TaskPublic(
        id=task.id,
        plan_id=task.plan_id,
        plan_name=plan_name,
        day=task.day,
        window_start=task.window_start,
        window_end=task.window_end,
        shift_id=task.shift_id,
        status=task.status,
        created_at=task.created_at,
        completed_at=task.completed_at,
        missed_at=task.missed_at,
        cameras_done=progress[0],
        cameras_total=progress[1],
    )


def _in_scope(scope: Scope) -> ColumnElement[bool]:
    """Tasks with at least one camera in ``scope``."""
    return exists().where(PatrolTaskItem.task_id == PatrolTask.id, scope.cameras(PatrolTaskItem.camera_id))


def _progress(session: Session, task_ids: Sequence[int], scope: Scope) -> dict[int, tuple[int, int]]:
    """Cameras with a verdict and cameras of each task, counting the cameras in ``scope`` only."""
    if scope.is_bureau or not task_ids:
        return task_progress(session, task_ids)
    rows = session.execute(
        select(PatrolTaskItem.task_id, func.count(PatrolTaskItem.verdict), func.count(PatrolTaskItem.id))
        .where(PatrolTaskItem.task_id.in_(task_ids), scope.cameras(PatrolTaskItem.camera_id))
        .group_by(PatrolTaskItem.task_id)
    ).all()
    return {task_id: (int(done), int(total)) for task_id, done, total in rows}


def _task(session: Session, task_id: int, scope: Scope) -> PatrolTask:
    """The task, if it has a camera in ``scope`` (404 otherwise)."""
    task = get_task(session, task_id)
    if not scope.is_bureau and not session.scalar(select(_in_scope(scope)).where(PatrolTask.id == task.id)):
        raise not_found(f"patrol task with id {task_id}")
    return task


def _one_task_public(session: Session, task: PatrolTask, scope: Scope) -> TaskPublic:
    name = session.scalar(select(PatrolPlan.name).where(PatrolPlan.id == task.plan_id)) or ""
    return _task_public(task, name, _progress(session, [task.id], scope).get(task.id, (0, 0)))


def _items(session: Session, task_id: int, scope: Scope, camera_code: str | None = None) -> list[TaskItemPublic]:
    # Columns, not rows: the snapshots stay in the database (a bureau-wide task has thousands of cameras).
    stmt = (
        select(
            PatrolTaskItem.position,
            Camera.code,
            Camera.name,
            School.code,
            School.name,
            PatrolTaskItem.verdict,
            PatrolTaskItem.note,
            PatrolTaskItem.checked_at,
            PatrolTaskItem.checked_by,
            PatrolTaskItem.hazard_id,
            PatrolTaskItem.snapshot_jpeg.is_not(None),
        )
        .join(Camera, Camera.id == PatrolTaskItem.camera_id)
        .join(School, School.id == Camera.school_id)
        .where(PatrolTaskItem.task_id == task_id, scope.schools(Camera.school_id))
        .order_by(PatrolTaskItem.position)
    )
    if camera_code is not None:
        stmt = stmt.where(Camera.code == camera_code)
    rows = session.execute(stmt).tuples().all()
    refs = user_refs(session, [row[8] for row in rows])
    return [
        TaskItemPublic(
            position=position,
            camera_code=code,
            camera_name=name,
            school_code=school_code,
            school_name=school_name,
            verdict=verdict,
            note=note,
            checked_at=checked_at,
            checked_by=refs.get(checked_by) if checked_by is not None else None,
            hazard_id=hazard_id,
            snapshot_url=f"/api/patrol-tasks/{task_id}/items/{code}/snapshot.jpg" if has_snapshot else None,
        )
        for (
            position,
            code,
            name,
            school_code,
            school_name,
            verdict,
            note,
            checked_at,
            checked_by,
            hazard_id,
            has_snapshot,
        ) in rows
    ]


@router.get("/patrol-tasks", summary="List patrol tasks")
def list_tasks(
    session: DbSession,
    clock: Clock,
    user: CurrentUser,
    scope: UserScope,
    day: Annotated[date | None, Query(description="Only tasks of this local day")] = None,
    task_status: Annotated[
        TaskStatus | None, Query(alias="status", description="Only tasks in this state")
    ] = None,
    plan: Annotated[int | None, Query(ge=1, description="Only tasks of this plan id")] = None,
    shift: Annotated[int | None, Query(ge=1, description="Only tasks of this shift id")] = None,
    mine: Annotated[
        bool, Query(description="Only tasks of the shift you are on now (none if you are off duty)")
    ] = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[TaskPublic]:
    """Tasks with a camera in the user's scope, newest window first, each with its cameras done / total (in
    scope), and the number matching."""
    stmt = select(PatrolTask, PatrolPlan.name).join(PatrolPlan, PatrolPlan.id == PatrolTask.plan_id)
    if not scope.is_bureau:
        stmt = stmt.where(_in_scope(scope))
    if mine:
        duty = on_duty(session, clock())
        if duty is None or user.id not in (duty.leader_id, *duty.officer_ids):
            return Page(total=0, offset=offset, limit=limit, items=[])
        stmt = stmt.where(PatrolTask.shift_id == duty.shift_id)
    if day is not None:
        stmt = stmt.where(PatrolTask.day == day)
    if task_status is not None:
        stmt = stmt.where(PatrolTask.status == task_status)
    if plan is not None:
        stmt = stmt.where(PatrolTask.plan_id == plan)
    if shift is not None:
        stmt = stmt.where(PatrolTask.shift_id == shift)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(
        stmt.order_by(PatrolTask.window_start.desc(), PatrolTask.id.desc()).limit(limit).offset(offset)
    ).all()
    progress = _progress(session, [task.id for task, _ in rows], scope)
    items = [_task_public(task, name, progress.get(task.id, (0, 0))) for task, name in rows]
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.get("/patrol-tasks/{task_id}", summary="One patrol task with its cameras")
def get_patrol_task(task_id: int, session: DbSession, scope: UserScope) -> TaskDetail:
    """A task and every camera's (in the user's scope) verdict, note, officer and snapshot link."""
    task = _task(session, task_id, scope)
    items = _items(session, task.id, scope)
    summary = _one_task_public(session, task, scope)
    return TaskDetail(**summary.model_dump(), items=items)


@router.post("/patrol-tasks/{task_id}/items/{camera_code}/verdict", summary="Record a camera's verdict")
def record_item_verdict(
    task_id: int,
    camera_code: str,
    request: Request,
    work: UnitOfWork,
    settings: AppSettings,
    clock: Clock,
    user: DutyUser,
    scope: UserScope,
    verdict: Annotated[Verdict, Form(description="normal or abnormal")],
    note: Annotated[str, Form(max_length=MAX_NOTE_CHARS, description="What the officer saw")] = "",
    open_hazard: Annotated[
        bool, Form(description="Open a hazard for the school (abnormal verdicts only)")
    ] = False,
    hazard_title: Annotated[
        str | None, Form(min_length=1, max_length=200, description="Hazard title (default: the note's first line)")
    ] = None,
    hazard_deadline: Annotated[
        datetime | None, Form(description="Rectification deadline, ISO 8601 with offset (default: by severity)")
    ] = None,
    hazard_severity: Annotated[Severity | None, Form(description="Hazard severity (default: general)")] = None,
    snapshot: Annotated[
        UploadFile | None, File(description="JPEG of what was seen, at most 5 MiB (default: latest thumbnail)")
    ] = None,
) -> VerdictPublic:
    """Record (or, inside the window, replace) the verdict on one camera of a task, as a multipart form.

    Only inside the task's window: 409 before it opens and after it closes. Without an uploaded snapshot the
    camera's latest thumbnail is kept as evidence, if there is one (``snapshot`` says which). A camera outside
    the user's scope is a 404.
    """
    _task(work.session, task_id, scope)
    if not scope.is_bureau and not work.session.scalar(
        select(Camera.id).where(Camera.code == camera_code, scope.schools(Camera.school_id))
    ):
        raise not_found(f"camera {camera_code!r} in patrol task {task_id}")
    if hazard_deadline is not None and hazard_deadline.tzinfo is None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "hazard_deadline needs a UTC offset, e.g. 2026-12-08T18:00+08:00",
        )
    hazard_fields = {
        "hazard_title": hazard_title,
        "hazard_deadline": hazard_deadline,
        "hazard_severity": hazard_severity,
    }
    given = [name for name, value in hazard_fields.items() if value is not None]
    if not open_hazard and given:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"{', '.join(given)}: the hazard fields are given only with open_hazard=true",
        )
    data = read_picture(snapshot, what="the snapshot")
    source: SnapshotSource = "uploaded"
    detail = ""
    if data is None:
        data, detail = latest_thumbnail(request, camera_code)
        source = "thumbnail" if data is not None else "none"
        if data is None:
            detail = f"no snapshot uploaded and {detail}"
    hazard = HazardRequest(hazard_title or "", hazard_severity or Severity.GENERAL, hazard_deadline)
    result = record_verdict(
        work.session,
        task_id,
        camera_code,
        verdict,
        note=note,
        snapshot=data,
        by_user=user.id,
        now=clock(),
        zone=ZoneInfo(settings.instance.timezone),
        hazard_config=settings.patrol.hazards,
        hazard=hazard if open_hazard else None,
    )
    work.commit()
    return VerdictPublic(
        task=_one_task_public(work.session, result.task, scope),
        item=_items(work.session, task_id, scope, camera_code)[0],
        snapshot=source,
        snapshot_detail=detail,
        hazard_opened=result.hazard_opened,
        task_completed=result.completed,
    )


@router.get(
    "/patrol-tasks/{task_id}/items/{camera_code}/snapshot.jpg",
    summary="The snapshot kept with a camera's verdict",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}}},
)
def item_snapshot(task_id: int, camera_code: str, session: DbSession, scope: UserScope) -> Response:
    """The JPEG kept as evidence with the verdict on ``camera_code`` in task ``task_id``."""
    data = session.scalar(
        select(PatrolTaskItem.snapshot_jpeg)
        .join(Camera, Camera.id == PatrolTaskItem.camera_id)
        .where(PatrolTaskItem.task_id == task_id, Camera.code == camera_code, scope.schools(Camera.school_id))
    )
    if data is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no snapshot for camera {camera_code!r} in patrol task {task_id}"
        )
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})
