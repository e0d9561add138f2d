"""Random spot checks (随机抽查): which schools an inspector checks on a day, drawn fairly and auditable.

A draw takes ``count`` schools, stratified by district (each district's share in proportion to its schools,
largest remainders first), weighted by risk inside a district — open hazards, recent events, offline cameras,
and the days since the school was last checked, so that a school not checked for long comes up — and never a
school checked in the last ``exclude_days`` days. Sampling without replacement uses Efraimidis-Spirakis keys
(``u ** (1 / weight)``) from a generator seeded with ``"<seed>:<day>"``: storing the seed (and the inputs)
lets anyone derive the same draw again.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from patrol.errors import PatrolError


@dataclass(frozen=True)
class SchoolRisk:
    """What the draw knows of a school on the day of the draw."""

    school_code: str
    district_code: str
    open_hazards: int = 0
    recent_events: int = 0
    offline_cameras: int = 0


@dataclass(frozen=True)
class RiskWeights:
    """How much each risk adds to a school's weight (a school with no risk, checked yesterday, weighs 1)."""

    per_hazard: float = 1.0
    per_event: float = 0.5
    per_offline_camera: float = 0.2
    per_week_unchecked: float = 1.0
    """Added for every 7 days since the last check (capped at 8 weeks; never checked counts as 8 weeks)."""


@dataclass(frozen=True)
class Draw:
    """The result, with what is needed to derive it again."""

    day: date
    seed: int
    schools: tuple[str, ...]
    weights: Mapping[str, float]


def school_weight(risk: SchoolRisk, last_checked: date | None, day: date, weights: RiskWeights) -> float:
    """The sampling weight of one school on ``day``."""
    weeks = 8.0 if last_checked is None else min(8.0, max(0, (day - last_checked).days) / 7)
    return (
        1.0
        + weights.per_hazard * risk.open_hazards
        + weights.per_event * risk.recent_events
        + weights.per_offline_camera * risk.offline_cameras
        + weights.per_week_unchecked * weeks
    )


def draw_schools(
    schools: Sequence[SchoolRisk],
    *,
    count: int,
    day: date,
    seed: int,
    last_checked: Mapping[str, date],
    exclude_days: int = 7,
    weights: RiskWeights | None = None,
) -> Draw:
    """Draw ``count`` schools for ``day`` (see the module docstring); fewer only if fewer are eligible."""
    if count < 1:
        raise PatrolError(f"a draw takes at least one school, not {count}")
    if exclude_days < 0:
        raise PatrolError(f"exclude_days must be >= 0, not {exclude_days}")
    weights = weights or RiskWeights()
    eligible = [
        s
        for s in schools
        if (last := last_checked.get(s.school_code)) is None or (day - last).days >= exclude_days
    ]
    by_district: dict[str, list[SchoolRisk]] = defaultdict(list)
    for school in sorted(eligible, key=lambda s: (s.district_code, s.school_code)):
        by_district[school.district_code].append(school)
    quotas = _quotas({d: len(v) for d, v in by_district.items()}, min(count, len(eligible)))
    rng = random.Random(f"{seed}:{day.isoformat()}")  # noqa: S311 - a reproducible draw, not a secret
    chosen: list[str] = []
    table: dict[str, float] = {}
    for district in sorted(by_district):
        keyed = []
        for school in by_district[district]:
            w = school_weight(school, last_checked.get(school.school_code), day, weights)
            table[school.school_code] = round(w, 4)
            keyed.append((rng.random() ** (1.0 / w), school.school_code))
        keyed.sort(reverse=True)
        chosen += [code for _, code in keyed[: quotas[district]]]
    return Draw(day, seed, tuple(chosen), table)


def _quotas(sizes: Mapping[str, int], count: int) -> dict[str, int]:
    """``count`` split over districts in proportion to ``sizes`` (largest remainders first, then by name)."""
    total = sum(sizes.values())
    if total == 0:
        return dict.fromkeys(sizes, 0)
    exact = {d: count * n / total for d, n in sizes.items()}
    quotas = {d: int(x) for d, x in exact.items()}
    left = count - sum(quotas.values())
    for district in sorted(sizes, key=lambda d: (-(exact[d] - quotas[d]), d))[:left]:
        quotas[district] += 1
    return quotas
