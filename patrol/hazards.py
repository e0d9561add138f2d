"""Hazards (隐患 → 整改): found on patrol, in a spot check or from an event, assigned to the school, rectified
before a deadline and verified by the bureau.

open → rectifying (the school works on it) → submitted (with rectification evidence) → closed (verified), or
reopened back to rectifying; the before and after evidence and every step are kept. Overdue hazards are
reminded every ``remind_every_h`` and escalated to the leader on duty every ``escalate_after_h``; an escalation
while nobody is rostered is recorded (``escalated_to_nobody``) and made again, at the same level, as soon as a
leader is on duty.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import JsonValue
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.patrol import HazardConfig
from kernel.announce import announce
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.facts import FleetFacts
from patrol.models import EvidenceStage, HazardSource, HazardStatus, Severity
from patrol.pictures import check_picture
from patrol.roster import on_duty
from patrol.tables import Hazard, HazardAction, HazardEvidence
from patrol.topics import duty_event
from registry.models import Camera, School

log = logging.getLogger(__name__)

MAX_NOTE_CHARS = 2000
ESCALATED = "escalated"
"""The action of an escalation that reached the leader on duty."""
ESCALATED_TO_NOBODY = "escalated_to_nobody"
"""The action of an escalation due while nobody was rostered: made again once a leader is on duty."""
NOT_CLOSED = (HazardStatus.OPEN, HazardStatus.RECTIFYING, HazardStatus.SUBMITTED)
# What can be done next from each state (named in the errors of a step out of order).
NEXT_STEP = {
    HazardStatus.OPEN: "an open hazard can only be started (rectifying)",
    HazardStatus.RECTIFYING: "a rectifying hazard can only be submitted",
    HazardStatus.SUBMITTED: "a submitted hazard can only be verified or reopened",
    HazardStatus.CLOSED: "a closed hazard can only be reopened",
}


@dataclass(frozen=True, slots=True)
class HazardRequest:
    """A request, with an abnormal verdict or finding, to open a hazard: its title (empty: one is made from the
    note), severity and rectification deadline (None: the configured default)."""

    title: str = ""
    severity: Severity = Severity.GENERAL
    deadline: datetime | None = None


def default_deadline(now: datetime, severity: Severity, config: HazardConfig) -> datetime:
    """The rectification deadline of a hazard found at ``now`` when none is given."""
    days = config.major_deadline_days if severity is Severity.MAJOR else config.default_deadline_days
    return now + timedelta(days=days)


def get_hazard(session: Session, hazard_id: int, *, for_update: bool = False) -> Hazard:
    """The hazard with this id (locked for the transaction when ``for_update``)."""
    stmt = select(Hazard).where(Hazard.id == hazard_id)
    if for_update:
        stmt = stmt.with_for_update()
    hazard = session.scalars(stmt).one_or_none()
    if hazard is None:
        raise PatrolNotFoundError(f"no hazard with id {hazard_id}")
    return hazard


def open_hazard(
    session: Session,
    *,
    school_id: int,
    title: str,
    source: HazardSource,
    now: datetime,
    config: HazardConfig,
    camera_id: int | None = None,
    source_id: int | None = None,
    description: str = "",
    severity: Severity = Severity.GENERAL,
    deadline: datetime | None = None,
    by_user: int | None = None,
    before_jpeg: bytes | None = None,
) -> Hazard:
    """Record a new open hazard (and its before picture); announces ``hazard.created`` on commit."""
    title = title.strip()
    if not title:
        raise PatrolError("a hazard needs a title")
    if len(title) > 200:
        raise PatrolError(f"a hazard title has at most 200 characters, not {len(title)}")
    school = session.get(School, school_id)
    if school is None:
        raise PatrolNotFoundError(f"no school with id {school_id}")
    if camera_id is not None:
        camera = session.get(Camera, camera_id)
        if camera is None:
            raise PatrolNotFoundError(f"no camera with id {camera_id}")
        if camera.school_id != school_id:
            raise PatrolError(f"camera {camera.code} is not a camera of school {school.code}")
    if deadline is not None and deadline.tzinfo is None:
        raise PatrolError("the deadline needs a timezone")
    due = deadline or default_deadline(now, severity, config)
    if due <= now:  # both in the offset the deadline was given in, as the person who gave it reads them
        shown, found = due.isoformat(timespec="minutes"), now.astimezone(due.tzinfo).isoformat(timespec="minutes")
        raise PatrolError(f"the deadline {shown} is not after the hazard was found ({found})")
    hazard = Hazard(
        school_id=school_id,
        camera_id=camera_id,
        source=source,
        source_id=source_id,
        title=title,
        description=description,
        severity=severity,
        status=HazardStatus.OPEN,
        deadline=due,
        created_by=by_user,
        created_at=now,
        updated_at=now,
        reopened=0,
        escalation_level=0,
    )
    session.add(hazard)
    session.flush()
    session.add(
        HazardAction(
            hazard_id=hazard.id, action="created", to_status=HazardStatus.OPEN.value, by_user=by_user, at=now
        )
    )
    if before_jpeg is not None:
        add_evidence(session, hazard, EvidenceStage.BEFORE, before_jpeg, "image/jpeg", now=now, by_user=by_user)
    announce(
        session,
        duty_event(
            "hazard.created",
            {
                "hazard_id": hazard.id,
                "school_code": school.code,
                "school_name": school.name,
                "title": title,
                "severity": severity.value,
                "source": source.value,
                "deadline": due.astimezone(UTC).isoformat(),
            },
        ),
    )
    return hazard


def open_hazard_from_event(
    session: Session,
    facts: FleetFacts,
    event_id: int,
    *,
    now: datetime,
    config: HazardConfig,
    by_user: int | None,
    title: str | None = None,
    description: str | None = None,
    severity: Severity | None = None,
    deadline: datetime | None = None,
    before_picture: bytes | None = None,
) -> Hazard:
    """A hazard at the event's school and camera (``source=event``), unless the event has one not yet closed.

    The event's own evidence is not among the fleet facts: the caller may hand a before picture (JPEG or PNG).
    """
    fact = facts.event(session, event_id)
    if fact is None:
        raise PatrolNotFoundError(f"no event with id {event_id}")
    existing = session.scalars(
        select(Hazard).where(
            Hazard.source == HazardSource.EVENT, Hazard.source_id == event_id, Hazard.status.in_(NOT_CLOSED)
        )
    ).first()
    if existing is not None:
        raise PatrolConflictError(
            f"event {event_id} already has hazard {existing.id} ({existing.status.value}): "
            "add to it rather than opening another"
        )
    if severity is None:
        severity = Severity.MAJOR if fact.severity == Severity.MAJOR.value else Severity.GENERAL
    hazard = open_hazard(
        session,
        school_id=fact.school_id,
        camera_id=fact.camera_id,
        title=title or f"{fact.type} at {fact.camera_code}",
        description=fact.detail if description is None else description,
        source=HazardSource.EVENT,
        source_id=event_id,
        severity=severity,
        deadline=deadline,
        now=now,
        config=config,
        by_user=by_user,
    )
    if before_picture is not None:
        upload_evidence(session, hazard, EvidenceStage.BEFORE, before_picture, now=now, by_user=by_user)
    return hazard


def add_evidence(
    session: Session,
    hazard: Hazard,
    stage: EvidenceStage,
    data: bytes,
    content_type: str,
    *,
    now: datetime,
    by_user: int | None,
    note: str = "",
) -> HazardEvidence:
    """Keep a picture of the hazard (before) or of its rectification (after)."""
    if not data:
        raise PatrolError("the evidence file is empty")
    evidence = HazardEvidence(
        hazard_id=hazard.id,
        stage=stage,
        content_type=content_type,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
        note=note,
        uploaded_by=by_user,
        uploaded_at=now,
    )
    session.add(evidence)
    return evidence


def upload_evidence(
    session: Session,
    hazard: Hazard,
    stage: EvidenceStage,
    data: bytes,
    *,
    now: datetime,
    by_user: int | None,
    note: str = "",
) -> HazardEvidence:
    """An uploaded picture: JPEG or PNG (by its magic bytes), at most 5 MiB, logged as an ``evidence`` action.

    Rectification (after) pictures are taken while the hazard is open or rectifying (not once it is submitted
    for verification or closed); pictures of the hazard as found (before) until it is closed.
    """
    content_type = check_picture(data, what="the evidence file", png=True)
    note = _note(note, required=False)
    if stage is EvidenceStage.AFTER and hazard.status not in (HazardStatus.OPEN, HazardStatus.RECTIFYING):
        raise PatrolConflictError(
            f"hazard {hazard.id} is {hazard.status.value}: rectification pictures are added while it is open "
            "or rectifying"
        )
    if hazard.status is HazardStatus.CLOSED:
        raise PatrolConflictError(f"hazard {hazard.id} is closed: reopen it to add pictures")
    evidence = add_evidence(session, hazard, stage, data, content_type, now=now, by_user=by_user, note=note)
    session.add(
        HazardAction(
            hazard_id=hazard.id,
            action="evidence",
            note=f"{stage.value}: {note}" if note else stage.value,
            by_user=by_user,
            at=now,
        )
    )
    hazard.updated_at = now
    return evidence


def start_rectifying(
    session: Session, hazard: Hazard, *, now: datetime, by_user: int | None, note: str = ""
) -> None:
    """open → rectifying: the school has taken the hazard on."""
    _step(
        session,
        hazard,
        "started",
        (HazardStatus.OPEN,),
        HazardStatus.RECTIFYING,
        "an open hazard can be started",
        now=now,
        by_user=by_user,
        note=_note(note, required=False),
    )


def submit(session: Session, hazard: Hazard, *, now: datetime, by_user: int | None, note: str = "") -> None:
    """rectifying → submitted: the school reports the hazard rectified, with at least one after picture taken
    since it last went back to rectifying (a reopened hazard needs new pictures)."""
    if hazard.status is HazardStatus.RECTIFYING:
        since = session.scalar(
            select(func.max(HazardAction.at)).where(
                HazardAction.hazard_id == hazard.id, HazardAction.action == "reopened"
            )
        )
        pictures = select(func.count(HazardEvidence.id)).where(
            HazardEvidence.hazard_id == hazard.id, HazardEvidence.stage == EvidenceStage.AFTER
        )
        if since is not None:
            pictures = pictures.where(HazardEvidence.uploaded_at >= since)
        if not session.scalar(pictures):
            again = " since it was reopened" if since is not None else ""
            raise PatrolConflictError(
                f"hazard {hazard.id} has no rectification (after) picture{again}: upload one before submitting"
            )
    _step(
        session,
        hazard,
        "submitted",
        (HazardStatus.RECTIFYING,),
        HazardStatus.SUBMITTED,
        "a rectifying hazard can be submitted",
        now=now,
        by_user=by_user,
        note=_note(note, required=False),
    )


def verify(session: Session, hazard: Hazard, *, now: datetime, by_user: int | None, note: str = "") -> None:
    """submitted → closed: the bureau has checked the rectification."""
    _step(
        session,
        hazard,
        "verified",
        (HazardStatus.SUBMITTED,),
        HazardStatus.CLOSED,
        "a submitted hazard can be verified",
        now=now,
        by_user=by_user,
        note=_note(note, required=False),
    )
    hazard.closed_at = now


def reopen(
    session: Session,
    hazard: Hazard,
    *,
    now: datetime,
    by_user: int | None,
    note: str,
    deadline: datetime | None = None,
) -> None:
    """submitted or closed → rectifying: the rectification is not accepted (a note says why).

    A new ``deadline`` (after ``now``) starts the reminders and escalations afresh.
    """
    note = _note(note, required=True)
    if deadline is not None:
        if deadline.tzinfo is None:
            raise PatrolError("the deadline needs a timezone")
        if deadline <= now:
            shown, at = (
                deadline.isoformat(timespec="minutes"),
                now.astimezone(deadline.tzinfo).isoformat(timespec="minutes"),
            )
            raise PatrolError(f"the new deadline {shown} is not in the future (now {at})")
    _step(
        session,
        hazard,
        "reopened",
        (HazardStatus.SUBMITTED, HazardStatus.CLOSED),
        HazardStatus.RECTIFYING,
        "a submitted or closed hazard can be reopened",
        now=now,
        by_user=by_user,
        note=note,
    )
    hazard.reopened += 1
    hazard.closed_at = None
    if deadline is not None:
        hazard.deadline = deadline
        hazard.reminded_at = None
        hazard.escalation_level = 0


def add_note(session: Session, hazard: Hazard, *, now: datetime, by_user: int | None, note: str) -> HazardAction:
    """A note on the hazard's history (any state)."""
    action = HazardAction(
        hazard_id=hazard.id, action="note", note=_note(note, required=True), by_user=by_user, at=now
    )
    session.add(action)
    hazard.updated_at = now
    return action


