"""Which roles may do what: dependencies that let a request through only for some roles.

Every endpoint needs a login; reads are open to every role (the auditor reads everything its scope shows and
writes nothing), writes to the roles whose work they are. The scope (which schools) is applied by the routers
with :mod:`web.scopes`; configuration of the whole bureau also needs the bureau scope (``Bureau*`` below).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, HTTPException, status

from web.auth import CurrentUser
from web.models import Role, ScopeKind, User


def require_roles(*roles: Role) -> Callable[[User], User]:
    """A dependency answering 403 unless the logged-in user has one of ``roles``."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(r.value for r in allowed))

    def dependency(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"a {user.role.value} may not do this (needs one of: {names})"
            )
        return user

    return dependency


def require_bureau_roles(*roles: Role) -> Callable[[User], User]:
    """Like :func:`require_roles`, and 403 as well unless the user has the bureau scope."""
    by_role = require_roles(*roles)

    def dependency(user: CurrentUser) -> User:
        by_role(user)
        if user.scope is not ScopeKind.BUREAU:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs a bureau-wide account")
        return user

    return dependency


AdminUser = Annotated[User, Depends(require_roles(Role.ADMINISTRATOR))]
"""Configuration: walls, tours, patrol plans, spot-check quotas, the roster."""
DutyUser = Annotated[User, Depends(require_roles(Role.DUTY_OFFICER, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR))]
"""The duty room's work: alarms, verdicts, hazards, incidents and their reports."""
LeaderUser = Annotated[User, Depends(require_roles(Role.LEADER_ON_DUTY, Role.ADMINISTRATOR))]
"""Sign-offs of the leader on duty: verifying a hazard closed, closing a major incident."""
InspectorUser = Annotated[User, Depends(require_roles(Role.INSPECTOR, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR))]
"""Spot checks: draws, inspection sessions, findings and signatures."""
HAZARD_FILERS = (Role.DUTY_OFFICER, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR, Role.INSPECTOR)
"""Who files hazards and uploads their before pictures: the duty room and the inspectors."""
HAZARD_RECTIFIERS = (Role.SCHOOL_SAFETY_OFFICER, Role.DUTY_OFFICER, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR)
"""Who rectifies hazards and uploads their after pictures: the school's safety officer, or the duty room on its
behalf."""
RectifierUser = Annotated[User, Depends(require_roles(*HAZARD_RECTIFIERS))]
"""Rectifying hazards (starting, submitting): :data:`HAZARD_RECTIFIERS`."""
FilerUser = Annotated[User, Depends(require_roles(*HAZARD_FILERS))]
"""Filing hazards: :data:`HAZARD_FILERS`."""
HazardWorkerUser = Annotated[User, Depends(require_roles(*HAZARD_FILERS, *HAZARD_RECTIFIERS))]
"""Everybody who works on hazards (notes, pictures), not the auditor: filers and rectifiers."""
BureauAdminUser = Annotated[User, Depends(require_bureau_roles(Role.ADMINISTRATOR))]
"""Configuration of the whole bureau (walls, tours, plans, quotas, the roster): a bureau-scoped administrator."""
BureauDutyUser = Annotated[
    User, Depends(require_bureau_roles(Role.DUTY_OFFICER, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR))
]
"""The duty room's bureau-wide work (generating the daily report): a bureau-scoped duty room role."""
AuditReader = Annotated[User, Depends(require_bureau_roles(Role.AUDITOR, Role.ADMINISTRATOR))]
"""Reading the audit log: a bureau-scoped auditor or administrator."""
