"""Spot checks: stratified, risk-weighted, recent checks excluded, reproducible from the seed, fair over time."""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from analytics.tables import SafetyEvent
from campuswatch.patrol_facts import StoredFleetFacts
from ingest.models import HealthReason, HealthState
from ingest.tables import CameraHealth
from kernel.announce import take_announced
from kernel.db import session_scope
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.models import HazardSource, HazardStatus, InspectionMethod, InspectionStatus, QuotaPeriod, Severity
from patrol.spot_check_audit import verify_draw
from patrol.spot_check_quotas import create_quota, delete_quota, get_quota, update_quota
from patrol.spot_checks import (
    DrawInputs,
    RiskWeights,
    SchoolInput,
    SchoolRisk,
    canonical_sha256,
    current_period_start,
    district_quotas,
    draw_due,
    draw_for_period,
    draw_schools,
    period_count,
    period_end,
    period_seed,
    weights_from_json,
    weights_to_json,
)
from patrol.tables import Hazard, Inspection, SpotCheckDraw, SpotCheckQuota
from tests.bureau import Bureau

DAY = date(2026, 11, 23)
# 4 districts of 40, 30, 20 and 10 schools; a few with open hazards or offline cameras.
SCHOOLS = [
    SchoolRisk(f"D{d}S{s:02d}", f"D{d}", open_hazards=1 if s % 13 == 0 else 0, offline_cameras=s % 7 == 0)
    for d, n in enumerate((40, 30, 20, 10))
    for s in range(n)
]


def test_draw_is_stratified_and_reproducible() -> None:
    first = draw_schools(SCHOOLS, count=10, day=DAY, seed=42, last_checked={})
    again = draw_schools(SCHOOLS, count=10, day=DAY, seed=42, last_checked={})
    other = draw_schools(SCHOOLS, count=10, day=DAY, seed=43, last_checked={})
    assert first == again and first.schools != other.schools
    per_district = Counter(code[:2] for code in first.schools)
    assert per_district == {"D0": 4, "D1": 3, "D2": 2, "D3": 1}
    assert len(set(first.schools)) == 10


def test_recent_checks_are_excluded_and_risk_weighs() -> None:
    last = {s.school_code: DAY - timedelta(days=3) for s in SCHOOLS[:35]}
    drawn = draw_schools(SCHOOLS, count=20, day=DAY, seed=1, last_checked=last, exclude_days=7)
    assert not set(drawn.schools) & set(last)
    risky = [s for s in SCHOOLS if s.open_hazards]
    assert drawn.weights[risky[-1].school_code] > drawn.weights["D1S01"]


def test_over_1000_days_every_school_is_drawn_and_none_more_than_twice_the_mean() -> None:
    last: dict[str, date] = {}
    counts: Counter[str] = Counter()
    for n in range(1000):
        day = DAY + timedelta(days=n)
        drawn = draw_schools(SCHOOLS, count=5, day=day, seed=2026, last_checked=last, exclude_days=7)
        assert len(drawn.schools) == 5
        for code in drawn.schools:
            last[code] = day
        counts.update(drawn.schools)
    mean = sum(counts.values()) / len(SCHOOLS)
    assert set(counts) == {s.school_code for s in SCHOOLS}
    assert max(counts.values()) <= 2 * mean, counts.most_common(3)


def _draw_days(schools: list[SchoolRisk], *, count: int, days: int, seed: int, exclude_days: int) -> Counter[str]:
    """How often each school is drawn in ``days`` daily draws, each drawn school inspected on its day."""
    last: dict[str, date] = {}
    counts: Counter[str] = Counter()
    for n in range(days):
        day = DAY + timedelta(days=n)
        drawn = draw_schools(
            schools, count=count, day=day, seed=seed, last_checked=last, exclude_days=exclude_days
        )
        assert len(drawn.schools) == count
        for code in drawn.schools:
            last[code] = day
        counts.update(drawn.schools)
    return counts


# 10 districts of unequal sizes (3..30 schools): 3 a day gives every district a fractional share.
UNEQUAL_SIZES = (3, 30, 7, 18, 4, 25, 11, 14, 5, 21)
UNEQUAL = [SchoolRisk(f"R{d}S{s:02d}", f"R{d}") for d, n in enumerate(UNEQUAL_SIZES) for s in range(n)]


