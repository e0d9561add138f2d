"""The duty roster: shifts with duty officers and a leader on duty, who is on duty now, handover notes.

A shift covers ``[starts_at, ends_at)`` (a day shift 08:00–20:00 is no longer on duty at 20:00); shifts never
overlap and may cross midnight. Who may be rostered (roles, active accounts) is checked by the caller, which
knows the users; this module deals in user ids.

A patrol task belongs to the shift on duty when its window opens. Rostering, changing or removing a shift
hands the tasks not open yet to the shift that covers their window's start then (none where nobody is
rostered); tasks already open keep theirs, as the record of who had them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.models import TaskStatus
from patrol.tables import DutyShift, DutyShiftOfficer, HandoverNote, PatrolTask

MAX_SHIFT = timedelta(hours=48)
MAX_HANDOVER_CHARS = 4000


def local_time(at: datetime, zone: ZoneInfo) -> str:
    """An instant as people read it in a message: local time with its offset, e.g. 2026-12-01T11:30+08:00."""
    return at.astimezone(zone).isoformat(timespec="minutes")


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


def next_shift(session: Session, at: datetime) -> DutyShift | None:
    """The first shift that starts after ``at``."""
    return session.scalars(
        select(DutyShift).where(DutyShift.starts_at > at).order_by(DutyShift.starts_at).limit(1)
    ).first()


def shift_after(session: Session, shift: DutyShift) -> DutyShift | None:
    """The shift that takes over from ``shift``: the first one starting at or after its end."""
    return session.scalars(
        select(DutyShift).where(DutyShift.starts_at >= shift.ends_at).order_by(DutyShift.starts_at).limit(1)
    ).first()


def get_shift(session: Session, shift_id: int) -> DutyShift:
    """The shift with this id."""
    shift = session.get(DutyShift, shift_id)
    if shift is None:
        raise PatrolNotFoundError(f"no shift with id {shift_id}")
    return shift


def officers_of(session: Session, shift_ids: Iterable[int]) -> dict[int, list[int]]:
    """The officer ids of each shift, in call order (one query for all of them)."""
    ids = list(shift_ids)
    found: dict[int, list[int]] = defaultdict(list)
    if not ids:
        return found
    rows = session.execute(
        select(DutyShiftOfficer.shift_id, DutyShiftOfficer.user_id)
        .where(DutyShiftOfficer.shift_id.in_(ids))
        .order_by(DutyShiftOfficer.shift_id, DutyShiftOfficer.position)
    )
    for shift_id, user_id in rows:
        found[shift_id].append(user_id)
    return found


def people_of(session: Session, shift: DutyShift) -> set[int]:
    """The leader and officers of ``shift``."""
    return {shift.leader_id, *officers_of(session, [shift.id]).get(shift.id, [])}


def shifts_between(session: Session, start: datetime, end: datetime, *, limit: int = 1000) -> list[DutyShift]:
    """Shifts that overlap ``[start, end)``, in time order."""
    return list(
        session.scalars(
            select(DutyShift)
            .where(DutyShift.starts_at < end, DutyShift.ends_at > start)
            .order_by(DutyShift.starts_at)
            .limit(limit)
        )
    )


def _check_times(starts_at: datetime, ends_at: datetime) -> None:
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise PatrolError("shift times need a timezone (ISO 8601 with an offset, e.g. +08:00)")
    if ends_at <= starts_at:
        raise PatrolError(
            f"a shift ends after it starts (ends {ends_at.isoformat()}, starts {starts_at.isoformat()})"
        )
    if ends_at - starts_at > MAX_SHIFT:
        raise PatrolError(f"a shift lasts at most {MAX_SHIFT.total_seconds() / 3600:g} hours")


def _check_people(leader_id: int, officer_ids: Sequence[int]) -> None:
    if not officer_ids:
        raise PatrolError("a shift needs at least one duty officer")
    if len(set(officer_ids)) != len(officer_ids):
        raise PatrolError("a duty officer is listed twice on the shift")
    if leader_id in officer_ids:
        raise PatrolError("the leader on duty is not also one of the shift's duty officers")


def overlapping(
    session: Session, starts_at: datetime, ends_at: datetime, *, exclude: int | None = None
) -> DutyShift | None:
    """A shift that overlaps ``[starts_at, ends_at)`` (other than ``exclude``), or None."""
    stmt = select(DutyShift).where(DutyShift.starts_at < ends_at, DutyShift.ends_at > starts_at)
    if exclude is not None:
        stmt = stmt.where(DutyShift.id != exclude)
    return session.scalars(stmt.order_by(DutyShift.starts_at).limit(1)).first()


def _describe(shift: DutyShift, zone: ZoneInfo) -> str:
    label = f" ({shift.label})" if shift.label else ""
    return f"shift {shift.id}{label}, {local_time(shift.starts_at, zone)} to {local_time(shift.ends_at, zone)}"


def assign_unopened_tasks(session: Session, now: datetime) -> int:
    """Give each pending task without a shift whose window opens after ``now`` the shift rostered at its window's
    start, where there is one (one statement); the number of tasks given a shift."""
    covering = (
        select(DutyShift.id)
        .where(DutyShift.starts_at <= PatrolTask.window_start, DutyShift.ends_at > PatrolTask.window_start)
        .order_by(DutyShift.starts_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    assigned = session.execute(
        update(PatrolTask)
        .where(
            PatrolTask.shift_id.is_(None),
            PatrolTask.status == TaskStatus.PENDING,
            PatrolTask.window_start > now,
            covering.is_not(None),
        )
        .values(shift_id=covering)
        .returning(PatrolTask.id)
        .execution_options(synchronize_session="fetch")
    )
    return len(assigned.all())


def _release_tasks(session: Session, shift_id: int, *, opened_before: datetime | None) -> None:
    """Take the shift off its tasks: those whose window opens after ``opened_before`` (None: all of them)."""
    stmt = update(PatrolTask).where(PatrolTask.shift_id == shift_id)
    if opened_before is not None:
        stmt = stmt.where(PatrolTask.status == TaskStatus.PENDING, PatrolTask.window_start > opened_before)
    session.execute(stmt.values(shift_id=None).execution_options(synchronize_session="fetch"))


def _set_officers(session: Session, shift_id: int, officer_ids: Sequence[int]) -> None:
    session.execute(delete(DutyShiftOfficer).where(DutyShiftOfficer.shift_id == shift_id))
    session.add_all(
        DutyShiftOfficer(shift_id=shift_id, user_id=user_id, position=n) for n, user_id in enumerate(officer_ids)
    )


def create_shift(
    session: Session,
    *,
    starts_at: datetime,
    ends_at: datetime,
    leader_id: int,
    officer_ids: Sequence[int],
    now: datetime,
    zone: ZoneInfo,
    label: str = "",
) -> DutyShift:
    """A new shift; refused when it overlaps another shift (naming it, in local times of ``zone``). Unopened
    patrol tasks in its time without a shift become its tasks."""
    _check_times(starts_at, ends_at)
    _check_people(leader_id, officer_ids)
    other = overlapping(session, starts_at, ends_at)
    if other is not None:
        raise PatrolConflictError(f"the shift would overlap {_describe(other, zone)}")
    shift = DutyShift(
        label=label.strip(), starts_at=starts_at, ends_at=ends_at, leader_id=leader_id, created_at=now
    )
    session.add(shift)
    session.flush()
    _set_officers(session, shift.id, officer_ids)
    session.flush()
    assign_unopened_tasks(session, now)
    return shift


def _check_not_ended(shift: DutyShift, now: datetime, zone: ZoneInfo, doing: str) -> None:
    if shift.ends_at <= now:
        raise PatrolConflictError(
            f"{_describe(shift, zone)} has ended: a past shift is kept as the record of who was on duty, "
            f"not {doing}"
        )


def replace_shift(
    session: Session,
    shift_id: int,
    *,
    starts_at: datetime,
    ends_at: datetime,
    leader_id: int,
    officer_ids: Sequence[int],
    now: datetime,
    zone: ZoneInfo,
    label: str = "",
) -> DutyShift:
    """Change a shift that has not ended yet (its times, leader, officers, label).

    Its patrol tasks not open yet go to the shift covering their window's start after the change (this one, or
    none); unopened tasks without a shift that it covers now become its tasks.
    """
    shift = get_shift(session, shift_id)
    _check_not_ended(shift, now, zone, "changed")
    _check_times(starts_at, ends_at)
    _check_people(leader_id, officer_ids)
    other = overlapping(session, starts_at, ends_at, exclude=shift.id)
    if other is not None:
        raise PatrolConflictError(f"the shift would overlap {_describe(other, zone)}")
    shift.starts_at, shift.ends_at, shift.leader_id, shift.label = starts_at, ends_at, leader_id, label.strip()
    _set_officers(session, shift.id, officer_ids)
    session.flush()
    _release_tasks(session, shift.id, opened_before=now)
    assign_unopened_tasks(session, now)
    return shift


def delete_shift(session: Session, shift_id: int, *, now: datetime, zone: ZoneInfo) -> None:
    """Remove a shift that has not ended yet, with its officers and handover notes; its patrol tasks are left
    without a shift (until one is rostered in their time, for those not open yet)."""
    shift = get_shift(session, shift_id)
    _check_not_ended(shift, now, zone, "deleted")
    _release_tasks(session, shift.id, opened_before=None)
    session.execute(delete(HandoverNote).where(HandoverNote.shift_id == shift.id))
    session.execute(delete(DutyShiftOfficer).where(DutyShiftOfficer.shift_id == shift.id))
    session.delete(shift)
    session.flush()


@dataclass(frozen=True, slots=True)
class ShiftPattern:
    """How shifts repeat: local boundary times of a day and rotations of officer teams and leaders.

    With boundaries 08:00 and 20:00 a day has a day shift 08:00–20:00 and a night shift 20:00–08:00 (next day).
    The n-th slot generated gets ``teams[n % len(teams)]`` and ``leaders[n % len(leaders)]``; a leader for the
    whole day is a leader listed once per slot of the day (``[a, a, b, b]``).
    """

    boundaries: tuple[time, ...]
    teams: tuple[tuple[int, ...], ...]
    leaders: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.boundaries:
            raise PatrolError("a shift pattern needs at least one boundary time")
        if list(self.boundaries) != sorted(set(self.boundaries)):
            raise PatrolError(
                "the boundary times of a shift pattern are distinct and in order (e.g. 08:00, 20:00)"
            )
        if not self.teams or any(not team for team in self.teams):
            raise PatrolError("a shift pattern needs at least one team of duty officers, none of them empty")
        if not self.leaders:
            raise PatrolError("a shift pattern needs at least one leader on duty")
        for team in self.teams:
            for leader_id in self.leaders:
                _check_people(leader_id, team)


@dataclass(frozen=True, slots=True)
class SkippedSlot:
    """A slot of the pattern that was not generated, and why."""

    starts_at: datetime
    ends_at: datetime
    reason: str
    conflicting_shift_id: int | None = None


@dataclass(frozen=True, slots=True)
class GeneratedShifts:
    """What :func:`generate_shifts` did."""

    created: list[DutyShift]
    skipped: list[SkippedSlot]


def pattern_slots(
    pattern: ShiftPattern, first_day: date, days: int, zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """The ``[start, end)`` slots (UTC) of ``days`` days from ``first_day``; the last slot of a day ends at the
    first boundary of the next day."""
    starts = [
        datetime.combine(first_day + timedelta(days=d), t, tzinfo=zone).astimezone(UTC)
        for d in range(days + 1)
        for t in pattern.boundaries
    ]
    count = days * len(pattern.boundaries)
    return [(starts[n], starts[n + 1]) for n in range(count)]


def generate_shifts(
    session: Session,
    *,
    first_day: date,
    days: int,
    pattern: ShiftPattern,
    zone: ZoneInfo,
    now: datetime,
) -> GeneratedShifts:
    """Shifts for ``days`` days from ``first_day`` (local), skipping slots that overlap an existing shift or
    have already started."""
    if not 1 <= days <= 62:
        raise PatrolError(f"shifts are generated for 1 to 62 days at a time, not {days}")
    slots = pattern_slots(pattern, first_day, days, zone)
    existing = shifts_between(session, slots[0][0], slots[-1][1], limit=100_000)
    created: list[tuple[int, DutyShift]] = []
    skipped: list[SkippedSlot] = []
    for n, (start, end) in enumerate(slots):
        if start < now:
            skipped.append(SkippedSlot(start, end, "already started"))
            continue
        clash = next((s for s in existing if s.starts_at < end and s.ends_at > start), None)
        if clash is not None:
            skipped.append(SkippedSlot(start, end, f"overlaps {_describe(clash, zone)}", clash.id))
            continue
        local_start, local_end = start.astimezone(zone), end.astimezone(zone)
        shift = DutyShift(
            label=f"{local_start:%Y-%m-%d %H:%M}–{local_end:%H:%M}",
            starts_at=start,
            ends_at=end,
            leader_id=pattern.leaders[n % len(pattern.leaders)],
            created_at=now,
        )
        session.add(shift)
        created.append((n, shift))
    session.flush()
    for n, shift in created:
        _set_officers(session, shift.id, pattern.teams[n % len(pattern.teams)])
    session.flush()
    if created:
        assign_unopened_tasks(session, now)
    return GeneratedShifts([shift for _, shift in created], skipped)


def write_handover(
    session: Session, shift_id: int, *, author_id: int, text: str, now: datetime, zone: ZoneInfo
) -> HandoverNote:
    """A handover note of the shift on duty at ``now``, written by its leader or one of its officers."""
    shift = get_shift(session, shift_id)
    if not shift.starts_at <= now < shift.ends_at:
        raise PatrolConflictError(
            f"{_describe(shift, zone)} is not on duty now: handover notes are written by the shift on duty"
        )
    if author_id not in people_of(session, shift):
        raise PatrolConflictError(
            f"user {author_id} is not on {_describe(shift, zone)}: only its people hand over"
        )
    text = text.strip()
    if not text:
        raise PatrolError("a handover note needs text")
    if len(text) > MAX_HANDOVER_CHARS:
        raise PatrolError(f"a handover note has at most {MAX_HANDOVER_CHARS} characters, not {len(text)}")
    note = HandoverNote(shift_id=shift.id, author_id=author_id, text=text, created_at=now)
    session.add(note)
    session.flush()
    return note


def get_handover(session: Session, note_id: int) -> HandoverNote:
    """The handover note with this id."""
    note = session.get(HandoverNote, note_id)
    if note is None:
        raise PatrolNotFoundError(f"no handover note with id {note_id}")
    return note


def acknowledge_handover(
    session: Session, note_id: int, *, user_id: int, now: datetime, zone: ZoneInfo
) -> HandoverNote:
    """The next shift's leader or officer has read the note (once)."""
    note = get_handover(session, note_id)
    if note.acknowledged_at is not None:
        raise PatrolConflictError(
            f"handover note {note.id} was acknowledged at {local_time(note.acknowledged_at, zone)} "
            f"by user {note.acknowledged_by}"
        )
    following = shift_after(session, get_shift(session, note.shift_id))
    if following is None:
        raise PatrolConflictError(f"no shift follows shift {note.shift_id} yet: nobody can acknowledge its notes")
    if user_id not in people_of(session, following):
        raise PatrolConflictError(f"user {user_id} is not on {_describe(following, zone)}, the shift taking over")
    note.acknowledged_by, note.acknowledged_at = user_id, now
    return note


def handovers_of(session: Session, shift_id: int) -> list[HandoverNote]:
    """The handover notes of a shift, oldest first."""
    get_shift(session, shift_id)
    return list(
        session.scalars(
            select(HandoverNote)
            .where(HandoverNote.shift_id == shift_id)
            .order_by(HandoverNote.created_at, HandoverNote.id)
        )
    )
