"""Video walls: layouts over screens, pinned and rotating tiles, what each tile shows now, and alarms.

The patrol service drives the walls (tour pages, alarm takeover); this API configures them (bureau-scoped
administrators; every change audited), shows their state and acknowledges alarms. A scoped user sees the walls
whose districts, schools and pinned cameras lie within its scope, and of them only the tiles and alarms of its
own cameras (:mod:`web.scopes`). Acknowledging an alarm acknowledges it on every wall it was raised on (one
event, one acknowledgement); the walls resume their tours within a tick of the patrol service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kernel.announce import announce
from patrol.camera_sets import CameraSet, Code, unknown_codes
from patrol.errors import PatrolError
from patrol.event_handling import Actor, acknowledge_event_of_alarm
from patrol.models import Takeover
from patrol.tables import Tour, VideoWall, WallAlarm, WallState
from patrol.topics import wall_event
from patrol.tours import LAYOUT_TILES, Layout, TourState, as_layout
from patrol.wall import Wall
from patrol.wall_runner import wall_of
from registry.models import Camera, School
from web.audit import AuditAction, record_audit
from web.auth import CurrentUser, client_address
from web.deps import AppSettings, Clock, DbSession, UnitOfWork
from web.permissions import BureauAdminUser, DutyUser
from web.routers.audit import record_change
from web.schemas import Page, UserRef, user_refs
from web.scopes import ScopeCodes, UserScope, not_found

router = APIRouter(prefix="/api", tags=["walls"])


class LayoutPublic(BaseModel):
    """A wall layout."""

    name: Layout = Field(description="Layout name")
    tiles: int = Field(ge=1, description="Tiles on one screen")
    big_tile: bool = Field(description="Tile 0 is a big tile (1+N layouts)")


class WallBase(BaseModel):
    """Fields every wall representation has."""

    name: str = Field(min_length=1, max_length=100, description="Wall name, unique")
    layout: Layout = Field("9", description="Layout of each screen")
    screens: int = Field(1, ge=1, le=16, description="Screens the wall spans (tiles numbered screen by screen)")
    takeover: Takeover = Field(Takeover.TILE, description="An alarm takes one tile, or every rotating tile")
    districts: list[Code] = Field(default_factory=list, max_length=100, description="Districts it watches")
    schools: list[Code] = Field(default_factory=list, max_length=5000, description="Schools it watches")
    pinned: dict[int, Code] = Field(
        default_factory=dict, description="Tile -> camera code of tiles that never rotate"
    )
    tour_id: int | None = Field(None, description="The tour its rotating tiles show")


class WallCreate(BaseModel):
    """A new wall; without a layout it takes its tour's."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="Wall name, unique")
    layout: Layout | None = Field(None, description="Layout of each screen (default: the tour's, else 9)")
    screens: int = Field(1, ge=1, le=16, description="Screens the wall spans")
    takeover: Takeover = Field(Takeover.TILE, description="An alarm takes one tile, or every rotating tile")
    districts: list[Code] = Field(default_factory=list, max_length=100, description="Districts it watches")
    schools: list[Code] = Field(default_factory=list, max_length=5000, description="Schools it watches")
    pinned: dict[int, Code] = Field(default_factory=dict, description="Tile -> camera code of pinned tiles")
    tour_id: int | None = Field(None, description="The tour its rotating tiles show")