def _note(note: str, *, required: bool) -> str:
    note = note.strip()
    if required and not note:
        raise PatrolError("a note is required (say why)")
    if len(note) > MAX_NOTE_CHARS:
        raise PatrolError(f"a note has at most {MAX_NOTE_CHARS} characters, not {len(note)}")
    return note


def _step(
    session: Session,
    hazard: Hazard,
    action: str,
    allowed: tuple[HazardStatus, ...],
    to: HazardStatus,
    rule: str,
    *,
    now: datetime,
    by_user: int | None,
    note: str,
) -> None:
    """Move ``hazard`` to ``to`` if its status is one of ``allowed``; record and announce the step."""
    current = hazard.status
    if current not in allowed:
        raise PatrolConflictError(f"hazard {hazard.id} is {current.value}: only {rule}; {NEXT_STEP[current]}")
    hazard.status = to
    hazard.updated_at = now
    session.add(
        HazardAction(
            hazard_id=hazard.id,
            action=action,
            from_status=current.value,
            to_status=to.value,
            note=note,
            by_user=by_user,
            at=now,
        )
    )
    school = session.get(School, hazard.school_id)
    announce(
        session,
        duty_event(
            "hazard.status",
            {
                "hazard_id": hazard.id,
                "school_code": school.code if school else None,
                "action": action,
                "from_status": current.value,
                "to_status": to.value,
                "by_user": by_user,
                "note": note,
            },
        ),
    )


