"""Passwords (argon2id), login sessions, and the logged-in user of a request.

A login makes a :class:`~web.models.LoginSession` row and puts a random token in the signed session cookie
(with the user id, the user's ``session_version`` and the CSRF token); the row's key is the token's SHA-256.
A session is valid while :func:`session_valid` says so: its row exists and has not ended (logout, an
administrator), it has not expired (``web.session_max_age_s`` after login, as the cookie), the user is active
and the user's ``session_version`` is still the one of the login (bumping it ends every session of the user).
The same function judges every HTTP request (:func:`current_user`), the feed's WebSocket (handshake and
heartbeats, through :func:`session_login`) and the live views (:func:`load_logins`, one query a round).
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Collection, Mapping
from datetime import datetime, timedelta
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kernel.clock import utcnow
from web.audit import AuditAction, AuditEntry
from web.csrf import CSRF_SESSION_KEY, new_csrf_token
from web.deps import DbSession
from web.models import LoginSession, Role, SessionEndReason, User

_hasher = PasswordHasher()
SESSION_USER_KEY = "uid"
SESSION_VERSION_KEY = "ver"
SESSION_LOGIN_KEY = "sid"
"""The cookie's login-session token (its SHA-256 is the :class:`LoginSession` key)."""
LAST_SEEN_EVERY_S = 60.0
"""``last_seen_at`` is written when it is at least this old: at most one write a minute per session."""
USER_AGENT_LENGTH = 200
_TOKEN_MAX_LENGTH = 100


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def generate_password() -> str:
    """A random password that a person can type (12 characters, no look-alikes)."""
    alphabet = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def create_user(session: Session, username: str, password: str, role: Role, display_name: str = "") -> User:
    """Add a user with a hashed password (the caller commits)."""
    user = User(username=username, password_hash=hash_password(password), role=role, display_name=display_name)
    session.add(user)
    return user


@functools.cache
def _dummy_hash() -> str:
    """A hash of a random password, made once by the hasher of every real hash (same argon2 parameters)."""
    return _hasher.hash(secrets.token_urlsafe(24))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None.

    An unknown or disabled name is verified against a dummy hash: it costs what a wrong password costs, so the
    answer's timing does not tell which names exist."""
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None or not user.active:
        verify_password(_dummy_hash(), password)  # the work of a wrong password, and the same answer
        return None
    return user if verify_password(user.password_hash, password) else None


class LoginRequired(HTTPException):
    """Raised when a page needs a logged-in user; pages turn it into a redirect to /login."""

    def __init__(self) -> None:
        super().__init__(status_code=status.HTTP_401_UNAUTHORIZED, detail="login required")


def login_session_key(token: str) -> str:
    """The :class:`LoginSession` key of a cookie's token: its SHA-256 in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(request: Request, db: Session, user: User, *, max_age_s: int) -> LoginSession:
    """Log ``user`` in on this request's session: a new login-session row (added to ``db``; the caller
    commits), a fresh cookie carrying its token (no fixation), a new CSRF token, and the user's session
    version, so that a password change or a disabled account ends the session."""
    now = utcnow()
    token = secrets.token_urlsafe(32)
    login = LoginSession(
        id=login_session_key(token),
        user_id=user.id,
        session_version=user.session_version,
        created_at=now,
        last_seen_at=now,
        expires_at=now + timedelta(seconds=max_age_s),
        ip=client_address(request)[:64],
        user_agent=request.headers.get("user-agent", "")[:USER_AGENT_LENGTH],
    )
    db.add(login)
    request.session.clear()
    request.session[SESSION_USER_KEY] = user.id
    request.session[SESSION_VERSION_KEY] = user.session_version
    request.session[SESSION_LOGIN_KEY] = token
    request.session[CSRF_SESSION_KEY] = new_csrf_token()
    return login


def session_valid(
    login: LoginSession | None, user: User | None, *, user_id: object, version: object, now: datetime
) -> bool:
    """Whether a login session still logs ``user_id`` in with session version ``version`` (the cookie's, or a
    live view's copies) at ``now``: the one check of every request, feed heartbeat and live-view round."""
    return (
        login is not None
        and user is not None
        and login.user_id == user.id == user_id
        and user.active
        and login.ended_at is None
        # Login time plus the cookie's max age: a session idle that long is past it as well.
        and now < login.expires_at
        and version == login.session_version == user.session_version
    )


def end_login(login: LoginSession, reason: SessionEndReason, now: datetime | None = None) -> None:
    """Mark ``login`` ended (the caller commits); an ended one keeps its first end."""
    if login.ended_at is None:
        login.ended_at = now or utcnow()
        login.end_reason = reason


def cookie_login(db: Session, data: Mapping[str, object]) -> tuple[LoginSession, User] | None:
    """The login row a decoded session cookie names, and its user, in whatever state (one primary-key lookup,
    joined to the user's row)."""
    token = data.get(SESSION_LOGIN_KEY)
    if not isinstance(token, str) or not token or len(token) > _TOKEN_MAX_LENGTH:
        return None
    found = db.execute(
        select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.id == login_session_key(token))
    ).one_or_none()
    return (found[0], found[1]) if found is not None else None


