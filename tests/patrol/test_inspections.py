"""Inspections: random ones only for drawn schools, the wall queue, findings (and hazards), signing, tampering."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from campuswatch.patrol_facts import StoredFleetFacts
from kernel.db import session_scope
from patrol import inspections
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.hazards import HazardRequest
from patrol.inspections import (
    add_finding,
    content_document,
    inspection_cameras,
    set_wall,
    sign_inspection,
    start_inspection,
    verify_inspection,
    walls_of,
)
from patrol.models import (
    EvidenceStage,
    HazardSource,
    HazardStatus,
    InspectionMethod,
    InspectionStatus,
    QuotaPeriod,
    Severity,
    Takeover,
    Verdict,
)
from patrol.spot_check_quotas import create_quota
from patrol.spot_checks import canonical_sha256, draw_for_period
from patrol.tables import Hazard, HazardEvidence, Inspection, InspectionFinding, VideoWall
from tests.bureau import Bureau

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
JPEG = b"\xff\xd8\xff\xe0" + b"picture" * 10


def _setup(session: Session, bureau: Bureau) -> tuple[int, list[str], int, int]:
    """A daily draw of two schools and two walls: (draw id, drawn schools, wall id, other wall id)."""
    quota = create_quota(session, name="daily", period=QuotaPeriod.DAY, min_count=2, max_count=2, seed=3)
    draw, _ = draw_for_period(
        session, quota, date(2026, 12, 1), NOW, StoredFleetFacts(), None, 30, timezone=ZoneInfo("Asia/Shanghai")
    )
    walls = [VideoWall(name=f"wall {n}", layout="4", takeover=Takeover.TILE) for n in (1, 2)]
    session.add_all(walls)
    session.flush()
    return draw.id, [str(c) for c in draw.schools], walls[0].id, walls[1].id


def test_random_inspections_need_a_drawn_school_once_per_draw(bureau: Bureau) -> None:
    inspector = bureau.users["inspector"]
    with session_scope(bureau.factory) as session:
        draw_id, drawn, _, _ = _setup(session, bureau)
        undrawn = next(code for code in sorted(bureau.schools) if code not in drawn)
        start = {"method": InspectionMethod.RANDOM, "inspector_id": inspector, "now": NOW}
        with pytest.raises(PatrolError, match="needs the draw"):
            start_inspection(session, school_code=drawn[0], **start)  # type: ignore[arg-type]
        with pytest.raises(PatrolError, match=f"school {undrawn} is not in draw {draw_id}"):
            start_inspection(session, school_code=undrawn, draw_id=draw_id, **start)  # type: ignore[arg-type]
        with pytest.raises(PatrolNotFoundError, match="no spot-check draw"):
            start_inspection(session, school_code=drawn[0], draw_id=draw_id + 9, **start)  # type: ignore[arg-type]
        with pytest.raises(PatrolNotFoundError, match="no school"):
            start_inspection(session, school_code="S99", draw_id=draw_id, **start)  # type: ignore[arg-type]
        first = start_inspection(session, school_code=drawn[0], draw_id=draw_id, **start)  # type: ignore[arg-type]
        assert (
            first.status is InspectionStatus.OPEN and first.draw_id == draw_id and first.inspector_id == inspector
        )
        with pytest.raises(PatrolConflictError, match=f"has inspection {first.id} already"):
            start_inspection(session, school_code=drawn[0], draw_id=draw_id, **start)  # type: ignore[arg-type]
        with pytest.raises(PatrolError, match="only a random inspection belongs to a draw"):
            start_inspection(
                session,
                school_code=undrawn,
                method=InspectionMethod.COVERT,
                inspector_id=inspector,
                now=NOW,
                draw_id=draw_id,
            )
        directed = start_inspection(
            session, school_code=undrawn, method=InspectionMethod.DIRECTED, inspector_id=inspector, now=NOW
        )
        assert directed.draw_id is None
        cameras = inspection_cameras(session, directed)
        assert [c.code for c in cameras] == [f"{undrawn}-{s}" for s in ("CORR", "DORM", "GATE", "YARD")]


def test_a_concurrent_second_start_of_a_drawn_school_is_the_same_conflict(
    bureau: Bureau, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(bureau.factory) as session:
        draw_id, drawn, wall_id, _ = _setup(session, bureau)
    school_id = bureau.schools[drawn[0]]
    checked = inspections._inspection_of_draw
    racer: list[int] = []

    def start_in_between(session: Session, draw_id: int, school_id: int) -> int | None:
        """The first check finds nothing, and another inspector's start commits right after it."""
        if racer:
            return checked(session, draw_id, school_id)
        with session_scope(bureau.factory) as other:
            other.add(
                Inspection(
                    school_id=school_id,
                    draw_id=draw_id,
                    method=InspectionMethod.RANDOM,
                    inspector_id=bureau.users["leader1"],
                    status=InspectionStatus.OPEN,
                    started_at=NOW,
                )
            )
            other.flush()
            racer.append(other.scalars(select(Inspection.id).where(Inspection.draw_id == draw_id)).one())
        return None

    monkeypatch.setattr(inspections, "_inspection_of_draw", start_in_between)
    with session_scope(bureau.factory) as session:
        with pytest.raises(PatrolConflictError) as refused:
            start_inspection(
                session,
                school_code=drawn[0],
                method=InspectionMethod.RANDOM,
                inspector_id=bureau.users["inspector"],
                now=NOW,
                draw_id=draw_id,
                wall_id=wall_id,
            )
        assert str(refused.value) == f"school {drawn[0]} of draw {draw_id} has inspection {racer[0]} already"
        # The session is still usable and nothing of the refused start is left: the wall stays free.
        assert session.scalar(select(func.count(Inspection.id)).where(Inspection.school_id == school_id)) == 1
        wall = session.get(VideoWall, wall_id)
        assert wall is not None and wall.inspection_id is None


