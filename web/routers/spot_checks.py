"""Random spot checks (随机抽查): quotas, their seeded draws and their audit (inspections: ``inspections.py``).

Quotas are configuration (bureau-scoped administrators, every change audited without the seed); drawing is the
inspectors' work (inspector, leader on duty, administrator); every logged-in role reads. A scoped user sees the
quotas whose districts lie within its scope and their draws (:mod:`web.scopes`); the others are 404. A quota's
seed is secret (whoever knows it knows every future draw): an administrator may set it on creation, and no
response ever shows it. A draw shows its own period seed, which tells nothing of any other period's.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from patrol import spot_check_audit as audit
from patrol import spot_check_quotas as quotas
from patrol import spot_checks as sc
from patrol.camera_sets import Code
from patrol.models import InspectionStatus, QuotaPeriod
from patrol.tables import Inspection, SpotCheckDraw, SpotCheckQuota
from registry.models import District, School
from web.deps import AppFacts, AppSettings, Clock, DbSession, UnitOfWork
from web.permissions import BureauAdminUser, InspectorUser
from web.routers.audit import record_change
from web.schemas import Page, UserRef, user_refs
from web.scopes import Scope, UserScope, not_found

router = APIRouter(prefix="/api", tags=["spot-checks"])

Limit = Annotated[int, Query(ge=1, le=1000, description="Most rows returned")]
Offset = Annotated[int, Query(ge=0, description="Rows skipped")]


# --- schemas --------------------------------------------------------------------------------------------------


class RiskWeightsModel(BaseModel):
    """How much each risk adds to a school's weight in a draw (a school with no risk, just checked, weighs 1)."""

    model_config = ConfigDict(extra="forbid")

    per_hazard: float = Field(1.0, ge=0, le=sc.MAX_WEIGHT, description="Added per open hazard")
    per_event: float = Field(0.5, ge=0, le=sc.MAX_WEIGHT, description="Added per recent event")
    per_offline_camera: float = Field(0.2, ge=0, le=sc.MAX_WEIGHT, description="Added per offline camera")
    per_week_unchecked: float = Field(
        1.0, ge=0, le=sc.MAX_WEIGHT, description="Added per week since the last check (at most 8 weeks)"
    )


class QuotaBase(BaseModel):
    """Fields every quota representation has."""

    name: str = Field(min_length=1, max_length=100, description="Name, unique, e.g. 每日抽查5所")
    min_count: int = Field(ge=1, le=sc.MAX_COUNT, description="Fewest schools a period draws")
    max_count: int = Field(ge=1, le=sc.MAX_COUNT, description="Most schools a period draws (= min: fixed)")
    exclude_days: int = Field(
        7, ge=0, le=sc.MAX_EXCLUDE_DAYS, description="Schools checked in the last this many days are not drawn"
    )
    districts: list[Code] = Field(
        default_factory=list, max_length=1000, description="District codes drawn from; empty: the whole bureau"
    )
    weights: RiskWeightsModel = Field(default_factory=RiskWeightsModel, description="Risk weights")
    enabled: bool = Field(True, description="Drawn automatically every period")


class QuotaCreate(QuotaBase):
    """A new quota: "5 a day" is period day, 5..5; "6–10 a week" is period week, 6..10."""

    model_config = ConfigDict(extra="forbid")

    period: QuotaPeriod = Field(description="day (the local date) or week (Monday to Sunday, local)")
    seed: int | None = Field(
        None,
        ge=0,
        le=sc.SEED_MAX,
        description="Secret seed every period seed is derived from; never shown again; omitted: a random one",
    )


