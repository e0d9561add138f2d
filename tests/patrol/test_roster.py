"""The duty roster: who is on duty at the boundaries, overlaps refused, generation across midnight, handovers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.rules import CalendarConfig
from patrol import roster
from patrol.camera_sets import CameraSet
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.models import DayRule
from patrol.plans import PlanSpec, create_due_tasks, create_plan, plan_calendar
from patrol.roster import ShiftPattern
from patrol.tables import DutyShift, PatrolTask
from tests.bureau import Bureau

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=ZONE)


def sh(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A time in Asia/Shanghai, December 2026."""
    return datetime(2026, 12, day, hour, minute, second, tzinfo=ZONE)


@pytest.fixture
def session(bureau: Bureau) -> Iterator[Session]:
    with bureau.factory() as s:
        yield s


def _shift(session: Session, bureau: Bureau, start: datetime, end: datetime, leader: str = "leader1") -> DutyShift:
    return roster.create_shift(
        session,
        starts_at=start,
        ends_at=end,
        leader_id=bureau.users[leader],
        officer_ids=[bureau.users["officer1"], bureau.users["officer2"]],
        now=NOW,
        zone=ZONE,
        label="",
    )


def test_on_duty_from_the_start_until_just_before_the_end(session: Session, bureau: Bureau) -> None:
    day = _shift(session, bureau, sh(1, 8), sh(1, 20))
    night = _shift(session, bureau, sh(1, 20), sh(2, 8), leader="leader2")
    assert roster.on_duty(session, sh(1, 7, 59, 59)) is None
    at_start = roster.on_duty(session, sh(1, 8))
    assert at_start is not None and at_start.shift_id == day.id
    assert at_start.officer_ids == (bureau.users["officer1"], bureau.users["officer2"])
    last_second = roster.on_duty(session, sh(1, 19, 59, 59))
    assert last_second is not None and last_second.shift_id == day.id
    at_end = roster.on_duty(session, sh(1, 20))  # [08:00, 20:00): 20:00 belongs to the night shift
    assert at_end is not None and (at_end.shift_id, at_end.leader_id) == (night.id, bureau.users["leader2"])
    midnight = roster.on_duty(session, sh(2, 0))
    assert midnight is not None and midnight.shift_id == night.id
    assert roster.on_duty(session, sh(2, 8)) is None
    following = roster.next_shift(session, sh(1, 20))
    assert following is None  # nothing starts after 20:00 yet
    upcoming = roster.next_shift(session, sh(1, 12))
    assert upcoming is not None and upcoming.id == night.id
    assert [s.id for s in roster.shifts_between(session, sh(1, 19), sh(1, 21))] == [day.id, night.id]
    assert roster.shifts_between(session, sh(2, 8), sh(2, 9)) == []


def test_an_overlapping_shift_is_refused_naming_the_other(session: Session, bureau: Bureau) -> None:
    day = _shift(session, bureau, sh(1, 8), sh(1, 20))
    local = r"2026-12-01T08:00\+08:00 to 2026-12-01T20:00\+08:00"  # local times, as people read them
    with pytest.raises(PatrolConflictError, match=f"would overlap shift {day.id}, {local}"):
        _shift(session, bureau, sh(1, 19), sh(2, 7))
    with pytest.raises(PatrolConflictError, match=f"shift {day.id}"):
        _shift(session, bureau, sh(1, 9), sh(1, 10))  # inside
    _shift(session, bureau, sh(1, 20), sh(2, 8))  # adjacent: fine
    _shift(session, bureau, sh(1, 0), sh(1, 8))


