"""Incidents: classification starts the four clocks once, reports are marked done (late or not), overdue clocks
escalate to the leader on duty when they ran out (across a shift change and midnight), follow-ups, closing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from analytics.tables import SafetyEvent
from campuswatch.patrol_facts import StoredFleetFacts
from config.patrol import ClockConfig
from kernel.announce import take_announced
from patrol import incidents
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.models import ClockKind, IncidentStatus, Severity
from patrol.roster import create_shift
from patrol.tables import Incident, IncidentClock
from tests.bureau import Bureau

ZONE = ZoneInfo("Asia/Shanghai")
CLOCKS = ClockConfig()
K = ClockKind
CLOCK_KINDS = (K.SCHOOL_PHONE, K.BUREAU_PHONE, K.SCHOOL_WRITTEN, K.BUREAU_WRITTEN)


def sh(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in Asia/Shanghai, December 2026."""
    return datetime(2026, 12, day, hour, minute, tzinfo=ZONE)


@pytest.fixture
def session(bureau: Bureau) -> Iterator[Session]:
    with bureau.factory() as s:
        yield s


def _incident(session: Session, bureau: Bureau, at: datetime, **kwargs: object) -> Incident:
    fields: dict[str, object] = {
        "school_id": bureau.schools["S11"],
        "title": "Student injured in the yard",
        "occurred_at": at - timedelta(minutes=5),
        "now": at,
        "zone": ZONE,
        "by_user": bureau.users["officer1"],
    }
    fields.update(kwargs)
    return incidents.create_incident(session, **fields)  # type: ignore[arg-type]


def _clocks(session: Session, incident: Incident) -> dict[ClockKind, IncidentClock]:
    return {c.kind: c for c in incidents.clocks_of(session, [incident.id])[incident.id]}


def _day_and_night(session: Session, bureau: Bureau, day: int) -> None:
    """Day shift 08:00–20:00 (leader1), night shift 20:00–08:00 (leader2), from December ``day``."""
    for start, end, leader in ((sh(day, 8), sh(day, 20), "leader1"), (sh(day, 20), sh(day + 1, 8), "leader2")):
        create_shift(
            session,
            starts_at=start,
            ends_at=end,
            leader_id=bureau.users[leader],
            officer_ids=[bureau.users["officer1"]],
            now=sh(1, 0),
            zone=ZONE,
        )


def test_classifying_major_starts_four_clocks_once(session: Session, bureau: Bureau) -> None:
    incident = _incident(session, bureau, sh(1, 10))
    assert _clocks(session, incident) == {}
    take_announced(session)
    classified = sh(1, 10, 2)
    assert incidents.classify(
        session, incident, Severity.MAJOR, now=classified, zone=ZONE, by_user=None, clocks=CLOCKS
    )
    clocks = _clocks(session, incident)
    assert {k: c.deadline - classified for k, c in clocks.items()} == {
        K.SCHOOL_PHONE: timedelta(minutes=15),
        K.SCHOOL_WRITTEN: timedelta(minutes=30),
        K.BUREAU_PHONE: timedelta(minutes=20),
        K.BUREAU_WRITTEN: timedelta(minutes=40),
    }
    assert list(clocks) == [K.SCHOOL_PHONE, K.BUREAU_PHONE, K.SCHOOL_WRITTEN, K.BUREAU_WRITTEN]
    assert (incident.severity, incident.classified_at) == (Severity.MAJOR, classified)
    # Again, later: the clocks keep running from the first classification.
    assert not incidents.classify(
        session, incident, Severity.MAJOR, now=sh(1, 10, 9), zone=ZONE, by_user=None, clocks=CLOCKS
    )
    assert {c.deadline for c in _clocks(session, incident).values()} == {c.deadline for c in clocks.values()}
    assert [e.type for e in take_announced(session)] == ["incident.major"]
    with pytest.raises(
        PatrolConflictError, match=r"classified major at 2026-12-01T10:02\+08:00: .* not downgraded"
    ):
        incidents.classify(
            session, incident, Severity.GENERAL, now=sh(1, 10, 9), zone=ZONE, by_user=None, clocks=CLOCKS
        )


def test_configured_minutes_and_an_incident_created_major(session: Session, bureau: Bureau) -> None:
    quick = ClockConfig(school_phone_min=5, school_written_min=10, bureau_phone_min=7, bureau_written_min=12)
    incident = _incident(session, bureau, sh(1, 10), severity=Severity.MAJOR, clocks=quick)
    assert {k: c.deadline for k, c in _clocks(session, incident).items()} == {
        K.SCHOOL_PHONE: sh(1, 10, 5),
        K.SCHOOL_WRITTEN: sh(1, 10, 10),
        K.BUREAU_PHONE: sh(1, 10, 7),
        K.BUREAU_WRITTEN: sh(1, 10, 12),
    }
    general = _incident(session, bureau, sh(1, 11))
    assert not incidents.classify(
        session, general, Severity.GENERAL, now=sh(1, 11), zone=ZONE, by_user=None, clocks=quick
    )
    assert general.classified_at is None and _clocks(session, general) == {}