def test_fewer_places_a_day_than_districts_still_reach_every_school_and_every_district_its_share() -> None:
    counts = _draw_days(UNEQUAL, count=3, days=1000, seed=7, exclude_days=7)
    mean = sum(counts.values()) / len(UNEQUAL)
    assert set(counts) == {s.school_code for s in UNEQUAL}
    assert max(counts.values()) <= 2 * mean, counts.most_common(3)
    per_district = Counter({f"R{d}": 0 for d in range(len(UNEQUAL_SIZES))})
    for code, n in counts.items():
        per_district[code.split("S")[0]] += n
    total = sum(UNEQUAL_SIZES)
    for d, size in enumerate(UNEQUAL_SIZES):
        share = 3000 * size / total  # 54.5 draws for the district of 3 schools, 545 for the one of 30
        assert abs(per_district[f"R{d}"] - share) <= 0.25 * share, (d, size, per_district[f"R{d}"], share)


def test_equal_districts_that_all_lose_on_rounding_take_turns() -> None:
    # 6 equal districts and 5 a day: each share is 5/6 of a place. Ties broken by name would never draw the
    # last district; now each district is drawn on about 5 days in 6.
    schools = [SchoolRisk(f"E{d}S{s:02d}", f"E{d}") for d in range(6) for s in range(20)]
    counts = _draw_days(schools, count=5, days=1000, seed=3, exclude_days=7)
    per_district = Counter(code[:2] for code in counts.elements())
    assert set(per_district) == {f"E{d}" for d in range(6)}
    assert all(abs(n - 5000 / 6) <= 0.1 * 5000 / 6 for n in per_district.values()), per_district


def test_district_quotas_are_whole_shares_plus_leftovers_drawn_in_proportion_to_the_remainders() -> None:
    rng = random.Random(1)
    assert district_quotas({"A": 40, "B": 30, "C": 20, "D": 10}, 10, rng) == {"A": 4, "B": 3, "C": 2, "D": 1}
    assert district_quotas({"A": 0, "B": 0}, 0, rng) == {"A": 0, "B": 0}
    with pytest.raises(PatrolError, match="cannot place 11 schools among 10"):
        district_quotas({"A": 10}, 11, rng)
    # 5 places over 10 + 5 + 3 + 2 schools: shares 2.5, 1.25, 0.75, 0.5; whole parts 2, 1, 0, 0; 2 left over.
    sizes = {"A": 10, "B": 5, "C": 3, "D": 2}
    given: Counter[str] = Counter()
    for _ in range(20_000):
        quotas = district_quotas(sizes, 5, rng)
        assert sum(quotas.values()) == 5
        assert 2 <= quotas["A"] <= 3 and 1 <= quotas["B"] <= 2 and quotas["C"] <= 1 and quotas["D"] <= 1
        given.update(quotas)
    # Expected per draw: exactly the proportional share (2.5, 1.25, 0.75, 0.5).
    for district, share in (("A", 2.5), ("B", 1.25), ("C", 0.75), ("D", 0.5)):
        assert abs(given[district] / 20_000 - share) < 0.02, (district, given[district] / 20_000)


def test_bad_draws() -> None:
    with pytest.raises(PatrolError, match="at least one school"):
        draw_schools(SCHOOLS, count=0, day=DAY, seed=1, last_checked={})
    everyone = dict.fromkeys((s.school_code for s in SCHOOLS), DAY)
    assert draw_schools(SCHOOLS, count=5, day=DAY, seed=1, last_checked=everyone).schools == ()


