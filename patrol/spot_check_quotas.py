"""Spot-check quotas: how many schools to draw per day or week, from which districts, with which risk weights.

A quota's period and seed never change once it exists (its stored draws keep their own period seeds); the
counts, the exclusion window, the districts and the weights apply to later draws. The quota's seed is a secret:
each period's seed is derived from it (:func:`patrol.spot_checks.period_seed`), and whoever knows it knows every
future draw, so the API never shows it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError
from patrol.models import QuotaPeriod
from patrol.spot_checks import MAX_COUNT, MAX_EXCLUDE_DAYS, SEED_MAX, RiskWeights, new_seed, weights_to_json
from patrol.tables import SpotCheckDraw, SpotCheckQuota
from registry.models import District


def get_quota(session: Session, quota_id: int) -> SpotCheckQuota:
    """The quota, or :class:`PatrolNotFoundError`."""
    quota = session.get(SpotCheckQuota, quota_id)
    if quota is None:
        raise PatrolNotFoundError(f"no spot-check quota with id {quota_id}")
    return quota


def create_quota(
    session: Session,
    *,
    name: str,
    period: QuotaPeriod,
    min_count: int,
    max_count: int,
    exclude_days: int = 7,
    districts: Sequence[str] = (),
    weights: RiskWeights | None = None,
    seed: int | None = None,
    enabled: bool = True,
) -> SpotCheckQuota:
    """A new quota, e.g. 5..5 a day or 6..10 a week; its secret seed is given or drawn from :mod:`secrets`."""
    quota = SpotCheckQuota(
        period=period,
        seed=new_seed() if seed is None else seed,
        weights=weights_to_json(weights or RiskWeights()),
        enabled=enabled,
    )
    _apply(session, quota, name=name, min_count=min_count, max_count=max_count, exclude_days=exclude_days)
    _set_districts(session, quota, districts)
    if not 0 <= quota.seed <= SEED_MAX:
        raise PatrolError(f"a seed is an integer from 0 to 2**63-1, not {quota.seed}")
    session.add(quota)
    session.flush()
    return quota


def update_quota(
    session: Session,
    quota_id: int,
    *,
    name: str | None = None,
    min_count: int | None = None,
    max_count: int | None = None,
    exclude_days: int | None = None,
    districts: Sequence[str] | None = None,
    weights: RiskWeights | None = None,
    enabled: bool | None = None,
) -> SpotCheckQuota:
    """Change a quota (not its period or seed: stored draws keep their own). Later draws use the new values."""
    quota = get_quota(session, quota_id)
    _apply(
        session,
        quota,
        name=quota.name if name is None else name,
        min_count=quota.min_count if min_count is None else min_count,
        max_count=quota.max_count if max_count is None else max_count,
        exclude_days=quota.exclude_days if exclude_days is None else exclude_days,
    )
    if districts is not None:
        _set_districts(session, quota, districts)
    if weights is not None:
        quota.weights = weights_to_json(weights)
    if enabled is not None:
        quota.enabled = enabled
    session.flush()
    return quota


def delete_quota(session: Session, quota_id: int) -> None:
    """Delete a quota that never drew; one with draws is kept for the audit (disable it instead)."""
    quota = get_quota(session, quota_id)
    draws = session.scalar(select(func.count(SpotCheckDraw.id)).where(SpotCheckDraw.quota_id == quota_id)) or 0
    if draws:
        raise PatrolConflictError(
            f"quota {quota_id} has {draws} stored draws, kept for the audit: disable it instead of deleting it"
        )
    session.delete(quota)
    session.flush()


def _apply(
    session: Session, quota: SpotCheckQuota, *, name: str, min_count: int, max_count: int, exclude_days: int
) -> None:
    name = name.strip()
    if not name:
        raise PatrolError("a quota needs a name")
    if len(name) > 100:
        raise PatrolError(f"a quota name has at most 100 characters, not {len(name)}")
    if not 1 <= min_count <= max_count <= MAX_COUNT:
        raise PatrolError(
            f"counts must satisfy 1 <= min_count <= max_count <= {MAX_COUNT}, not {min_count}..{max_count}"
        )
    if not 0 <= exclude_days <= MAX_EXCLUDE_DAYS:
        raise PatrolError(f"exclude_days must be from 0 to {MAX_EXCLUDE_DAYS}, not {exclude_days}")
    clash = session.scalar(select(SpotCheckQuota.id).where(SpotCheckQuota.name == name))
    if clash is not None and clash != quota.id:
        raise PatrolConflictError(f"a spot-check quota named {name!r} exists already (id {clash})")
    quota.name, quota.min_count, quota.max_count, quota.exclude_days = name, min_count, max_count, exclude_days


def _set_districts(session: Session, quota: SpotCheckQuota, districts: Sequence[str]) -> None:
    wanted = list(dict.fromkeys(districts))
    if wanted:
        known = set(session.scalars(select(District.code).where(District.code.in_(wanted))))
        unknown = [code for code in wanted if code not in known]
        if unknown:
            raise PatrolError(f"unknown districts {unknown}")
    quota.districts = sorted(wanted)
