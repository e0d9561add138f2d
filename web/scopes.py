"""Scopes: which schools a user may see, applied in every query that reads school-level rows.

A bureau-scoped user sees everything; a district-scoped user the schools of one district; a school-scoped user
one school. Rows outside a user's scope are answered as if they did not exist (404), never 403, so that a scoped
account cannot probe for codes in other districts.

The policy, router by router:

- **School-level rows** (hazards, incidents, inspections and their findings, patrol task items and their
  snapshots, camera health, quality faults, thumbnails, wall alarms) are filtered by the school they belong to:
  lists leave out the others, a single row outside the scope is a 404, and so is any write to it (or a new row
  naming an out-of-scope school, camera or event).
- **Bureau-level configuration** (walls, tours, patrol plans, spot-check quotas, roster shifts) is *written* by
  bureau-scoped users only (403 "this needs a bureau-wide account" for the others, whatever their role).
  A scoped user *reads* the walls, tours, plans and quotas whose selection lies wholly within its scope
  (:meth:`ScopeCodes.covers`): a place is named (districts or schools; or, for a set without filters, the
  cameras listed) and every district, school and listed camera is visible. An empty selection means the whole
  bureau and is never within a narrower scope. A school scope never covers a district. The others answer 404
  and are absent from lists. The state of a visible wall shows only the tiles and alarms of visible cameras
  (a wall's tour may rotate cameras from elsewhere: those tiles read as empty).
- **Patrol tasks**: a scoped user sees the tasks that have at least one camera in scope, with only those
  cameras (items, progress), and records verdicts on them only.
- **Spot-check draws** follow their quota; drawing (the inspectors' work, not configuration) needs the quota
  visible.
- **The roster** is read by every scope (who is on duty is whom a school calls); handover notes are written by
  the shift's own people.
- **Daily reports** are bureau-wide figures: they need the bureau scope to read, export or generate (403).
- **Users and the audit log** need the bureau scope (403).
"""

from __future__ import annotations

from collections.abc import Iterable
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
            return school_id_column == self.school_id
        if self.kind is ScopeKind.DISTRICT:
            return school_id_column.in_(select(School.id).where(School.district_id == self.district_id))
        return true()

    def districts(self, district_id_column: Any) -> ColumnElement[bool]:
        """A WHERE clause keeping rows whose ``district_id_column`` is a visible district (a school scope sees
        its school's district)."""
        if self.kind is ScopeKind.SCHOOL:
            return district_id_column.in_(select(School.district_id).where(School.id == self.school_id))
        if self.kind is ScopeKind.DISTRICT:
            return district_id_column == self.district_id
        return true()

    def cameras(self, camera_id_column: Any) -> ColumnElement[bool]:
        """A WHERE clause keeping rows whose ``camera_id_column`` is a camera of a visible school."""
        ids = self.school_ids()
        if ids is None:
            return true()
        return camera_id_column.in_(select(Camera.id).where(Camera.school_id.in_(ids)))

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

    def codes(self, session: Session) -> ScopeCodes:
        """The visible district, school and camera codes (None each for the whole bureau): read once, used for
        many rows of bureau-level configuration."""
        if self.kind is ScopeKind.BUREAU:
            return ScopeCodes(None, None, None)
        ids = self.school_ids()
        assert ids is not None
        districts: frozenset[str] = frozenset()
        if self.kind is ScopeKind.DISTRICT:
            districts = frozenset(session.scalars(select(District.code).where(District.id == self.district_id)))
        schools = frozenset(session.scalars(select(School.code).where(School.id.in_(ids))))
        cameras = frozenset(session.scalars(select(Camera.code).where(Camera.school_id.in_(ids))))
        return ScopeCodes(districts, schools, cameras)

    def describe(self, session: Session) -> str:
        """A human-readable name of the scope: ``bureau``, ``district D1``, ``school S11``."""
        if self.kind is ScopeKind.DISTRICT:
            return f"district {session.scalar(select(District.code).where(District.id == self.district_id))}"
        if self.kind is ScopeKind.SCHOOL:
            return f"school {session.scalar(select(School.code).where(School.id == self.school_id))}"
        return "bureau"


@dataclass(frozen=True)
class ScopeCodes:
    """The codes a scope sees; None: every code (the bureau)."""

    districts: frozenset[str] | None
    schools: frozenset[str] | None
    cameras: frozenset[str] | None

    @property
    def is_bureau(self) -> bool:
        """Whether these are the whole bureau's codes."""
        return self.districts is None

    def covers(
        self,
        *,
        districts: Iterable[str] = (),
        schools: Iterable[str] = (),
        cameras: Iterable[str] = (),
        filtered: bool = False,
        places_required: bool = False,
    ) -> bool:
        """Whether a selection of cameras lies wholly within the scope (see the module docstring).

        ``filtered``: the selection also filters by scene, tag or key scene (then listed cameras alone do not
        name a place: the filters reach the whole fleet). ``places_required``: only districts or schools name a
        place (a wall's pinned cameras do not limit the alarms it takes)."""
        if self.districts is None or self.schools is None or self.cameras is None:
            return True
        districts, schools, cameras = set(districts), set(schools), set(cameras)
        placed = bool(districts or schools) or (not filtered and not places_required and bool(cameras))
        return placed and districts <= self.districts and schools <= self.schools and cameras <= self.cameras

    def camera(self, code: str | None) -> bool:
        """Whether the camera with this code is visible."""
        return code is not None and (self.cameras is None or code in self.cameras)

    def school(self, code: str | None) -> bool:
        """Whether the school with this code is visible."""
        return code is not None and (self.schools is None or code in self.schools)


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