@pytest.mark.parametrize(
    ("start", "end", "officers", "message"),
    [
        (sh(1, 8).replace(tzinfo=None), sh(1, 20), ["officer1"], "need a timezone"),
        (sh(1, 20), sh(1, 8), ["officer1"], "a shift ends after it starts"),
        (sh(1, 8), sh(1, 8), ["officer1"], "a shift ends after it starts"),
        (sh(1, 8), sh(4, 8), ["officer1"], "at most 48 hours"),
        (sh(1, 8), sh(1, 20), [], "at least one duty officer"),
        (sh(1, 8), sh(1, 20), ["officer1", "officer1"], "listed twice"),
        (sh(1, 8), sh(1, 20), ["leader1"], "not also one of the shift's duty officers"),
    ],
)
def test_bad_shifts_are_refused(
    session: Session, bureau: Bureau, start: datetime, end: datetime, officers: list[str], message: str
) -> None:
    with pytest.raises(PatrolError, match=message):
        roster.create_shift(
            session,
            starts_at=start,
            ends_at=end,
            leader_id=bureau.users["leader1"],
            officer_ids=[bureau.users[o] for o in officers],
            now=NOW,
            zone=ZONE,
        )


def test_generated_shifts_cross_midnight_rotate_and_skip_taken_slots(session: Session, bureau: Bureau) -> None:
    taken = _shift(session, bureau, sh(2, 20), sh(3, 8), leader="leader2")
    users = bureau.users
    pattern = ShiftPattern(
        boundaries=(time(8), time(20)),
        teams=((users["officer1"],), (users["officer2"],)),
        leaders=(users["leader1"], users["leader1"], users["leader2"], users["leader2"]),
    )
    result = roster.generate_shifts(
        session, first_day=date(2026, 12, 1), days=3, pattern=pattern, zone=ZONE, now=NOW
    )
    got = [(s.starts_at, s.ends_at, s.label) for s in result.created]
    assert got == [
        (sh(1, 8), sh(1, 20), "2026-12-01 08:00–20:00"),
        (sh(1, 20), sh(2, 8), "2026-12-01 20:00–08:00"),
        (sh(2, 8), sh(2, 20), "2026-12-02 08:00–20:00"),
        (sh(3, 8), sh(3, 20), "2026-12-03 08:00–20:00"),
        (sh(3, 20), sh(4, 8), "2026-12-03 20:00–08:00"),
    ]
    assert [(k.starts_at, k.conflicting_shift_id) for k in result.skipped] == [(sh(2, 20), taken.id)]
    assert "overlaps shift" in result.skipped[0].reason
    # Leaders by day (two slots each), officer teams alternating by slot.
    assert [s.leader_id for s in result.created] == [
        users[n] for n in ("leader1", "leader1", "leader2", "leader1", "leader1")
    ]
    officers = roster.officers_of(session, [s.id for s in result.created])
    assert [officers[s.id] for s in result.created] == [
        [users["officer1"]],
        [users["officer2"]],
        [users["officer1"]],
        [users["officer1"]],
        [users["officer2"]],
    ]
    past_midnight = roster.on_duty(session, sh(2, 0, 30))
    assert past_midnight is not None and past_midnight.officer_ids == (users["officer2"],)
    assert sh(2, 0).astimezone(UTC) == datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # stored in UTC
    again = roster.generate_shifts(
        session, first_day=date(2026, 12, 1), days=3, pattern=pattern, zone=ZONE, now=NOW
    )
    assert again.created == [] and len(again.skipped) == 6


def test_generation_skips_slots_that_have_started_and_checks_the_pattern(session: Session, bureau: Bureau) -> None:
    users = bureau.users
    pattern = ShiftPattern((time(8),), ((users["officer1"],),), (users["leader1"],))
    result = roster.generate_shifts(
        session, first_day=date(2026, 12, 1), days=2, pattern=pattern, zone=ZONE, now=sh(1, 9)
    )
    assert [(s.starts_at, s.ends_at) for s in result.created] == [(sh(2, 8), sh(3, 8))]
    assert [(k.starts_at, k.reason) for k in result.skipped] == [(sh(1, 8), "already started")]
    with pytest.raises(PatrolError, match="1 to 62 days"):
        roster.generate_shifts(session, first_day=date(2026, 12, 1), days=63, pattern=pattern, zone=ZONE, now=NOW)
    with pytest.raises(PatrolError, match="distinct and in order"):
        ShiftPattern((time(20), time(8)), ((users["officer1"],),), (users["leader1"],))
    with pytest.raises(PatrolError, match="none of them empty"):
        ShiftPattern((time(8),), ((),), (users["leader1"],))
    with pytest.raises(PatrolError, match="at least one leader"):
        ShiftPattern((time(8),), ((users["officer1"],),), ())