# --- periods, weekly counts and the stored inputs (pure) ------------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_periods_are_local_days_and_weeks_from_monday() -> None:
    before_midnight = datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC)  # Mon 23:59:59 local
    midnight = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # Tue 00:00 local
    assert current_period_start(QuotaPeriod.DAY, before_midnight, SHANGHAI) == date(2026, 11, 30)
    assert current_period_start(QuotaPeriod.DAY, midnight, SHANGHAI) == date(2026, 12, 1)
    sunday_night = datetime(2026, 12, 6, 15, 59, tzinfo=UTC)  # Sun 23:59 local: still the week of Nov 30
    monday = datetime(2026, 12, 6, 16, 0, tzinfo=UTC)  # Mon Dec 7 00:00 local, Sunday in UTC
    assert current_period_start(QuotaPeriod.WEEK, sunday_night, SHANGHAI) == date(2026, 11, 30)
    assert current_period_start(QuotaPeriod.WEEK, monday, SHANGHAI) == date(2026, 12, 7)
    assert period_end(QuotaPeriod.WEEK, date(2026, 11, 30)) == date(2026, 12, 7)
    with pytest.raises(PatrolError, match="no timezone"):
        current_period_start(QuotaPeriod.DAY, datetime(2026, 12, 1, 10), SHANGHAI)


def test_weekly_counts_stay_in_range_and_are_rederivable() -> None:
    mondays = [date(2026, 11, 30) + timedelta(weeks=n) for n in range(300)]
    counts = [period_count(99, 6, 10, monday) for monday in mondays]
    assert counts == [period_count(99, 6, 10, monday) for monday in mondays]
    assert set(counts) == {6, 7, 8, 9, 10}  # every count in the range comes up, none outside it
    assert counts != [period_count(100, 6, 10, monday) for monday in mondays]
    assert {period_count(99, 5, 5, monday) for monday in mondays} == {5}  # "5 a day": fixed


def test_over_1000_days_a_weekly_6_to_10_quota_draws_every_school_and_none_more_than_twice_the_mean() -> None:
    last: dict[str, date] = {}
    counts: Counter[str] = Counter()
    weekly_counts = []
    for n in range(1000):
        day = DAY + timedelta(days=n)
        if day.weekday() != 0:
            continue
        inputs = _inputs(SCHOOLS, day, seed=2027, last=last, exclude_days=14)
        drawn = inputs.derive()
        assert len(drawn.schools) == inputs.count and 6 <= inputs.count <= 10
        weekly_counts.append(inputs.count)
        for code in drawn.schools:
            last[code] = day + timedelta(days=2)  # inspected during the week
        counts.update(drawn.schools)
    assert len(weekly_counts) == 143 and len(set(weekly_counts)) == 5
    mean = sum(counts.values()) / len(SCHOOLS)
    assert set(counts) == {s.school_code for s in SCHOOLS}
    assert max(counts.values()) <= 2 * mean, counts.most_common(3)


def test_inputs_round_trip_through_json() -> None:
    last = {"D0S01": date(2026, 11, 2)}
    inputs = _inputs(SCHOOLS[:12], date(2026, 11, 23), seed=2**63 - 1, last=last, exclude_days=7)
    stored = json.loads(json.dumps(inputs.to_json()))
    assert stored["seed"] == str(2**63 - 1)  # a string: no JavaScript number holds 63 bits
    again = DrawInputs.from_json(stored)
    assert again == inputs and again.derive() == inputs.derive()
    assert canonical_sha256(stored) == canonical_sha256(inputs.to_json())
    stored["schools"][0]["open_hazards"] = -1
    with pytest.raises(PatrolError, match="non-negative"):
        DrawInputs.from_json(stored)
    del stored["schools"]
    with pytest.raises(PatrolError, match="unreadable"):
        DrawInputs.from_json(stored)


def _inputs(
    schools: list[SchoolRisk], monday: date, *, seed: int, last: dict[str, date], exclude_days: int
) -> DrawInputs:
    return DrawInputs(
        quota_id=1,
        period=QuotaPeriod.WEEK,
        period_start=monday,
        seed=seed,
        min_count=6,
        max_count=10,
        count=period_count(seed, 6, 10, monday),
        exclude_days=exclude_days,
        weights=RiskWeights(),
        recent_event_days=30,
        as_of=datetime(2026, 11, 23, 2, tzinfo=UTC),
        schools=tuple(SchoolInput(s, last.get(s.school_code)) for s in schools),
    )


# --- stored quotas and draws ----------------------------------------------------------------------------------

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)  # Tuesday 10:00 local; its week began on Monday Nov 30
MONDAY = date(2026, 11, 30)
FACTS = StoredFleetFacts()


