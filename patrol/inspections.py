"""Inspection sessions of spot checks: an inspector looks at one school's cameras (queued on a wall), records
findings, and signs the record.

A random inspection belongs to a stored draw and only to a school that draw named; the other methods
(directed, fixed-point, lead-based, covert, video-recorded) stand alone. Findings are per camera or for the
school as a whole, normal or abnormal, with a note and a JPEG snapshot; an abnormal one may open a hazard.
Signing is the inspector's own act: it stores the signed name, the time, and the SHA-256 of a canonical JSON of
the whole content, frees the wall, and makes the record read-only. :func:`verify_inspection` recomputes that hash
from the stored rows, so an edited finding shows.

A wall that shows an inspection names it (``VideoWall.inspection_id``); the wall rotator shows that school's
cameras instead of the wall's tour until the inspection is signed or moved off the wall.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.patrol import HazardConfig
from kernel.db import insert_new
from patrol.camera_sets import CameraRef, CameraSet, resolve
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.hazards import HazardRequest, open_hazard
from patrol.models import HazardSource, InspectionMethod, InspectionStatus, Verdict
from patrol.pictures import check_picture
from patrol.spot_checks import DEFAULT_ZONE, canonical_sha256, get_draw
from patrol.tables import Inspection, InspectionFinding, VideoWall
from registry.models import Camera, School

MAX_NOTE = 2000
MAX_SUMMARY = 4000
CONTENT_VERSION = 1


def get_inspection(session: Session, inspection_id: int) -> Inspection:
    """The inspection, or :class:`PatrolNotFoundError`."""
    inspection = session.get(Inspection, inspection_id)
    if inspection is None:
        raise PatrolNotFoundError(f"no inspection with id {inspection_id}")
    return inspection


def start_inspection(
    session: Session,
    *,
    school_code: str,
    method: InspectionMethod,
    inspector_id: int,
    now: datetime,
    draw_id: int | None = None,
    wall_id: int | None = None,
    summary: str = "",
) -> Inspection:
    """Open an inspection of a school by ``inspector_id``; with ``wall_id``, the wall shows its cameras.

    A random inspection needs the draw that named the school (once per school and draw: a second start, even
    a concurrent one, is a :class:`PatrolConflictError`); the other methods take no draw.
    """
    school = session.scalars(select(School).where(School.code == school_code)).one_or_none()
    if school is None:
        raise PatrolNotFoundError(f"no school with code {school_code!r}")
    if method is InspectionMethod.RANDOM:
        if draw_id is None:
            raise PatrolError("a random inspection needs the draw that named the school (draw_id)")
        draw = get_draw(session, draw_id)
        if school_code not in draw.schools:
            named = ", ".join(str(c) for c in draw.schools) or "no school"
            raise PatrolError(f"school {school_code} is not in draw {draw_id} (it named {named})")
        earlier = _inspection_of_draw(session, draw_id, school.id)
        if earlier is not None:
            raise _already(school_code, draw_id, earlier)
    elif draw_id is not None:
        raise PatrolError(f"only a random inspection belongs to a draw, not a {method.value} one")
    wall = None if wall_id is None else _free_wall(session, wall_id, None)
    row = {
        "school_id": school.id,
        "draw_id": draw_id,
        "method": method,
        "inspector_id": inspector_id,
        "status": InspectionStatus.OPEN,
        "started_at": now,
        "summary": _summary(summary),
    }
    # The unique (draw_id, school_id) settles a race between two starts: the later insert does nothing, and no
    # IntegrityError spoils the caller's transaction. (Not a SAVEPOINT: with pysqlite's implicit transactions a
    # first SAVEPOINT opens the transaction itself, and releasing it commits the insert there and then.)
    inserted = insert_new(session, Inspection, [row], "id")
    if not inserted:  # only a draw's inspection has a unique key to clash on
        raise _already(
            school_code, draw_id, None if draw_id is None else _inspection_of_draw(session, draw_id, school.id)
        )
    inspection = session.get(Inspection, inserted.pop())
    if inspection is None:
        raise PatrolNotFoundError(f"the new inspection of school {school_code} was not found after its insert")
    if wall is not None:
        wall.inspection_id = inspection.id
        session.flush()
    return inspection


def _inspection_of_draw(session: Session, draw_id: int, school_id: int) -> int | None:
    """The id of the school's inspection for the draw, if one was started."""
    return session.scalar(
        select(Inspection.id).where(Inspection.draw_id == draw_id, Inspection.school_id == school_id)
    )


def _already(school_code: str, draw_id: int | None, earlier: int | None) -> PatrolConflictError:
    which = f"inspection {earlier}" if earlier is not None else "an inspection"
    return PatrolConflictError(f"school {school_code} of draw {draw_id} has {which} already")


