"""Console users: who may log in, with which role and scope; and ``GET /api/me`` for the console itself.

Administration needs a bureau-scoped administrator. A scope names its place by code: ``bureau`` none,
``district`` a ``district_code``, ``school`` a ``school_code`` (a ``district_code`` given with it must be the
school's). Passwords are argon2id hashes (:func:`web.auth.hash_password`), never shown; setting one returns a
generated password once, or takes a given one of at least :data:`MIN_PASSWORD_LENGTH` characters. A new password
or a deactivation bumps the user's ``session_version``, which ends every session of that user. The last active
bureau administrator can be neither deactivated, demoted nor narrowed (409), and nobody deactivates their own
account. Every change is audited (``config.change``), never with a password.

``/api/users/{username}/sessions`` lists a user's open login sessions (:class:`web.models.LoginSession`) by
their public handle (never the cookie's token, nor the row's key), and ends one (audited, ``end_session``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from kernel.clock import utcnow
from registry.models import District, School
from web.audit import AuditAction, record_audit
from web.auth import (
    SESSION_VERSION_KEY,
    CurrentUser,
    client_address,
    current_login,
    end_login,
    generate_password,
    hash_password,
    session_valid,
)
from web.deps import DbSession
from web.models import SESSION_HANDLE_LENGTH, LoginSession, Role, ScopeKind, SessionEndReason, User
from web.permissions import BureauAdminUser
from web.routers.registry import unprocessable
from web.schemas import (
    MePublic,
    Page,
    PasswordResult,
    PasswordSet,
    UserCreate,
    UserCreated,
    UserPublic,
    UserUpdate,
)
from web.scopes import Scope, not_found

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api", tags=["users"])

MIN_PASSWORD_LENGTH = 10
"""Shortest password an administrator may set."""
MAX_PASSWORD_LENGTH = 256
"""Longest password (the login form takes no more)."""


def _codes(session: Session, users: Sequence[User]) -> tuple[dict[int, str], dict[int, tuple[str, int]]]:
    """District codes by id, and (school code, district id) by id, of the places these users are scoped to."""
    district_ids = {u.district_id for u in users if u.district_id is not None}
    school_ids = {u.school_id for u in users if u.school_id is not None}
    schools: dict[int, tuple[str, int]] = {}
    if school_ids:
        for sid, code, did in session.execute(
            select(School.id, School.code, School.district_id).where(School.id.in_(school_ids))
        ):
            schools[sid] = (code, did)
            district_ids.add(did)
    districts = (
        dict(
            session.execute(select(District.id, District.code).where(District.id.in_(district_ids))).tuples().all()
        )
        if district_ids
        else {}
    )
    return districts, schools


def _publics(session: Session, users: Sequence[User]) -> list[UserPublic]:
    districts, schools = _codes(session, users)
    out = []
    for user in users:
        school_code, district_code = None, None
        if user.school_id is not None:
            school_code, district_id = schools[user.school_id]
            district_code = districts.get(district_id)
        elif user.district_id is not None:
            district_code = districts.get(user.district_id)
        out.append(
            UserPublic(
                id=user.id,
                username=user.username,
                display_name=user.display_name,
                role=user.role,
                scope=user.scope,
                district_code=district_code,
                school_code=school_code,
                phone=user.phone,
                email=user.email,
                active=user.active,
                created_at=user.created_at,
            )
        )
    return out


def _public(session: Session, user: User) -> UserPublic:
    return _publics(session, [user])[0]


@router.get("/me", summary="The logged-in user")
def me(session: DbSession, user: CurrentUser) -> MePublic:
    """Role, scope and the codes of the scope's place, for any logged-in user."""
    public = _public(session, user)
    codes = Scope.of(user).visible_school_codes(session)
    return MePublic(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        scope=user.scope,
        district_code=public.district_code,
        school_code=public.school_code,
        school_codes=sorted(codes) if codes is not None else None,
        phone=user.phone,
        email=user.email,
    )


def _user(session: Session, username: str) -> User:
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None:
        raise not_found(f"user {username!r}")
    return user


@router.get("/users", summary="List users")
def list_users(
    session: DbSession,
    _admin: BureauAdminUser,
    role: Annotated[Role | None, Query(description="Only this role")] = None,
    active: Annotated[bool | None, Query(description="Only active (true) or deactivated (false) users")] = None,
    q: Annotated[str | None, Query(max_length=64, description="Text in the username or display name")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most rows returned")] = 100,
    offset: Annotated[int, Query(ge=0, description="Rows skipped")] = 0,
) -> Page[UserPublic]:
    """Users by username, filtered and paged."""
    stmt = select(User).order_by(User.username)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(User.username.like(like), User.display_name.like(like)))
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    users = session.scalars(stmt.limit(limit).offset(offset)).all()
    return Page(total=total, offset=offset, limit=limit, items=_publics(session, users))


@router.get("/users/{username}", summary="One user")
def get_user(username: str, session: DbSession, _admin: BureauAdminUser) -> UserPublic:
    """A user by username."""
    return _public(session, _user(session, username))


