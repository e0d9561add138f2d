"""Random spot checks (随机抽查): which schools an inspector checks on a day, drawn fairly and auditable.

A draw takes ``count`` schools, stratified by district, weighted by risk inside a district — open hazards,
recent events, offline cameras, and the days since the last check, so that a school not checked for long comes
up — and never a school checked in the last ``exclude_days`` days. Each district gets the whole part of its
proportional share; the places left over go to districts drawn with probability equal to the fractional part
of their share (systematic sampling), so that over many draws every district gets its share, however small.
Inside a district, Efraimidis-Spirakis keys (``u ** (1 / weight)``) sample without replacement. All of it comes
from one generator seeded with ``"<seed>:<day>"``: the seed and the inputs derive the same draw again.

Stored quotas ("5 a day": period day, 5..5; "6–10 a week": period week, 6..10) draw once per period (the local
date, or the week from the local Monday). The quota's seed is a secret that never leaves the server: each
period draws with its own *period seed* (:func:`period_seed`, an HMAC keyed with the quota's seed), so a period
seed that was shown tells nothing of any other period's; a week's count comes from it too. Each stored draw
keeps its period seed, its schools in order, every input (each school's risks and last check, the weights, the
window, the count) and the SHA-256 of their canonical JSON, from which
:func:`patrol.spot_check_audit.verify_draw` derives it again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import random
import secrets
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kernel.announce import announce
from kernel.db import insert_new
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.facts import FleetFacts
from patrol.models import HazardStatus, QuotaPeriod
from patrol.tables import Hazard, Inspection, SpotCheckDraw, SpotCheckQuota
from patrol.topics import duty_event
from registry.models import Camera, District, School

log = logging.getLogger(__name__)


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
    rng = random.Random(f"{seed}:{day.isoformat()}")  # noqa: S311 - a reproducible draw, not a secret
    quotas = district_quotas({d: len(v) for d, v in by_district.items()}, min(count, len(eligible)), rng)
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


def district_quotas(sizes: Mapping[str, int], count: int, rng: random.Random) -> dict[str, int]:
    """``count`` places split over districts in proportion to ``sizes``, fair over many draws.

    Each district gets the whole part of its share ``count * size / total``; the places left over go to
    districts chosen by systematic sampling over the fractional parts (in a shuffled order), so that a
    district is given one with probability exactly its fractional part. Integer arithmetic keeps it exact.
    """
    total = sum(sizes.values())
    if total == 0:
        return dict.fromkeys(sizes, 0)
    if not 0 <= count <= total:
        raise PatrolError(f"cannot place {count} schools among {total}")
    quotas = {d: count * n // total for d, n in sizes.items()}
    remainders = {d: count * n % total for d, n in sizes.items()}  # in units of 1 / total; each < total
    left = count - sum(quotas.values())  # = sum(remainders) / total
    if left:
        order = sorted(d for d, r in remainders.items() if r)
        rng.shuffle(order)
        point = rng.randrange(total)  # the points point, point + total, ... each fall in one district's stretch
        edge = 0
        for district in order:
            edge += remainders[district]
            if point < edge:
                quotas[district] += 1
                point += total
    return quotas


# --- periods and counts ---------------------------------------------------------------------------------------

SEED_MAX = 2**63 - 1
"""Seeds are non-negative 63-bit integers (they fit a signed BIGINT)."""
MAX_COUNT = 500
"""The most schools one period's draw may name."""
MAX_EXCLUDE_DAYS = 365
INPUTS_VERSION = 1
DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")


def period_start_of(period: QuotaPeriod, day: date) -> date:
    """The first day of the period ``day`` is in: the day itself, or the Monday of its week."""
    return day if period is QuotaPeriod.DAY else day - timedelta(days=day.weekday())


def period_end(period: QuotaPeriod, start: date) -> date:
    """The day after the period that begins on ``start``."""
    return start + timedelta(days=1 if period is QuotaPeriod.DAY else 7)


def current_period_start(period: QuotaPeriod, now: datetime, zone: ZoneInfo) -> date:
    """The first day of the period that ``now`` (aware) is in, in local time."""
    if now.tzinfo is None:
        raise PatrolError(f"{now.isoformat()} has no timezone")
    return period_start_of(period, now.astimezone(zone).date())


