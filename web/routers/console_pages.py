"""Console pages of the duty room's daily work: incidents, patrol tasks, spot checks, hazards, camera health,
reports, administration, notifications and the audit log.

Each page is a server-rendered shell whose ES module (``web/static/<page>.js``) reads and writes the API. Who
may open a page is what the console's navigation says (:data:`web.console.NAV`): a user whose menu does not
list the page gets a 403 page. What a page offers (buttons, forms) follows the API's role rules, sent to the
script as ``can`` in the boot data; the API checks every write again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from web.audit import AuditAction
from web.auth import CurrentUser
from web.console import nav_for, render_page
from web.deps import AppSettings
from web.models import Role, ScopeKind, User
from web.permissions import HAZARD_FILERS, HAZARD_RECTIFIERS
from web.routers.incidents import CLOSERS_OF_MAJOR

router = APIRouter(include_in_schema=False)

# The role groups of web.permissions, as sets, so that a page shows only the actions its user may take.
DUTY = frozenset({Role.DUTY_OFFICER, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR})
LEADER = frozenset({Role.LEADER_ON_DUTY, Role.ADMINISTRATOR})
INSPECTORS = frozenset({Role.INSPECTOR, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR})
ADMIN = frozenset({Role.ADMINISTRATOR})
ADMIN_TABS = ("schools", "cameras", "users", "rules", "roster")
"""The administration page's tabs, each at ``/admin/<tab>``."""


def _has(user: User, roles: frozenset[Role] | tuple[Role, ...]) -> bool:
    return user.role in roles


def _allowed(user: User, path: str) -> bool:
    return any(item.path == path for item in nav_for(user))


def _page(
    request: Request,
    settings: AppSettings,
    user: User,
    template: str,
    active: str,
    can: dict[str, bool],
    **extra: Any,
) -> Response:
    if not _allowed(user, active):
        # The same rule as the navigation: a page the user's menu does not list answers 403.
        return render_page(
            request,
            "forbidden.html",
            bureau=settings.instance.name,
            user=user,
            status_code=status.HTTP_403_FORBIDDEN,
            path=active,
        )
    boot: dict[str, Any] = {"can": can, "bureau_scope": user.scope is ScopeKind.BUREAU, **extra}
    return render_page(
        request, template, bureau=settings.instance.name, user=user, active=active, boot=boot, **extra
    )


@router.get("/incidents", response_class=HTMLResponse)
def incidents_page(request: Request, settings: AppSettings, user: CurrentUser) -> Response:
    """Incidents with their reporting clocks counting down, follow-up reports, classify and close."""
    can = {
        "duty": _has(user, DUTY),
        "close_major": _has(user, CLOSERS_OF_MAJOR),
    }
    return _page(request, settings, user, "incidents.html", "/incidents", can)


@router.get("/tasks", response_class=HTMLResponse)
def tasks_page(request: Request, settings: AppSettings, user: CurrentUser) -> Response:
    """Today's patrol tasks and the verdict on each of a task's cameras."""
    can = {"verdict": _has(user, DUTY)}
    return _page(request, settings, user, "tasks.html", "/tasks", can)


@router.get("/spot-checks", response_class=HTMLResponse)
def spot_checks_page(request: Request, settings: AppSettings, user: CurrentUser) -> Response:
    """Spot-check quotas, draws, inspection sessions and their verification."""
    can = {"inspect": _has(user, INSPECTORS), "admin": _has(user, ADMIN)}
    return _page(request, settings, user, "spot_checks.html", "/spot-checks", can)


@router.get("/hazards", response_class=HTMLResponse)
def hazards_page(request: Request, settings: AppSettings, user: CurrentUser) -> Response:
    """Hazards by status, their pictures and the steps the user's role may take."""
    can = {
        "file": _has(user, HAZARD_FILERS),
        "rectify": _has(user, HAZARD_RECTIFIERS),
        "verify": _has(user, LEADER),
        "reopen": _has(user, DUTY),
        "work": _has(user, HAZARD_FILERS) or _has(user, HAZARD_RECTIFIERS),
    }
    return _page(request, settings, user, "hazards.html", "/hazards", can)


@router.get("/health", response_class=HTMLResponse)
def health_page(request: Request, settings: AppSettings, user: CurrentUser) -> Response:
    """Camera health: the fleet's counts, offline cameras, picture faults with their snapshots."""
    return _page(request, settings, user, "health.html", "/health", {})


@router.get("/reports", response_class=HTMLResponse)
def reports_page(request: Request, settings: AppSettings, user: CurrentUser) -> Response:
    """Daily reports: the list, one day's figures, PDF and CSV downloads."""
    can = {"generate": _has(user, DUTY)}
    return _page(request, settings, user, "reports.html", "/reports", can)


@router.get("/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, settings: AppSettings, user: CurrentUser) -> Response:
    """The notifier's outbox and delivery log."""
    can = {"test": _has(user, ADMIN)}
    return _page(request, settings, user, "notifications.html", "/notifications", can)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, settings: AppSettings, user: CurrentUser) -> Response:
    """The audit log, filterable (read only: nobody edits it)."""
    return _page(request, settings, user, "audit.html", "/audit", {}, actions=[a.value for a in AuditAction])


@router.get("/admin")
def admin_index(request: Request, settings: AppSettings, user: CurrentUser) -> Response:
    """The administration page opens on its first tab."""
    if not _allowed(user, "/admin"):
        return _page(request, settings, user, "admin.html", "/admin", {})
    return RedirectResponse(f"/admin/{ADMIN_TABS[0]}", status_code=status.HTTP_303_SEE_OTHER)


def _admin_tab(tab: str) -> Callable[..., Response]:
    def admin_page(request: Request, settings: AppSettings, user: CurrentUser) -> Response:
        return _page(request, settings, user, "admin.html", "/admin", {"admin": True}, tab=tab, tabs=ADMIN_TABS)

    admin_page.__doc__ = f"Administration: the {tab} tab."
    admin_page.__name__ = f"admin_{tab}_page"
    return admin_page


for _tab in ADMIN_TABS:
    router.add_api_route(f"/admin/{_tab}", _admin_tab(_tab), methods=["GET"], response_class=HTMLResponse)