def _draw(session: Session, quota: SpotCheckQuota, start: date, now: datetime = NOW) -> tuple[SpotCheckDraw, bool]:
    return draw_for_period(session, quota, start, now, FACTS, None, 30, timezone=SHANGHAI)


def _inspect(session: Session, bureau: Bureau, school: str, at: datetime) -> None:
    session.add(
        Inspection(
            school_id=bureau.schools[school],
            method=InspectionMethod.DIRECTED,
            inspector_id=bureau.users["inspector"],
            status=InspectionStatus.OPEN,
            started_at=at,
        )
    )


def test_a_weekly_draw_is_stored_with_its_inputs_once_and_verifies(bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        quota = create_quota(session, name="weekly", period=QuotaPeriod.WEEK, min_count=2, max_count=4, seed=5)
        draw, created = _draw(session, quota, MONDAY)
        draw_id = draw.id
        assert created and draw.period_start == MONDAY and draw.seed == period_seed(5, quota.id, MONDAY)
        assert draw.inputs["seed"] == str(draw.seed)
        assert draw.count == period_count(draw.seed, 2, 4, MONDAY) and len(draw.schools) == draw.count
        assert draw.inputs_sha256 == canonical_sha256(draw.inputs)
        assert [s["school_code"] for s in draw.inputs["schools"]] == sorted(bureau.schools)
        assert draw.inputs["weights"] == {
            "per_hazard": 1.0,
            "per_event": 0.5,
            "per_offline_camera": 0.2,
            "per_week_unchecked": 1.0,
        }
        assert [e.type for e in take_announced(session)] == ["spotcheck.drawn"]
    with session_scope(bureau.factory) as session:
        stored = session.get(SpotCheckDraw, draw_id)
        assert stored is not None
        result = verify_draw(stored)  # from what the database gave back
        assert result.ok and result.derived_schools == tuple(stored.schools), result.verdict
        assert result.verdict.startswith("verified")
        stored_quota = session.get(SpotCheckQuota, stored.quota_id)
        assert stored_quota is not None
        assert verify_draw(stored, quota_seed=stored_quota.seed).ok
        _inspect(session, bureau, "S11", NOW)  # the facts change: the period is not drawn again
        session.flush()
        again, created = _draw(session, stored_quota, MONDAY, NOW + timedelta(days=2))
        assert not created and again.id == draw_id and again.schools == stored.schools
        assert take_announced(session) == []
        assert session.scalar(select(func.count(SpotCheckDraw.id))) == 1


def test_verify_detects_changed_inputs_a_changed_school_list_and_a_forged_count(bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        quota = create_quota(session, name="daily", period=QuotaPeriod.DAY, min_count=2, max_count=2, seed=11)
        draw, _ = _draw(session, quota, date(2026, 12, 1))
        draw_id, schools, inputs, seed = draw.id, list(draw.schools), dict(draw.inputs), draw.seed
    changed = json.loads(json.dumps(inputs))
    changed["schools"][0]["open_hazards"] = 9
    others = [code for code in sorted(bureau.schools) if code not in schools][:2]
    forged = json.loads(json.dumps(inputs))
    forged["count"] = 3
    for values, expected in (
        ({"inputs": changed}, "inputs were changed after the draw"),
        ({"schools": others}, "but the draw lists"),
        ({"inputs": forged, "inputs_sha256": canonical_sha256(forged)}, "is not the seeded count 2"),
        ({"seed": 12}, f"seed 12 is not the inputs' {seed}"),
    ):
        with session_scope(bureau.factory) as session:
            session.execute(update(SpotCheckDraw).where(SpotCheckDraw.id == draw_id).values(**values))
        with session_scope(bureau.factory) as session:
            tampered = session.get(SpotCheckDraw, draw_id)
            assert tampered is not None
            result = verify_draw(tampered)
            assert not result.ok and expected in result.verdict, result.verdict
            assert result.verdict.startswith("NOT verified")
            original = {
                "inputs": inputs,
                "schools": schools,
                "inputs_sha256": canonical_sha256(inputs),
                "seed": seed,
            }
            session.execute(update(SpotCheckDraw).where(SpotCheckDraw.id == draw_id).values(**original))
    with session_scope(bureau.factory) as session:
        restored = session.get(SpotCheckDraw, draw_id)
        assert restored is not None and verify_draw(restored).ok


def test_each_period_has_its_own_seed_that_says_nothing_of_the_next_one(bureau: Bureau) -> None:
    days = [date(2026, 11, 28) + timedelta(days=n) for n in range(4)]
    with session_scope(bureau.factory) as session:
        quota = create_quota(session, name="daily", period=QuotaPeriod.DAY, min_count=2, max_count=2, seed=77)
        draws = [_draw(session, quota, day)[0] for day in days]
        seeds = [d.seed for d in draws]
        assert len(set(seeds)) == 4 and 77 not in seeds and all(0 <= x < 2**63 for x in seeds)
        # Derivable with the quota's secret seed (and its id), and only with it:
        assert seeds == [period_seed(77, quota.id, day) for day in days]
        for shown, next_day, next_seed in zip(seeds, days[1:], seeds[1:], strict=False):
            assert period_seed(shown, quota.id, next_day) != next_seed  # a seen seed is no key to the next
            assert period_seed(78, quota.id, next_day) != next_seed
        other = create_quota(session, name="other", period=QuotaPeriod.DAY, min_count=2, max_count=2, seed=77)
        assert _draw(session, other, days[0])[0].seed != seeds[0]  # the same seed, another quota: another draw
        # A draw forged with a seed of one's choosing is consistent in itself, but not derived from the quota's.
        forged_inputs = replace(DrawInputs.from_json(draws[0].inputs), seed=12345)
        forged = SpotCheckDraw(
            id=999,
            quota_id=quota.id,
            period_start=days[0],
            count=2,
            seed=12345,
            schools=list(forged_inputs.derive().schools),
            inputs=forged_inputs.to_json(),
            inputs_sha256=canonical_sha256(forged_inputs.to_json()),
        )
        assert verify_draw(forged).ok
        refused = verify_draw(forged, quota_seed=quota.seed)
        assert not refused.ok and "not the period seed that quota" in refused.verdict, refused.verdict


def test_events_by_school_counts_in_the_database_what_started_in_the_window(bureau: Bureau) -> None:
    start, end = NOW - timedelta(days=30), NOW
    with session_scope(bureau.factory) as session:
        for school, camera, at in (
            ("S11", "S11-GATE", start),  # on the start: counts
            ("S11", "S11-DORM", start + timedelta(days=3)),
            ("S11", "S11-GATE", end - timedelta(microseconds=1)),
            ("S12", "S12-YARD", start - timedelta(seconds=1)),  # before the window
            ("S21", "S21-GATE", end),  # on the end: not in [start, end)
            ("S22", "S22-CORR", end - timedelta(hours=1)),
        ):
            session.add(
                SafetyEvent(
                    camera_id=bureau.cameras[camera],
                    school_id=bureau.schools[school],
                    type="intrusion",
                    rule="after-hours",
                    severity="general",
                    started_at=at,
                )
            )
        session.flush()
        counts = FACTS.events_by_school(session, start, end)
        assert counts == {bureau.schools["S11"]: 3, bureau.schools["S22"]: 1}
        assert FACTS.events_by_school(session, end, end + timedelta(days=1)) == {bureau.schools["S21"]: 1}
        assert FACTS.events_by_school(session, end + timedelta(days=1), end + timedelta(days=2)) == {}


def test_schools_inspected_in_the_last_k_local_days_are_excluded(bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        _inspect(session, bureau, "S11", NOW - timedelta(days=3))
        _inspect(session, bureau, "S21", NOW - timedelta(days=10))
        # 2026-11-24 16:30 UTC is Nov 25 00:30 local: 6 local days before Dec 1 (7 by the UTC date).
        _inspect(session, bureau, "S22", datetime(2026, 11, 24, 16, 30, tzinfo=UTC))
        _inspect(session, bureau, "S23", datetime(2026, 11, 24, 15, 30, tzinfo=UTC))  # Nov 24 23:30: 7 days
        session.flush()
        quota = create_quota(session, name="all", period=QuotaPeriod.DAY, min_count=6, max_count=6, exclude_days=7)
        draw, _ = _draw(session, quota, date(2026, 12, 1))
        assert sorted(draw.schools) == ["S12", "S13", "S21", "S23"]
        last = {s["school_code"]: s["last_checked"] for s in draw.inputs["schools"]}
        assert last == {
            "S11": "2026-11-28",
            "S12": None,
            "S13": None,
            "S21": "2026-11-21",
            "S22": "2026-11-25",
            "S23": "2026-11-24",
        }


def test_a_weekly_draw_counts_exclusion_from_its_monday(bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        _inspect(session, bureau, "S11", datetime(2026, 11, 23, 2, tzinfo=UTC))  # the Monday before: 7 days
        _inspect(session, bureau, "S12", datetime(2026, 11, 24, 2, tzinfo=UTC))  # 6 days before Monday
        _inspect(session, bureau, "S13", NOW - timedelta(hours=1))  # this week already
        session.flush()
        quota = create_quota(
            session, name="week", period=QuotaPeriod.WEEK, min_count=6, max_count=6, exclude_days=7
        )
        draw, _ = _draw(session, quota, MONDAY)
        assert sorted(draw.schools) == ["S11", "S21", "S22", "S23"]


def test_risk_inputs_count_open_hazards_recent_events_and_offline_cameras(bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        for status in (HazardStatus.OPEN, HazardStatus.RECTIFYING, HazardStatus.SUBMITTED, HazardStatus.CLOSED):
            session.add(
                Hazard(
                    school_id=bureau.schools["S11"],
                    source=HazardSource.MANUAL,
                    title=f"hazard {status.value}",
                    severity=Severity.GENERAL,
                    status=status,
                    deadline=NOW + timedelta(days=7),
                    created_at=NOW - timedelta(days=1),
                    updated_at=NOW - timedelta(days=1),
                )
            )
        for days_ago in (1, 29, 31):  # the last one is older than the 30 days that count
            session.add(
                SafetyEvent(
                    camera_id=bureau.cameras["S12-GATE"],
                    school_id=bureau.schools["S12"],
                    type="intrusion",
                    rule="after-hours",
                    severity="general",
                    started_at=NOW - timedelta(days=days_ago),
                )
            )
        for camera, state in (("S13-GATE", "offline"), ("S13-DORM", "offline"), ("S13-CORR", "online")):
            session.add(
                CameraHealth(
                    camera_id=bureau.cameras[camera],
                    state=HealthState(state),
                    reason=HealthReason.TIMEOUT if state == "offline" else HealthReason.OK,
                    since=NOW - timedelta(hours=2),
                    updated_at=NOW,
                )
            )
        session.flush()
        quota = create_quota(session, name="risk", period=QuotaPeriod.DAY, min_count=1, max_count=1)
        draw, _ = _draw(session, quota, date(2026, 12, 1))
        risks = {
            s["school_code"]: (s["open_hazards"], s["recent_events"], s["offline_cameras"])
            for s in draw.inputs["schools"]
        }
        assert risks["S11"] == (3, 0, 0) and risks["S12"] == (0, 2, 0) and risks["S13"] == (0, 0, 2)
        assert risks["S21"] == (0, 0, 0)


def test_a_quota_of_some_districts_draws_only_there(bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        quota = create_quota(
            session, name="d2", period=QuotaPeriod.DAY, min_count=2, max_count=2, districts=["D2", "D2"]
        )
        assert quota.districts == ["D2"]
        draw, _ = _draw(session, quota, date(2026, 12, 1))
        assert len(draw.schools) == 2 and all(code.startswith("S2") for code in draw.schools)
        assert {s["district_code"] for s in draw.inputs["schools"]} == {"D2"}


def test_quota_and_draw_rules(bureau: Bureau) -> None:
    with session_scope(bureau.factory) as session:
        with pytest.raises(PatrolError, match=r"unknown districts \['D9'\]"):
            create_quota(session, name="x", period=QuotaPeriod.DAY, min_count=1, max_count=1, districts=["D9"])
        with pytest.raises(PatrolError, match="min_count <= max_count"):
            create_quota(session, name="x", period=QuotaPeriod.WEEK, min_count=10, max_count=6)
        with pytest.raises(PatrolError, match="exclude_days"):
            create_quota(session, name="x", period=QuotaPeriod.DAY, min_count=1, max_count=1, exclude_days=-1)
        with pytest.raises(PatrolError, match="2\\*\\*63-1"):
            create_quota(session, name="x", period=QuotaPeriod.DAY, min_count=1, max_count=1, seed=2**63)
        with pytest.raises(PatrolError, match="unknown risk weights"):
            weights_from_json({"per_hazard": 1, "per_dog": 2})
        with pytest.raises(PatrolError, match="between 0 and 100"):
            weights_from_json({"per_event": -1})
        quota = create_quota(session, name="weekly", period=QuotaPeriod.WEEK, min_count=6, max_count=10)
        assert 0 <= quota.seed < 2**63 and quota.weights == weights_to_json(RiskWeights())
        with pytest.raises(PatrolConflictError, match="exists already"):
            create_quota(session, name=" weekly ", period=QuotaPeriod.DAY, min_count=1, max_count=1)
        with pytest.raises(PatrolError, match="starts on a Monday; 2026-12-01 is a Tuesday"):
            _draw(session, quota, date(2026, 12, 1))
        with pytest.raises(PatrolError, match="has not begun"):
            _draw(session, quota, date(2026, 12, 7))
        changed = update_quota(session, quota.id, min_count=3, max_count=4, enabled=False)
        assert (changed.min_count, changed.max_count, changed.enabled) == (3, 4, False)
        with pytest.raises(PatrolError, match="min_count <= max_count"):
            update_quota(session, quota.id, min_count=5)
        _draw(session, quota, MONDAY - timedelta(weeks=1))  # a past period may still be drawn
        with pytest.raises(PatrolConflictError, match="disable it instead"):
            delete_quota(session, quota.id)
        unused = create_quota(session, name="unused", period=QuotaPeriod.DAY, min_count=1, max_count=1)
        delete_quota(session, unused.id)
        with pytest.raises(PatrolNotFoundError):
            get_quota(session, unused.id)


def test_draw_due_draws_each_enabled_quota_once_per_period(bureau: Bureau) -> None:
    def due(now: datetime) -> tuple[int, list[tuple[str, list[str]]]]:
        with session_scope(bureau.factory) as session:
            made = draw_due(session, now, FACTS, timezone=SHANGHAI, recent_event_days=30)
            events = []
            for event in take_announced(session):
                codes = event.payload["school_codes"]
                assert isinstance(codes, list)
                events.append((str(event.payload["quota_name"]), [str(c) for c in codes]))
            return made, events

    with session_scope(bureau.factory) as session:
        create_quota(session, name="daily", period=QuotaPeriod.DAY, min_count=2, max_count=2, seed=1)
        create_quota(session, name="weekly", period=QuotaPeriod.WEEK, min_count=1, max_count=3, seed=2)
        create_quota(session, name="off", period=QuotaPeriod.DAY, min_count=1, max_count=1, enabled=False)
    made, events = due(NOW)
    assert made == 2 and [name for name, _ in events] == ["daily", "weekly"]
    assert all(codes and set(codes) <= set(bureau.schools) for _, codes in events)
    assert due(NOW + timedelta(minutes=1)) == (0, [])  # idempotent
    assert due(NOW + timedelta(days=1))[0] == 1  # a new day; the same week
    assert due(datetime(2026, 12, 6, 16, 0, tzinfo=UTC))[0] == 2  # Monday Dec 7, 00:00 local
    with session_scope(bureau.factory) as session:
        starts = sorted(
            (q, d.isoformat())
            for q, d in session.execute(
                select(SpotCheckQuota.name, SpotCheckDraw.period_start).join(
                    SpotCheckQuota, SpotCheckQuota.id == SpotCheckDraw.quota_id
                )
            ).tuples()
        )
    assert starts == [
        ("daily", "2026-12-01"),
        ("daily", "2026-12-02"),
        ("daily", "2026-12-07"),
        ("weekly", "2026-11-30"),
        ("weekly", "2026-12-07"),
    ]