def test_the_wall_shows_one_open_inspection_and_is_freed_by_signing(bureau: Bureau) -> None:
    inspector, leader = bureau.users["inspector"], bureau.users["leader1"]
    with session_scope(bureau.factory) as session:
        draw_id, drawn, wall_id, other_wall = _setup(session, bureau)
        first = start_inspection(
            session,
            school_code=drawn[0],
            method=InspectionMethod.RANDOM,
            inspector_id=inspector,
            now=NOW,
            draw_id=draw_id,
            wall_id=wall_id,
        )
        wall = session.get(VideoWall, wall_id)
        assert wall is not None and wall.inspection_id == first.id
        with pytest.raises(PatrolConflictError, match=f"wall {wall_id} .* shows open inspection {first.id}"):
            start_inspection(
                session,
                school_code=drawn[1],
                method=InspectionMethod.RANDOM,
                inspector_id=leader,
                now=NOW,
                draw_id=draw_id,
                wall_id=wall_id,
            )
        with pytest.raises(PatrolNotFoundError, match="no wall"):
            set_wall(session, first.id, wall_id=wall_id + 100, by_user=inspector)
        with pytest.raises(PatrolConflictError, match="only they may move it"):
            set_wall(session, first.id, wall_id=other_wall, by_user=leader)
        set_wall(session, first.id, wall_id=other_wall, by_user=inspector)  # moved: the first wall's tour resumes
        assert [w.id for w in walls_of(session, first.id)] == [other_wall]
        assert wall.inspection_id is None
        set_wall(session, first.id, wall_id=None, by_user=inspector)
        assert walls_of(session, first.id) == []
        set_wall(session, first.id, wall_id=wall_id, by_user=inspector)
        add_finding(session, first.id, by_user=inspector, now=NOW, verdict=Verdict.NORMAL)
        sign_inspection(session, first.id, by_user=inspector, signed_name="Inspector Wang", now=NOW)
        assert wall.inspection_id is None
        second = start_inspection(  # the wall is free again
            session,
            school_code=drawn[1],
            method=InspectionMethod.RANDOM,
            inspector_id=leader,
            now=NOW,
            draw_id=draw_id,
            wall_id=wall_id,
        )
        assert wall.inspection_id == second.id
        # A wall still naming a signed inspection (e.g. cleared by hand) does not block a new one.
        session.execute(update(VideoWall).where(VideoWall.id == other_wall).values(inspection_id=first.id))
        set_wall(session, second.id, wall_id=other_wall, by_user=leader)
        assert [w.id for w in walls_of(session, second.id)] == [other_wall]


