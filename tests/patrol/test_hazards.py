"""Hazards: each step and each step out of order, evidence, hazards from events, reminders and escalations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.tables import SafetyEvent
from campuswatch.patrol_facts import StoredFleetFacts
from config.patrol import HazardConfig
from kernel.announce import take_announced
from patrol import hazards
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError, PatrolTooLargeError
from patrol.models import EvidenceStage, HazardSource, HazardStatus, Severity
from patrol.pictures import MAX_PICTURE_BYTES
from patrol.roster import create_shift
from patrol.tables import Hazard, HazardAction, HazardEvidence
from tests.bureau import Bureau

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=ZONE)
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
CONFIG = HazardConfig(remind_every_h=24, escalate_after_h=72)


@pytest.fixture
def session(bureau: Bureau) -> Iterator[Session]:
    with bureau.factory() as s:
        yield s


def _hazard(session: Session, bureau: Bureau, **kwargs: object) -> Hazard:
    fields: dict[str, object] = {
        "school_id": bureau.schools["S11"],
        "title": "Gate left open after hours",
        "source": HazardSource.PATROL,
        "now": NOW,
        "config": CONFIG,
        "by_user": bureau.users["officer1"],
    }
    fields.update(kwargs)
    return hazards.open_hazard(session, **fields)  # type: ignore[arg-type]


def _to_submitted(session: Session, bureau: Bureau, hazard: Hazard) -> None:
    school = bureau.users["school11"]
    hazards.start_rectifying(session, hazard, now=NOW + timedelta(hours=1), by_user=school)
    hazards.upload_evidence(
        session, hazard, EvidenceStage.AFTER, JPEG, now=NOW + timedelta(hours=2), by_user=school
    )
    hazards.submit(session, hazard, now=NOW + timedelta(hours=3), by_user=school, note="lock replaced")


def _actions(session: Session, hazard: Hazard) -> list[tuple[str, str | None, str | None]]:
    rows = session.scalars(
        select(HazardAction).where(HazardAction.hazard_id == hazard.id).order_by(HazardAction.at, HazardAction.id)
    )
    return [(a.action, a.from_status, a.to_status) for a in rows]


def test_a_hazard_is_rectified_submitted_verified_and_every_step_is_kept(session: Session, bureau: Bureau) -> None:
    hazard = _hazard(session, bureau, before_jpeg=JPEG)
    _to_submitted(session, bureau, hazard)
    leader = bureau.users["leader1"]
    hazards.verify(session, hazard, now=NOW + timedelta(hours=4), by_user=leader, note="checked on camera")
    session.commit()
    assert hazard.status is HazardStatus.CLOSED
    assert hazard.closed_at == NOW + timedelta(hours=4)
    assert _actions(session, hazard) == [
        ("created", None, "open"),
        ("started", "open", "rectifying"),
        ("evidence", None, None),
        ("submitted", "rectifying", "submitted"),
        ("verified", "submitted", "closed"),
    ]
    verified = session.scalars(select(HazardAction).where(HazardAction.action == "verified")).one()
    assert (verified.by_user, verified.note) == (leader, "checked on camera")
    stages = session.scalars(select(HazardEvidence.stage).where(HazardEvidence.hazard_id == hazard.id)).all()
    assert sorted(stages) == [EvidenceStage.AFTER, EvidenceStage.BEFORE]
    announced = [(e.type, e.payload.get("to_status")) for e in take_announced(session)]
    assert announced == [
        ("hazard.created", None),
        ("hazard.status", "rectifying"),
        ("hazard.status", "submitted"),
        ("hazard.status", "closed"),
    ]


def test_submitting_needs_an_after_picture_and_a_reopened_hazard_needs_a_new_one(
    session: Session, bureau: Bureau
) -> None:
    hazard = _hazard(session, bureau)
    hazards.start_rectifying(session, hazard, now=NOW, by_user=None)
    hazards.upload_evidence(session, hazard, EvidenceStage.BEFORE, JPEG, now=NOW, by_user=None)
    with pytest.raises(PatrolConflictError, match=rf"hazard {hazard.id} has no rectification \(after\) picture:"):
        hazards.submit(session, hazard, now=NOW, by_user=None)
    hazards.upload_evidence(
        session, hazard, EvidenceStage.AFTER, PNG, now=NOW + timedelta(minutes=1), by_user=None
    )
    hazards.submit(session, hazard, now=NOW + timedelta(minutes=2), by_user=None)
    hazards.reopen(session, hazard, now=NOW + timedelta(minutes=3), by_user=None, note="still broken")
    with pytest.raises(PatrolConflictError, match="since it was reopened"):
        hazards.submit(session, hazard, now=NOW + timedelta(minutes=4), by_user=None)
    hazards.upload_evidence(
        session, hazard, EvidenceStage.AFTER, JPEG, now=NOW + timedelta(minutes=5), by_user=None
    )
    hazards.submit(session, hazard, now=NOW + timedelta(minutes=6), by_user=None)
    assert hazard.status is HazardStatus.SUBMITTED


@pytest.mark.parametrize(
    ("reach", "step", "message"),
    [
        ("open", "verify", "is open: only a submitted hazard can be verified; an open hazard can only be started"),
        (
            "open",
            "submit",
            "is open: only a rectifying hazard can be submitted; an open hazard can only be started",
        ),
        ("open", "reopen", "is open: only a submitted or closed hazard can be reopened"),
        ("rectifying", "start", "is rectifying: only an open hazard can be started; a rectifying hazard can only"),
        ("rectifying", "verify", "is rectifying: only a submitted hazard can be verified"),
        ("submitted", "submit", "is submitted: only a rectifying hazard can be submitted; a submitted hazard can"),
        (
            "closed",
            "verify",
            "is closed: only a submitted hazard can be verified; a closed hazard can only be reop",
        ),
        ("closed", "start", "is closed: only an open hazard can be started"),
    ],
)
def test_steps_out_of_order_name_the_state_and_the_allowed_step(
    session: Session, bureau: Bureau, reach: str, step: str, message: str
) -> None:
    hazard = _hazard(session, bureau)
    if reach != "open":
        hazards.start_rectifying(session, hazard, now=NOW, by_user=None)
    if reach in ("submitted", "closed"):
        hazards.upload_evidence(session, hazard, EvidenceStage.AFTER, JPEG, now=NOW, by_user=None)
        hazards.submit(session, hazard, now=NOW, by_user=None)
    if reach == "closed":
        hazards.verify(session, hazard, now=NOW, by_user=None)
    before = hazard.status
    steps = {
        "start": lambda: hazards.start_rectifying(session, hazard, now=NOW, by_user=None),
        "submit": lambda: hazards.submit(session, hazard, now=NOW, by_user=None),
        "verify": lambda: hazards.verify(session, hazard, now=NOW, by_user=None),
        "reopen": lambda: hazards.reopen(session, hazard, now=NOW, by_user=None, note="why"),
    }
    with pytest.raises(PatrolConflictError, match=f"hazard {hazard.id} {message}"):
        steps[step]()
    assert hazard.status is before


def test_reopening_needs_a_note_counts_and_a_new_deadline_restarts_the_reminders(
    session: Session, bureau: Bureau
) -> None:
    hazard = _hazard(session, bureau)
    _to_submitted(session, bureau, hazard)
    with pytest.raises(PatrolError, match="a note is required"):
        hazards.reopen(session, hazard, now=NOW + timedelta(hours=5), by_user=None, note="  ")
    hazards.reopen(session, hazard, now=NOW + timedelta(hours=5), by_user=None, note="picture is blurred")
    assert (hazard.status, hazard.reopened) == (HazardStatus.RECTIFYING, 1)
    hazards.upload_evidence(session, hazard, EvidenceStage.AFTER, JPEG, now=NOW + timedelta(hours=6), by_user=None)
    hazards.submit(session, hazard, now=NOW + timedelta(hours=6), by_user=None)
    hazards.verify(session, hazard, now=NOW + timedelta(hours=7), by_user=None)
    hazard.reminded_at, hazard.escalation_level = NOW, 2
    new_deadline = NOW + timedelta(days=10)
    with pytest.raises(PatrolError, match=r"is not in the future \(now 2026-12-01T18:00\+08:00\)"):
        hazards.reopen(session, hazard, now=NOW + timedelta(hours=8), by_user=None, note="x", deadline=NOW)
    hazards.reopen(
        session, hazard, now=NOW + timedelta(hours=8), by_user=None, note="gate open again", deadline=new_deadline
    )
    assert (hazard.status, hazard.reopened, hazard.closed_at) == (HazardStatus.RECTIFYING, 2, None)
    session.flush()
    session.refresh(hazard)  # read back what was stored
    assert (hazard.deadline, _reminded(hazard), hazard.escalation_level) == (new_deadline, None, 0)
    reopens = _actions(session, hazard).count(("reopened", "submitted", "rectifying"))
    assert reopens == 1 and ("reopened", "closed", "rectifying") in _actions(session, hazard)


def _reminded(hazard: Hazard) -> datetime | None:
    return hazard.reminded_at


def test_notes_are_kept_in_any_state_and_need_text(session: Session, bureau: Bureau) -> None:
    hazard = _hazard(session, bureau)
    _to_submitted(session, bureau, hazard)
    hazards.verify(session, hazard, now=NOW + timedelta(hours=4), by_user=None)
    note = hazards.add_note(
        session, hazard, now=NOW + timedelta(hours=5), by_user=bureau.users["leader1"], note=" ok "
    )
    assert (note.action, note.note, note.from_status) == ("note", "ok", None)
    with pytest.raises(PatrolError, match="a note is required"):
        hazards.add_note(session, hazard, now=NOW, by_user=None, note="")
    with pytest.raises(PatrolError, match="at most 2000 characters"):
        hazards.add_note(session, hazard, now=NOW, by_user=None, note="x" * 2001)


def test_evidence_is_a_jpeg_or_png_not_empty_not_too_big_and_fits_the_state(
    session: Session, bureau: Bureau
) -> None:
    hazard = _hazard(session, bureau)
    png = hazards.upload_evidence(
        session, hazard, EvidenceStage.BEFORE, PNG, now=NOW, by_user=None, note="as found"
    )
    assert png.content_type == "image/png" and len(png.sha256) == 64
    with pytest.raises(PatrolError, match="is not a JPEG or PNG picture"):
        hazards.upload_evidence(session, hazard, EvidenceStage.BEFORE, b"GIF89a....", now=NOW, by_user=None)
    with pytest.raises(PatrolError, match="is empty"):
        hazards.upload_evidence(session, hazard, EvidenceStage.BEFORE, b"", now=NOW, by_user=None)
    too_big = JPEG + b"\x00" * MAX_PICTURE_BYTES
    with pytest.raises(PatrolTooLargeError, match="larger than 5 MiB"):
        hazards.upload_evidence(session, hazard, EvidenceStage.BEFORE, too_big, now=NOW, by_user=None)
    _to_submitted(session, bureau, hazard)
    with pytest.raises(
        PatrolConflictError, match="is submitted: rectification pictures are added while it is open"
    ):
        hazards.upload_evidence(session, hazard, EvidenceStage.AFTER, JPEG, now=NOW, by_user=None)
    hazards.verify(session, hazard, now=NOW + timedelta(hours=4), by_user=None)
    with pytest.raises(PatrolConflictError, match="is closed: reopen it"):
        hazards.upload_evidence(session, hazard, EvidenceStage.BEFORE, JPEG, now=NOW, by_user=None)


def test_a_new_hazard_is_checked(session: Session, bureau: Bureau) -> None:
    with pytest.raises(PatrolError, match="is not a camera of school S11"):
        _hazard(session, bureau, camera_id=bureau.cameras["S12-GATE"])
    with pytest.raises(PatrolNotFoundError, match="no school with id 999"):
        _hazard(session, bureau, school_id=999)
    with pytest.raises(
        PatrolError, match=r"2026-12-01T09:59\+08:00 is not after the hazard was found \(2026-12-01T10:00\+08:00\)"
    ):
        _hazard(session, bureau, deadline=NOW - timedelta(minutes=1))
    major = _hazard(session, bureau, severity=Severity.MAJOR)
    assert major.deadline == NOW + timedelta(days=CONFIG.major_deadline_days)


def _event(session: Session, bureau: Bureau, camera: str, severity: str = "major") -> int:
    event = SafetyEvent(
        camera_id=bureau.cameras[camera],
        school_id=bureau.schools[camera.split("-", maxsplit=1)[0]],
        type="intrusion",
        rule="after-hours",
        severity=severity,
        started_at=NOW - timedelta(minutes=30),
        detail="2 people in yard",
    )
    session.add(event)
    session.flush()
    return event.id


def test_a_hazard_from_an_event_takes_its_school_camera_and_severity(session: Session, bureau: Bureau) -> None:
    event_id = _event(session, bureau, "S21-YARD")
    facts = StoredFleetFacts()
    hazard = hazards.open_hazard_from_event(
        session, facts, event_id, now=NOW, config=CONFIG, by_user=None, before_picture=PNG
    )
    assert (hazard.source, hazard.source_id) == (HazardSource.EVENT, event_id)
    assert (hazard.school_id, hazard.camera_id) == (bureau.schools["S21"], bureau.cameras["S21-YARD"])
    assert (hazard.severity, hazard.title, hazard.description) == (
        Severity.MAJOR,
        "intrusion at S21-YARD",
        "2 people in yard",
    )
    before = session.scalars(select(HazardEvidence).where(HazardEvidence.hazard_id == hazard.id)).one()
    assert (before.stage, before.content_type) == (EvidenceStage.BEFORE, "image/png")
    with pytest.raises(PatrolConflictError, match=f"event {event_id} already has hazard {hazard.id} \\(open\\)"):
        hazards.open_hazard_from_event(session, facts, event_id, now=NOW, config=CONFIG, by_user=None)
    with pytest.raises(PatrolNotFoundError, match="no event with id 4242"):
        hazards.open_hazard_from_event(session, facts, 4242, now=NOW, config=CONFIG, by_user=None)


def _rostered(session: Session, bureau: Bureau, start: datetime, hours: int, leader: str) -> None:
    create_shift(
        session,
        starts_at=start,
        ends_at=start + timedelta(hours=hours),
        leader_id=bureau.users[leader],
        officer_ids=[bureau.users["officer1"]],
        now=NOW,
        zone=ZONE,
    )


def test_overdue_hazards_are_reminded_and_escalated_at_the_given_times(session: Session, bureau: Bureau) -> None:
    deadline = NOW + timedelta(days=1)
    hazard = _hazard(session, bureau, deadline=deadline)
    closed = _hazard(session, bureau, deadline=deadline, title="closed already")
    _to_submitted(session, bureau, closed)
    hazards.verify(session, closed, now=NOW + timedelta(hours=4), by_user=None)
    _rostered(session, bureau, deadline + timedelta(hours=60), 24, "leader2")
    take_announced(session)

    def check(hours: float) -> list[tuple[str, object]]:
        done = hazards.check_overdue(session, deadline + timedelta(hours=hours), CONFIG)
        announced = take_announced(session)
        assert done == len(announced)  # one announcement per reminder or escalation counted
        return [(e.type, e.payload.get("level", e.payload["hours_overdue"])) for e in announced]

    assert check(0) == []  # at the deadline exactly: not overdue yet
    assert check(1) == [("hazard.overdue", 1.0)]
    assert check(1) == []  # the same now again: nothing more
    assert check(20) == []  # reminded 19 h ago
    assert check(25) == [("hazard.overdue", 25.0)]
    assert check(72) == [("hazard.overdue", 72.0), ("hazard.escalated", 1)]
    assert check(72) == []
    assert check(100) == [("hazard.overdue", 100.0)]
    assert (hazard.escalation_level, hazard.reminded_at) == (1, deadline + timedelta(hours=100))
    escalated = session.scalars(select(HazardAction).where(HazardAction.action == "escalated")).one()
    assert escalated.note == f"level 1, to leader {bureau.users['leader2']}"
    assert _actions(session, closed)[-1][0] == "verified"  # closed hazards are left alone


def test_escalation_names_the_leader_on_duty_or_nobody(session: Session, bureau: Bureau) -> None:
    deadline = NOW + timedelta(hours=1)
    hazard = _hazard(session, bureau, deadline=deadline)
    take_announced(session)
    at = deadline + timedelta(hours=72)
    assert hazards.check_overdue(session, at, CONFIG) == 2
    escalated = [e for e in take_announced(session) if e.type == "hazard.escalated"]
    assert escalated[0].payload["leader_id"] is None and escalated[0].payload["school_code"] == "S11"
    assert _actions(session, hazard)[-1][0] == "escalated_to_nobody"
    _rostered(session, bureau, at + timedelta(hours=70), 12, "leader1")
    # The next level is due with a leader on duty: escalated to them (not the waiting level 1 as well).
    assert hazards.check_overdue(session, at + timedelta(hours=72), CONFIG) == 2
    escalated = [e for e in take_announced(session) if e.type == "hazard.escalated"]
    assert [(e.payload["leader_id"], e.payload["level"]) for e in escalated] == [(bureau.users["leader1"], 2)]
    assert hazard.escalation_level == 2


def test_an_escalation_to_nobody_is_made_again_once_a_leader_is_on_duty(session: Session, bureau: Bureau) -> None:
    deadline = NOW + timedelta(hours=1)
    hazard = _hazard(session, bureau, deadline=deadline)
    take_announced(session)
    due = deadline + timedelta(hours=72)
    assert hazards.check_overdue(session, due, CONFIG) == 2  # reminded; level 1 to nobody
    assert hazard.escalation_level == 1
    take_announced(session)
    assert hazards.check_overdue(session, due + timedelta(hours=1), CONFIG) == 0  # still nobody: nothing again
    _rostered(session, bureau, due + timedelta(hours=2), 12, "leader2")
    assert hazards.check_overdue(session, due + timedelta(hours=1, minutes=59), CONFIG) == 0  # not on duty yet
    on_duty = due + timedelta(hours=2)
    assert hazards.check_overdue(session, on_duty, CONFIG) == 1
    [again] = take_announced(session)
    assert again.type == "hazard.escalated"
    assert (again.payload["leader_id"], again.payload["level"]) == (bureau.users["leader2"], 1)
    assert hazard.escalation_level == 1  # the same level, not raised twice
    escalations = session.scalars(
        select(HazardAction)
        .where(HazardAction.hazard_id == hazard.id, HazardAction.action.like("escalated%"))
        .order_by(HazardAction.at, HazardAction.id)
    ).all()
    assert [(a.action, a.note, a.at) for a in escalations] == [
        ("escalated_to_nobody", "level 1, nobody rostered", due),
        (
            "escalated",
            f"level 1, to leader {bureau.users['leader2']} (nobody was rostered when it was due)",
            on_duty,
        ),
    ]
    assert hazards.check_overdue(session, on_duty + timedelta(hours=1), CONFIG) == 0  # once only
    assert take_announced(session) == []


def test_a_service_down_for_days_escalates_straight_to_the_level_due_once(
    session: Session, bureau: Bureau
) -> None:
    deadline = NOW + timedelta(hours=1)
    hazard = _hazard(session, bureau, deadline=deadline)
    submitted = _hazard(session, bureau, deadline=deadline, title="waiting for verification")
    _to_submitted(session, bureau, submitted)
    take_announced(session)
    assert hazards.check_overdue(session, deadline + timedelta(days=7.5), CONFIG) == 4
    assert (hazard.escalation_level, submitted.escalation_level) == (2, 2)
    assert [e.type for e in take_announced(session)].count("hazard.escalated") == 2


def test_escalating_at_once_when_escalate_after_is_zero(session: Session, bureau: Bureau) -> None:
    config = HazardConfig(remind_every_h=24, escalate_after_h=0)
    deadline = NOW + timedelta(hours=1)
    hazard = _hazard(session, bureau, deadline=deadline)
    assert hazards.check_overdue(session, deadline + timedelta(minutes=1), config) == 2
    assert hazards.check_overdue(session, deadline + timedelta(hours=200), config) == 1  # reminded, not escalated
    assert hazard.escalation_level == 1
