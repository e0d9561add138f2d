"""Passwords (argon2id) and the logged-in user of a request."""

from __future__ import annotations

import secrets
from typing import Annotated

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import Depends, HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from web.deps import DbSession
from web.models import Role, User

_hasher = PasswordHasher()
SESSION_USER_KEY = "uid"


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


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with these credentials, or None."""
    user = session.scalars(select(User).where(User.username == username)).one_or_none()
    if user is None or not user.active or not verify_password(user.password_hash, password):
        return None
    return user


class LoginRequired(HTTPException):
    """Raised when a page needs a logged-in user; pages turn it into a redirect to /login."""

    def __init__(self) -> None:
        super().__init__(status_code=status.HTTP_401_UNAUTHORIZED, detail="login required")


def current_user(request: Request, session: DbSession) -> User:
    """The user logged in on this request's session cookie."""
    uid = request.session.get(SESSION_USER_KEY)
    user = session.get(User, uid) if isinstance(uid, int) else None
    if user is None or not user.active:
        raise LoginRequired()
    return user


CurrentUser = Annotated[User, Depends(current_user)]