def test_findings_check_their_camera_and_snapshot_and_may_open_a_hazard(bureau: Bureau) -> None:
    inspector = bureau.users["inspector"]
    with session_scope(bureau.factory) as session:
        inspection = start_inspection(
            session, school_code="S11", method=InspectionMethod.VIDEO, inspector_id=inspector, now=NOW
        )
        with pytest.raises(PatrolError, match="camera S21-GATE is not a camera of the inspected school"):
            add_finding(
                session, inspection.id, by_user=inspector, now=NOW, verdict=Verdict.NORMAL, camera_code="S21-GATE"
            )
        with pytest.raises(PatrolNotFoundError, match="no camera"):
            add_finding(
                session, inspection.id, by_user=inspector, now=NOW, verdict=Verdict.NORMAL, camera_code="X"
            )
        with pytest.raises(PatrolError, match="send a JPEG"):
            add_finding(
                session,
                inspection.id,
                by_user=inspector,
                now=NOW,
                verdict=Verdict.NORMAL,
                snapshot_jpeg=b"\x89PNG....",
            )
        with pytest.raises(PatrolError, match="empty"):
            add_finding(
                session, inspection.id, by_user=inspector, now=NOW, verdict=Verdict.NORMAL, snapshot_jpeg=b""
            )
        with pytest.raises(PatrolError, match="only an abnormal finding opens a hazard"):
            add_finding(
                session, inspection.id, by_user=inspector, now=NOW, verdict=Verdict.NORMAL, hazard=HazardRequest()
            )
        with pytest.raises(PatrolConflictError, match="only they may add findings"):
            add_finding(session, inspection.id, by_user=bureau.users["leader1"], now=NOW, verdict=Verdict.NORMAL)
        school_wide = add_finding(
            session, inspection.id, by_user=inspector, now=NOW, verdict=Verdict.NORMAL, note=" ok "
        )
        assert school_wide.camera_id is None and school_wide.note == "ok" and school_wide.hazard_id is None
        abnormal = add_finding(
            session,
            inspection.id,
            by_user=inspector,
            now=NOW + timedelta(minutes=2),
            verdict=Verdict.ABNORMAL,
            camera_code="S11-GATE",
            note="gate left open, no guard",
            snapshot_jpeg=JPEG,
            hazard=HazardRequest(severity=Severity.MAJOR),
        )
        hazard = session.get(Hazard, abnormal.hazard_id)
        assert hazard is not None
        assert (hazard.source, hazard.source_id, hazard.camera_id) == (
            HazardSource.SPOT_CHECK,
            abnormal.id,
            bureau.cameras["S11-GATE"],
        )
        assert hazard.title == "gate left open, no guard" and hazard.status is HazardStatus.OPEN
        assert hazard.deadline == NOW + timedelta(minutes=2, days=2)  # major: two days by default
        evidence = session.scalars(select(HazardEvidence).where(HazardEvidence.hazard_id == hazard.id)).one()
        assert evidence.stage is EvidenceStage.BEFORE and evidence.data == JPEG


