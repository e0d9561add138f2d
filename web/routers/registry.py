"""The fleet registry over the API: districts, schools, cameras.

Reads are open to every role and scoped: a district-scoped user sees its district's schools and cameras, a
school-scoped user its school (and its school's district); anything else answers 404, as if it did not exist.
Writes (create, change, delete) need an administrator with the bureau scope, are checked with the fleet
import's rules (:mod:`registry.edit`) and are audited (``config.change``, never with a credential).

Camera credentials are write-only: a username and password are accepted (or moved out of a URL), the password is
stored encrypted with the installation's :class:`~kernel.secrets.SecretBox`, and responses only say
``has_credentials``. Deleting a camera with history (events, patrol verdicts, hazards, findings, coverage) is
refused with 409: disable it (``enabled: false``) instead, which keeps the history.

Nothing is announced on the bus: the ingest workers re-read the enabled cameras every ``ingest.fleet_refresh_s``
and the walls every ``patrol.fleet_refresh_s`` (a new, changed, disabled or deleted camera is picked up then).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session, joinedload

from analytics.tables import SafetyEvent
from kernel.secrets import SecretBox
from patrol.tables.duty import Incident
from patrol.tables.hazards import Hazard
from patrol.tables.plans import PatrolTaskItem
from patrol.tables.spot_checks import Inspection, InspectionFinding
from patrol.tables.walls import TourCoverage
from registry.edit import Checker
from registry.errors import RegistryValueError
from registry.models import Camera, District, SceneType, School, SchoolKind
from web.audit import AuditAction, record_audit
from web.auth import client_address
from web.deps import AppSettings, DbSession
from web.models import ScopeKind, User
from web.permissions import BureauAdminUser as BureauAdmin
from web.schemas import (
    CameraCreate,
    CameraPublic,
    CameraUpdate,
    DistrictCreate,
    DistrictPublic,
    DistrictUpdate,
    Page,
    SchoolCreate,
    SchoolPublic,
    SchoolUpdate,
)
from web.scopes import Scope, UserScope, not_found

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["registry"])

Limit = Annotated[int, Query(ge=1, le=1000, description="Most rows returned")]
Offset = Annotated[int, Query(ge=0, description="Rows skipped")]


def secret_box(settings: AppSettings) -> SecretBox:
    """The installation's box for camera passwords (the fleet import's key)."""
    return SecretBox.for_data_dir(settings.data_dir)


Box = Annotated[SecretBox, Depends(secret_box)]
BUREAU = Scope(ScopeKind.BUREAU)


def unprocessable(problems: list[tuple[str, str]]) -> HTTPException:
    """A 422 shaped like FastAPI's own, naming each bad body field (and never quoting its value)."""
    detail = [{"loc": ["body", field], "msg": message, "type": "value_error"} for field, message in problems]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def _checked(checker: Checker) -> None:
    try:
        checker.raise_if_any()
    except RegistryValueError as err:
        raise unprocessable([(p.field, p.message) for p in err.problems]) from err


def _audit(session: Session, request: Request, user: User, target: str, op: str, **detail: Any) -> None:
    record_audit(
        session,
        AuditAction.CONFIG_CHANGE,
        actor=user,
        target=target,
        ip=client_address(request),
        detail={"op": op, **detail},
    )


def _set_fields(body: BaseModel) -> dict[str, Any]:
    """The fields a PATCH body gives; an explicit null for a column that cannot be empty is a 422."""
    values = {name: getattr(body, name) for name in body.model_fields_set}
    nullable = {"sub_url", "username", "password"}
    nulls = [
        (name, "must not be null") for name, value in values.items() if value is None and name not in nullable
    ]
    if nulls:
        raise unprocessable(nulls)
    return values


# ---------------------------------------------------------------------------------------------------- reads


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


def _district_rows(session: Session, scope: Scope, code: str | None = None) -> list[DistrictPublic]:
    stmt = (
        select(District, func.count(School.id))
        .outerjoin(School, and_(School.district_id == District.id, scope.schools(School.id)))
        .where(scope.districts(District.id))
        .group_by(District.id)
        .order_by(District.code)
    )
    if code is not None:
        stmt = stmt.where(District.code == code)
    return [DistrictPublic(code=d.code, name=d.name, school_count=n) for d, n in session.execute(stmt).all()]


@router.get("/districts", summary="List districts")
def list_districts(session: DbSession, scope: UserScope) -> list[DistrictPublic]:
    """The visible districts, each with its number of visible schools."""
    return _district_rows(session, scope)