class WallUpdate(BaseModel):
    """Changes to a wall (fields left out stay as they are; tour_id null takes the tour off)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100, description="Wall name, unique")
    layout: Layout | None = Field(None, description="Layout of each screen")
    screens: int | None = Field(None, ge=1, le=16, description="Screens the wall spans")
    takeover: Takeover | None = Field(None, description="An alarm takes one tile, or every rotating tile")
    districts: list[Code] | None = Field(None, max_length=100, description="Districts it watches")
    schools: list[Code] | None = Field(None, max_length=5000, description="Schools it watches")
    pinned: dict[int, Code] | None = Field(None, description="Tile -> camera code of pinned tiles")
    tour_id: int | None = Field(None, description="The tour its rotating tiles show")


class WallPublic(WallBase):
    """A wall as the API shows it."""

    id: int = Field(description="Wall id")
    tiles: int = Field(ge=1, description="Tiles over all screens")
    rotating_tiles: int = Field(ge=0, description="Tiles fed by the tour")
    tour_name: str | None = Field(None, description="Name of its tour")
    inspection_id: int | None = Field(None, description="Open spot-check inspection it shows instead of the tour")
    created_at: datetime = Field(description="Created")
    updated_at: datetime = Field(description="Last change")


class AlarmPublic(BaseModel):
    """An alarm on a wall."""

    id: int = Field(description="Alarm id")
    wall_id: int = Field(description="Wall id")
    event_id: int | None = Field(None, description="The analytics event behind it")
    camera_code: str = Field(description="Camera it shows")
    school_code: str = Field(description="School code")
    district_code: str = Field(description="District code")
    title: str = Field(description="What happened, where")
    severity: str = Field(description="general or major")
    raised_at: datetime = Field(description="When it reached the wall")
    acknowledged_at: datetime | None = Field(None, description="When it was acknowledged")
    acknowledged_by: UserRef | None = Field(None, description="Who acknowledged it")


class TilePublic(BaseModel):
    """What one tile shows."""

    tile: int = Field(ge=0, description="Tile number over the whole wall")
    screen: int = Field(ge=0, description="Screen it is on")
    big: bool = Field(description="The big tile of a 1+N screen")
    pinned: bool = Field(description="Pinned to its camera")
    alarm: bool = Field(description="Held by the alarm shown")
    camera_code: str | None = Field(None, description="Camera shown (null: empty)")
    camera_name: str | None = Field(None, description="Camera name")
    school_name: str | None = Field(None, description="School name")
    thumbnail_url: str | None = Field(None, description="Latest keyframe of the camera")


class TourPlacePublic(BaseModel):
    """Where a wall's tour is in its round."""

    tour_id: int = Field(description="Tour id")
    name: str = Field(description="Tour name")
    dwell_s: int = Field(description="Seconds a page stays")
    round: int = Field(ge=1, description="Round number")
    position: int = Field(ge=0, description="Entries of the round taken so far")
    entries: int = Field(ge=0, description="Entries in the round (key scenes counted k times)")
    shown: int = Field(ge=0, description="Cameras shown this round")
    offline_skipped: int = Field(ge=0, description="Cameras passed while offline this round")


class WallStatePublic(BaseModel):
    """What a wall shows now."""

    wall_id: int = Field(description="Wall id")
    name: str = Field(description="Wall name")
    layout: Layout = Field(description="Layout of each screen")
    screens: int = Field(description="Screens")
    tiles: list[TilePublic] = Field(description="Every tile, in order")
    paused: bool = Field(description="Rotation paused by an alarm")
    alarm: AlarmPublic | None = Field(None, description="The alarm shown")
    queued: list[AlarmPublic] = Field(description="Alarms waiting behind it, oldest first")
    tour: TourPlacePublic | None = Field(None, description="Its tour and where it is")
    inspection_id: int | None = Field(None, description="Inspection shown instead of the tour")
    rotated_at: datetime | None = Field(None, description="When the page shown went up")
    next_rotation_at: datetime | None = Field(None, description="When the next page is due")
    updated_at: datetime | None = Field(None, description="When the patrol service last stored the state")


def _get(session: Session, wall_id: int, codes: ScopeCodes | None = None) -> VideoWall:
    """The wall, if it exists and lies within ``codes`` (404 otherwise; None: the bureau)."""
    wall = session.get(VideoWall, wall_id)
    if wall is None or (codes is not None and not covers_wall(codes, wall)):
        raise not_found(f"wall {wall_id}")
    return wall


def covers_wall(codes: ScopeCodes, row: VideoWall) -> bool:
    """Whether the wall's districts, schools and pinned cameras lie within the scope of ``codes`` (a wall
    watching no place takes the whole bureau's alarms)."""
    return codes.covers(
        districts=(str(d) for d in row.districts),
        schools=(str(s) for s in row.schools),
        cameras=(str(c) for c in row.pinned.values()),
        places_required=True,
    )


