"""Tours (轮巡): camera sets that walls rotate through, page by page, with a dwell time and a layout.

Bureau-scoped administrators configure them (every change audited); a scoped user reads the tours whose camera
set lies within its scope (:mod:`web.scopes`), the others are 404 and absent from the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from patrol.camera_sets import (
    CameraRef,
    CameraSet,
    camera_set_from_json,
    load_fleet,
    resolve,
    select_cameras,
    unknown_codes,
)
from patrol.errors import PatrolError
from patrol.tables import Tour, TourCoverage, VideoWall
from patrol.tours import Layout, as_layout
from web.deps import DbSession, UnitOfWork
from web.permissions import BureauAdminUser
from web.routers.audit import record_change
from web.scopes import ScopeCodes, UserScope, not_found

router = APIRouter(prefix="/api", tags=["tours"])


class TourBase(BaseModel):
    """Fields every tour representation has."""

    name: str = Field(min_length=1, max_length=100, description="Tour name, unique")
    description: str = Field("", max_length=500, description="What the tour is for")
    cameras: CameraSet = Field(
        default_factory=CameraSet, description="Which cameras it rotates (empty: the whole fleet)"
    )
    dwell_s: int = Field(10, ge=5, le=300, description="Seconds each page stays on the wall")
    layout: Layout = Field("16", description="Layout the tour is meant for (a wall given this tour takes it)")
    key_repeat: int = Field(1, ge=1, le=10, description="Times a key-scene camera is shown in each round")
    enabled: bool = Field(True, description="A disabled tour leaves its walls' rotating tiles empty")


class TourCreate(TourBase):
    """A new tour."""

    model_config = ConfigDict(extra="forbid")


class TourUpdate(BaseModel):
    """Changes to a tour (fields left out stay as they are)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100, description="Tour name, unique")
    description: str | None = Field(None, max_length=500, description="What the tour is for")
    cameras: CameraSet | None = Field(None, description="Which cameras it rotates")
    dwell_s: int | None = Field(None, ge=5, le=300, description="Seconds each page stays on the wall")
    layout: Layout | None = Field(None, description="Layout the tour is meant for")
    key_repeat: int | None = Field(None, ge=1, le=10, description="Times a key scene is shown in each round")
    enabled: bool | None = Field(None, description="Whether walls rotate it")


class TourPublic(TourBase):
    """A tour as the API shows it."""

    id: int = Field(description="Tour id")
    camera_count: int = Field(ge=0, description="Enabled cameras in its set now")
    cameras_described: str = Field(description="The camera set in words")
    walls: list[str] = Field(description="Walls running it")
    created_at: datetime = Field(description="Created")
    updated_at: datetime = Field(description="Last change")


class TourCameraPublic(BaseModel):
    """One camera of a tour, in the order the tour shows them."""

    code: str = Field(description="Camera code")
    name: str = Field(description="Camera name")
    scene_type: str = Field(description="Scene type")
    key_scene: bool = Field(description="Shown key_repeat times a round")
    school_code: str = Field(description="School code")
    school_name: str = Field(description="School name")
    district_code: str = Field(description="District code")


class CoverageByDistrict(BaseModel):
    """Patrol coverage of one district on one day."""

    district_code: str = Field(description="District code")
    cameras: int = Field(ge=0, description="Enabled cameras")
    shown: int = Field(ge=0, description="Cameras shown on a wall that day")


class CoveragePublic(BaseModel):
    """Which share of a tour's cameras were shown on a wall on a local day."""

    tour_id: int = Field(description="Tour id")
    day: date = Field(description="Local day")
    cameras: int = Field(ge=0, description="Cameras of the tour")
    shown: int = Field(ge=0, description="Of them, shown on a wall that day")
    share: float = Field(ge=0, le=1, description="shown / cameras (0 when the tour has none)")
    by_district: list[CoverageByDistrict] = Field(description="The same by district")


def _get(session: Session, tour_id: int, codes: ScopeCodes | None = None) -> Tour:
    """The tour, if it exists and its camera set lies within ``codes`` (404 otherwise; None: the bureau)."""
    tour = session.get(Tour, tour_id)
    if tour is None or (codes is not None and not covers_set(codes, camera_set_from_json(tour.selector))):
        raise not_found(f"tour {tour_id}")
    return tour


def covers_set(codes: ScopeCodes, cameras: CameraSet) -> bool:
    """Whether a camera set (of a tour or a plan) lies within the scope of ``codes``."""
    return codes.covers(
        districts=cameras.districts, schools=cameras.schools, cameras=cameras.cameras, filtered=cameras.has_filter
    )


def _check(session: Session, name: str, cameras: CameraSet, tour_id: int | None = None) -> None:
    problems = unknown_codes(session, cameras)
    if problems:
        raise PatrolError("camera set: " + "; ".join(problems))
    taken = session.scalar(select(Tour.id).where(Tour.name == name, Tour.id != (tour_id or 0)))
    if taken is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"a tour named {name!r} exists already (id {taken})")