def period_seed(quota_seed: int, quota_id: int, period_start: date) -> int:
    """The seed of quota ``quota_id``'s period starting on ``period_start``: the first 63 bits of
    HMAC-SHA256(key: the quota's secret seed, message: ``"<quota id>:<period start>"``).

    Without the quota's seed, one period's seed says nothing about another's: future draws stay unpredictable
    even though every stored draw shows its own seed.
    """
    mac = hmac.new(str(quota_seed).encode(), f"{quota_id}:{period_start.isoformat()}".encode(), "sha256")
    return int.from_bytes(mac.digest()[:8], "big") >> 1


def period_count(seed: int, min_count: int, max_count: int, period_start: date) -> int:
    """How many schools the period starting on ``period_start`` draws: in ``[min_count, max_count]``, from a
    generator seeded with ``"<period seed>:count:<period start>"`` (so the count is re-derivable like the
    schools)."""
    if min_count == max_count:
        return min_count
    rng = random.Random(f"{seed}:count:{period_start.isoformat()}")  # noqa: S311 - reproducible, not a secret
    return rng.randint(min_count, max_count)


def new_seed() -> int:
    """A random 63-bit seed for a new quota."""
    return secrets.randbits(63)


def canonical_json(value: Any) -> bytes:
    """``value`` as canonical JSON (sorted keys, no spaces, UTF-8): the bytes that are hashed."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def canonical_sha256(value: Any) -> str:
    """SHA-256 (hex) of :func:`canonical_json` of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


# --- risk weights ---------------------------------------------------------------------------------------------

WEIGHT_FIELDS = tuple(f.name for f in fields(RiskWeights))
MAX_WEIGHT = 100.0


def weights_from_json(value: Mapping[str, Any]) -> RiskWeights:
    """Risk weights from a JSON object of :class:`RiskWeights` fields (missing ones keep their default)."""
    unknown = sorted(set(value) - set(WEIGHT_FIELDS))
    if unknown:
        raise PatrolError(f"unknown risk weights {unknown}; weights: {', '.join(WEIGHT_FIELDS)}")
    checked: dict[str, float] = {}
    for name, weight in value.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
            raise PatrolError(f"risk weight {name} must be a number, not {weight!r}")
        if not 0 <= weight <= MAX_WEIGHT:
            raise PatrolError(f"risk weight {name} must be between 0 and {MAX_WEIGHT:g}, not {weight}")
        checked[name] = float(weight)
    return RiskWeights(**checked)


def weights_to_json(weights: RiskWeights) -> dict[str, float]:
    """Every field of ``weights``, as JSON."""
    return {name: float(getattr(weights, name)) for name in WEIGHT_FIELDS}


# --- the inputs of a draw -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchoolInput:
    """One school as a stored draw saw it."""

    risk: SchoolRisk
    last_checked: date | None