def _audit_body(body: BaseModel) -> dict[str, object]:
    return body.model_dump(mode="json", exclude_unset=True)


def _validate(session: Session, row: VideoWall) -> Wall:
    """The domain wall of ``row``; unknown codes, a missing tour or a bad layout are 422s."""
    wall = wall_of(row)
    watched = CameraSet(
        districts=tuple(row.districts), schools=tuple(row.schools), cameras=tuple(row.pinned.values())
    )
    problems = unknown_codes(session, watched)
    if row.tour_id is not None and session.get(Tour, row.tour_id) is None:
        problems.append(f"unknown tour {row.tour_id}")
    if problems:
        raise PatrolError("; ".join(problems))
    taken = session.scalar(select(VideoWall.id).where(VideoWall.name == row.name, VideoWall.id != (row.id or 0)))
    if taken is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"a wall named {row.name!r} exists already (id {taken})")
    return wall


def wall_public(session: Session, row: VideoWall) -> WallPublic:
    """The API view of a wall."""
    wall = wall_of(row)
    tour = session.get(Tour, row.tour_id) if row.tour_id is not None else None
    return WallPublic(
        id=row.id,
        name=row.name,
        layout=as_layout(row.layout),
        screens=row.screens,
        takeover=row.takeover,
        districts=list(row.districts),
        schools=list(row.schools),
        pinned={int(t): c for t, c in row.pinned.items()},
        tour_id=row.tour_id,
        tiles=wall.tiles,
        rotating_tiles=len(wall.rotating),
        tour_name=tour.name if tour else None,
        inspection_id=row.inspection_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _alarm_public(alarm: WallAlarm, users: dict[int, UserRef]) -> AlarmPublic:
    return AlarmPublic(
        id=alarm.id,
        wall_id=alarm.wall_id,
        event_id=alarm.event_id,
        camera_code=alarm.camera_code,
        school_code=alarm.school_code,
        district_code=alarm.district_code,
        title=alarm.title,
        severity=alarm.severity,
        raised_at=alarm.raised_at,
        acknowledged_at=alarm.acknowledged_at,
        acknowledged_by=users.get(alarm.acknowledged_by) if alarm.acknowledged_by else None,
    )


@router.get("/layouts", summary="Wall layouts")
def list_layouts(_user: CurrentUser) -> list[LayoutPublic]:
    """The layouts a screen can have."""
    return [LayoutPublic(name=as_layout(n), tiles=t, big_tile="+" in n) for n, t in LAYOUT_TILES.items()]


@router.get("/walls", summary="List walls")
def list_walls(session: DbSession, scope: UserScope) -> list[WallPublic]:
    """Every wall in the user's scope, by name."""
    codes = scope.codes(session)
    walls = session.scalars(select(VideoWall).order_by(VideoWall.name))
    return [wall_public(session, w) for w in walls if covers_wall(codes, w)]


@router.post("/walls", status_code=status.HTTP_201_CREATED, summary="Create a wall")
def create_wall(body: WallCreate, request: Request, work: UnitOfWork, user: BureauAdminUser) -> WallPublic:
    """A new wall; the patrol service starts driving it within a tick."""
    tour = work.session.get(Tour, body.tour_id) if body.tour_id is not None else None
    row = VideoWall(
        name=body.name,
        layout=body.layout or (tour.layout if tour else "9"),
        screens=body.screens,
        takeover=body.takeover,
        districts=list(body.districts),
        schools=list(body.schools),
        pinned={str(t): c for t, c in body.pinned.items()},
        tour_id=body.tour_id,
    )
    _validate(work.session, row)
    work.session.add(row)
    work.session.flush()
    record_change(work.session, request, user, f"wall {row.id}", "create", _audit_body(body))
    work.commit()
    return wall_public(work.session, row)


@router.get("/walls/{wall_id}", summary="One wall")
def get_wall(wall_id: int, session: DbSession, scope: UserScope) -> WallPublic:
    """A wall's configuration."""
    return wall_public(session, _get(session, wall_id, scope.codes(session)))


@router.patch("/walls/{wall_id}", summary="Change a wall")
def update_wall(
    wall_id: int, body: WallUpdate, request: Request, work: UnitOfWork, user: BureauAdminUser
) -> WallPublic:
    """Change a wall; a new tour starts from its beginning, the same tour keeps its place."""
    row = _get(work.session, wall_id)
    changes = body.model_dump(exclude_unset=True)
    for name in ("name", "layout", "screens", "takeover", "districts", "schools", "pinned"):
        if name in changes and changes[name] is None:
            raise PatrolError(f"{name} cannot be null")
    if "tour_id" in changes and changes["tour_id"] is not None and "layout" not in changes:
        tour = work.session.get(Tour, changes["tour_id"])
        if tour is not None:
            changes["layout"] = tour.layout  # a wall given a tour takes the tour's layout
    if "pinned" in changes:
        changes["pinned"] = {str(t): c for t, c in changes["pinned"].items()}
    for name, value in changes.items():
        setattr(row, name, value)
    _validate(work.session, row)
    record_change(work.session, request, user, f"wall {row.id}", "update", _audit_body(body))
    work.commit()
    return wall_public(work.session, row)


@router.delete("/walls/{wall_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a wall")
def delete_wall(wall_id: int, request: Request, work: UnitOfWork, user: BureauAdminUser) -> Response:
    """Delete a wall, its state and its alarms."""
    row = _get(work.session, wall_id)
    record_change(work.session, request, user, f"wall {row.id}", "delete", {"name": row.name})
    work.session.delete(row)
    work.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/walls/{wall_id}/state", summary="What a wall shows now")
def wall_state(wall_id: int, session: DbSession, scope: UserScope) -> WallStatePublic:
    """Every tile with its camera, the alarm shown and the queue, and where the tour is; a scoped user sees
    the tiles of its own cameras (the others empty) and its own schools' alarms."""
    codes = scope.codes(session)
    row = _get(session, wall_id, codes)
    wall = wall_of(row)
    state = session.get(WallState, wall_id)
    showing = {int(t): str(c) for t, c in (state.showing if state else {}).items()}
    showing.update(wall.pinned)
    showing = {t: c for t, c in showing.items() if codes.camera(c)}
    stmt = select(WallAlarm).where(WallAlarm.wall_id == wall_id, WallAlarm.acknowledged_at.is_(None))
    if codes.schools is not None:
        stmt = stmt.where(WallAlarm.school_code.in_(codes.schools))
    alarms = list(session.scalars(stmt.order_by(WallAlarm.raised_at, WallAlarm.id)))
    held = {int(t) for t in state.alarm_tiles} if state is not None and alarms else set()
    cameras = {
        code: (name, school)
        for code, name, school in session.execute(
            select(Camera.code, Camera.name, School.name)
            .join(School, School.id == Camera.school_id)
            .where(Camera.code.in_(set(showing.values())))
        )
    }
    per_screen = LAYOUT_TILES[row.layout]
    tiles = []
    for tile in range(wall.tiles):
        code = showing.get(tile)
        name, school = cameras.get(code, (None, None)) if code else (None, None)
        tiles.append(
            TilePublic(
                tile=tile,
                screen=tile // per_screen,
                big="+" in row.layout and tile % per_screen == 0,
                pinned=tile in wall.pinned,
                alarm=tile in held,
                camera_code=code,
                camera_name=name,
                school_name=school,
                thumbnail_url=f"/api/cameras/{code}/thumbnail.jpg" if code else None,
            )
        )
    tour = session.get(Tour, row.tour_id) if row.tour_id is not None else None
    place = None
    if tour is not None:
        stored = (
            TourState.model_validate(state.tour_state)
            if state is not None and state.tour_state and state.tour_id == tour.id
            else TourState()
        )
        place = TourPlacePublic(
            tour_id=tour.id,
            name=tour.name,
            dwell_s=tour.dwell_s,
            round=stored.round,
            position=stored.cursor,
            entries=stored.order_size,
            shown=stored.shown,
            offline_skipped=len(stored.skipped),
        )
    return WallStatePublic(
        wall_id=row.id,
        name=row.name,
        layout=as_layout(row.layout),
        screens=row.screens,
        tiles=tiles,
        paused=bool(alarms),
        alarm=_alarm_public(alarms[0], {}) if alarms else None,
        queued=[_alarm_public(a, {}) for a in alarms[1:]],
        tour=place,
        inspection_id=row.inspection_id,
        rotated_at=state.rotated_at if state else None,
        next_rotation_at=state.next_rotation_at if state else None,
        updated_at=state.updated_at if state else None,
    )


@router.get("/walls/{wall_id}/alarms", summary="A wall's alarms")
def wall_alarms(
    wall_id: int,
    session: DbSession,
    scope: UserScope,
    open_only: Annotated[bool, Query(alias="open", description="Only alarms not acknowledged yet")] = False,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most alarms returned")] = 100,
    offset: Annotated[int, Query(ge=0, description="Alarms skipped")] = 0,
) -> Page[AlarmPublic]:
    """Alarms raised on the wall (of the user's schools), newest first."""
    codes = scope.codes(session)
    _get(session, wall_id, codes)
    stmt = select(WallAlarm).where(WallAlarm.wall_id == wall_id)
    if codes.schools is not None:
        stmt = stmt.where(WallAlarm.school_code.in_(codes.schools))
    if open_only:
        stmt = stmt.where(WallAlarm.acknowledged_at.is_(None))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    order = (WallAlarm.raised_at.desc(), WallAlarm.id.desc())
    alarms = list(session.scalars(stmt.order_by(*order).offset(offset).limit(limit)))
    users = user_refs(session, [a.acknowledged_by for a in alarms])
    return Page(total=total, offset=offset, limit=limit, items=[_alarm_public(a, users) for a in alarms])


@router.post("/walls/{wall_id}/alarms/{alarm_id}/acknowledge", summary="Acknowledge an alarm")
def acknowledge_alarm(
    wall_id: int,
    alarm_id: int,
    work: UnitOfWork,
    user: DutyUser,
    scope: UserScope,
    clock: Clock,
    settings: AppSettings,
    request: Request,
) -> AlarmPublic:
    """Acknowledge the alarm on this wall and on every other wall it was raised on; rotation resumes (or the
    next queued alarm takes over) within a tick of the patrol service."""
    session = work.session
    codes = scope.codes(session)
    _get(session, wall_id, codes)
    alarm = session.get(WallAlarm, alarm_id)
    if alarm is None or alarm.wall_id != wall_id or not codes.school(alarm.school_code):
        raise not_found(f"alarm {alarm_id} on wall {wall_id}")
    if alarm.acknowledged_at is not None:
        at = alarm.acknowledged_at.astimezone(ZoneInfo(settings.instance.timezone)).isoformat(timespec="minutes")
        raise HTTPException(status.HTTP_409_CONFLICT, f"alarm {alarm_id} was acknowledged at {at}")
    now = clock()
    # Locks the alarm's event first (as the event's acknowledgement does) and acknowledges the event with it.
    if acknowledge_event_of_alarm(session, alarm, actor=Actor(user.id, user.username), now=now):
        record_audit(
            session,
            AuditAction.EVENT_ACTION,
            actor=user,
            target=f"event {alarm.event_id} {alarm.camera_code}",
            ip=client_address(request),
            detail={"event_id": alarm.event_id, "action": "acknowledge", "via": "wall", "alarm_id": alarm.id},
            at=now,
        )
    same = session.scalars(
        select(WallAlarm).where(WallAlarm.alarm_key == alarm.alarm_key, WallAlarm.acknowledged_at.is_(None))
    )
    for row in same:
        row.acknowledged_at, row.acknowledged_by = now, user.id
        announce(
            session,
            wall_event(
                "wall.alarm_acknowledged",
                {
                    "wall_id": row.wall_id,
                    "alarm_id": row.id,
                    "event_id": row.event_id,
                    "by_user_id": user.id,
                    "by_username": user.username,
                },
            ),
        )
    work.commit()
    return _alarm_public(alarm, user_refs(session, [user.id]))
