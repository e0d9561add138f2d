"""Server-rendered console pages (no CDN: templates and CSS ship with the package)."""

from __future__ import annotations

import logging
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ingest.tables import CameraHealth
from registry.models import Camera, District, School
from web.audit import AuditAction, record_audit
from web.auth import (
    CurrentUser,
    authenticate,
    client_address,
    cookie_login,
    end_login,
    login_blocked,
    start_session,
)
from web.console import render_page
from web.deps import AppSettings, DbSession
from web.i18n import LANG_COOKIE, LANGUAGES
from web.models import SessionEndReason
from web.routers.console_ops import landing_page
from web.scopes import Scope

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: AppSettings) -> Response:
    """The login page."""
    return render_page(request, "login.html", bureau=settings.instance.name, user=None, error=None, username="")


@router.get("/lang/{lang}")
def switch_language(
    lang: str,
    next_path: Annotated[str, Query(alias="next", max_length=500, description="Page to go back to")] = "/",
) -> Response:
    """Switch the console language (zh-CN or en) and go back to the page the switch was clicked on."""
    if lang not in LANGUAGES:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no language {lang!r}: use one of {', '.join(LANGUAGES)}")
    target = urlsplit(next_path)
    # Only a path of this site: never an open redirect to another host ("//evil.example" included).
    path = target.path if not target.scheme and not target.netloc and target.path.startswith("/") else "/"
    if path.startswith("//") or "\\" in path:  # browsers read "/\\host" as "//host"
        path = "/"
    elif target.query:
        path += f"?{target.query}"
    response = RedirectResponse(path, status_code=status.HTTP_303_SEE_OTHER)
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> Response:
    """Check the credentials and start a session. Too many failures for a name or an address answer 429."""
    address = client_address(request)
    context: dict[str, Any] = {"bureau": settings.instance.name, "user": None, "username": username}
    if login_blocked(
        session,
        username,
        address,
        max_failures=settings.web.login_max_failures,
        window_s=settings.web.login_window_s,
    ):
        record_audit(session, AuditAction.LOGIN_BLOCKED, actor_name=username, ip=address)
        session.commit()
        log.warning("login for %r from %s refused: too many failures", username, address)
        minutes = -(-settings.web.login_window_s // 60)
        response = render_page(
            request,
            "login.html",
            **context,
            error=f"登录失败次数过多，请 {minutes} 分钟后再试 / too many failed logins, retry in {minutes} min",
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
        response.headers["Retry-After"] = str(settings.web.login_window_s)
        return response
    user = authenticate(session, username, password)
    if user is None:
        record_audit(session, AuditAction.LOGIN_FAILED, actor_name=username, ip=address)
        session.commit()
        log.warning("failed login for %r from %s", username, address)
        return render_page(
            request,
            "login.html",
            **context,
            error="用户名或密码错误 / wrong user name or password",
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    login_session = start_session(request, session, user, max_age_s=settings.web.session_max_age_s)
    record_audit(session, AuditAction.LOGIN, actor=user, ip=address, detail={"session": login_session.handle})
    session.commit()
    log.info("user %s logged in", user.username)
    return RedirectResponse(landing_page(user), status_code=status.HTTP_303_SEE_OTHER)


@router.post("/logout")
def logout(request: Request, session: DbSession) -> Response:
    """End this session on the server (a copy of its cookie no longer works; the user's other sessions go on),
    then clear the cookie."""
    found = cookie_login(session, request.session)
    if found is not None and found[0].ended_at is None:
        login_session, user = found
        end_login(login_session, SessionEndReason.LOGOUT)
        record_audit(
            session,
            AuditAction.LOGOUT,
            actor=user,
            ip=client_address(request),
            detail={"session": login_session.handle},
        )
        session.commit()
        log.info("user %s logged out (session %s)", user.username, login_session.handle)
    request.session.clear()
    return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)


@router.get("/", response_class=HTMLResponse)
def index(
    request: Request,
    session: DbSession,
    settings: AppSettings,
    user: CurrentUser,
    district: Annotated[str | None, Query(max_length=32)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """The schools the user may see (paged, filterable by district) with their cameras."""
    size = settings.web.page_size
    scope = Scope.of(user)
    stmt = (
        select(School)
        .join(School.district)
        .where(scope.schools(School.id))
        .options(selectinload(School.cameras))
        .order_by(School.code)
    )
    if district:
        stmt = stmt.where(District.code == district)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    schools = session.scalars(stmt.limit(size).offset((page - 1) * size)).all()
    districts = session.execute(
        select(District, func.count(School.id))
        .join(School, (School.district_id == District.id) & scope.schools(School.id))
        .group_by(District.id)
        .order_by(District.code)
    ).all()
    camera_total = session.scalar(select(func.count(Camera.id)).where(scope.schools(Camera.school_id))) or 0
    camera_ids = [c.id for school in schools for c in school.cameras]
    health = {
        row.camera_id: row
        for row in session.scalars(select(CameraHealth).where(CameraHealth.camera_id.in_(camera_ids)))
    }
    return render_page(
        request,
        "schools.html",
        bureau=settings.instance.name,
        user=user,
        active="/",
        schools=schools,
        districts=districts,
        district=district,
        page=page,
        pages=max(1, -(-total // size)),
        school_total=total,
        camera_total=camera_total,
        health=health,
    )