@dataclass(frozen=True)
class DrawInputs:
    """Everything a period's draw depends on; :meth:`derive` gives its schools from these alone."""

    quota_id: int
    period: QuotaPeriod
    period_start: date
    seed: int
    min_count: int
    max_count: int
    count: int
    exclude_days: int
    weights: RiskWeights
    recent_event_days: int
    as_of: datetime
    """When the risks were read."""
    schools: tuple[SchoolInput, ...]

    def derive(self) -> Draw:
        """The draw these inputs give (exclusion and "last checked" as of the period's first day)."""
        return draw_schools(
            [s.risk for s in self.schools],
            count=self.count,
            day=self.period_start,
            seed=self.seed,
            last_checked={s.risk.school_code: s.last_checked for s in self.schools if s.last_checked},
            exclude_days=self.exclude_days,
            weights=self.weights,
        )

    def to_json(self) -> dict[str, Any]:
        """The inputs as JSON (the seed as a decimal string: 63 bits do not survive a JavaScript number)."""
        return {
            "version": INPUTS_VERSION,
            "quota_id": self.quota_id,
            "period": self.period.value,
            "period_start": self.period_start.isoformat(),
            "seed": str(self.seed),
            "min_count": self.min_count,
            "max_count": self.max_count,
            "count": self.count,
            "exclude_days": self.exclude_days,
            "weights": weights_to_json(self.weights),
            "recent_event_days": self.recent_event_days,
            "as_of": self.as_of.astimezone(UTC).isoformat(),
            "schools": [
                {
                    **{k: v if isinstance(v, str) else int(v) for k, v in asdict(s.risk).items()},
                    "last_checked": s.last_checked.isoformat() if s.last_checked else None,
                }
                for s in self.schools
            ],
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> DrawInputs:
        """Stored inputs back; anything missing or malformed is a :class:`PatrolError`."""
        try:
            if value["version"] != INPUTS_VERSION:
                raise PatrolError(f"inputs version {value['version']!r} is not {INPUTS_VERSION}")
            return cls(
                quota_id=int(value["quota_id"]),
                period=QuotaPeriod(value["period"]),
                period_start=date.fromisoformat(value["period_start"]),
                seed=int(value["seed"]),
                min_count=int(value["min_count"]),
                max_count=int(value["max_count"]),
                count=int(value["count"]),
                exclude_days=int(value["exclude_days"]),
                weights=weights_from_json(value["weights"]),
                recent_event_days=int(value["recent_event_days"]),
                as_of=datetime.fromisoformat(value["as_of"]),
                schools=tuple(_school_from_json(s) for s in value["schools"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise PatrolError(f"the stored inputs are unreadable: {type(err).__name__}: {err}") from err


def _school_from_json(value: Mapping[str, Any]) -> SchoolInput:
    counts = [value[name] for name in ("open_hazards", "recent_events", "offline_cameras")]
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in counts):
        raise ValueError(f"school {value['school_code']!r}: counts must be non-negative integers, not {counts}")
    last = value["last_checked"]
    return SchoolInput(
        SchoolRisk(str(value["school_code"]), str(value["district_code"]), *counts),
        None if last is None else date.fromisoformat(last),
    )


def gather_inputs(
    session: Session,
    *,
    districts: Sequence[str],
    now: datetime,
    facts: FleetFacts,
    recent_event_days: int,
    zone: ZoneInfo,
) -> tuple[SchoolInput, ...]:
    """Every school of ``districts`` (empty: the bureau) with its risks now and its last check (local date).

    A fixed handful of queries whatever the fleet's size: schools, open hazards per school, recent events per
    school, the offline cameras with their schools, and the latest inspection per school.
    """
    stmt = select(School.id, School.code, District.code).join(District, District.id == School.district_id)
    if districts:
        stmt = stmt.where(District.code.in_(list(districts)))
    schools = session.execute(stmt.order_by(School.code)).tuples().all()
    open_hazards = select(Hazard.school_id, func.count(Hazard.id)).where(Hazard.status != HazardStatus.CLOSED)
    hazards = dict(session.execute(open_hazards.group_by(Hazard.school_id)).tuples().all())
    events = facts.events_by_school(session, now - timedelta(days=recent_event_days), now)
    offline_codes = facts.offline_cameras(session)
    cameras = session.execute(select(Camera.code, Camera.school_id)).tuples().all() if offline_codes else []
    offline = Counter(school_id for code, school_id in cameras if code in offline_codes)
    latest = select(Inspection.school_id, func.max(Inspection.started_at)).where(Inspection.started_at <= now)
    last_checked = {
        school_id: at.astimezone(zone).date()
        for school_id, at in session.execute(latest.group_by(Inspection.school_id)).tuples()
        if at is not None
    }
    return tuple(
        SchoolInput(
            SchoolRisk(
                school_code=code,
                district_code=district,
                open_hazards=int(hazards.get(school_id, 0)),
                recent_events=int(events.get(school_id, 0)),
                offline_cameras=offline[school_id],
            ),
            last_checked.get(school_id),
        )
        for school_id, code, district in schools
    )


# --- stored draws ---------------------------------------------------------------------------------------------


def draw_for_period(
    session: Session,
    quota: SpotCheckQuota,
    period_start: date,
    now: datetime,
    facts: FleetFacts,
    by_user: int | None,
    recent_event_days: int,
    *,
    timezone: ZoneInfo = DEFAULT_ZONE,
) -> tuple[SpotCheckDraw, bool]:
    """The quota's draw of the period starting on ``period_start``, and whether this call made it.

    A period is drawn once: a second call (or a concurrent one) returns the stored draw. The risks are read
    now; exclusion and "last checked" count as of the period's first day; the draw's seed is the period seed
    (:func:`period_seed`). Announces ``spotcheck.drawn``.
    """
    if period_start_of(quota.period, period_start) != period_start:
        raise PatrolError(
            f"a weekly quota's period starts on a Monday; {period_start.isoformat()} is a "
            f"{period_start.strftime('%A')}"
        )
    current = current_period_start(quota.period, now, timezone)
    if period_start > current:
        raise PatrolError(
            f"the period starting {period_start.isoformat()} has not begun: the current one starts "
            f"{current.isoformat()}"
        )
    if not 1 <= recent_event_days <= MAX_EXCLUDE_DAYS:
        raise PatrolError(f"recent_event_days must be from 1 to {MAX_EXCLUDE_DAYS}, not {recent_event_days}")
    existing = _stored_draw(session, quota.id, period_start)
    if existing is not None:
        return existing, False
    seed = period_seed(quota.seed, quota.id, period_start)
    inputs = DrawInputs(
        quota_id=quota.id,
        period=quota.period,
        period_start=period_start,
        seed=seed,
        min_count=quota.min_count,
        max_count=quota.max_count,
        count=period_count(seed, quota.min_count, quota.max_count, period_start),
        exclude_days=quota.exclude_days,
        weights=weights_from_json(quota.weights),
        recent_event_days=recent_event_days,
        as_of=now,
        schools=gather_inputs(
            session,
            districts=[str(d) for d in quota.districts],
            now=now,
            facts=facts,
            recent_event_days=recent_event_days,
            zone=timezone,
        ),
    )
    drawn = inputs.derive()
    inputs_json = inputs.to_json()
    row = {
        "quota_id": quota.id,
        "period_start": period_start,
        "count": inputs.count,
        "seed": seed,
        "schools": list(drawn.schools),
        "inputs": inputs_json,
        "inputs_sha256": canonical_sha256(inputs_json),
        "drawn_at": now,
        "drawn_by": by_user,
    }
    inserted = insert_new(session, SpotCheckDraw, [row], "id")
    if not inserted:  # drawn concurrently by another request or the patrol service: theirs stands
        stored = _stored_draw(session, quota.id, period_start)
        if stored is None:
            raise PatrolConflictError(f"the draw of quota {quota.id} for {period_start.isoformat()} vanished")
        return stored, False
    draw = session.get(SpotCheckDraw, inserted.pop())
    if draw is None:
        raise PatrolNotFoundError(f"the new draw of quota {quota.id} was not found after its insert")
    log.info("spot-check quota %s drew %s for %s", quota.id, ", ".join(drawn.schools), period_start)
    announce(
        session,
        duty_event(
            "spotcheck.drawn",
            {
                "draw_id": draw.id,
                "quota_id": quota.id,
                "quota_name": quota.name,
                "period": quota.period.value,
                "period_start": period_start.isoformat(),
                "school_codes": list(drawn.schools),
            },
        ),
    )
    return draw, True


def _stored_draw(session: Session, quota_id: int, period_start: date) -> SpotCheckDraw | None:
    return session.scalars(
        select(SpotCheckDraw).where(SpotCheckDraw.quota_id == quota_id, SpotCheckDraw.period_start == period_start)
    ).one_or_none()


def get_draw(session: Session, draw_id: int) -> SpotCheckDraw:
    """The stored draw, or :class:`PatrolNotFoundError`."""
    draw = session.get(SpotCheckDraw, draw_id)
    if draw is None:
        raise PatrolNotFoundError(f"no spot-check draw with id {draw_id}")
    return draw


def draw_due(
    session: Session, now: datetime, facts: FleetFacts, *, timezone: ZoneInfo, recent_event_days: int
) -> int:
    """Draw the current period of every enabled quota that has not drawn it yet; how many draws were made."""
    quotas = session.scalars(
        select(SpotCheckQuota).where(SpotCheckQuota.enabled.is_(True)).order_by(SpotCheckQuota.id)
    ).all()
    if not quotas:
        return 0
    starts = {q.id: current_period_start(q.period, now, timezone) for q in quotas}
    drawn = select(SpotCheckDraw.quota_id, SpotCheckDraw.period_start).where(
        SpotCheckDraw.quota_id.in_(list(starts)), SpotCheckDraw.period_start >= min(starts.values())
    )
    drawn_already = set(session.execute(drawn).tuples().all())
    made = 0
    for quota in quotas:
        if (quota.id, starts[quota.id]) in drawn_already:
            continue
        try:
            _, created = draw_for_period(
                session, quota, starts[quota.id], now, facts, None, recent_event_days, timezone=timezone
            )
        except PatrolError as err:  # one broken quota must not stop the others' draws
            log.error("spot-check quota %s (%s) could not draw: %s", quota.id, quota.name, err)
            continue
        made += created
    return made
