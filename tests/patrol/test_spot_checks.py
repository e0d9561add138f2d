"""Spot checks: stratified, risk-weighted, recent checks excluded, reproducible from the seed, fair over time."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta

import pytest

from patrol.errors import PatrolError
from patrol.spot_checks import SchoolRisk, draw_schools

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


def test_bad_draws() -> None:
    with pytest.raises(PatrolError, match="at least one school"):
        draw_schools(SCHOOLS, count=0, day=DAY, seed=1, last_checked={})
    everyone = dict.fromkeys((s.school_code for s in SCHOOLS), DAY)
    assert draw_schools(SCHOOLS, count=5, day=DAY, seed=1, last_checked=everyone).schools == ()