class QuotaUpdate(BaseModel):
    """Changes to a quota (its period and seed stay: stored draws keep their own)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100, description="New name")
    min_count: int | None = Field(None, ge=1, le=sc.MAX_COUNT, description="New fewest schools")
    max_count: int | None = Field(None, ge=1, le=sc.MAX_COUNT, description="New most schools")
    exclude_days: int | None = Field(None, ge=0, le=sc.MAX_EXCLUDE_DAYS, description="New exclusion window")
    districts: list[Code] | None = Field(None, max_length=1000, description="New districts; []: whole bureau")
    weights: RiskWeightsModel | None = Field(None, description="New risk weights")
    enabled: bool | None = Field(None, description="Enable or disable automatic draws")


class QuotaPublic(QuotaBase):
    """A quota as the API shows it."""

    id: int = Field(description="Quota id")
    period: QuotaPeriod = Field(description="day or week")
    created_at: datetime = Field(description="When it was created")
    updated_at: datetime = Field(description="Last change")


class DrawRequest(BaseModel):
    """Which period to draw."""

    model_config = ConfigDict(extra="forbid")

    period_start: date | None = Field(
        None, description="First day of the period (a Monday for a weekly quota); omitted: the current period"
    )


class DrawnSchoolPublic(BaseModel):
    """A school a draw named, and its inspection for that draw if one was started."""

    code: str = Field(description="School code")
    name: str = Field(description="School name")
    district_code: str = Field(description="District code")
    inspection_id: int | None = Field(None, description="Its inspection for this draw")
    inspection_status: InspectionStatus | None = Field(None, description="open or signed; null: not started")


class DrawPublic(BaseModel):
    """A stored draw."""

    id: int = Field(description="Draw id")
    quota_id: int = Field(description="Quota id")
    quota_name: str = Field(description="Quota name")
    period: QuotaPeriod = Field(description="day or week")
    period_start: date = Field(description="First day of the period (local)")
    period_end: date = Field(description="Day after the period (local)")
    count: int = Field(ge=1, description="Schools to draw this period (seeded within the quota's range)")
    seed: str = Field(
        description="This period's seed, as a decimal string (63 bits do not survive a JavaScript number); "
        "derived from the quota's secret seed, it says nothing of other periods' draws"
    )
    schools: list[DrawnSchoolPublic] = Field(description="The schools drawn, in draw order")
    inputs_sha256: str = Field(description="SHA-256 of the canonical JSON of the inputs")
    drawn_at: datetime = Field(description="When it was drawn")
    drawn_by: UserRef | None = Field(None, description="Who drew it; null: the patrol service (or a deleted user)")


class DrawDetail(DrawPublic):
    """A stored draw with every input it was derived from."""

    inputs: dict[str, Any] = Field(description="Schools with their risks and last check, weights, window, count")


class DrawVerificationPublic(BaseModel):
    """The draw derived again from its stored inputs alone."""

    draw_id: int = Field(description="Draw id")
    ok: bool = Field(description="Hash, count, schools and the seed's derivation all match")
    verdict: str = Field(description="One line for a person")
    stored_sha256: str = Field(description="Inputs hash stored at the draw")
    computed_sha256: str = Field(description="Inputs hash computed now")
    stored_schools: list[str] = Field(description="Schools the draw lists")
    derived_schools: list[str] = Field(description="Schools the stored inputs give")
    problems: list[str] = Field(description="What does not match")


def _quota_public(quota: SpotCheckQuota) -> QuotaPublic:
    return QuotaPublic(
        id=quota.id,
        name=quota.name,
        period=quota.period,
        min_count=quota.min_count,
        max_count=quota.max_count,
        exclude_days=quota.exclude_days,
        districts=[str(d) for d in quota.districts],
        weights=RiskWeightsModel.model_validate(sc.weights_to_json(sc.weights_from_json(quota.weights))),
        enabled=quota.enabled,
        created_at=quota.created_at,
        updated_at=quota.updated_at,
    )


def _visible_quotas(session: Session, scope: Scope) -> list[SpotCheckQuota]:
    """The quotas whose districts lie within ``scope`` (a quota of no district draws from the whole bureau)."""
    codes = scope.codes(session)
    quota_rows = session.scalars(select(SpotCheckQuota).order_by(SpotCheckQuota.id))
    return [q for q in quota_rows if codes.covers(districts=(str(d) for d in q.districts), places_required=True)]


def quota_for(session: Session, quota_id: int, scope: Scope) -> SpotCheckQuota:
    """The quota, if visible in ``scope`` (404 otherwise)."""
    quota = quotas.get_quota(session, quota_id)
    codes = scope.codes(session)
    if not codes.covers(districts=(str(d) for d in quota.districts), places_required=True):
        raise not_found(f"spot-check quota with id {quota_id}")
    return quota


def _draw_for(session: Session, draw_id: int, scope: Scope) -> SpotCheckDraw:
    draw = sc.get_draw(session, draw_id)
    if not scope.is_bureau and draw.quota_id not in {q.id for q in _visible_quotas(session, scope)}:
        raise not_found(f"spot-check draw with id {draw_id}")
    return draw


@router.get("/spot-checks/quotas", summary="Spot-check quotas")
def list_quotas(session: DbSession, scope: UserScope, limit: Limit = 200) -> list[QuotaPublic]:
    """Every quota in the user's scope, by id."""
    return [_quota_public(q) for q in _visible_quotas(session, scope)[:limit]]