@dataclass(frozen=True, slots=True)
class OverdueRule:
    """When an overdue hazard is reminded again and how far it is escalated."""

    remind_every: timedelta
    escalate_after: timedelta

    @classmethod
    def of(cls, config: HazardConfig) -> OverdueRule:
        """The rule of the ``patrol.hazards`` configuration."""
        return cls(timedelta(hours=config.remind_every_h), timedelta(hours=config.escalate_after_h))

    def reminder_due(self, hazard: Hazard, now: datetime) -> bool:
        """Never reminded, or last reminded at least ``remind_every`` ago."""
        return hazard.reminded_at is None or now - hazard.reminded_at >= self.remind_every

    def escalation_level(self, overdue: timedelta) -> int:
        """Level n once overdue for n × ``escalate_after`` (0: escalated once, as soon as it is overdue)."""
        if not self.escalate_after:
            return 1
        return overdue // self.escalate_after


def _waiting_for_a_leader(session: Session, hazard_ids: list[int]) -> set[int]:
    """The hazards among ``hazard_ids`` whose last escalation reached nobody (one query)."""
    if not hazard_ids:
        return set()
    last: dict[int, str] = {}
    for hazard_id, action in session.execute(
        select(HazardAction.hazard_id, HazardAction.action)
        .where(HazardAction.hazard_id.in_(hazard_ids), HazardAction.action.in_((ESCALATED, ESCALATED_TO_NOBODY)))
        .order_by(HazardAction.at, HazardAction.id)
    ):
        last[hazard_id] = action
    return {hazard_id for hazard_id, action in last.items() if action == ESCALATED_TO_NOBODY}