@router.get("/districts/{code}", summary="One district")
def get_district(code: str, session: DbSession, scope: UserScope) -> DistrictPublic:
    """A visible district by code."""
    rows = _district_rows(session, scope, code)
    if not rows:
        raise not_found(f"district with code {code!r}")
    return rows[0]


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


def _camera_counts(session: Session, school_ids: list[int]) -> dict[int, int]:
    rows = session.execute(
        select(Camera.school_id, func.count(Camera.id))
        .where(Camera.school_id.in_(school_ids))
        .group_by(Camera.school_id)
    )
    return dict(rows.tuples().all())


@router.get("/schools", summary="List schools")
def list_schools(
    session: DbSession,
    scope: UserScope,
    district: Annotated[str | None, Query(max_length=32, description="District code")] = None,
    kind: Annotated[SchoolKind | None, Query(description="Kind of school")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Text in the name or code")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[SchoolPublic]:
    """Visible schools, filtered and paged, each with its camera count."""
    stmt = school_query(district, kind, q).where(scope.schools(School.id))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    schools = session.scalars(stmt.limit(limit).offset(offset)).all()
    counts = _camera_counts(session, [s.id for s in schools])
    return Page(
        total=total, offset=offset, limit=limit, items=[school_public(s, counts.get(s.id, 0)) for s in schools]
    )


def _school(session: Session, scope: Scope, code: str) -> School:
    school = session.scalars(
        select(School).where(School.code == code, scope.schools(School.id)).options(joinedload(School.district))
    ).one_or_none()
    if school is None:
        raise not_found(f"school with code {code!r}")
    return school


@router.get("/schools/{code}", summary="One school")
def get_school(code: str, session: DbSession, scope: UserScope) -> SchoolPublic:
    """A visible school by code."""
    school = _school(session, scope, code)
    return school_public(school, _camera_counts(session, [school.id]).get(school.id, 0))


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
    scope: UserScope,
    school: Annotated[str | None, Query(max_length=32, description="School code")] = None,
    district: Annotated[str | None, Query(max_length=32, description="District code")] = None,
    scene_type: Annotated[SceneType | None, Query(description="Scene type")] = None,
    q: Annotated[str | None, Query(max_length=100, description="Text in the name or code")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[CameraPublic]:
    """Visible cameras, filtered and paged."""
    stmt = camera_query(school, district, scene_type, q).where(scope.schools(Camera.school_id))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    cameras = session.scalars(stmt.limit(limit).offset(offset)).all()
    return Page(total=total, offset=offset, limit=limit, items=[camera_public(c) for c in cameras])


def scoped_camera(session: Session, scope: Scope, code: str) -> Camera:
    """The visible camera with this code (404 when missing or out of scope)."""
    camera = session.scalars(
        select(Camera)
        .where(Camera.code == code, scope.schools(Camera.school_id))
        .options(joinedload(Camera.school))
    ).one_or_none()
    if camera is None:
        raise not_found(f"camera with code {code!r}")
    return camera


@router.get("/cameras/{code}", summary="One camera")
def get_camera(code: str, session: DbSession, scope: UserScope) -> CameraPublic:
    """A visible camera by code."""
    return camera_public(scoped_camera(session, scope, code))


# ---------------------------------------------------------------------------------------------------- writes


def _district_id(session: Session, code: str, field: str = "district_code") -> int:
    district_id = session.scalar(select(District.id).where(District.code == code))
    if district_id is None:
        raise unprocessable([(field, f"unknown district {code!r}")])
    return district_id


def _school_id(session: Session, code: str, field: str = "school_code") -> int:
    school_id = session.scalar(select(School.id).where(School.code == code))
    if school_id is None:
        raise unprocessable([(field, f"unknown school {code!r}")])
    return school_id


def _refuse_in_use(what: str, uses: dict[str, int], advice: str) -> None:
    used = {name: n for name, n in uses.items() if n}
    if used:
        listed = ", ".join(f"{n} {name}" for name, n in used.items())
        raise HTTPException(status.HTTP_409_CONFLICT, f"{what} cannot be deleted: it has {listed}; {advice}")


def _count(session: Session, column: Any, value: int) -> int:
    return session.scalar(select(func.count()).where(column == value)) or 0


@router.post("/districts", status_code=status.HTTP_201_CREATED, summary="Add a district")
def create_district(
    body: DistrictCreate, request: Request, session: DbSession, user: BureauAdmin
) -> DistrictPublic:
    """A new district (409 when the code is taken)."""
    checker = Checker()
    checker.code("code", body.code, "district_code")
    _checked(checker)
    if session.scalar(select(District.id).where(District.code == body.code)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"a district with code {body.code!r} exists")
    session.add(District(code=body.code, name=body.name))
    _audit(session, request, user, f"district {body.code}", "create", name=body.name)
    session.commit()
    log.info("district %s created by %s", body.code, user.username)
    return DistrictPublic(code=body.code, name=body.name, school_count=0)


@router.patch("/districts/{code}", summary="Change a district")
def update_district(
    code: str, body: DistrictUpdate, request: Request, session: DbSession, user: BureauAdmin
) -> DistrictPublic:
    """Rename a district."""
    district = session.scalars(select(District).where(District.code == code)).one_or_none()
    if district is None:
        raise not_found(f"district with code {code!r}")
    values = _set_fields(body)
    for name, value in values.items():
        setattr(district, name, value)
    _audit(session, request, user, f"district {code}", "update", fields=sorted(values), **values)
    session.commit()
    return _district_rows(session, BUREAU, code)[0]


@router.delete("/districts/{code}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a district")
def delete_district(code: str, request: Request, session: DbSession, user: BureauAdmin) -> Response:
    """Delete a district that has no schools and no users scoped to it (409 otherwise)."""
    district = session.scalars(select(District).where(District.code == code)).one_or_none()
    if district is None:
        raise not_found(f"district with code {code!r}")
    uses = {
        "schools": _count(session, School.district_id, district.id),
        "users": _count(session, User.district_id, district.id),
    }
    _refuse_in_use(f"district {code!r}", uses, "move or delete its schools and users first")
    session.delete(district)
    _audit(session, request, user, f"district {code}", "delete")
    session.commit()
    log.info("district %s deleted by %s", code, user.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/schools", status_code=status.HTTP_201_CREATED, summary="Add a school")
def create_school(body: SchoolCreate, request: Request, session: DbSession, user: BureauAdmin) -> SchoolPublic:
    """A new school in an existing district (409 when the code is taken)."""
    checker = Checker()
    checker.code("code", body.code, "school_code")
    _checked(checker)
    district_id = _district_id(session, body.district_code)
    if session.scalar(select(School.id).where(School.code == body.code)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"a school with code {body.code!r} exists")
    values = body.model_dump(exclude={"district_code"})
    session.add(School(district_id=district_id, **values))
    _audit(session, request, user, f"school {body.code}", "create", district=body.district_code, **values)
    session.commit()
    log.info("school %s created by %s", body.code, user.username)
    return school_public(_school(session, BUREAU, body.code), 0)


@router.patch("/schools/{code}", summary="Change a school")
def update_school(
    code: str, body: SchoolUpdate, request: Request, session: DbSession, user: BureauAdmin
) -> SchoolPublic:
    """Change a school's fields; a new ``district_code`` moves it to that district."""
    school = _school(session, BUREAU, code)
    values = _set_fields(body)
    if "district_code" in values:
        school.district_id = _district_id(session, values["district_code"])
    for name, value in values.items():
        if name != "district_code":
            setattr(school, name, value)
    _audit(session, request, user, f"school {code}", "update", fields=sorted(values), **values)
    session.commit()
    session.expire_all()  # the school's district may have changed under its loaded relationship
    return school_public(school, _camera_counts(session, [school.id]).get(school.id, 0))


@router.delete("/schools/{code}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a school")
def delete_school(code: str, request: Request, session: DbSession, user: BureauAdmin) -> Response:
    """Delete a school with no cameras, users, hazards, incidents or inspections (409 otherwise)."""
    school = _school(session, BUREAU, code)
    uses = {
        "cameras": _count(session, Camera.school_id, school.id),
        "users": _count(session, User.school_id, school.id),
        "hazards": _count(session, Hazard.school_id, school.id),
        "incidents": _count(session, Incident.school_id, school.id),
        "inspections": _count(session, Inspection.school_id, school.id),
    }
    _refuse_in_use(f"school {code!r}", uses, "move or delete its cameras and users first (records stay)")
    session.delete(school)
    _audit(session, request, user, f"school {code}", "delete")
    session.commit()
    log.info("school %s deleted by %s", code, user.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _camera_audit(values: dict[str, Any]) -> dict[str, Any]:
    """What the audit row tells of a camera change: credentials only as changed, never their values."""
    shown = {k: v for k, v in values.items() if k not in ("username", "password", "main_url", "sub_url")}
    for url in ("main_url", "sub_url"):
        if url in values:
            shown[url] = "changed"
    if "username" in values or "password" in values:
        shown["credentials"] = "changed"
    return {"fields": sorted(values), **shown}


@router.post("/cameras", status_code=status.HTTP_201_CREATED, summary="Add a camera")
def create_camera(
    body: CameraCreate, request: Request, session: DbSession, user: BureauAdmin, box: Box
) -> CameraPublic:
    """A new camera of an existing school (409 when the code is taken). Credentials are write-only."""
    checker = Checker()
    checker.code("code", body.code, "camera_code")
    checker.text("name", body.name, "camera_name", required=True)
    checker.length("location", body.location, "location")
    streams = checker.streams(body.main_url, body.sub_url, body.username, body.password)
    if streams is not None and streams.password and not streams.username:
        checker.add("password", "a password needs a username")
    _checked(checker)
    assert streams is not None  # _checked raised otherwise
    school_id = _school_id(session, body.school_code)
    if session.scalar(select(Camera.id).where(Camera.code == body.code)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"a camera with code {body.code!r} exists")
    camera = Camera(
        code=body.code,
        name=body.name,
        school_id=school_id,
        scene_type=body.scene_type,
        main_url=streams.main_url,
        sub_url=streams.sub_url,
        username=streams.username,
        password_encrypted=box.encrypt(streams.password) if streams.password else None,
        enabled=body.enabled,
        key_scene=body.key_scene,
        tags=list(dict.fromkeys(body.tags)),
        location=body.location,
    )
    session.add(camera)
    given = body.model_dump(exclude={"code", "school_code"}, exclude_none=True)
    _audit(
        session, request, user, f"camera {body.code}", "create", school=body.school_code, **_camera_audit(given)
    )
    session.commit()
    log.info("camera %s created by %s", body.code, user.username)
    return camera_public(scoped_camera(session, BUREAU, body.code))


@router.patch("/cameras/{code}", summary="Change a camera")
def update_camera(
    code: str, body: CameraUpdate, request: Request, session: DbSession, user: BureauAdmin, box: Box
) -> CameraPublic:
    """Change a camera's fields (see :class:`~web.schemas.CameraUpdate` for the credentials)."""
    camera = scoped_camera(session, BUREAU, code)
    values = _set_fields(body)
    checker = Checker()
    if "name" in values:
        checker.text("name", values["name"], "camera_name", required=True)
    if "location" in values:
        checker.length("location", values["location"], "location")
    streams = None
    if values.keys() & {"main_url", "sub_url", "username", "password"}:
        streams = checker.streams(
            values.get("main_url", camera.main_url),
            values.get("sub_url", camera.sub_url),
            values.get("username"),
            values.get("password"),
        )
    _checked(checker)
    if streams is not None:
        username = streams.username
        if username is None and "username" not in values:
            username = camera.username
        token = camera.password_encrypted
        if streams.password:
            token = box.encrypt(streams.password)
        elif "password" in values or not username:
            token = None
        if token is not None and not username:
            raise unprocessable([("password", "a password needs a username")])
        camera.main_url, camera.sub_url = streams.main_url, streams.sub_url
        camera.username, camera.password_encrypted = username, token
    if "school_code" in values:
        camera.school_id = _school_id(session, values["school_code"])
    for name in ("name", "scene_type", "enabled", "key_scene", "location"):
        if name in values:
            setattr(camera, name, values[name])
    if "tags" in values:
        camera.tags = list(dict.fromkeys(values["tags"]))
    _audit(session, request, user, f"camera {code}", "update", **_camera_audit(values))
    session.commit()
    session.expire_all()  # the camera's school may have changed under its loaded relationship
    log.info("camera %s changed by %s (%s)", code, user.username, ", ".join(sorted(values)))
    return camera_public(scoped_camera(session, BUREAU, code))


@router.delete("/cameras/{code}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a camera")
def delete_camera(code: str, request: Request, session: DbSession, user: BureauAdmin) -> Response:
    """Delete a camera without history; one with events, patrol verdicts, hazards, inspection findings or wall
    coverage answers 409 (disable it with ``PATCH {"enabled": false}`` instead: its history stays)."""
    camera = scoped_camera(session, BUREAU, code)
    uses = {
        "events": _count(session, SafetyEvent.camera_id, camera.id),
        "patrol verdicts": _count(session, PatrolTaskItem.camera_id, camera.id),
        "hazards": _count(session, Hazard.camera_id, camera.id),
        "inspection findings": _count(session, InspectionFinding.camera_id, camera.id),
        "days of wall coverage": _count(session, TourCoverage.camera_id, camera.id),
    }
    _refuse_in_use(f"camera {code!r}", uses, 'disable it instead (PATCH {"enabled": false}) to keep its history')
    session.delete(camera)
    _audit(session, request, user, f"camera {code}", "delete")
    session.commit()
    log.info("camera %s deleted by %s", code, user.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
