"""Hazards (隐患 → 整改): found on patrol, in a spot check or from an event, assigned to the school, rectified
before a deadline and verified by the bureau.

open → rectifying (the school works on it) → submitted (with rectification evidence) → closed (verified), or
reopened back to rectifying; the before and after evidence and every step are kept.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from config.patrol import HazardConfig
from kernel.announce import announce
from patrol.errors import PatrolError, PatrolNotFoundError
from patrol.models import EvidenceStage, HazardSource, HazardStatus, Severity
from patrol.tables import Hazard, HazardAction, HazardEvidence
from patrol.topics import duty_event
from registry.models import School

JPEG_MAGIC = b"\xff\xd8\xff"


def default_deadline(now: datetime, severity: Severity, config: HazardConfig) -> datetime:
    """The rectification deadline of a hazard found at ``now`` when none is given."""
    days = config.major_deadline_days if severity is Severity.MAJOR else config.default_deadline_days
    return now + timedelta(days=days)


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
    due = deadline or default_deadline(now, severity, config)
    if due <= now:
        raise PatrolError(f"the deadline {due.isoformat()} is not after the hazard was found ({now.isoformat()})")
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
                "deadline": due.isoformat(),
            },
        ),
    )
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