def test_reports_are_marked_done_late_ones_recorded_and_remaining_time_counted(
    session: Session, bureau: Bureau
) -> None:
    incident = _incident(session, bureau, sh(1, 10), severity=Severity.MAJOR, clocks=CLOCKS)
    officer = bureau.users["officer1"]
    incidents.mark_done(
        session, incident, K.SCHOOL_PHONE, now=sh(1, 10, 14), zone=ZONE, by_user=officer, note="王校长来电"
    )
    incidents.mark_done(session, incident, K.BUREAU_PHONE, now=sh(1, 10, 21), zone=ZONE, by_user=officer)
    states = {c.kind: incidents.clock_state(c, sh(1, 10, 35)) for c in _clocks(session, incident).values()}
    phone = states[K.SCHOOL_PHONE]
    assert (phone.done, phone.late, phone.seconds_remaining, phone.note) == (True, False, None, "王校长来电")
    assert (states[K.BUREAU_PHONE].done, states[K.BUREAU_PHONE].late) == (True, True)
    assert (states[K.SCHOOL_WRITTEN].late, states[K.SCHOOL_WRITTEN].seconds_remaining) == (True, -300.0)
    assert (states[K.BUREAU_WRITTEN].late, states[K.BUREAU_WRITTEN].seconds_remaining) == (False, 300.0)
    with pytest.raises(
        PatrolConflictError, match=r"school_phone report of incident .* was marked done at 2026-12-01T10:14\+08:00"
    ):
        incidents.mark_done(session, incident, K.SCHOOL_PHONE, now=sh(1, 10, 36), zone=ZONE, by_user=officer)
    general = _incident(session, bureau, sh(1, 11))
    with pytest.raises(PatrolNotFoundError, match="has no school_phone clock: only a major incident"):
        incidents.mark_done(session, general, K.SCHOOL_PHONE, now=sh(1, 11), zone=ZONE, by_user=officer)


def test_closing_needs_every_report_and_a_closed_incident_takes_nothing_more(
    session: Session, bureau: Bureau
) -> None:
    incident = _incident(session, bureau, sh(1, 10), severity=Severity.MAJOR, clocks=CLOCKS)
    for kind in (K.SCHOOL_PHONE, K.BUREAU_PHONE):
        incidents.mark_done(session, incident, kind, now=sh(1, 10, 10), zone=ZONE, by_user=None)
    with pytest.raises(
        PatrolConflictError, match="still has reports to make \\(school_written, bureau_written\\)"
    ):
        incidents.close(session, incident, now=sh(1, 10, 30))
    for kind in (K.SCHOOL_WRITTEN, K.BUREAU_WRITTEN):
        incidents.mark_done(session, incident, kind, now=sh(1, 10, 30), zone=ZONE, by_user=None)
    incidents.close(session, incident, now=sh(1, 12), summary="treated at hospital")
    assert (incident.status, incident.closed_at, incident.summary) == (
        IncidentStatus.CLOSED,
        sh(1, 12),
        "treated at hospital",
    )
    with pytest.raises(PatrolConflictError, match="is closed: it cannot be followed up"):
        incidents.add_followup(session, incident, "more", now=sh(1, 13), by_user=None)
    with pytest.raises(PatrolConflictError, match="is closed: it cannot be closed again"):
        incidents.close(session, incident, now=sh(1, 13))
    general = _incident(session, bureau, sh(1, 11))
    incidents.close(session, general, now=sh(1, 11, 30))  # no clocks to wait for
    assert general.status is IncidentStatus.CLOSED


def test_followups_are_listed_in_time_order(session: Session, bureau: Bureau) -> None:
    incident = _incident(session, bureau, sh(1, 10), severity=Severity.MAJOR, clocks=CLOCKS)
    incidents.add_followup(session, incident, "second", now=sh(1, 11), by_user=None)
    incidents.add_followup(session, incident, "first", now=sh(1, 10, 30), by_user=None)
    assert [f.text for f in incidents.followups_of(session, incident.id)] == ["first", "second"]
    with pytest.raises(PatrolError, match="a follow-up report needs text"):
        incidents.add_followup(session, incident, "  ", now=sh(1, 11), by_user=None)


