"""The duty roster: shifts with duty officers and a leader on duty, who is on duty now, handover notes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from patrol.tables import DutyShift, DutyShiftOfficer


@dataclass(frozen=True, slots=True)
class OnDuty:
    """Who is on duty at one time."""

    shift_id: int
    label: str
    starts_at: datetime
    ends_at: datetime
    leader_id: int
    officer_ids: tuple[int, ...]


def shift_at(session: Session, at: datetime) -> DutyShift | None:
    """The shift on duty at ``at`` (shifts do not overlap), or None if nobody is rostered."""
    return session.scalars(
        select(DutyShift)
        .where(DutyShift.starts_at <= at, DutyShift.ends_at > at)
        .order_by(DutyShift.starts_at.desc())
        .limit(1)
    ).first()


def on_duty(session: Session, at: datetime) -> OnDuty | None:
    """The shift, leader and officers on duty at ``at``."""
    shift = shift_at(session, at)
    if shift is None:
        return None
    officers = session.scalars(
        select(DutyShiftOfficer.user_id)
        .where(DutyShiftOfficer.shift_id == shift.id)
        .order_by(DutyShiftOfficer.position)
    )
    return OnDuty(shift.id, shift.label, shift.starts_at, shift.ends_at, shift.leader_id, tuple(officers))
