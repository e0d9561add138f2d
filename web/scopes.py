"""Scopes: which schools a user may see, applied in every query that reads school-level rows.

A bureau-scoped user sees everything; a district-scoped user the schools of one district; a school-scoped user
one school. Rows outside a user's scope are answered as if they did not exist (404), never 403, so that a scoped
account cannot probe for codes in other districts. Bureau-level configuration (walls, tours, plans, quotas,
roster, daily reports, users, the audit log) needs the bureau scope, except where a router documents otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, status
from sqlalchemy import ColumnElement, Select, select, true
from sqlalchemy.orm import Session

from registry.models import Camera, District, School
from web.auth import CurrentUser
from web.models import ScopeKind, User


@dataclass(frozen=True)
class Scope:
    """The part of the fleet one user may see."""

    kind: ScopeKind
    district_id: int | None = None
    school_id: int | None = None

    @classmethod
    def of(cls, user: User) -> Scope:
        """The scope of ``user``."""
        return cls(user.scope, user.district_id, user.school_id)

    @property
    def is_bureau(self) -> bool:
        """Whether this is the whole bureau."""
        return self.kind is ScopeKind.BUREAU

    def school_ids(self) -> Select[tuple[int]] | None:
        """A subquery of the visible school ids, or None for the whole bureau."""
        if self.kind is ScopeKind.SCHOOL:
            return select(School.id).where(School.id == self.school_id)
        if self.kind is ScopeKind.DISTRICT:
            return select(School.id).where(School.district_id == self.district_id)
        return None

    def schools(self, school_id_column: Any) -> ColumnElement[bool]:
        """A WHERE clause keeping rows whose ``school_id_column`` is a visible school."""
        if self.kind is ScopeKind.SCHOOL:
            return school_id_column == self.school_id  # type: ignore[no-any-return]
        if self.kind is ScopeKind.DISTRICT:
            return school_id_column.in_(select(School.id).where(School.district_id == self.district_id))  # type: ignore[no-any-return]
        return true()

    def districts(self, district_id_column: Any) -> ColumnElement[bool]:
        """A WHERE clause keeping rows whose ``district_id_column`` is a visible district (a school scope sees
        its school's district)."""
        if self.kind is ScopeKind.SCHOOL:
            return district_id_column.in_(select(School.district_id).where(School.id == self.school_id))  # type: ignore[no-any-return]
        if self.kind is ScopeKind.DISTRICT:
            return district_id_column == self.district_id  # type: ignore[no-any-return]
        return true()

    def cameras(self, camera_id_column: Any) -> ColumnElement[bool]:
        """A WHERE clause keeping rows whose ``camera_id_column`` is a camera of a visible school."""
        ids = self.school_ids()
        if ids is None:
            return true()
        return camera_id_column.in_(select(Camera.id).where(Camera.school_id.in_(ids)))  # type: ignore[no-any-return]

    def allows_school(self, session: Session, school_id: int) -> bool:
        """Whether the school with this id is visible."""
        if self.kind is ScopeKind.BUREAU:
            return True
        if self.kind is ScopeKind.SCHOOL:
            return school_id == self.school_id
        return session.scalar(select(School.district_id).where(School.id == school_id)) == self.district_id

    def allows_district(self, session: Session, district_id: int) -> bool:
        """Whether the district with this id is wholly visible (a school scope never sees a whole district)."""
        return self.kind is ScopeKind.BUREAU or (
            self.kind is ScopeKind.DISTRICT and district_id == self.district_id
        )

    def visible_school_codes(self, session: Session) -> set[str] | None:
        """The codes of the visible schools, or None for the whole bureau."""
        ids = self.school_ids()
        if ids is None:
            return None
        return set(session.scalars(select(School.code).where(School.id.in_(ids))))

    def visible_district_codes(self, session: Session) -> set[str] | None:
        """The codes of the districts this scope touches, or None for the whole bureau."""
        if self.kind is ScopeKind.BUREAU:
            return None
        return set(session.scalars(select(District.code).where(self.districts(District.id))))

    def describe(self, session: Session) -> str:
        """A human-readable name of the scope: ``bureau``, ``district D1``, ``school S11``."""
        if self.kind is ScopeKind.DISTRICT:
            return f"district {session.scalar(select(District.code).where(District.id == self.district_id))}"
        if self.kind is ScopeKind.SCHOOL:
            return f"school {session.scalar(select(School.code).where(School.id == self.school_id))}"
        return "bureau"


def user_scope(user: CurrentUser) -> Scope:
    """The logged-in user's scope."""
    return Scope.of(user)


def bureau_scope(user: CurrentUser) -> User:
    """Let the request through only for a bureau-scoped user (403 otherwise)."""
    if user.scope is not ScopeKind.BUREAU:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs a bureau-wide account")
    return user


UserScope = Annotated[Scope, Depends(user_scope)]
"""The scope of the logged-in user."""
BureauUser = Annotated[User, Depends(bureau_scope)]
"""A logged-in user with the bureau scope."""


def not_found(what: str) -> HTTPException:
    """The 404 for a row that does not exist or lies outside the user's scope (the same answer for both)."""
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no {what}")