def test_overdue_clocks_escalate_once_to_the_leader_on_duty_when_they_ran_out(
    session: Session, bureau: Bureau
) -> None:
    _day_and_night(session, bureau, 1)
    incident = _incident(session, bureau, sh(1, 19, 40), severity=Severity.MAJOR, clocks=CLOCKS)
    take_announced(session)
    assert incidents.check_clocks(session, sh(1, 19, 55)) == 0  # school phone due 19:55: not overdue yet
    # Checked late (20:30): school phone ran out at 19:55 (day shift), bureau phone at 20:00 exactly (night),
    # school written at 20:10 (night); bureau written (20:20) was reported in time.
    incidents.mark_done(session, incident, K.BUREAU_WRITTEN, now=sh(1, 20, 15), zone=ZONE, by_user=None)
    assert incidents.check_clocks(session, sh(1, 20, 30)) == 3
    leaders = {c.kind: c.escalated_to for c in _clocks(session, incident).values()}
    users = bureau.users
    assert leaders == {
        K.SCHOOL_PHONE: users["leader1"],
        K.BUREAU_PHONE: users["leader2"],
        K.SCHOOL_WRITTEN: users["leader2"],
        K.BUREAU_WRITTEN: None,
    }
    overdue = [e.payload for e in take_announced(session)]
    assert [(p["kind"], p["leader_id"], p["school_code"]) for p in overdue] == [
        ("school_phone", users["leader1"], "S11"),
        ("bureau_phone", users["leader2"], "S11"),
        ("school_written", users["leader2"], "S11"),
    ]
    assert overdue[0]["deadline"] == "2026-12-01T11:55:00+00:00"  # UTC
    assert incidents.check_clocks(session, sh(1, 20, 30)) == 0
    assert incidents.check_clocks(session, sh(1, 21)) == 0  # escalated once only


def test_a_clock_straddling_the_shift_change_goes_to_the_new_shifts_leader(
    session: Session, bureau: Bureau
) -> None:
    _day_and_night(session, bureau, 1)
    incident = _incident(session, bureau, sh(1, 19, 50), severity=Severity.MAJOR, clocks=CLOCKS)
    assert incidents.check_clocks(session, sh(1, 20, 5)) == 0
    assert incidents.check_clocks(session, sh(1, 20, 6)) == 1  # school phone, due 20:05
    clock = _clocks(session, incident)[K.SCHOOL_PHONE]
    assert (clock.escalated_to, clock.escalated_at) == (bureau.users["leader2"], sh(1, 20, 6))


def test_a_clock_started_at_2350_runs_past_midnight_and_stays_in_that_days_report(
    session: Session, bureau: Bureau
) -> None:
    _day_and_night(session, bureau, 1)
    incident = _incident(session, bureau, sh(1, 23, 30))
    incidents.classify(
        session, incident, Severity.MAJOR, now=sh(1, 23, 50), zone=ZONE, by_user=None, clocks=CLOCKS
    )
    deadlines = {k: c.deadline for k, c in _clocks(session, incident).items()}
    assert deadlines == {
        K.SCHOOL_PHONE: sh(2, 0, 5),
        K.BUREAU_PHONE: sh(2, 0, 10),
        K.SCHOOL_WRITTEN: sh(2, 0, 20),
        K.BUREAU_WRITTEN: sh(2, 0, 30),
    }
    assert incidents.check_clocks(session, sh(2, 0, 31)) == 4
    assert {c.escalated_to for c in _clocks(session, incident).values()} == {bureau.users["leader2"]}
    assert incidents.report_day(incident, ZONE) == date(2026, 12, 1)
    session.flush()
    assert [i.id for i in incidents.incidents_of_day(session, date(2026, 12, 1), ZONE)] == [incident.id]
    assert incidents.incidents_of_day(session, date(2026, 12, 2), ZONE) == []
    # Occurred on the 1st and classified after midnight: the 2nd's report.
    late = _incident(session, bureau, sh(1, 23, 58))
    incidents.classify(session, late, Severity.MAJOR, now=sh(2, 0, 1), zone=ZONE, by_user=None, clocks=CLOCKS)
    session.flush()
    assert incidents.report_day(late, ZONE) == date(2026, 12, 2)
    assert [i.id for i in incidents.incidents_of_day(session, date(2026, 12, 2), ZONE)] == [late.id]