@router.post("/spot-checks/quotas", status_code=status.HTTP_201_CREATED, summary="Create a spot-check quota")
def create_quota(body: QuotaCreate, request: Request, work: UnitOfWork, user: BureauAdminUser) -> QuotaPublic:
    """A quota such as 5 schools a day or 6–10 a week; its secret seed (given or random) is kept for every
    later period's seed, and never shown."""
    weights = sc.weights_from_json(body.weights.model_dump())
    quota = quotas.create_quota(work.session, **body.model_dump(exclude={"weights"}), weights=weights)
    work.session.flush()
    # The seed is secret: the row says whether one was given, never which.
    detail = body.model_dump(mode="json", exclude={"seed"}) | {"seed_given": body.seed is not None}
    record_change(work.session, request, user, f"spot-check quota {quota.id}", "create", detail)
    work.commit()
    return _quota_public(quota)


@router.get("/spot-checks/quotas/{quota_id}", summary="One spot-check quota")
def get_quota(quota_id: int, session: DbSession, scope: UserScope) -> QuotaPublic:
    """A quota by id."""
    return _quota_public(quota_for(session, quota_id, scope))


@router.patch("/spot-checks/quotas/{quota_id}", summary="Change a spot-check quota")
def update_quota(
    quota_id: int, body: QuotaUpdate, request: Request, work: UnitOfWork, user: BureauAdminUser
) -> QuotaPublic:
    """Change the counts, window, districts, weights, name or whether it draws; later draws use them."""
    weights = None if body.weights is None else sc.weights_from_json(body.weights.model_dump())
    quota = quotas.update_quota(work.session, quota_id, **body.model_dump(exclude={"weights"}), weights=weights)
    changes = body.model_dump(mode="json", exclude_unset=True)
    record_change(work.session, request, user, f"spot-check quota {quota.id}", "update", changes)
    work.commit()
    return _quota_public(quota)


@router.delete(
    "/spot-checks/quotas/{quota_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a spot-check quota"
)
def delete_quota(quota_id: int, request: Request, work: UnitOfWork, user: BureauAdminUser) -> Response:
    """Delete a quota that has never drawn (409 otherwise: its draws are kept for the audit; disable it)."""
    name = quotas.get_quota(work.session, quota_id).name
    quotas.delete_quota(work.session, quota_id)
    record_change(work.session, request, user, f"spot-check quota {quota_id}", "delete", {"name": name})
    work.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- draws ----------------------------------------------------------------------------------------------------


def _draws_public(session: DbSession, draws: list[SpotCheckDraw]) -> list[DrawPublic]:
    quotas = {
        q.id: q
        for q in session.scalars(select(SpotCheckQuota).where(SpotCheckQuota.id.in_({d.quota_id for d in draws})))
    }
    codes = {str(c) for d in draws for c in d.schools}
    schools = {
        code: (name, district)
        for code, name, district in session.execute(
            select(School.code, School.name, District.code)
            .join(District, District.id == School.district_id)
            .where(School.code.in_(codes))
        ).tuples()
    }
    inspected = {
        (draw_id, code): (iid, st)
        for iid, draw_id, code, st in session.execute(
            select(Inspection.id, Inspection.draw_id, School.code, Inspection.status)
            .join(School, School.id == Inspection.school_id)
            .where(Inspection.draw_id.in_([d.id for d in draws]))
        ).tuples()
    }
    users = user_refs(session, (d.drawn_by for d in draws))
    result = []
    for draw in draws:
        quota = quotas[draw.quota_id]
        drawn = []
        for code in map(str, draw.schools):
            name, district = schools.get(code, ("(no longer registered)", ""))
            iid, st = inspected.get((draw.id, code), (None, None))
            drawn.append(
                DrawnSchoolPublic(
                    code=code, name=name, district_code=district, inspection_id=iid, inspection_status=st
                )
            )
        result.append(
            DrawPublic(
                id=draw.id,
                quota_id=quota.id,
                quota_name=quota.name,
                period=quota.period,
                period_start=draw.period_start,
                period_end=sc.period_end(quota.period, draw.period_start),
                count=draw.count,
                seed=str(draw.seed),
                schools=drawn,
                inputs_sha256=draw.inputs_sha256,
                drawn_at=draw.drawn_at,
                drawn_by=None if draw.drawn_by is None else users.get(draw.drawn_by),
            )
        )
    return result