def test_past_shifts_are_kept_and_others_replaced_or_deleted(session: Session, bureau: Bureau) -> None:
    past = _shift(session, bureau, sh(1, 8), sh(1, 20))
    future = _shift(session, bureau, sh(1, 20), sh(2, 8))
    later = sh(1, 21)
    with pytest.raises(PatrolConflictError, match="has ended: a past shift is kept"):
        roster.delete_shift(session, past.id, now=later, zone=ZONE)
    with pytest.raises(PatrolConflictError, match=f"would overlap shift {past.id}"):
        roster.replace_shift(
            session,
            future.id,
            starts_at=sh(1, 19),
            ends_at=sh(2, 8),
            leader_id=bureau.users["leader2"],
            officer_ids=[bureau.users["officer2"]],
            now=later,
            zone=ZONE,
        )
    roster.replace_shift(
        session,
        future.id,
        starts_at=sh(1, 20),
        ends_at=sh(2, 9),  # overlaps only itself
        leader_id=bureau.users["leader2"],
        officer_ids=[bureau.users["officer2"]],
        now=later,
        zone=ZONE,
        label="night",
    )
    duty = roster.on_duty(session, sh(2, 8, 30))
    assert duty is not None and (duty.leader_id, duty.officer_ids, duty.label) == (
        bureau.users["leader2"],
        (bureau.users["officer2"],),
        "night",
    )
    roster.write_handover(
        session, future.id, author_id=bureau.users["officer2"], text="all quiet", now=later, zone=ZONE
    )
    roster.delete_shift(session, future.id, now=later, zone=ZONE)
    assert roster.on_duty(session, sh(2, 0)) is None
    with pytest.raises(PatrolNotFoundError, match=f"no shift with id {future.id}"):
        roster.delete_shift(session, future.id, now=later, zone=ZONE)


def test_handover_notes_are_written_by_the_shift_on_duty_and_acknowledged_by_the_next(
    session: Session, bureau: Bureau
) -> None:
    users = bureau.users
    day = _shift(session, bureau, sh(1, 8), sh(1, 20))
    night = roster.create_shift(
        session,
        starts_at=sh(1, 20),
        ends_at=sh(2, 8),
        leader_id=users["leader2"],
        officer_ids=[users["officer2"]],
        now=NOW,
        zone=ZONE,
    )
    first = roster.write_handover(
        session, day.id, author_id=users["officer1"], text=" S12 gate camera down ", now=sh(1, 19), zone=ZONE
    )
    second = roster.write_handover(
        session, day.id, author_id=users["leader1"], text="hazard 3 due", now=sh(1, 19, 30), zone=ZONE
    )
    assert first.text == "S12 gate camera down"
    with pytest.raises(PatrolConflictError, match="is not on duty now"):
        roster.write_handover(session, day.id, author_id=users["officer1"], text="late", now=sh(1, 20), zone=ZONE)
    with pytest.raises(PatrolConflictError, match=f"user {users['inspector']} is not on shift {day.id}"):
        roster.write_handover(session, day.id, author_id=users["inspector"], text="x", now=sh(1, 19), zone=ZONE)
    with pytest.raises(PatrolError, match="needs text"):
        roster.write_handover(session, day.id, author_id=users["officer1"], text=" ", now=sh(1, 19), zone=ZONE)
    with pytest.raises(PatrolConflictError, match=f"is not on shift {night.id}.*the shift taking over"):
        roster.acknowledge_handover(session, first.id, user_id=users["officer1"], now=sh(1, 20), zone=ZONE)
    roster.acknowledge_handover(session, first.id, user_id=users["officer2"], now=sh(1, 20, 5), zone=ZONE)
    assert (first.acknowledged_by, first.acknowledged_at) == (users["officer2"], sh(1, 20, 5))
    with pytest.raises(
        PatrolConflictError, match=rf"handover note {first.id} was acknowledged at 2026-12-01T20:05\+08:00"
    ):
        roster.acknowledge_handover(session, first.id, user_id=users["leader2"], now=sh(1, 20, 6), zone=ZONE)
    assert [n.id for n in roster.handovers_of(session, day.id)] == [first.id, second.id]
    late_note = roster.write_handover(
        session, night.id, author_id=users["leader2"], text="end", now=sh(2, 7), zone=ZONE
    )
    with pytest.raises(PatrolConflictError, match=f"no shift follows shift {night.id}"):
        roster.acknowledge_handover(session, late_note.id, user_id=users["officer1"], now=sh(2, 8), zone=ZONE)


