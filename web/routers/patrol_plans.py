"""API: patrol plans (定时定点巡查), the patrol tasks they become, and the duty officers' verdicts per camera."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
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
from web.permissions import AdminUser, DutyUser
from web.schemas import Page, UserRef, user_refs
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


@router.get("/patrol-plans", summary="List patrol plans")
def list_plans(
    session: DbSession,
    settings: AppSettings,
    clock: Clock,
    _user: CurrentUser,
    enabled: Annotated[bool | None, Query(description="Only enabled (true) or disabled (false) plans")] = None,
    limit: Limit = 200,
) -> list[PlanPublic]:
    """Plans by name, each with its camera count now and its next window."""
    stmt = select(PatrolPlan).order_by(PatrolPlan.name).limit(limit)
    if enabled is not None:
        stmt = stmt.where(PatrolPlan.enabled.is_(enabled))
    now, calendar = clock(), _calendar(settings)
    fleet = load_fleet(session)
    return [_plan_public(session, plan, now, calendar, fleet) for plan in session.scalars(stmt)]


@router.post("/patrol-plans", status_code=status.HTTP_201_CREATED, summary="Create a patrol plan")
def create_patrol_plan(
    body: PlanCreate, work: UnitOfWork, settings: AppSettings, clock: Clock, _admin: AdminUser
) -> PlanPublic:
    """A new plan; its camera set must name known codes and match at least one enabled camera."""
    now = clock()
    plan = create_plan(work.session, body, now=now)
    work.commit()
    return _plan_public(work.session, plan, now, _calendar(settings))


@router.get("/patrol-plans/{plan_id}", summary="One patrol plan")
def get_patrol_plan(
    plan_id: int, session: DbSession, settings: AppSettings, clock: Clock, _user: CurrentUser
) -> PlanPublic:
    """A plan with its camera count now and its next window."""
    return _plan_public(session, get_plan(session, plan_id), clock(), _calendar(settings))


@router.put("/patrol-plans/{plan_id}", summary="Change a patrol plan")
def update_patrol_plan(
    plan_id: int, body: PlanCreate, work: UnitOfWork, settings: AppSettings, clock: Clock, _admin: AdminUser
) -> PlanPublic:
    """Replace a plan's settings. Tasks already open stay as they are; unopened tasks the plan no longer has are
    withdrawn (the patrol service creates the new ones); a new camera set replaces the cameras of the unopened
    tasks kept."""
    now, calendar = clock(), _calendar(settings)
    change = update_plan(work.session, plan_id, body, now=now, calendar=calendar)
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
def delete_patrol_plan(plan_id: int, work: UnitOfWork, clock: Clock, _admin: AdminUser) -> Response:
    """Delete a plan and its unopened tasks; 409 if a task of it has opened (disable the plan instead)."""
    delete_plan(work.session, plan_id, now=clock())
    work.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/patrol-plans/{plan_id}/preview", summary="Preview a patrol plan's windows")
def preview_patrol_plan(
    plan_id: int,
    session: DbSession,
    settings: AppSettings,
    clock: Clock,
    _user: CurrentUser,
    day: Annotated[date | None, Query(description="First local day (default: today)")] = None,
    days: Annotated[int, Query(ge=1, le=62, description="How many days")] = 7,
) -> PlanPreview:
    """The plan's window on each day from ``day``, and the cameras a task created now would list."""
    plan = get_plan(session, plan_id)
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


def _one_task_public(session: Session, task: PatrolTask) -> TaskPublic:
    name = session.scalar(select(PatrolPlan.name).where(PatrolPlan.id == task.plan_id)) or ""
    return _task_public(task, name, task_progress(session, [task.id]).get(task.id, (0, 0)))


def _items(session: Session, task_id: int, camera_code: str | None = None) -> list[TaskItemPublic]:
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
        .where(PatrolTaskItem.task_id == task_id)
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
    """Tasks, newest window first, each with its cameras done / total, and the number matching."""
    stmt = select(PatrolTask, PatrolPlan.name).join(PatrolPlan, PatrolPlan.id == PatrolTask.plan_id)
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
    progress = task_progress(session, [task.id for task, _ in rows])
    items = [_task_public(task, name, progress.get(task.id, (0, 0))) for task, name in rows]
    return Page(total=total, offset=offset, limit=limit, items=items)


@router.get("/patrol-tasks/{task_id}", summary="One patrol task with its cameras")
def get_patrol_task(task_id: int, session: DbSession, _user: CurrentUser) -> TaskDetail:
    """A task and every camera's verdict, note, officer and snapshot link."""
    task = get_task(session, task_id)
    items = _items(session, task.id)
    summary = _one_task_public(session, task)
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
    camera's latest thumbnail is kept as evidence, if there is one (``snapshot`` says which).
    """
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
        task=_one_task_public(work.session, result.task),
        item=_items(work.session, task_id, camera_code)[0],
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
def item_snapshot(task_id: int, camera_code: str, session: DbSession, _user: CurrentUser) -> Response:
    """The JPEG kept as evidence with the verdict on ``camera_code`` in task ``task_id``."""
    data = session.scalar(
        select(PatrolTaskItem.snapshot_jpeg)
        .join(Camera, Camera.id == PatrolTaskItem.camera_id)
        .where(PatrolTaskItem.task_id == task_id, Camera.code == camera_code)
    )
    if data is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"no snapshot for camera {camera_code!r} in patrol task {task_id}"
        )
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=300"})