def set_wall(
    session: Session, inspection_id: int, *, wall_id: int | None, by_user: int, timezone: ZoneInfo = DEFAULT_ZONE
) -> Inspection:
    """Show the open inspection's cameras on ``wall_id`` instead (None: on no wall; the wall's tour resumes).

    ``timezone``: of the times in error messages."""
    inspection = _open_for(session, inspection_id, by_user, "move it to a wall", timezone)
    target = None if wall_id is None else _free_wall(session, wall_id, inspection.id)
    for wall in walls_of(session, inspection.id):
        wall.inspection_id = None
    if target is not None:
        target.inspection_id = inspection.id
    session.flush()
    return inspection


def walls_of(session: Session, inspection_id: int) -> list[VideoWall]:
    """The walls showing the inspection's cameras."""
    return list(
        session.scalars(select(VideoWall).where(VideoWall.inspection_id == inspection_id).order_by(VideoWall.id))
    )


def _free_wall(session: Session, wall_id: int, inspection_id: int | None) -> VideoWall:
    """The wall, unless another open inspection is on it (one that was signed is no longer)."""
    wall = session.get(VideoWall, wall_id)
    if wall is None:
        raise PatrolNotFoundError(f"no wall with id {wall_id}")
    if wall.inspection_id not in (None, inspection_id):
        other = session.get(Inspection, wall.inspection_id)
        if other is not None and other.status is InspectionStatus.OPEN:
            raise PatrolConflictError(
                f"wall {wall_id} ({wall.name}) shows open inspection {other.id}: sign it or release the wall first"
            )
    return wall


def inspection_cameras(session: Session, inspection: Inspection) -> list[CameraRef]:
    """The enabled cameras of the inspection's school, as a wall shows them."""
    code = session.scalar(select(School.code).where(School.id == inspection.school_id))
    return resolve(session, CameraSet(schools=(code,))) if code else []


def add_finding(
    session: Session,
    inspection_id: int,
    *,
    by_user: int,
    now: datetime,
    verdict: Verdict,
    camera_code: str | None = None,
    note: str = "",
    snapshot_jpeg: bytes | None = None,
    hazard: HazardRequest | None = None,
    hazard_config: HazardConfig | None = None,
    timezone: ZoneInfo = DEFAULT_ZONE,
) -> InspectionFinding:
    """Record a finding on one of the school's cameras (or the school as a whole: no camera).

    With ``hazard`` (abnormal findings only) a hazard is opened with source ``spot_check`` and the finding's id,
    the snapshot as its before picture. ``timezone``: of the times in error messages.
    """
    inspection = _open_for(session, inspection_id, by_user, "add findings", timezone)
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise PatrolError(f"a note has at most {MAX_NOTE} characters, not {len(note)}")
    if snapshot_jpeg is not None:
        check_picture(snapshot_jpeg, what="the snapshot")
    if hazard is not None and verdict is not Verdict.ABNORMAL:
        raise PatrolError("only an abnormal finding opens a hazard")
    camera_id = None
    if camera_code is not None:
        camera = session.scalars(select(Camera).where(Camera.code == camera_code)).one_or_none()
        if camera is None:
            raise PatrolNotFoundError(f"no camera with code {camera_code!r}")
        if camera.school_id != inspection.school_id:
            raise PatrolError(f"camera {camera_code} is not a camera of the inspected school")
        camera_id = camera.id
    finding = InspectionFinding(
        inspection_id=inspection.id,
        camera_id=camera_id,
        verdict=verdict,
        note=note,
        snapshot_jpeg=snapshot_jpeg,
        snapshot_sha256=hashlib.sha256(snapshot_jpeg).hexdigest() if snapshot_jpeg is not None else None,
        created_at=now,
    )
    session.add(finding)
    session.flush()
    if hazard is not None:
        where = camera_code or "the school"
        title = hazard.title.strip() or note[:200] or f"spot check {inspection.id}: abnormal at {where}"
        finding.hazard_id = open_hazard(
            session,
            school_id=inspection.school_id,
            title=title,
            source=HazardSource.SPOT_CHECK,
            source_id=finding.id,
            now=now,
            config=hazard_config or HazardConfig(),
            camera_id=camera_id,
            description=note,
            severity=hazard.severity,
            deadline=hazard.deadline,
            by_user=by_user,
            before_jpeg=snapshot_jpeg,
        ).id
        session.flush()
    return finding


def findings_of(session: Session, inspection_id: int) -> list[tuple[InspectionFinding, str | None]]:
    """The inspection's findings in the order they were made, each with its camera's code."""
    rows = session.execute(
        select(InspectionFinding, Camera.code)
        .outerjoin(Camera, Camera.id == InspectionFinding.camera_id)
        .where(InspectionFinding.inspection_id == inspection_id)
        .order_by(InspectionFinding.id)
    ).tuples()
    return list(rows)