@router.post(
    "/spot-checks/quotas/{quota_id}/draws",
    status_code=status.HTTP_201_CREATED,
    summary="Draw a period's schools",
    responses={200: {"description": "The period was drawn before: the stored draw"}},
)
def draw_period(
    quota_id: int,
    body: DrawRequest,
    response: Response,
    work: UnitOfWork,
    user: InspectorUser,
    scope: UserScope,
    settings: AppSettings,
    facts: AppFacts,
    clock: Clock,
) -> DrawDetail:
    """Draw the quota's schools for a period (201); a period is drawn once, so asking again returns the stored
    draw (200). Only the current or a past period can be drawn."""
    quota = quota_for(work.session, quota_id, scope)
    if not quota.enabled:
        raise HTTPException(status.HTTP_409_CONFLICT, f"quota {quota_id} is disabled: enable it to draw")
    zone = ZoneInfo(settings.instance.timezone)
    now = clock()
    start = body.period_start or sc.current_period_start(quota.period, now, zone)
    draw, created = sc.draw_for_period(
        work.session,
        quota,
        start,
        now,
        facts,
        user.id,
        settings.patrol.spot_checks.recent_event_days,
        timezone=zone,
    )
    work.commit()
    if not created:
        response.status_code = status.HTTP_200_OK
    return DrawDetail(**_draws_public(work.session, [draw])[0].model_dump(), inputs=draw.inputs)


@router.get("/spot-checks/draws", summary="Stored draws")
def list_draws(
    session: DbSession,
    scope: UserScope,
    quota: Annotated[int | None, Query(ge=1, description="Only this quota's draws")] = None,
    since: Annotated[date | None, Query(description="Periods starting on or after this (local) date")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[DrawPublic]:
    """Draws, newest period first (without their inputs: see one draw), with the number matching."""
    stmt = select(SpotCheckDraw)
    if not scope.is_bureau:
        stmt = stmt.where(SpotCheckDraw.quota_id.in_([q.id for q in _visible_quotas(session, scope)]))
    if quota is not None:
        stmt = stmt.where(SpotCheckDraw.quota_id == quota)
    if since is not None:
        stmt = stmt.where(SpotCheckDraw.period_start >= since)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    draws = session.scalars(
        stmt.order_by(SpotCheckDraw.period_start.desc(), SpotCheckDraw.id.desc()).limit(limit).offset(offset)
    ).all()
    return Page(total=total, offset=offset, limit=limit, items=_draws_public(session, list(draws)))


@router.get("/spot-checks/draws/{draw_id}", summary="One draw with its inputs")
def get_draw(draw_id: int, session: DbSession, scope: UserScope) -> DrawDetail:
    """A draw, its schools, and every input it was derived from."""
    draw = _draw_for(session, draw_id, scope)
    return DrawDetail(**_draws_public(session, [draw])[0].model_dump(), inputs=draw.inputs)


@router.get("/spot-checks/draws/{draw_id}/verify", summary="Audit a draw")
def verify_draw(draw_id: int, session: DbSession, scope: UserScope) -> DrawVerificationPublic:
    """Derive the draw again from its stored inputs and seed alone, and say whether everything matches; also
    check (with the quota's secret seed, which stays on the server) that the draw's seed is its period seed."""
    draw = _draw_for(session, draw_id, scope)
    result = audit.verify_draw(draw, quota_seed=quotas.get_quota(session, draw.quota_id).seed)
    return DrawVerificationPublic.model_validate({**asdict(result), "verdict": result.verdict})
