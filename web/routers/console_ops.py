"""The duty console's operational pages: the video wall, the events feed and the live view of one camera.

The pages are shells: their scripts (``web/static/wall.js``, ``events.js``, ``live_page.js``, sharing ``ops.js``
and the WebRTC player ``live.js``) read the API and follow the WebSocket feed, so the API's own role and scope
rules decide what each user sees. The routes here check only what a page needs before it is sent: a login, a
role that works with the page, and for the live view that the camera exists inside the user's scope (outside it
answers 404, as the API does).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from registry.models import Camera, School
from web.auth import CurrentUser
from web.console import nav_for, render_page
from web.deps import AppSettings, DbSession
from web.models import Role, User
from web.scopes import Scope

router = APIRouter(include_in_schema=False)

ACTING_ROLES = frozenset({Role.DUTY_OFFICER, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR})
"""Who acknowledges alarms and works events (the API's DutyUser); the others get the pages read-only."""
NOTE_ROLES = ACTING_ROLES | {Role.SCHOOL_SAFETY_OFFICER}
"""Who adds notes to events (the events API's note writers)."""
LIVE_ROLES = frozenset(Role) - {Role.AUDITOR}
"""Who watches live video (the live API's rule: the auditor reads who watched in the audit log instead)."""
LANDING_ROLES = frozenset({Role.DUTY_OFFICER, Role.LEADER_ON_DUTY})
"""Roles whose console opens on the wall after login."""


def landing_page(user: User) -> str:
    """Where ``user`` lands after logging in: the wall for the duty room, the schools list for the others."""
    return "/wall" if user.role in LANDING_ROLES else "/"


def _can_act(user: User) -> bool:
    return user.role in ACTING_ROLES


@router.get("/wall", response_class=HTMLResponse)
def wall_page(
    request: Request,
    settings: AppSettings,
    user: CurrentUser,
    wall: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="The wall to show")] = None,
) -> Response:
    """The video wall: the chosen wall's tiles, its rotation and its alarms (403 for the roles whose
    navigation has no wall: the school safety officers)."""
    if not any(item.path == "/wall" for item in nav_for(user)):  # the navigation's rule: no entry, no page
        return render_page(
            request,
            "wall.html",
            bureau=settings.instance.name,
            user=user,
            active="/wall",
            status_code=status.HTTP_403_FORBIDDEN,
            forbidden=True,
        )
    return render_page(
        request,
        "wall.html",
        bureau=settings.instance.name,
        user=user,
        active="/wall",
        boot={"wall_id": wall, "can_act": _can_act(user)},
        forbidden=False,
    )


@router.get("/events", response_class=HTMLResponse)
def events_page(request: Request, settings: AppSettings, user: CurrentUser) -> Response:
    """The real-time events feed with acknowledge, dispatch and resolve (every role; the API scopes it)."""
    return render_page(
        request,
        "events.html",
        bureau=settings.instance.name,
        user=user,
        active="/events",
        boot={"can": {"act": _can_act(user), "note": user.role in NOTE_ROLES}},
    )


@router.get("/live/{camera_code}", response_class=HTMLResponse)
def live_page(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    user: CurrentUser,
    camera_code: Annotated[str, Path(min_length=1, max_length=64)],
) -> Response:
    """The live view of one camera; a camera outside the user's scope answers 404, as if it did not exist,
    and the auditor, who does not watch live video, gets 403."""

    def live(
        code: int = status.HTTP_200_OK, camera: dict[str, str] | None = None, forbidden: bool = False
    ) -> Response:
        return render_page(
            request,
            "live.html",
            bureau=settings.instance.name,
            user=user,
            active="/wall",
            status_code=code,
            boot={"camera": camera} if camera else None,
            camera=camera,
            camera_code=camera["code"] if camera else camera_code,
            forbidden=forbidden,
        )

    if user.role not in LIVE_ROLES:
        return live(status.HTTP_403_FORBIDDEN, forbidden=True)
    scope = Scope.of(user)
    row = session.execute(
        select(Camera.code, Camera.name, School.code, School.name)
        .join(School, School.id == Camera.school_id)
        .where(Camera.code == camera_code, scope.schools(Camera.school_id))
    ).first()
    if row is None:
        return live(status.HTTP_404_NOT_FOUND)
    code, name, school_code, school_name = row
    return live(camera={"code": code, "name": name, "school_code": school_code, "school_name": school_name})