def _scope_target(
    session: Session, scope: ScopeKind, district_code: str | None, school_code: str | None
) -> tuple[int | None, int | None]:
    """(district_id, school_id) of a scope, checked against each other (422 naming the field)."""
    if scope is ScopeKind.BUREAU:
        given = [f for f, v in (("district_code", district_code), ("school_code", school_code)) if v]
        if given:
            raise unprocessable([(f, "a bureau scope names no district or school") for f in given])
        return None, None
    if scope is ScopeKind.DISTRICT:
        if school_code:
            raise unprocessable([("school_code", "a district scope names no school (use scope: school)")])
        if not district_code:
            raise unprocessable([("district_code", "a district scope needs a district_code")])
        district_id = session.scalar(select(District.id).where(District.code == district_code))
        if district_id is None:
            raise unprocessable([("district_code", f"unknown district {district_code!r}")])
        return district_id, None
    if not school_code:
        raise unprocessable([("school_code", "a school scope needs a school_code")])
    row = session.execute(
        select(School.id, District.code)
        .join(District, School.district_id == District.id)
        .where(School.code == school_code)
    ).one_or_none()
    if row is None:
        raise unprocessable([("school_code", f"unknown school {school_code!r}")])
    if district_code and district_code != row[1]:
        raise unprocessable(
            [("district_code", f"school {school_code!r} is in district {row[1]!r}, not {district_code!r}")]
        )
    return None, row[0]


def _checked_password(password: str | None) -> tuple[str, bool]:
    """The password to set and whether it was generated (a given one is checked, never echoed)."""
    if password is None:
        return generate_password(), True
    if len(password) < MIN_PASSWORD_LENGTH:
        raise unprocessable([("password", f"shorter than {MIN_PASSWORD_LENGTH} characters")])
    if len(password) > MAX_PASSWORD_LENGTH:
        raise unprocessable([("password", f"longer than {MAX_PASSWORD_LENGTH} characters")])
    if password != password.strip():
        raise unprocessable([("password", "must not begin or end with whitespace")])
    return password, False


def _audit(session: Session, request: Request, actor: User, username: str, op: str, **detail: Any) -> None:
    record_audit(
        session,
        AuditAction.CONFIG_CHANGE,
        actor=actor,
        target=f"user {username}",
        ip=client_address(request),
        detail={"op": op, **detail},
    )


@router.post("/users", status_code=status.HTTP_201_CREATED, summary="Add a user")
def create_user(body: UserCreate, request: Request, session: DbSession, admin: BureauAdminUser) -> UserCreated:
    """A new user (409 when the username is taken); the generated password is in the answer, this once."""
    district_id, school_id = _scope_target(session, body.scope, body.district_code, body.school_code)
    password, generated = _checked_password(body.password)
    if session.scalar(select(User.id).where(User.username == body.username)) is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"a user named {body.username!r} exists")
    user = User(
        username=body.username,
        display_name=body.display_name,
        password_hash=hash_password(password),
        role=body.role,
        scope=body.scope,
        district_id=district_id,
        school_id=school_id,
        phone=body.phone,
        email=body.email,
        active=body.active,
    )
    session.add(user)
    shown = body.model_dump(mode="json", exclude={"password", "username"})
    _audit(session, request, admin, body.username, "create", password_generated=generated, **shown)
    session.commit()
    log.info("user %s (%s, %s) created by %s", user.username, user.role.value, user.scope.value, admin.username)
    return UserCreated(user=_public(session, user), password=password if generated else None)


def _is_bureau_admin(role: Role, scope: ScopeKind, active: bool) -> bool:
    return role is Role.ADMINISTRATOR and scope is ScopeKind.BUREAU and active


def _guard_last_admin(session: Session, user: User, role: Role, scope: ScopeKind, active: bool) -> None:
    """409 when the change would leave no active bureau-scoped administrator."""
    if not _is_bureau_admin(user.role, user.scope, user.active) or _is_bureau_admin(role, scope, active):
        return
    others = session.scalar(
        select(func.count()).where(
            User.role == Role.ADMINISTRATOR,
            User.scope == ScopeKind.BUREAU,
            User.active.is_(True),
            User.id != user.id,
        )
    )
    if not others:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            f"{user.username!r} is the last active bureau administrator: make another one first",
        )