def tour_public(session: Session, tour: Tour, fleet: Sequence[CameraRef] | None = None) -> TourPublic:
    """The API view of a tour, with its camera count now (counted in ``fleet`` when given: one read of the
    fleet for a whole list)."""
    cameras = camera_set_from_json(tour.selector)
    count = len(select_cameras(fleet, cameras) if fleet is not None else resolve(session, cameras))
    walls = list(
        session.scalars(select(VideoWall.name).where(VideoWall.tour_id == tour.id).order_by(VideoWall.name))
    )
    return TourPublic(
        id=tour.id,
        name=tour.name,
        description=tour.description,
        cameras=cameras,
        dwell_s=tour.dwell_s,
        layout=as_layout(tour.layout),
        key_repeat=tour.key_repeat,
        enabled=tour.enabled,
        camera_count=count,
        cameras_described=cameras.describe(),
        walls=walls,
        created_at=tour.created_at,
        updated_at=tour.updated_at,
    )


@router.get("/tours", summary="List tours")
def list_tours(session: DbSession, scope: UserScope) -> list[TourPublic]:
    """Every tour in the user's scope, by name, with the number of cameras its set has now."""
    codes = scope.codes(session)
    tours = [
        t
        for t in session.scalars(select(Tour).order_by(Tour.name))
        if covers_set(codes, camera_set_from_json(t.selector))
    ]
    fleet = load_fleet(session) if tours else []
    return [tour_public(session, t, fleet) for t in tours]


@router.post("/tours", status_code=status.HTTP_201_CREATED, summary="Create a tour")
def create_tour(body: TourCreate, request: Request, work: UnitOfWork, user: BureauAdminUser) -> TourPublic:
    """A new tour; walls show it once a wall is given it."""
    _check(work.session, body.name, body.cameras)
    tour = Tour(
        name=body.name,
        description=body.description,
        selector=body.cameras.model_dump(mode="json"),
        dwell_s=body.dwell_s,
        layout=body.layout,
        key_repeat=body.key_repeat,
        enabled=body.enabled,
    )
    work.session.add(tour)
    work.session.flush()
    record_change(work.session, request, user, f"tour {tour.id}", "create", body.model_dump(mode="json"))
    work.commit()
    return tour_public(work.session, tour)


@router.get("/tours/{tour_id}", summary="One tour")
def get_tour(tour_id: int, session: DbSession, scope: UserScope) -> TourPublic:
    """A tour and the walls running it."""
    return tour_public(session, _get(session, tour_id, scope.codes(session)))


@router.patch("/tours/{tour_id}", summary="Change a tour")
def update_tour(
    tour_id: int, body: TourUpdate, request: Request, work: UnitOfWork, user: BureauAdminUser
) -> TourPublic:
    """Change a tour; walls running it re-plan at once and keep their place in the round."""
    tour = _get(work.session, tour_id)
    cameras = body.cameras if body.cameras is not None else camera_set_from_json(tour.selector)
    _check(work.session, body.name or tour.name, cameras, tour.id)
    changes = body.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None:
            raise PatrolError(f"{name} cannot be null")
    for name, value in changes.items():
        if name == "cameras":
            tour.selector = cameras.model_dump(mode="json")
        else:
            setattr(tour, name, value)
    record_change(
        work.session, request, user, f"tour {tour.id}", "update", body.model_dump(mode="json", exclude_unset=True)
    )
    work.commit()
    return tour_public(work.session, tour)


@router.delete("/tours/{tour_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a tour")
def delete_tour(tour_id: int, request: Request, work: UnitOfWork, user: BureauAdminUser) -> Response:
    """Delete a tour; walls running it keep their pinned tiles and leave the rotating ones empty."""
    tour = _get(work.session, tour_id)
    record_change(work.session, request, user, f"tour {tour.id}", "delete", {"name": tour.name})
    work.session.delete(tour)
    work.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/tours/{tour_id}/cameras", summary="The cameras of a tour")
def tour_cameras(
    tour_id: int,
    session: DbSession,
    scope: UserScope,
    limit: Annotated[int, Query(ge=1, le=20_000, description="Most cameras returned")] = 1000,
    offset: Annotated[int, Query(ge=0, description="Cameras skipped")] = 0,
) -> list[TourCameraPublic]:
    """The tour's enabled cameras in the order it shows them (district, school, camera)."""
    cameras = resolve(session, camera_set_from_json(_get(session, tour_id, scope.codes(session)).selector))
    return [
        TourCameraPublic(
            code=c.code,
            name=c.name,
            scene_type=c.scene_type.value,
            key_scene=c.key_scene,
            school_code=c.school_code,
            school_name=c.school_name,
            district_code=c.district_code,
        )
        for c in cameras[offset : offset + limit]
    ]


@router.get("/tours/{tour_id}/coverage", summary="A tour's coverage on a day")
def tour_coverage(
    tour_id: int,
    session: DbSession,
    scope: UserScope,
    day: Annotated[date, Query(description="Local day, YYYY-MM-DD")],
) -> CoveragePublic:
    """How many of the tour's cameras were shown on any wall that day, overall and by district."""
    cameras = resolve(session, camera_set_from_json(_get(session, tour_id, scope.codes(session)).selector))
    ids = {c.id for c in cameras}
    shown_ids = set(session.scalars(select(TourCoverage.camera_id).where(TourCoverage.day == day))) & ids
    districts: dict[str, list[int]] = {}
    for c in cameras:
        counts = districts.setdefault(c.district_code, [0, 0])
        counts[0] += 1
        counts[1] += c.id in shown_ids
    return CoveragePublic(
        tour_id=tour_id,
        day=day,
        cameras=len(cameras),
        shown=len(shown_ids),
        share=round(len(shown_ids) / len(cameras), 4) if cameras else 0.0,
        by_district=[
            CoverageByDistrict(district_code=d, cameras=n, shown=s) for d, (n, s) in sorted(districts.items())
        ],
    )