# --- the shifts of patrol tasks ---------------------------------------------------------------------------------


def _evening_tasks(session: Session) -> tuple[int, int]:
    """The 22:00–22:30 tasks of December 1 and 2 (created at noon on the 1st)."""
    evening = create_plan(
        session,
        PlanSpec(
            name="evening",
            camera_set=CameraSet(cameras=("S11-GATE",)),
            day_rule=DayRule.EVERY_DAY,
            start=time(22),
            end=time(22, 30),
        ),
        now=NOW,
    )
    calendar = plan_calendar(CalendarConfig(), "Asia/Shanghai")
    create_due_tasks(session, sh(1, 12), ahead=timedelta(hours=36), calendar=calendar)
    first, second = session.scalars(
        select(PatrolTask.id).where(PatrolTask.plan_id == evening.id).order_by(PatrolTask.window_start)
    )
    return first, second


def _shift_of(session: Session, task_id: int) -> int | None:
    return session.scalar(select(PatrolTask.shift_id).where(PatrolTask.id == task_id))


def _change(
    session: Session, bureau: Bureau, shift: DutyShift, start: datetime, end: datetime, now: datetime
) -> None:
    roster.replace_shift(
        session,
        shift.id,
        starts_at=start,
        ends_at=end,
        leader_id=shift.leader_id,
        officer_ids=[bureau.users["officer1"]],
        now=now,
        zone=ZONE,
    )


def test_roster_changes_hand_unopened_tasks_to_the_shift_covering_them(session: Session, bureau: Bureau) -> None:
    evening = _shift(session, bureau, sh(1, 20), sh(2, 0))
    today, tomorrow = _evening_tasks(session)
    assert (_shift_of(session, today), _shift_of(session, tomorrow)) == (evening.id, None)
    noon = sh(1, 12)
    _change(session, bureau, evening, sh(1, 20), sh(1, 21), noon)  # no longer covers 22:00
    assert _shift_of(session, today) is None
    late = _shift(session, bureau, sh(1, 21), sh(2, 2))  # rostered in its time: its task at once
    assert _shift_of(session, today) == late.id
    _change(session, bureau, late, sh(1, 21), sh(3, 0), noon)  # now covers tomorrow's 22:00 too
    assert (_shift_of(session, today), _shift_of(session, tomorrow)) == (late.id, late.id)
    opened = sh(1, 22, 10)  # today's window has opened: its task keeps the shift it had
    _change(session, bureau, late, sh(1, 22, 15), sh(2, 20), opened)
    assert (_shift_of(session, today), _shift_of(session, tomorrow)) == (late.id, None)
    _change(session, bureau, late, sh(1, 22, 15), sh(3, 0), opened)
    assert _shift_of(session, tomorrow) == late.id
    roster.delete_shift(session, late.id, now=opened, zone=ZONE)
    assert (_shift_of(session, today), _shift_of(session, tomorrow)) == (None, None)


def test_generated_shifts_take_the_unopened_tasks_in_their_time(session: Session, bureau: Bureau) -> None:
    today, tomorrow = _evening_tasks(session)
    users = bureau.users
    pattern = ShiftPattern((time(8), time(20)), ((users["officer1"],),), (users["leader1"],))
    result = roster.generate_shifts(
        session, first_day=date(2026, 12, 1), days=2, pattern=pattern, zone=ZONE, now=sh(1, 12)
    )
    nights = [s.id for s in result.created if s.starts_at.astimezone(ZONE).hour == 20]
    assert [_shift_of(session, today), _shift_of(session, tomorrow)] == nights
