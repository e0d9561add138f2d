"""The duty roster: who is on duty at the boundaries, overlaps refused, generation across midnight, handovers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from patrol import roster
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.roster import ShiftPattern
from patrol.tables import DutyShift
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
    with pytest.raises(PatrolConflictError, match=f"would overlap shift {day.id}, 2026-12-01T00:00:00"):
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
        roster.delete_shift(session, past.id, now=later)
    with pytest.raises(PatrolConflictError, match=f"would overlap shift {past.id}"):
        roster.replace_shift(
            session,
            future.id,
            starts_at=sh(1, 19),
            ends_at=sh(2, 8),
            leader_id=bureau.users["leader2"],
            officer_ids=[bureau.users["officer2"]],
            now=later,
        )
    roster.replace_shift(
        session,
        future.id,
        starts_at=sh(1, 20),
        ends_at=sh(2, 9),  # overlaps only itself
        leader_id=bureau.users["leader2"],
        officer_ids=[bureau.users["officer2"]],
        now=later,
        label="night",
    )
    duty = roster.on_duty(session, sh(2, 8, 30))
    assert duty is not None and (duty.leader_id, duty.officer_ids, duty.label) == (
        bureau.users["leader2"],
        (bureau.users["officer2"],),
        "night",
    )
    roster.write_handover(session, future.id, author_id=bureau.users["officer2"], text="all quiet", now=later)
    roster.delete_shift(session, future.id, now=later)
    assert roster.on_duty(session, sh(2, 0)) is None
    with pytest.raises(PatrolNotFoundError, match=f"no shift with id {future.id}"):
        roster.delete_shift(session, future.id, now=later)


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
    )
    first = roster.write_handover(
        session, day.id, author_id=users["officer1"], text=" S12 gate camera down ", now=sh(1, 19)
    )
    second = roster.write_handover(
        session, day.id, author_id=users["leader1"], text="hazard 3 due", now=sh(1, 19, 30)
    )
    assert first.text == "S12 gate camera down"
    with pytest.raises(PatrolConflictError, match="is not on duty now"):
        roster.write_handover(session, day.id, author_id=users["officer1"], text="late", now=sh(1, 20))
    with pytest.raises(PatrolConflictError, match=f"user {users['inspector']} is not on shift {day.id}"):
        roster.write_handover(session, day.id, author_id=users["inspector"], text="x", now=sh(1, 19))
    with pytest.raises(PatrolError, match="needs text"):
        roster.write_handover(session, day.id, author_id=users["officer1"], text=" ", now=sh(1, 19))
    with pytest.raises(PatrolConflictError, match=f"is not on shift {night.id}.*the shift taking over"):
        roster.acknowledge_handover(session, first.id, user_id=users["officer1"], now=sh(1, 20))
    roster.acknowledge_handover(session, first.id, user_id=users["officer2"], now=sh(1, 20, 5))
    assert (first.acknowledged_by, first.acknowledged_at) == (users["officer2"], sh(1, 20, 5))
    with pytest.raises(PatrolConflictError, match=f"handover note {first.id} was acknowledged"):
        roster.acknowledge_handover(session, first.id, user_id=users["leader2"], now=sh(1, 20, 6))
    assert [n.id for n in roster.handovers_of(session, day.id)] == [first.id, second.id]
    late_note = roster.write_handover(session, night.id, author_id=users["leader2"], text="end", now=sh(2, 7))
    with pytest.raises(PatrolConflictError, match=f"no shift follows shift {night.id}"):
        roster.acknowledge_handover(session, late_note.id, user_id=users["officer1"], now=sh(2, 8))
