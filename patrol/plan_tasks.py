"""Verdicts on patrol tasks: a duty officer checks each camera of a task inside its window.

A verdict (normal / abnormal, a note, a snapshot kept as evidence) can be recorded only while the task's
window is open: before, it is too early; from the end on, the task is closed (missed unless done in time).
Recording a camera again inside the window replaces its verdict, note and snapshot (the last word counts). An
abnormal verdict may open a hazard for the camera's school, with the snapshot as its before-evidence; a camera
keeps the first hazard it opened (recording it again opens no second one, and a later normal verdict leaves
the hazard to its own rectification). When every camera has a verdict the task is done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from config.patrol import HazardConfig
from kernel.announce import announce
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.hazards import HazardRequest, open_hazard
from patrol.models import HazardSource, TaskStatus, Verdict
from patrol.pictures import check_picture
from patrol.roster import local_time
from patrol.tables import PatrolPlan, PatrolTask, PatrolTaskItem
from patrol.topics import duty_event
from registry.models import Camera

MAX_NOTE_CHARS = 2000


@dataclass(frozen=True, slots=True)
class VerdictResult:
    """What :func:`record_verdict` did."""

    task: PatrolTask
    item: PatrolTaskItem
    hazard_id: int | None
    """The camera's hazard in this task (opened now or before), if any."""
    hazard_opened: bool
    completed: bool
    """This verdict was the task's last one: the task is done now."""


def get_task(session: Session, task_id: int, *, for_update: bool = False) -> PatrolTask:
    """The task ``task_id`` (locked for the transaction with ``for_update``, where the database can, and read
    afresh: its state is what the lock protects)."""
    stmt = select(PatrolTask).where(PatrolTask.id == task_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    task = session.scalars(stmt).one_or_none()
    if task is None:
        raise PatrolNotFoundError(f"no patrol task with id {task_id}")
    return task


def check_open(task: PatrolTask, now: datetime, zone: ZoneInfo) -> None:
    """Refuse (409) a verdict outside the task's window."""
    if task.status is TaskStatus.MISSED:
        raise PatrolConflictError(
            f"patrol task {task.id} was missed: its window closed at {local_time(task.window_end, zone)}"
        )
    if now < task.window_start:
        raise PatrolConflictError(
            f"patrol task {task.id} is not open yet: it opens at {local_time(task.window_start, zone)}"
        )
    if now >= task.window_end:
        state = "done" if task.status is TaskStatus.DONE else "missed"
        raise PatrolConflictError(
            f"patrol task {task.id} is closed ({state}): its window closed at {local_time(task.window_end, zone)}"
        )


def _hazard_title(request: HazardRequest, note: str, plan_name: str, camera_name: str) -> str:
    if request.title and request.title.strip():
        return request.title.strip()
    first_line = note.strip().splitlines()[0] if note.strip() else ""
    return (first_line or f"{plan_name}: {camera_name} abnormal")[:200]


def record_verdict(
    session: Session,
    task_id: int,
    camera_code: str,
    verdict: Verdict,
    *,
    note: str,
    snapshot: bytes | None,
    by_user: int,
    now: datetime,
    zone: ZoneInfo,
    hazard_config: HazardConfig,
    hazard: HazardRequest | None = None,
) -> VerdictResult:
    """Record ``verdict`` on the camera ``camera_code`` of task ``task_id`` (see the module docstring).

    ``hazard`` (only with an abnormal verdict) opens a hazard unless the camera has one from this task.
    """
    note = note.strip()
    if len(note) > MAX_NOTE_CHARS:
        raise PatrolError(f"a verdict note has at most {MAX_NOTE_CHARS} characters, not {len(note)}")
    if snapshot is not None:
        check_picture(snapshot, what="the snapshot")
    if hazard is not None and verdict is not Verdict.ABNORMAL:
        raise PatrolError("only an abnormal verdict opens a hazard")
    task = get_task(session, task_id, for_update=True)
    row = session.execute(
        select(PatrolTaskItem, Camera.school_id, Camera.name)
        .join(Camera, Camera.id == PatrolTaskItem.camera_id)
        .where(PatrolTaskItem.task_id == task.id, Camera.code == camera_code)
    ).one_or_none()
    if row is None:
        raise PatrolNotFoundError(f"camera {camera_code!r} is not one of patrol task {task.id}'s cameras")
    item, school_id, camera_name = row
    check_open(task, now, zone)
    item.verdict = verdict
    item.note = note
    item.snapshot_jpeg = snapshot
    item.checked_at = now
    item.checked_by = by_user
    opened = False
    if hazard is not None and item.hazard_id is None:
        plan_name = session.scalar(select(PatrolPlan.name).where(PatrolPlan.id == task.plan_id)) or ""
        found = open_hazard(
            session,
            school_id=school_id,
            title=_hazard_title(hazard, note, plan_name, camera_name),
            source=HazardSource.PATROL,
            now=now,
            config=hazard_config,
            camera_id=item.camera_id,
            source_id=item.id,
            description=note,
            severity=hazard.severity,
            deadline=hazard.deadline,
            by_user=by_user,
            before_jpeg=snapshot,
        )
        item.hazard_id = found.id
        opened = True
    session.flush()
    completed = False
    if task.status is TaskStatus.PENDING:
        unchecked = session.scalar(
            select(func.count(PatrolTaskItem.id)).where(
                PatrolTaskItem.task_id == task.id, PatrolTaskItem.verdict.is_(None)
            )
        )
        if not unchecked:
            task.status = TaskStatus.DONE
            task.completed_at = now
            completed = True
            _announce_done(session, task)
    return VerdictResult(task, item, item.hazard_id, opened, completed)


def _announce_done(session: Session, task: PatrolTask) -> None:
    counts = session.execute(
        select(
            func.count(PatrolTaskItem.id),
            func.coalesce(func.sum(case((PatrolTaskItem.verdict == Verdict.ABNORMAL, 1), else_=0)), 0),
        ).where(PatrolTaskItem.task_id == task.id)
    ).one()
    announce(
        session,
        duty_event(
            "task.done",
            {
                "task_id": task.id,
                "plan_id": task.plan_id,
                "day": task.day.isoformat(),
                "shift_id": task.shift_id,
                "cameras_total": int(counts[0]),
                "cameras_abnormal": int(counts[1]),
            },
        ),
    )