def sign_inspection(
    session: Session,
    inspection_id: int,
    *,
    by_user: int,
    signed_name: str,
    now: datetime,
    summary: str | None = None,
    timezone: ZoneInfo = DEFAULT_ZONE,
) -> Inspection:
    """The inspector signs: name, time and the content's SHA-256 are stored, the wall is freed, and the record
    is read-only from then on. ``timezone``: of the times in error messages."""
    inspection = _open_for(session, inspection_id, by_user, "sign it", timezone)
    name = signed_name.strip()
    if not name:
        raise PatrolError("the signature needs the inspector's name")
    if len(name) > 100:
        raise PatrolError(f"a signed name has at most 100 characters, not {len(name)}")
    if not findings_of(session, inspection.id):
        raise PatrolError(f"inspection {inspection.id} has no findings: record at least one before signing")
    if summary is not None:
        inspection.summary = _summary(summary)
    inspection.signed_name = name
    inspection.signed_at = now
    inspection.status = InspectionStatus.SIGNED
    for wall in walls_of(session, inspection.id):
        wall.inspection_id = None
    session.flush()
    inspection.content_sha256 = canonical_sha256(content_document(session, inspection))
    session.flush()
    return inspection


def content_document(session: Session, inspection: Inspection) -> dict[str, Any]:
    """What the signature covers, as JSON; snapshot hashes are computed from the stored pictures themselves."""
    school_code = session.scalar(select(School.code).where(School.id == inspection.school_id))
    return {
        "version": CONTENT_VERSION,
        "inspection_id": inspection.id,
        "school_code": school_code,
        "method": inspection.method.value,
        "draw_id": inspection.draw_id,
        "inspector_id": inspection.inspector_id,
        "signed_name": inspection.signed_name,
        "started_at": _iso(inspection.started_at),
        "signed_at": _iso(inspection.signed_at),
        "summary": inspection.summary,
        "findings": [
            {
                "id": finding.id,
                "camera_code": camera_code,
                "verdict": finding.verdict.value,
                "note": finding.note,
                "snapshot_sha256": (
                    hashlib.sha256(finding.snapshot_jpeg).hexdigest()
                    if finding.snapshot_jpeg is not None
                    else None
                ),
                "created_at": _iso(finding.created_at),
                "hazard_id": finding.hazard_id,
            }
            for finding, camera_code in findings_of(session, inspection.id)
        ],
    }


@dataclass(frozen=True)
class InspectionVerification:
    """Whether a signed inspection's stored rows still hash to its signature."""

    inspection_id: int
    signed: bool
    ok: bool
    stored_sha256: str | None
    computed_sha256: str
    problems: tuple[str, ...]

    @property
    def verdict(self) -> str:
        """One line for a person."""
        if self.ok:
            return "verified: the stored record hashes to the signed SHA-256"
        return "NOT verified: " + "; ".join(self.problems)


def verify_inspection(session: Session, inspection_id: int) -> InspectionVerification:
    """Recompute the content hash from the stored rows and compare it with the signed one."""
    inspection = get_inspection(session, inspection_id)
    computed = canonical_sha256(content_document(session, inspection))
    problems = []
    if inspection.status is not InspectionStatus.SIGNED or inspection.content_sha256 is None:
        problems.append(f"inspection {inspection_id} is not signed yet: there is no signature to check")
    elif computed != inspection.content_sha256:
        problems.append(
            f"the stored record hashes to {computed}, not to the signed {inspection.content_sha256}: "
            "it was changed after signing"
        )
    for finding, _ in findings_of(session, inspection_id):
        if finding.snapshot_jpeg is not None and (
            hashlib.sha256(finding.snapshot_jpeg).hexdigest() != finding.snapshot_sha256
        ):
            problems.append(f"finding {finding.id}'s snapshot does not match its stored SHA-256")
    return InspectionVerification(
        inspection_id=inspection_id,
        signed=inspection.status is InspectionStatus.SIGNED,
        ok=not problems,
        stored_sha256=inspection.content_sha256,
        computed_sha256=computed,
        problems=tuple(problems),
    )


def _open_for(session: Session, inspection_id: int, by_user: int, action: str, zone: ZoneInfo) -> Inspection:
    inspection = get_inspection(session, inspection_id)
    if inspection.status is not InspectionStatus.OPEN:
        when = "earlier" if inspection.signed_at is None else _local(inspection.signed_at, zone)
        raise PatrolConflictError(
            f"inspection {inspection_id} was signed by {inspection.signed_name} at {when}: it is read-only"
        )
    if inspection.inspector_id != by_user:
        raise PatrolConflictError(f"inspection {inspection_id} is another inspector's: only they may {action}")
    return inspection


def _local(at: datetime, zone: ZoneInfo) -> str:
    """A time for a person: local, to the minute, with its offset (2026-12-01T10:30+08:00)."""
    return at.astimezone(zone).isoformat(timespec="minutes")


def _summary(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_SUMMARY:
        raise PatrolError(f"a summary has at most {MAX_SUMMARY} characters, not {len(text)}")
    return text


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat(timespec="microseconds")