def test_signing_seals_the_content_and_a_tampered_row_shows(bureau: Bureau) -> None:
    inspector = bureau.users["inspector"]
    signed_at = NOW + timedelta(minutes=30)
    with session_scope(bureau.factory) as session:
        inspection = start_inspection(
            session, school_code="S12", method=InspectionMethod.COVERT, inspector_id=inspector, now=NOW
        )
        inspection_id = inspection.id
        with pytest.raises(PatrolError, match="no findings"):
            sign_inspection(session, inspection_id, by_user=inspector, signed_name="Wang", now=signed_at)
        add_finding(
            session,
            inspection_id,
            by_user=inspector,
            now=NOW,
            verdict=Verdict.NORMAL,
            camera_code="S12-GATE",
            snapshot_jpeg=JPEG,
        )
        add_finding(
            session, inspection_id, by_user=inspector, now=NOW, verdict=Verdict.ABNORMAL, note="dorm door open"
        )
        with pytest.raises(PatrolConflictError, match="only they may sign"):
            sign_inspection(
                session, inspection_id, by_user=bureau.users["admin"], signed_name="Admin", now=signed_at
            )
        with pytest.raises(PatrolError, match="needs the inspector's name"):
            sign_inspection(session, inspection_id, by_user=inspector, signed_name="  ", now=signed_at)
        sign_inspection(
            session,
            inspection_id,
            by_user=inspector,
            signed_name=" 王督导 ",
            now=signed_at,
            summary="two findings",
        )
    with session_scope(bureau.factory) as session:
        stored = session.get(Inspection, inspection_id)
        assert stored is not None and stored.status is InspectionStatus.SIGNED
        assert (stored.signed_name, stored.signed_at, stored.summary) == ("王督导", signed_at, "two findings")
        document = content_document(session, stored)
        assert stored.content_sha256 == canonical_sha256(document)
        assert [(f["camera_code"], f["verdict"]) for f in document["findings"]] == [
            ("S12-GATE", "normal"),
            (None, "abnormal"),
        ]
        assert document["signed_at"] == "2026-12-01T02:30:00.000000+00:00" and document["method"] == "covert"
        result = verify_inspection(session, inspection_id)
        assert result.ok and result.signed and result.verdict.startswith("verified"), result.verdict
        for change in (
            lambda: add_finding(session, inspection_id, by_user=inspector, now=signed_at, verdict=Verdict.NORMAL),
            lambda: sign_inspection(session, inspection_id, by_user=inspector, signed_name="Wang", now=signed_at),
            lambda: set_wall(session, inspection_id, wall_id=None, by_user=inspector),
        ):
            with pytest.raises(  # the time for a person: local, with its offset
                PatrolConflictError,
                match=rf"inspection {inspection_id} was signed by 王督导 at 2026-12-01T10:30\+08:00: it is read-",
            ):
                change()
        findings = session.scalars(
            select(InspectionFinding.id)
            .where(InspectionFinding.inspection_id == inspection_id)
            .order_by(InspectionFinding.id)
        ).all()
    tampering = (
        update(InspectionFinding).where(InspectionFinding.id == findings[1]).values(note="dorm door closed"),
        update(InspectionFinding).where(InspectionFinding.id == findings[0]).values(verdict=Verdict.ABNORMAL),
        update(InspectionFinding).where(InspectionFinding.id == findings[0]).values(snapshot_jpeg=JPEG + b"x"),
        update(Inspection).where(Inspection.id == inspection_id).values(signed_name="someone else"),
        update(Inspection).where(Inspection.id == inspection_id).values(started_at=NOW - timedelta(days=1)),
    )
    for statement in tampering:
        with bureau.factory() as session:  # an edit straight in the database, rolled back afterwards
            session.execute(statement)
            result = verify_inspection(session, inspection_id)
            assert not result.ok and "changed after signing" in result.verdict, result.verdict
            session.rollback()
    with bureau.factory() as session:
        session.execute(
            update(InspectionFinding)
            .where(InspectionFinding.id == findings[0])
            .values(snapshot_jpeg=b"\xff\xd8\xffother")
        )
        result = verify_inspection(session, inspection_id)
        assert f"finding {findings[0]}'s snapshot does not match" in result.verdict
        session.rollback()
    with bureau.factory() as session:
        assert verify_inspection(session, inspection_id).ok


def test_an_open_inspection_does_not_verify(bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        inspection = start_inspection(
            session,
            school_code="S13",
            method=InspectionMethod.LEAD,
            inspector_id=bureau.users["inspector"],
            now=NOW,
        )
        result = verify_inspection(session, inspection.id)
        assert not result.signed and not result.ok and "not signed yet" in result.verdict
        with pytest.raises(PatrolNotFoundError, match="no inspection with id"):
            verify_inspection(session, inspection.id + 1)
