"""What every console page shares: the navigation, the language, and the boot data its JavaScript reads.

Pages are server-rendered shells (``web/templates``) whose ES modules (``web/static``) fetch the API and follow
the WebSocket feed. Nothing comes from a CDN. :func:`render_page` is the one way a page router renders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.responses import Response

from web.i18n import LANG_COOKIE, catalogue, pick_language, translate
from web.models import Role, User

templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")

_DUTY = frozenset({Role.DUTY_OFFICER, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR})
_ALL = frozenset(Role)


@dataclass(frozen=True)
class NavItem:
    """One entry of the console's navigation."""

    key: str
    path: str
    roles: frozenset[Role]
    bureau_only: bool = False


NAV: tuple[NavItem, ...] = (
    NavItem("nav.wall", "/wall", _DUTY | {Role.INSPECTOR, Role.AUDITOR}),
    NavItem("nav.events", "/events", _ALL),
    NavItem("nav.incidents", "/incidents", _ALL),
    NavItem("nav.tasks", "/tasks", _DUTY | {Role.AUDITOR}),
    NavItem("nav.spot_checks", "/spot-checks", _DUTY | {Role.INSPECTOR, Role.AUDITOR}),
    NavItem("nav.hazards", "/hazards", _ALL),
    NavItem("nav.health", "/health", _ALL),
    NavItem("nav.reports", "/reports", _DUTY | {Role.INSPECTOR, Role.AUDITOR}, bureau_only=True),
    NavItem("nav.schools", "/", _ALL),
    NavItem("nav.notifications", "/notifications", _DUTY | {Role.AUDITOR}, bureau_only=True),
    NavItem("nav.admin", "/admin", frozenset({Role.ADMINISTRATOR}), bureau_only=True),
    NavItem("nav.audit", "/audit", frozenset({Role.AUDITOR, Role.ADMINISTRATOR}), bureau_only=True),
)


def nav_for(user: User) -> list[NavItem]:
    """The navigation entries ``user`` may open."""
    bureau = user.scope.value == "bureau"
    return [item for item in NAV if user.role in item.roles and (bureau or not item.bureau_only)]


def language(request: Request) -> str:
    """The request's console language."""
    return pick_language(request.cookies.get(LANG_COOKIE))


def render_page(
    request: Request,
    template: str,
    *,
    bureau: str,
    user: User | None,
    active: str = "",
    status_code: int = 200,
    boot: dict[str, Any] | None = None,
    **context: Any,
) -> Response:
    """Render a console page: ``t`` translates, ``nav`` is the user's navigation, and ``boot`` (with the
    language, its messages and the user) is embedded as JSON for the page's scripts (a data block, so the
    Content-Security-Policy needs no inline scripts)."""
    lang = language(request)
    data: dict[str, Any] = {"lang": lang, "messages": catalogue()[lang], **(boot or {})}
    if user is not None:
        data["user"] = {
            "id": user.id,
            "username": user.username,
            "display_name": user.display_name or user.username,
            "role": user.role.value,
            "scope": user.scope.value,
        }
    # No "<" at all inside the script element ("</script>", "<!--" would end or garble it); JSON reads \u003c.
    boot_json = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")

    def t(key: str, **values: object) -> str:
        return translate(lang, key, **values)

    return templates.TemplateResponse(
        request,
        template,
        {
            "bureau": bureau,
            "user": user,
            "lang": lang,
            "t": t,
            "nav": nav_for(user) if user is not None else [],
            "active": active,
            "boot_json": Markup(boot_json),  # noqa: S704 - JSON made above, every "<" escaped
            **context,
        },
        status_code=status_code,
    )
