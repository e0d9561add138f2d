"""Read API over the fleet registry: districts, schools, cameras."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import joinedload

from registry.models import Camera, District, SceneType, School, SchoolKind
from web.auth import CurrentUser
from web.deps import DbSession
from web.schemas import CameraPublic, DistrictPublic, Page, SchoolPublic

router = APIRouter(prefix="/api", tags=["registry"])

Limit = Annotated[int, Query(ge=1, le=1000, description="Most rows returned")]
Offset = Annotated[int, Query(ge=0, description="Rows skipped")]


def school_public(school: School, camera_count: int) -> SchoolPublic:
    """The API view of a school."""
    return SchoolPublic(
        code=school.code,
        name=school.name,
        kind=school.kind,
        address=school.address,
        contact_name=school.contact_name,
        contact_phone=school.contact_phone,
        district_code=school.district.code,
        district_name=school.district.name,
        camera_count=camera_count,
    )


def camera_public(camera: Camera) -> CameraPublic:
    """The API view of a camera (redacted URLs, no password)."""
    return CameraPublic(
        code=camera.code,
        name=camera.name,
        scene_type=camera.scene_type,
        enabled=camera.enabled,
        key_scene=camera.key_scene,
        tags=[str(t) for t in camera.tags],
        location=camera.location,
        school_code=camera.school.code,
        school_name=camera.school.name,
        main_url=camera.main_url,
        sub_url=camera.sub_url,
        has_credentials=bool(camera.username or camera.password_encrypted),
        updated_at=camera.updated_at,
    )


@router.get("/districts", summary="List districts")
def list_districts(session: DbSession, _user: CurrentUser) -> list[DistrictPublic]:
    """Every district with its number of schools."""
    rows = session.execute(
        select(District, func.count(School.id))
        .outerjoin(School, School.district_id == District.id)
        .group_by(District.id)
        .order_by(District.code)
    ).all()
    return [DistrictPublic(code=d.code, name=d.name, school_count=n) for d, n in rows]


def school_query(district: str | None, kind: SchoolKind | None, q: str | None) -> Select[tuple[School]]:
    """Schools matching the filters, ordered by code."""
    stmt = select(School).join(School.district).options(joinedload(School.district)).order_by(School.code)
    if district:
        stmt = stmt.where(District.code == district)
    if kind:
        stmt = stmt.where(School.kind == kind)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(School.name.like(like), School.code.like(like)))
    return stmt


@router.get("/schools", summary="List schools")
def list_schools(
    session: DbSession,
    _user: CurrentUser,
    district: Annotated[str | None, Query(max_length=32, description="District code")] = None,
    kind: Annotated[SchoolKind | None, Query(description="Kind of school")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Text in the name or code")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[SchoolPublic]:
    """Schools, filtered and paged, each with its camera count."""
    stmt = school_query(district, kind, q)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    schools = session.scalars(stmt.limit(limit).offset(offset)).all()
    counts = dict(
        session.execute(
            select(Camera.school_id, func.count(Camera.id))
            .where(Camera.school_id.in_([s.id for s in schools]))
            .group_by(Camera.school_id)
        )
        .tuples()
        .all()
    )
    return Page(
        total=total, offset=offset, limit=limit, items=[school_public(s, counts.get(s.id, 0)) for s in schools]
    )


@router.get("/schools/{code}", summary="One school")
def get_school(code: str, session: DbSession, _user: CurrentUser) -> SchoolPublic:
    """A school by code."""
    school = session.scalars(
        select(School).where(School.code == code).options(joinedload(School.district))
    ).one_or_none()
    if school is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no school with code {code!r}")
    count = session.scalar(select(func.count(Camera.id)).where(Camera.school_id == school.id)) or 0
    return school_public(school, count)


def camera_query(
    school: str | None, district: str | None, scene_type: SceneType | None, q: str | None
) -> Select[tuple[Camera]]:
    """Cameras matching the filters, ordered by code."""
    stmt = (
        select(Camera)
        .join(Camera.school)
        .join(School.district)
        .options(joinedload(Camera.school))
        .order_by(Camera.code)
    )
    if school:
        stmt = stmt.where(School.code == school)
    if district:
        stmt = stmt.where(District.code == district)
    if scene_type:
        stmt = stmt.where(Camera.scene_type == scene_type)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Camera.name.like(like), Camera.code.like(like)))
    return stmt


@router.get("/cameras", summary="List cameras")
def list_cameras(
    session: DbSession,
    _user: CurrentUser,
    school: Annotated[str | None, Query(max_length=32, description="School code")] = None,
    district: Annotated[str | None, Query(max_length=32, description="District code")] = None,
    scene_type: Annotated[SceneType | None, Query(description="Scene type")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Text in the name or code")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[CameraPublic]:
    """Cameras, filtered and paged."""
    stmt = camera_query(school, district, scene_type, q)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    cameras = session.scalars(stmt.limit(limit).offset(offset)).all()
    return Page(total=total, offset=offset, limit=limit, items=[camera_public(c) for c in cameras])


@router.get("/cameras/{code}", summary="One camera")
def get_camera(code: str, session: DbSession, _user: CurrentUser) -> CameraPublic:
    """A camera by code."""
    camera = session.scalars(
        select(Camera).where(Camera.code == code).options(joinedload(Camera.school))
    ).one_or_none()
    if camera is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera with code {code!r}")
    return camera_public(camera)