def check_overdue(session: Session, now: datetime, config: HazardConfig) -> int:
    """Remind and escalate hazards not closed whose deadline has passed; the number of reminders and escalations.

    A hazard is reminded (``hazard.overdue``) when never reminded or last reminded ``remind_every_h`` ago, and
    escalated (``hazard.escalated``, to the leader on duty at ``now``) when overdue for ``escalate_after_h`` times
    the next level: a service that was down for days escalates straight to the level due, once. An escalation
    while nobody is rostered names no leader; it is made again at the same level (the level is not raised
    twice) at the first check with a leader on duty. Calling it again with the same ``now`` does nothing more.
    """
    rule = OverdueRule.of(config)
    rows = session.execute(
        select(Hazard, School.code, School.name)
        .join(School, School.id == Hazard.school_id)
        .where(Hazard.status.in_(NOT_CLOSED), Hazard.deadline < now)
        .order_by(Hazard.deadline, Hazard.id)
    ).all()
    if not rows:
        return 0
    duty = on_duty(session, now)
    leader_id, shift_id = (duty.leader_id, duty.shift_id) if duty else (None, None)
    waiting: set[int] = set()
    if leader_id is not None:
        waiting = _waiting_for_a_leader(session, [h.id for h, _, _ in rows if h.escalation_level > 0])
    done = 0
    for hazard, school_code, school_name in rows:
        overdue = now - hazard.deadline
        base: dict[str, JsonValue] = {
            "hazard_id": hazard.id,
            "school_code": school_code,
            "school_name": school_name,
            "title": hazard.title,
            "status": hazard.status.value,
            "deadline": hazard.deadline.astimezone(UTC).isoformat(),
            "hours_overdue": round(overdue.total_seconds() / 3600, 2),
        }
        if rule.reminder_due(hazard, now):
            hazard.reminded_at = now
            session.add(
                HazardAction(
                    hazard_id=hazard.id, action="reminded", note=f"overdue {base['hours_overdue']} h", at=now
                )
            )
            announce(session, duty_event("hazard.overdue", base))
            done += 1
        level = rule.escalation_level(overdue)
        if level > hazard.escalation_level:
            hazard.escalation_level = level
            note = (
                f"level {level}, to leader {leader_id}"
                if leader_id is not None
                else f"level {level}, nobody rostered"
            )
        elif hazard.id in waiting:
            level = hazard.escalation_level
            note = f"level {level}, to leader {leader_id} (nobody was rostered when it was due)"
        else:
            continue
        action = ESCALATED if leader_id is not None else ESCALATED_TO_NOBODY
        session.add(HazardAction(hazard_id=hazard.id, action=action, note=note, at=now))
        announce(
            session,
            duty_event("hazard.escalated", {**base, "level": level, "leader_id": leader_id, "shift_id": shift_id}),
        )
        done += 1
    if done:
        log.info("overdue hazards: %d reminders and escalations", done)
    return done
