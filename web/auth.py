"""Passwords (argon2id) and the logged-in user of a request."""

from __future__ import annotations

import functools
import secrets
from datetime import timedelta
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
from web.models import Role, User

_hasher = PasswordHasher()
SESSION_USER_KEY = "uid"
SESSION_VERSION_KEY = "ver"


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


def start_session(request: Request, user: User) -> None:
    """Log ``user`` in on this request's session: a fresh session (no fixation), a new CSRF token, and the
    user's session version, so that a password change or a disabled account ends the session."""
    request.session.clear()
    request.session[SESSION_USER_KEY] = user.id
    request.session[SESSION_VERSION_KEY] = user.session_version
    request.session[CSRF_SESSION_KEY] = new_csrf_token()


def current_user(request: Request, session: DbSession) -> User:
    """The user logged in on this request's session cookie."""
    uid = request.session.get(SESSION_USER_KEY)
    user = session.get(User, uid) if isinstance(uid, int) else None
    if user is None or not user.active or request.session.get(SESSION_VERSION_KEY) != user.session_version:
        raise LoginRequired()
    return user


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