def session_login(db: Session, data: Mapping[str, object]) -> tuple[User, LoginSession] | None:
    """The user and the login of a decoded session cookie while the session is valid, else None.

    Commits on ``db`` when it writes: ``last_seen_at`` (at most once a minute), or the end of a session found
    expired. Used for every request (:func:`current_user`) and by the feed's WebSocket."""
    found = cookie_login(db, data)
    if found is None:
        return None
    login, user = found
    now = utcnow()
    if not session_valid(
        login, user, user_id=data.get(SESSION_USER_KEY), version=data.get(SESSION_VERSION_KEY), now=now
    ):
        if login.ended_at is None and now >= login.expires_at:
            end_login(login, SessionEndReason.EXPIRED, now)
            db.commit()
        return None
    if (now - login.last_seen_at).total_seconds() >= LAST_SEEN_EVERY_S:
        login.last_seen_at = now
        db.commit()
    return user, login


def load_logins(db: Session, keys: Collection[str]) -> dict[str, tuple[LoginSession, User]]:
    """The login rows with these keys and their users, in one query (for :func:`session_valid`)."""
    if not keys:
        return {}
    rows = db.execute(
        select(LoginSession, User).join(User, User.id == LoginSession.user_id).where(LoginSession.id.in_(keys))
    ).tuples()
    return {login.id: (login, user) for login, user in rows}


def current_user(request: Request, session: DbSession) -> User:
    """The user logged in on this request's session cookie (its login is :func:`current_login`)."""
    found = session_login(session, request.session)
    if found is None:
        raise LoginRequired()
    user, login = found
    request.state.login_session = login
    return user


def current_login(request: Request) -> LoginSession:
    """The login session of a request that passed :func:`current_user` (in the request's database session)."""
    login: LoginSession | None = getattr(request.state, "login_session", None)
    if login is None:
        raise LoginRequired()
    return login


def client_address(request: Request) -> str:
    """The peer address of a request (for the audit log and the login rate limit)."""
    return request.client.host if request.client else ""


def login_blocked(session: Session, username: str, address: str, *, max_failures: int, window_s: int) -> bool:
    """Whether logins for ``username`` or from ``address`` are refused for now: ``max_failures`` failed logins
    inside the last ``window_s`` seconds. Counted from the audit log, so every web process sees the same count."""
    since = utcnow() - timedelta(seconds=window_s)
    failed = select(func.count()).where(
        AuditEntry.action == AuditAction.LOGIN_FAILED.value, AuditEntry.at >= since
    )
    by_name = session.scalar(failed.where(AuditEntry.actor_name == username[:64])) or 0
    by_address = session.scalar(failed.where(AuditEntry.ip == address[:64])) or 0 if address else 0
    return by_name >= max_failures or by_address >= max_failures


CurrentUser = Annotated[User, Depends(current_user)]