def test_unrostered_deadlines_fall_back_to_the_leader_on_duty_now_or_nobody(
    session: Session, bureau: Bureau
) -> None:
    incident = _incident(session, bureau, sh(1, 6), severity=Severity.MAJOR, clocks=CLOCKS)
    take_announced(session)
    assert incidents.check_clocks(session, sh(1, 6, 16)) == 1  # nobody rostered, then or now
    phone = _clocks(session, incident)[K.SCHOOL_PHONE]
    assert (phone.escalated_at, phone.escalated_to) == (sh(1, 6, 16), None)
    assert [(e.type, e.payload["kind"], e.payload["leader_id"]) for e in take_announced(session)] == [
        ("clock.overdue", "school_phone", None)
    ]
    # Still nobody on duty: not announced again.
    assert incidents.check_clocks(session, sh(1, 6, 17)) == 0
    assert take_announced(session) == []
    _day_and_night(session, bureau, 1)  # from 08:00; the deadlines (06:15 to 06:40) stay unrostered
    leader1 = bureau.users["leader1"]
    # The clock escalated to nobody goes again, now to the leader on duty; the other three for the first time.
    assert incidents.check_clocks(session, sh(1, 8, 1)) == 4
    assert {k: (c.escalated_to, c.escalated_at) for k, c in _clocks(session, incident).items()} == {
        kind: (leader1, sh(1, 8, 1)) for kind in CLOCK_KINDS
    }
    assert [(e.payload["kind"], e.payload["leader_id"]) for e in take_announced(session)] == [
        ("school_phone", leader1),
        ("bureau_phone", leader1),
        ("school_written", leader1),
        ("bureau_written", leader1),
    ]
    assert incidents.check_clocks(session, sh(1, 8, 2)) == 0  # once only
    assert take_announced(session) == []


def test_a_clock_escalated_to_nobody_waits_for_a_leader_and_a_clock_done_meanwhile_does_not(
    session: Session, bureau: Bureau
) -> None:
    incident = _incident(session, bureau, sh(1, 6), severity=Severity.MAJOR, clocks=CLOCKS)
    assert incidents.check_clocks(session, sh(1, 6, 41)) == 4  # all four to nobody
    incidents.mark_done(session, incident, K.SCHOOL_PHONE, now=sh(1, 7), zone=ZONE, by_user=None)
    take_announced(session)
    _day_and_night(session, bureau, 1)
    assert incidents.check_clocks(session, sh(1, 7, 59)) == 0  # rostered from 08:00, nobody on duty yet
    assert incidents.check_clocks(session, sh(1, 8)) == 3  # the one reported meanwhile is left alone
    clocks = _clocks(session, incident)
    assert clocks[K.SCHOOL_PHONE].escalated_to is None
    assert {clocks[k].escalated_to for k in CLOCK_KINDS if k is not K.SCHOOL_PHONE} == {bureau.users["leader1"]}
    assert sorted(str(e.payload["kind"]) for e in take_announced(session)) == [
        "bureau_phone",
        "bureau_written",
        "school_written",
    ]


def test_an_incident_from_an_event_takes_its_school_and_time(session: Session, bureau: Bureau) -> None:
    event = SafetyEvent(
        camera_id=bureau.cameras["S22-GATE"],
        school_id=bureau.schools["S22"],
        type="crowding",
        rule="gate-crowd",
        severity="major",
        started_at=sh(1, 7, 30),
        detail="41 people",
    )
    session.add(event)
    session.flush()
    facts = StoredFleetFacts()
    incident = incidents.incident_from_event(session, facts, event.id, now=sh(1, 7, 40), zone=ZONE, by_user=None)
    assert (incident.school_id, incident.occurred_at, incident.event_id) == (
        bureau.schools["S22"],
        sh(1, 7, 30),
        event.id,
    )
    assert (incident.title, incident.summary, incident.severity) == (
        "crowding at S22-GATE",
        "41 people",
        Severity.GENERAL,
    )
    with pytest.raises(PatrolConflictError, match=f"already has open incident {incident.id}"):
        incidents.incident_from_event(session, facts, event.id, now=sh(1, 7, 41), zone=ZONE, by_user=None)
    with pytest.raises(PatrolNotFoundError, match="no event with id 999"):
        incidents.incident_from_event(session, facts, 999, now=sh(1, 7, 41), zone=ZONE, by_user=None)


def test_bad_incidents_are_refused(session: Session, bureau: Bureau) -> None:
    future = r"cannot occur in the future \(2026-12-01T11:00\+08:00 is after 2026-12-01T10:00\+08:00\)"
    with pytest.raises(PatrolError, match=future):
        incidents.create_incident(
            session,
            school_id=bureau.schools["S11"],
            title="x",
            occurred_at=sh(1, 11),
            now=sh(1, 10),
            zone=ZONE,
            by_user=None,
        )
    with pytest.raises(PatrolError, match="needs a timezone"):
        incidents.create_incident(
            session,
            school_id=bureau.schools["S11"],
            title="x",
            occurred_at=datetime(2026, 12, 1, 9),
            now=sh(1, 10),
            zone=ZONE,
            by_user=None,
        )
    with pytest.raises(PatrolError, match="an incident title needs text"):
        _incident(session, bureau, sh(1, 10), title=" ")
    with pytest.raises(PatrolNotFoundError, match="no school with id 999"):
        _incident(session, bureau, sh(1, 10), school_id=999)
