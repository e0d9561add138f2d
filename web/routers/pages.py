"""Server-rendered console pages (no CDN: templates and CSS ship with the package)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ingest.tables import CameraHealth
from registry.models import Camera, District, School
from web.audit import AuditAction, record_audit
from web.auth import SESSION_USER_KEY, CurrentUser, authenticate, client_address, login_blocked, start_session
from web.deps import AppSettings, DbSession
from web.models import User

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parent.parent / "templates")


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, settings: AppSettings) -> Response:
    """The login page."""
    return templates.TemplateResponse(
        request, "login.html", {"bureau": settings.instance.name, "error": None, "username": ""}
    )


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
    context = {"bureau": settings.instance.name, "username": username}
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
        return templates.TemplateResponse(
            request,
            "login.html",
            {
                **context,
                "error": f"登录失败次数过多，请 {minutes} 分钟后再试 / too many failed logins, "
                f"try again in {minutes} min",
            },
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(settings.web.login_window_s)},
        )
    user = authenticate(session, username, password)
    if user is None:
        record_audit(session, AuditAction.LOGIN_FAILED, actor_name=username, ip=address)
        session.commit()
        log.warning("failed login for %r from %s", username, address)
        return templates.TemplateResponse(
            request,
            "login.html",
            {**context, "error": "用户名或密码错误 / wrong user name or password"},
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    start_session(request, user)
    record_audit(session, AuditAction.LOGIN, actor=user, ip=address)
    session.commit()
    log.info("user %s logged in", user.username)
    return RedirectResponse("/", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/logout")
def logout(request: Request, session: DbSession) -> Response:
    """End the session."""
    uid = request.session.get(SESSION_USER_KEY)
    user = session.get(User, uid) if isinstance(uid, int) else None
    if user is not None:
        record_audit(session, AuditAction.LOGOUT, actor=user, ip=client_address(request))
        session.commit()
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
    """Schools of the bureau (paged, filterable by district) with their cameras."""
    size = settings.web.page_size
    stmt = select(School).join(School.district).options(selectinload(School.cameras)).order_by(School.code)
    if district:
        stmt = stmt.where(District.code == district)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    schools = session.scalars(stmt.limit(size).offset((page - 1) * size)).all()
    districts = session.execute(
        select(District, func.count(School.id))
        .outerjoin(School, School.district_id == District.id)
        .group_by(District.id)
        .order_by(District.code)
    ).all()
    camera_total = session.scalar(select(func.count(Camera.id))) or 0
    camera_ids = [c.id for school in schools for c in school.cameras]
    health = {
        row.camera_id: row
        for row in session.scalars(select(CameraHealth).where(CameraHealth.camera_id.in_(camera_ids)))
    }
    return templates.TemplateResponse(
        request,
        "schools.html",
        {
            "bureau": settings.instance.name,
            "user": user,
            "schools": schools,
            "districts": districts,
            "district": district,
            "page": page,
            "pages": max(1, -(-total // size)),
            "school_total": total,
            "camera_total": camera_total,
            "health": health,
        },
    )