@router.patch("/users/{username}", summary="Change a user")
def update_user(
    username: str, body: UserUpdate, request: Request, session: DbSession, admin: BureauAdminUser
) -> UserPublic:
    """Change a user's fields; deactivating, or a new role or scope, ends their sessions. A new ``scope`` takes
    the codes given with it; codes alone change the place of the current scope."""
    user = _user(session, username)
    before = (user.role, user.scope, user.district_id, user.school_id)
    values = {name: getattr(body, name) for name in body.model_fields_set}
    nulls = [
        (n, "must not be null")
        for n, v in values.items()
        if v is None and n not in ("district_code", "school_code")
    ]
    if nulls:
        raise unprocessable(nulls)
    role = values.get("role", user.role)
    active = values.get("active", user.active)
    scope = values.get("scope", user.scope)
    if user.id == admin.id and not active:
        raise HTTPException(status.HTTP_409_CONFLICT, "you cannot deactivate your own account")
    _guard_last_admin(session, user, role, scope, active)
    if values.keys() & {"scope", "district_code", "school_code"}:
        current = _public(session, user)
        district_code = values.get("district_code", current.district_code if "scope" not in values else None)
        school_code = values.get("school_code", current.school_code if "scope" not in values else None)
        if scope is ScopeKind.SCHOOL and "school_code" in values and "district_code" not in values:
            district_code = None  # a new school brings its own district
        # Resolved before any attribute changes: the lookups must not autoflush a half-changed scope.
        district_id, school_id = _scope_target(session, scope, district_code, school_code)
        user.scope, user.district_id, user.school_id = scope, district_id, school_id
    for name in ("display_name", "role", "phone", "email"):
        if name in values:
            setattr(user, name, values[name])
    # Deactivating, or changing what the user may do or see, ends their sessions: an open feed or live view
    # must not keep the old role or scope.
    if (user.active and not active) or before != (user.role, user.scope, user.district_id, user.school_id):
        user.session_version += 1
    user.active = active
    _audit(
        session,
        request,
        admin,
        username,
        "update",
        fields=sorted(values),
        **body.model_dump(mode="json", include=set(values)),
    )
    session.commit()
    log.info("user %s changed by %s (%s)", username, admin.username, ", ".join(sorted(values)))
    return _public(session, user)


@router.post("/users/{username}/password", summary="Set or reset a user's password")
def set_password(
    username: str, body: PasswordSet, request: Request, session: DbSession, admin: BureauAdminUser
) -> PasswordResult:
    """Give the user a new password (generated and returned once, or the one given); their sessions end. An
    administrator setting their own keeps this session."""
    user = _user(session, username)
    password, generated = _checked_password(body.password)
    user.password_hash = hash_password(password)
    user.session_version += 1
    if user.id == admin.id:  # this session goes on with the new version; the admin's others end
        current_login(request).session_version = user.session_version
    _audit(session, request, admin, username, "password", generated=generated)
    session.commit()
    if user.id == admin.id:
        request.session[SESSION_VERSION_KEY] = user.session_version
    log.info("password of %s %s by %s", username, "reset" if generated else "set", admin.username)
    return PasswordResult(username=username, password=password if generated else None)


class LoginSessionPublic(BaseModel):
    """An open login session of a user (its handle names it; the cookie's token is never shown)."""

    handle: str = Field(description="Public handle: end the session with DELETE .../sessions/{handle}")
    created_at: datetime = Field(description="When the user logged in")
    last_seen_at: datetime = Field(description="Last request of the session (written at most once a minute)")
    expires_at: datetime = Field(description="When the session ends by itself (web.session_max_age_s)")
    ip: str = Field(description="Client address at login")
    user_agent: str = Field(description="Browser at login (truncated)")
    current: bool = Field(description="Whether this is the session asking")


def _open_sessions(session: Session, user: User) -> list[LoginSession]:
    """The user's valid login sessions, newest first (the check of every request: web.auth.session_valid)."""
    now = utcnow()
    rows = session.scalars(
        select(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None), LoginSession.expires_at > now)
        .order_by(LoginSession.created_at.desc())
    )
    return [row for row in rows if session_valid(row, user, user_id=user.id, version=row.session_version, now=now)]


@router.get("/users/{username}/sessions", summary="A user's open login sessions")
def list_sessions(
    username: str, request: Request, session: DbSession, _admin: BureauAdminUser
) -> list[LoginSessionPublic]:
    """Where and since when the user is logged in: every session not logged out, ended or expired."""
    mine = current_login(request).id
    return [
        LoginSessionPublic(
            handle=row.handle,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            expires_at=row.expires_at,
            ip=row.ip,
            user_agent=row.user_agent,
            current=row.id == mine,
        )
        for row in _open_sessions(session, _user(session, username))
    ]


@router.delete(
    "/users/{username}/sessions/{handle}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End one of a user's login sessions (audited)",
)
def end_session(
    username: str,
    handle: Annotated[str, Path(max_length=SESSION_HANDLE_LENGTH, description="A handle from the list")],
    request: Request,
    session: DbSession,
    admin: BureauAdminUser,
) -> Response:
    """End the session: its cookie is refused from the next request, its feed closes at the next heartbeat and
    its live views at the next check. The user's other sessions go on. 404 when no open session has it."""
    user = _user(session, username)
    found = [row for row in _open_sessions(session, user) if row.handle == handle]
    if not found:
        raise not_found(f"open session {handle!r} of user {username!r}")
    for row in found:
        end_login(row, SessionEndReason.ADMINISTRATOR)
    _audit(session, request, admin, username, "end_session", handle=handle)
    session.commit()
    log.info("session %s of %s ended by %s", handle, username, admin.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
