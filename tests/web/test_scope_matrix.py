"""The endpoint × role × scope matrix: every route of the app is classified here, and every classification is
checked for the six roles in three scopes (the bureau, district D1, school S11).

What is checked, route by route:

- anonymous requests to the API answer 401 (pages redirect to the login, public routes answer);
- a role the route is not for answers 403, and so does a narrower scope on a bureau-wide route;
- reads of rows at S11, S12 and S21 (school-level rows) or of configuration watching S11, S12, S21, district
  D1 or the whole bureau answer 200 inside the user's scope and 404 outside it; lists show exactly the rows
  in scope;
- writes are probed without lasting effect (an id that does not exist or a body that does not validate: 404
  or 422 for the roles allowed, 403 for the others), and for scoped users a valid write on a row outside the
  scope answers 404 and changes nothing.

A route missing from :data:`ROUTES` fails :func:`test_every_route_is_classified`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from starlette.routing import Mount, Route
from starlette.websockets import WebSocketDisconnect

from analytics.tables import SafetyEvent
from config import Settings
from ingest.models import HealthReason, HealthState, QualityFault
from ingest.tables import CameraHealth, CameraQualityFault
from ingest.thumbnails import MemoryThumbnailStore, Thumbnail, encode_jpeg
from kernel.db import make_engine, session_scope
from patrol.plans import create_due_tasks, plan_calendar
from patrol.tables import PatrolTask, WallAlarm
from registry.models import District, School
from tests.bureau import START, Bureau, ManualClock, _password_hash, login
from web.csrf import CSRF_HEADER
from web.models import Role, ScopeKind, User
from web.permissions import HAZARD_FILERS

JPEG = encode_jpeg(np.full((90, 160, 3), 90, np.uint8))
ALL_SCHOOLS = frozenset(f"S{d}{s}" for d in (1, 2) for s in (1, 2, 3))
SPAN: dict[str, frozenset[str]] = {
    **{s: frozenset({s}) for s in ALL_SCHOOLS},
    "D1": frozenset({"S11", "S12", "S13"}),
    "D2": frozenset({"S21", "S22", "S23"}),
    "bureau": ALL_SCHOOLS,
    "A11": frozenset({"S11"}),  # alarms at S11 and S12 on the wall of district D1
    "A12": frozenset({"S12"}),
}
"""The schools each fixture key spans."""
SCOPES = ("bureau", "D1", "S11")
VISIBLE: dict[str, frozenset[str]] = {"bureau": ALL_SCHOOLS, "D1": SPAN["D1"], "S11": SPAN["S11"]}
SCHOOL_KEYS = ("S11", "S12", "S21")
CONFIG_KEYS = ("S11", "S12", "S21", "D1", "bureau")
QUOTA_KEYS = ("D1", "D2", "bureau")
ALARM_KEYS = ("A11", "A12")


def touches(scope: str, key: str) -> bool:
    """A school-level row (or a task with cameras at many schools) is seen where one of its schools is."""
    return bool(SPAN[key] & VISIBLE[scope])


def covers(scope: str, key: str) -> bool:
    """Configuration is seen where its whole selection lies within the scope."""
    return SPAN[key] <= VISIBLE[scope] and not (scope == "S11" and key in ("D1", "D2", "bureau"))


def on_d1_wall(scope: str, key: str) -> bool:
    """Alarms on district D1's wall: the wall must be visible, then the alarm's school."""
    return covers(scope, "D1") and touches(scope, key)


EVERY = frozenset(Role)
DUTY = frozenset({Role.DUTY_OFFICER, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR})
ADMIN = frozenset({Role.ADMINISTRATOR})
LEADER = frozenset({Role.LEADER_ON_DUTY, Role.ADMINISTRATOR})
INSPECTORS = frozenset({Role.INSPECTOR, Role.LEADER_ON_DUTY, Role.ADMINISTRATOR})
FILERS = frozenset(HAZARD_FILERS)
RECTIFIERS = frozenset({Role.SCHOOL_SAFETY_OFFICER, *DUTY})
HAZARD_WORKERS = FILERS | RECTIFIERS
NOT_AUDITOR = EVERY - {Role.AUDITOR}
AUDIT_READERS = frozenset({Role.AUDITOR, Role.ADMINISTRATOR})
NOTE_WRITERS = frozenset({Role.SCHOOL_SAFETY_OFFICER, *DUTY})

Body = Callable[[str, Role], dict[str, Any]]


@dataclass(frozen=True)
class Rule:
    """How one route answers: who may call it, and which fixture rows it is checked on."""

    roles: frozenset[Role] = EVERY
    bureau: bool = False
    """Needs the bureau scope (403 for the others)."""
    keys: tuple[str, ...] = ()
    """Fixture keys the path is filled from (see :data:`SPAN`)."""
    match: Callable[[str, str], bool] = touches
    fill: dict[str, str] = field(default_factory=dict)
    """Path parameter -> fixture field, where they are not named alike."""
    query: str = ""
    ok: frozenset[int] = frozenset({200})
    listed: tuple[str, str] | None = None
    """A list: (fixture field, item field) that name the rows in the answer."""
    body: Body | None = None
    """A valid request body for writes outside the scope (expected 404)."""
    kind: str = "api"
    """api, public (no login), page (HTML, 303 to the login), ws, auth (tested in test_auth_security.py)."""


def json_body(value: dict[str, Any]) -> Body:
    return lambda key, role: {"json": value}


def form_body(value: dict[str, Any]) -> Body:
    return lambda key, role: {"data": value}


NO_BODY: Body = lambda key, role: {}  # noqa: E731
EVIDENCE: Body = lambda key, role: {  # noqa: E731
    "data": {"stage": "before" if role in HAZARD_FILERS else "after"},
    "files": {"file": ("a.jpg", JPEG, "image/jpeg")},
}
PAGE = Rule(kind="page", ok=frozenset({200, 403}))
PUBLIC = Rule(kind="public")
S, C, Q = SCHOOL_KEYS, CONFIG_KEYS, QUOTA_KEYS

ROUTES: dict[tuple[str, str], Rule] = {
    # --- public, auth and pages -----------------------------------------------------------------------------
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): Rule(kind="auth"),
    ("POST", "/logout"): Rule(kind="auth"),
    ("GET", "/lang/{lang}"): Rule(kind="auth"),
    **{
        ("GET", p): PAGE
        for p in (
            "/",
            "/wall",
            "/events",
            "/incidents",
            "/tasks",
            "/spot-checks",
            "/hazards",
            "/health",
            "/reports",
            "/notifications",
            "/audit",
            "/admin/schools",
            "/admin/cameras",
            "/admin/users",
            "/admin/rules",
            "/admin/roster",
        )
    },
    ("GET", "/admin"): Rule(kind="page", ok=frozenset({200, 303, 403})),  # a tab the user may open, or 403
    ("GET", "/live/{camera_code}"): Rule(
        kind="page", ok=frozenset({200, 403, 404}), keys=S, fill={"camera_code": "camera"}
    ),
    ("WS", "/ws/feed"): Rule(kind="ws"),
    # --- registry (web/routers/registry.py) -------------------------------------------------------------------
    ("GET", "/api/districts"): Rule(keys=("D1", "D2"), listed=("district", "code")),
    ("GET", "/api/districts/{code}"): Rule(keys=("D1", "D2"), fill={"code": "district"}),
    ("GET", "/api/schools"): Rule(keys=S, listed=("school", "code")),
    ("GET", "/api/schools/{code}"): Rule(keys=S, fill={"code": "school"}),
    ("GET", "/api/cameras"): Rule(keys=S, listed=("camera", "code"), query="?limit=1000"),
    ("GET", "/api/cameras/{code}"): Rule(keys=S, fill={"code": "camera"}),
    **{
        (m, p): Rule(roles=ADMIN, bureau=True)
        for m, p in (
            ("POST", "/api/districts"),
            ("PATCH", "/api/districts/{code}"),
            ("DELETE", "/api/districts/{code}"),
            ("POST", "/api/schools"),
            ("PATCH", "/api/schools/{code}"),
            ("DELETE", "/api/schools/{code}"),
            ("POST", "/api/cameras"),
            ("PATCH", "/api/cameras/{code}"),
            ("DELETE", "/api/cameras/{code}"),
        )
    },
    # --- camera rules (web/routers/rules.py) ----------------------------------------------------------------
    ("GET", "/api/cameras/{code}/rules"): Rule(keys=S, fill={"code": "camera"}),
    ("PUT", "/api/cameras/{code}/rules"): Rule(roles=ADMIN),
    ("DELETE", "/api/cameras/{code}/rules"): Rule(roles=ADMIN, keys=S, fill={"code": "camera"}, body=NO_BODY),
    # --- users (web/routers/users.py) -----------------------------------------------------------------------
    ("GET", "/api/me"): Rule(),
    ("GET", "/api/users"): Rule(roles=ADMIN, bureau=True),
    ("GET", "/api/users/{username}"): Rule(roles=ADMIN, bureau=True, keys=("bureau",)),
    ("POST", "/api/users"): Rule(roles=ADMIN, bureau=True),
    ("PATCH", "/api/users/{username}"): Rule(roles=ADMIN, bureau=True),
    ("POST", "/api/users/{username}/password"): Rule(roles=ADMIN, bureau=True),
    ("GET", "/api/users/{username}/sessions"): Rule(roles=ADMIN, bureau=True, keys=("bureau",)),
    ("DELETE", "/api/users/{username}/sessions/{handle}"): Rule(roles=ADMIN, bureau=True),
    # --- health -----------------------------------------------------------------------------------------------
    ("GET", "/api/health/summary"): Rule(),
    ("GET", "/api/health"): Rule(keys=S, listed=("camera", "camera_code")),
    ("GET", "/api/cameras/{code}/health"): Rule(keys=S, fill={"code": "camera"}),
    ("GET", "/api/cameras/{code}/health/history"): Rule(keys=S, fill={"code": "camera"}),
    ("GET", "/api/cameras/{code}/thumbnail.jpg"): Rule(keys=S, fill={"code": "camera"}),
    ("GET", "/api/quality-faults"): Rule(keys=S, listed=("fault_id", "id")),
    ("GET", "/api/quality-faults/{fault_id}/snapshot.jpg"): Rule(keys=S),
    # --- events (web/routers/events.py) -----------------------------------------------------------------------
    ("GET", "/api/events"): Rule(keys=S, listed=("event_id", "id")),
    ("GET", "/api/events/{event_id}"): Rule(keys=S),
    ("GET", "/api/events/{event_id}/evidence.jpg"): Rule(keys=S),
    ("POST", "/api/events/{event_id}/acknowledge"): Rule(roles=DUTY, keys=S, body=json_body({})),
    ("POST", "/api/events/{event_id}/dispatch"): Rule(
        roles=DUTY, keys=S, body=json_body({"to": "school security"})
    ),
    ("POST", "/api/events/{event_id}/resolve"): Rule(roles=DUTY, keys=S, body=json_body({"note": "done"})),
    ("POST", "/api/events/{event_id}/notes"): Rule(roles=NOTE_WRITERS, keys=S, body=json_body({"note": "seen"})),
    # --- live view (web/routers/live.py) ----------------------------------------------------------------------
    ("POST", "/api/live/{camera_code}/offer"): Rule(
        roles=NOT_AUDITOR, keys=S, fill={"camera_code": "camera"}, body=json_body({"type": "offer", "sdp": "v=0"})
    ),
    ("GET", "/api/live/sessions"): Rule(roles=ADMIN, bureau=True),
    ("GET", "/api/live/sessions/{session_id}"): Rule(ok=frozenset({404})),
    ("DELETE", "/api/live/sessions/{session_id}"): Rule(),
    # --- notifier outbox (web/routers/notifications.py) ------------------------------------------------------
    ("GET", "/api/notifications"): Rule(roles=DUTY | {Role.AUDITOR}, bureau=True),
    ("GET", "/api/notifications/{message_id}/attempts"): Rule(
        roles=DUTY | {Role.AUDITOR}, bureau=True, ok=frozenset({200, 404})
    ),
    ("POST", "/api/notifications/test"): Rule(roles=ADMIN, bureau=True),
    # --- audit --------------------------------------------------------------------------------------------------
    ("GET", "/api/audit"): Rule(roles=AUDIT_READERS, bureau=True),
    # --- walls --------------------------------------------------------------------------------------------------
    ("GET", "/api/layouts"): Rule(),
    ("GET", "/api/walls"): Rule(keys=C, match=covers, listed=("wall_id", "id")),
    ("POST", "/api/walls"): Rule(roles=ADMIN, bureau=True),
    ("GET", "/api/walls/{wall_id}"): Rule(keys=C, match=covers),
    ("PATCH", "/api/walls/{wall_id}"): Rule(roles=ADMIN, bureau=True),
    ("DELETE", "/api/walls/{wall_id}"): Rule(roles=ADMIN, bureau=True),
    ("GET", "/api/walls/{wall_id}/state"): Rule(keys=C, match=covers),
    ("GET", "/api/walls/{wall_id}/alarms"): Rule(keys=C, match=covers),
    ("POST", "/api/walls/{wall_id}/alarms/{alarm_id}/acknowledge"): Rule(
        roles=DUTY, keys=ALARM_KEYS, match=on_d1_wall, body=NO_BODY
    ),
    # --- tours ---------------------------------------------------------------------------------------------
    ("GET", "/api/tours"): Rule(keys=C, match=covers, listed=("tour_id", "id")),
    ("POST", "/api/tours"): Rule(roles=ADMIN, bureau=True),
    ("GET", "/api/tours/{tour_id}"): Rule(keys=C, match=covers),
    ("PATCH", "/api/tours/{tour_id}"): Rule(roles=ADMIN, bureau=True),
    ("DELETE", "/api/tours/{tour_id}"): Rule(roles=ADMIN, bureau=True),
    ("GET", "/api/tours/{tour_id}/cameras"): Rule(keys=C, match=covers),
    ("GET", "/api/tours/{tour_id}/coverage"): Rule(keys=C, match=covers, query="?day=2026-12-01"),
    # --- patrol plans and tasks -------------------------------------------------------------------------------
    ("GET", "/api/patrol-plans"): Rule(keys=C, match=covers, listed=("plan_id", "id")),
    ("POST", "/api/patrol-plans"): Rule(roles=ADMIN, bureau=True),
    ("GET", "/api/patrol-plans/{plan_id}"): Rule(keys=C, match=covers),
    ("PUT", "/api/patrol-plans/{plan_id}"): Rule(roles=ADMIN, bureau=True),
    ("DELETE", "/api/patrol-plans/{plan_id}"): Rule(roles=ADMIN, bureau=True),
    ("GET", "/api/patrol-plans/{plan_id}/preview"): Rule(keys=C, match=covers),
    ("GET", "/api/patrol-tasks"): Rule(keys=C, listed=("task_id", "id")),
    ("GET", "/api/patrol-tasks/{task_id}"): Rule(keys=C),
    ("POST", "/api/patrol-tasks/{task_id}/items/{camera_code}/verdict"): Rule(
        roles=DUTY, keys=S, fill={"camera_code": "camera"}, body=form_body({"verdict": "normal"})
    ),
    ("GET", "/api/patrol-tasks/{task_id}/items/{camera_code}/snapshot.jpg"): Rule(
        keys=S, fill={"camera_code": "camera"}
    ),
    # --- spot checks and inspections ----------------------------------------------------------------------------
    ("GET", "/api/spot-checks/quotas"): Rule(keys=Q, match=covers, listed=("quota_id", "id")),
    ("POST", "/api/spot-checks/quotas"): Rule(roles=ADMIN, bureau=True),
    ("GET", "/api/spot-checks/quotas/{quota_id}"): Rule(keys=Q, match=covers),
    ("PATCH", "/api/spot-checks/quotas/{quota_id}"): Rule(roles=ADMIN, bureau=True),
    ("DELETE", "/api/spot-checks/quotas/{quota_id}"): Rule(roles=ADMIN, bureau=True),
    ("POST", "/api/spot-checks/quotas/{quota_id}/draws"): Rule(
        roles=INSPECTORS, keys=Q, match=covers, body=json_body({})
    ),
    ("GET", "/api/spot-checks/draws"): Rule(keys=Q, match=covers, listed=("draw_id", "id")),
    ("GET", "/api/spot-checks/draws/{draw_id}"): Rule(keys=Q, match=covers),
    ("GET", "/api/spot-checks/draws/{draw_id}/verify"): Rule(keys=Q, match=covers),
    ("POST", "/api/inspections"): Rule(
        roles=INSPECTORS, keys=S, body=lambda key, role: {"json": {"school_code": key, "method": "directed"}}
    ),
    ("GET", "/api/inspections"): Rule(keys=S, listed=("inspection_id", "id")),
    ("GET", "/api/inspections/{inspection_id}"): Rule(keys=S),
    ("PUT", "/api/inspections/{inspection_id}/wall"): Rule(
        roles=INSPECTORS, keys=S, body=json_body({"wall_id": None})
    ),
    ("POST", "/api/inspections/{inspection_id}/findings"): Rule(
        roles=INSPECTORS,
        keys=S,
        body=lambda key, role: {
            "data": {"verdict": "normal"},
            "files": {"snapshot": ("s.jpg", JPEG, "image/jpeg")},
        },
    ),
    ("GET", "/api/inspections/{inspection_id}/findings/{finding_id}/snapshot.jpg"): Rule(keys=S),
    ("POST", "/api/inspections/{inspection_id}/sign"): Rule(
        roles=INSPECTORS, keys=S, body=json_body({"signed_name": "x"})
    ),
    ("GET", "/api/inspections/{inspection_id}/verify"): Rule(keys=S),
    # --- hazards ------------------------------------------------------------------------------------------------
    ("POST", "/api/hazards"): Rule(
        roles=FILERS, keys=S, body=lambda key, role: {"json": {"school_code": key, "title": "broken fence"}}
    ),
    ("GET", "/api/hazards"): Rule(keys=S, listed=("hazard_id", "id")),
    ("GET", "/api/hazards/{hazard_id}"): Rule(keys=S),
    ("POST", "/api/hazards/{hazard_id}/start"): Rule(roles=RECTIFIERS, keys=S, body=json_body({})),
    ("POST", "/api/hazards/{hazard_id}/submit"): Rule(roles=RECTIFIERS, keys=S, body=json_body({})),
    ("POST", "/api/hazards/{hazard_id}/verify"): Rule(roles=LEADER, keys=S, body=json_body({})),
    ("POST", "/api/hazards/{hazard_id}/reopen"): Rule(roles=DUTY, keys=S, body=json_body({"note": "no"})),
    ("POST", "/api/hazards/{hazard_id}/notes"): Rule(roles=HAZARD_WORKERS, keys=S, body=json_body({"note": "x"})),
    ("POST", "/api/hazards/{hazard_id}/evidence"): Rule(roles=HAZARD_WORKERS, keys=S, body=EVIDENCE),
    ("GET", "/api/hazards/{hazard_id}/evidence/{evidence_id}"): Rule(keys=S),
    # --- roster -------------------------------------------------------------------------------------------------
    ("GET", "/api/roster/shifts"): Rule(),
    ("POST", "/api/roster/shifts"): Rule(roles=ADMIN, bureau=True),
    ("GET", "/api/roster/shifts/{shift_id}"): Rule(keys=("bureau",), match=lambda s, k: True),
    ("PUT", "/api/roster/shifts/{shift_id}"): Rule(roles=ADMIN, bureau=True),
    ("DELETE", "/api/roster/shifts/{shift_id}"): Rule(roles=ADMIN, bureau=True),
    ("POST", "/api/roster/generate"): Rule(roles=ADMIN, bureau=True),
    ("GET", "/api/roster/now"): Rule(),
    ("GET", "/api/roster/shifts/{shift_id}/handovers"): Rule(keys=("bureau",), match=lambda s, k: True),
    ("POST", "/api/roster/shifts/{shift_id}/handovers"): Rule(roles=DUTY),
    ("POST", "/api/roster/handovers/{note_id}/acknowledge"): Rule(roles=DUTY),
    # --- incidents ----------------------------------------------------------------------------------------------
    ("POST", "/api/incidents"): Rule(
        roles=DUTY,
        keys=S,
        body=lambda key, role: {
            "json": {"school_code": key, "occurred_at": "2026-12-01T09:00:00+08:00", "title": "fight"}
        },
    ),
    ("GET", "/api/incidents"): Rule(keys=S, listed=("incident_id", "id")),
    ("GET", "/api/incidents/{incident_id}"): Rule(keys=S),
    ("POST", "/api/incidents/{incident_id}/classify"): Rule(
        roles=DUTY, keys=S, body=json_body({"severity": "general"})
    ),
    ("POST", "/api/incidents/{incident_id}/clocks/{kind}/done"): Rule(roles=DUTY, keys=S, body=json_body({})),
    ("POST", "/api/incidents/{incident_id}/followups"): Rule(roles=DUTY, keys=S, body=json_body({"text": "more"})),
    ("GET", "/api/incidents/{incident_id}/followups"): Rule(keys=S),
    ("POST", "/api/incidents/{incident_id}/close"): Rule(roles=DUTY, keys=S, body=json_body({})),
    # --- reports (bureau-wide) -----------------------------------------------------------------------------
    ("GET", "/api/reports"): Rule(bureau=True),
    ("GET", "/api/reports/{day}.pdf"): Rule(bureau=True, keys=("bureau",)),
    ("GET", "/api/reports/{day}.csv"): Rule(bureau=True, keys=("bureau",)),
    ("GET", "/api/reports/{day}"): Rule(bureau=True, keys=("bureau",)),
    ("POST", "/api/reports/{day}/generate"): Rule(roles=DUTY, bureau=True),
}
PROBE_VALUES = {"kind": "school_phone", "day": "9999-99-99", "lang": "en"}
"""Path values of the write probes (others: 999999, which names nothing)."""


def app_routes(app: FastAPI) -> Iterator[tuple[str, str, bool]]:
    """(method, path, in schema) of every route of ``app``; websocket routes as method WS."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if isinstance(route, Mount):
            continue  # /static: files, no logic
        if isinstance(route, APIWebSocketRoute):
            yield "WS", str(context.path), False
            continue
        assert isinstance(route, APIRoute | Route), route
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                yield method, str(context.path), bool(getattr(route, "include_in_schema", False))


def test_every_route_is_classified(api: TestClient) -> None:
    assert isinstance(api.app, FastAPI)
    found = {(m, p) for m, p, _ in app_routes(api.app)}
    unclassified = sorted(found - set(ROUTES))
    assert not unclassified, f"routes missing from the matrix table ROUTES: {unclassified}"
    gone = sorted(set(ROUTES) - found)
    assert not gone, f"routes in the matrix table that the app no longer has: {gone}"
    # Every API route is in the OpenAPI document (schemathesis fuzzes what it lists).
    for method, path, in_schema in app_routes(api.app):
        if path.startswith("/api/"):
            assert in_schema, f"{method} {path} is left out of the OpenAPI document"


# --- the fixture rows -------------------------------------------------------------------------------------------


@pytest.fixture
def empty_engine(tmp_path: Any) -> Iterator[Engine]:
    """The matrix runs on SQLite only: the scope clauses are the same SQL on PostgreSQL, which the routers'
    own tests exercise; running thousands of requests twice would double the time for little."""
    engine = make_engine(f"sqlite:///{tmp_path / 'matrix.db'}")
    yield engine
    engine.dispose()


Fx = dict[str, dict[str, Any]]


def _ok(response: Any, code: int = 201) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def _places(key: str) -> dict[str, list[str]]:
    if key == "bureau":
        return {}
    return {"districts": [key]} if key.startswith("D") else {"schools": [key]}


def build_fixture(api: TestClient, bureau: Bureau, settings: Settings, clock: ManualClock) -> Fx:
    """Rows at S11, S12 and S21, and configuration watching S11, S12, S21, D1 or the whole bureau."""
    fx: Fx = {k: {} for k in SPAN}
    for s in ALL_SCHOOLS:
        fx[s] |= {"school": s, "camera": f"{s}-GATE"}
    for d in ("D1", "D2"):
        fx[d]["district"] = d
    login(api, "admin")
    for key in CONFIG_KEYS:
        places = _places(key)
        tour = _ok(api.post("/api/tours", json={"name": f"tour {key}", "cameras": places, "layout": "4"}))
        fx[key]["tour_id"] = tour["id"]
        wall = _ok(api.post("/api/walls", json={"name": f"wall {key}", "tour_id": tour["id"], **places}))
        fx[key]["wall_id"] = wall["id"]
        plan = {
            "name": f"plan {key}",
            "camera_set": places,
            "day_rule": "every_day",
            "start": "09:30",
            "end": "11:00",
        }
        fx[key]["plan_id"] = _ok(api.post("/api/patrol-plans", json=plan))["id"]
    for key in QUOTA_KEYS:
        districts = [] if key == "bureau" else [key]
        quota = {"name": f"quota {key}", "period": "day", "min_count": 1, "max_count": 1, "districts": districts}
        fx[key]["quota_id"] = _ok(api.post("/api/spot-checks/quotas", json=quota))["id"]
    shift = {
        "starts_at": (START - timedelta(hours=1)).isoformat(),
        "ends_at": (START + timedelta(hours=8)).isoformat(),
        "leader": "leader1",
        "officers": ["officer1"],
    }
    fx["bureau"]["shift_id"] = _ok(api.post("/api/roster/shifts", json=shift))["id"]
    with session_scope(bureau.factory) as session:
        calendar = plan_calendar(settings.analytics.calendar, settings.instance.timezone)
        create_due_tasks(session, clock(), ahead=timedelta(hours=2), calendar=calendar)
        by_plan = {
            plan_id: task_id for task_id, plan_id in session.execute(select(PatrolTask.id, PatrolTask.plan_id))
        }
    for key in CONFIG_KEYS:
        fx[key]["task_id"] = by_plan[fx[key]["plan_id"]]
    login(api, "inspector")
    for key in QUOTA_KEYS:
        fx[key]["draw_id"] = _ok(api.post(f"/api/spot-checks/quotas/{fx[key]['quota_id']}/draws", json={}))["id"]
    for key in SCHOOL_KEYS:
        inspection = _ok(api.post("/api/inspections", json={"school_code": key, "method": "directed"}))
        fx[key]["inspection_id"] = inspection["id"]
        finding = api.post(
            f"/api/inspections/{inspection['id']}/findings",
            data={"verdict": "normal", "camera_code": f"{key}-GATE"},
            files={"snapshot": ("s.jpg", JPEG, "image/jpeg")},
        )
        fx[key]["finding_id"] = _ok(finding)["id"]
    login(api, "officer1")
    fx["bureau"] |= {"day": "2026-11-30", "username": "admin"}
    _ok(api.post("/api/reports/2026-11-30/generate"))
    for key in SCHOOL_KEYS:
        hazard = _ok(api.post("/api/hazards", json={"school_code": key, "title": f"fence {key}"}))
        fx[key]["hazard_id"] = hazard["id"]
        evidence = api.post(
            f"/api/hazards/{hazard['id']}/evidence",
            data={"stage": "before"},
            files={"file": ("a.jpg", JPEG, "image/jpeg")},
        )
        fx[key]["evidence_id"] = _ok(evidence)["id"]
        incident = {"school_code": key, "occurred_at": "2026-12-01T09:00:00+08:00", "title": f"fight {key}"}
        fx[key]["incident_id"] = _ok(api.post("/api/incidents", json=incident))["id"]
        verdict = api.post(
            f"/api/patrol-tasks/{fx[key]['task_id']}/items/{key}-GATE/verdict",
            data={"verdict": "normal"},
            files={"snapshot": ("s.jpg", JPEG, "image/jpeg")},
        )
        assert verdict.status_code == 200, verdict.text
    thumbnails: MemoryThumbnailStore = api.app.state.thumbnails  # type: ignore[attr-defined]
    with session_scope(bureau.factory) as session:
        for key in SCHOOL_KEYS:
            camera_id = bureau.cameras[f"{key}-GATE"]
            event = SafetyEvent(
                camera_id=camera_id,
                school_id=bureau.schools[key],
                type="intrusion",
                rule="after-hours",
                severity="general",
                started_at=START - timedelta(minutes=5),
                evidence_jpeg=JPEG,
            )
            fault = CameraQualityFault(
                camera_id=camera_id,
                fault=next(iter(QualityFault)),
                started_at=START,
                value=1.0,
                threshold=0.5,
                snapshot_jpeg=JPEG,
            )
            session.add_all([event, fault])
            session.add(
                CameraHealth(
                    camera_id=camera_id,
                    state=HealthState.OFFLINE,
                    reason=next(iter(HealthReason)),
                    since=START,
                    updated_at=START,
                )
            )
            session.flush()
            fx[key] |= {"event_id": event.id, "fault_id": fault.id}
            thumbnails.put(f"{key}-GATE", Thumbnail(JPEG, START))
        for key, school in (("A11", "S11"), ("A12", "S12")):
            alarm = WallAlarm(
                wall_id=fx["D1"]["wall_id"],
                alarm_key=f"matrix-{school}",
                camera_code=f"{school}-GATE",
                school_code=school,
                district_code="D1",
                title="intrusion",
                raised_at=START,
            )
            session.add(alarm)
            session.flush()
            fx[key] |= {"wall_id": fx["D1"]["wall_id"], "alarm_id": alarm.id}
    return fx


def matrix_users(bureau: Bureau) -> dict[tuple[Role, str], str]:
    """A user per role and scope, created in the bureau's database: their usernames."""
    names: dict[tuple[Role, str], str] = {}
    with session_scope(bureau.factory) as session:
        d1 = session.scalar(select(District.id).where(District.code == "D1"))
        s11 = session.scalar(select(School.id).where(School.code == "S11"))
        for role in Role:
            for scope in SCOPES:
                name = f"m-{role.value}-{scope}"
                user = User(username=name, password_hash=_password_hash(), role=role, display_name=name)
                if scope == "D1":
                    user.scope, user.district_id = ScopeKind.DISTRICT, d1
                elif scope == "S11":
                    user.scope, user.school_id = ScopeKind.SCHOOL, s11
                session.add(user)
                names[(role, scope)] = name
    return names


# --- the matrix -----------------------------------------------------------------------------------------------


def _path(template: str, values: dict[str, Any], fill: dict[str, str]) -> str:
    out = template
    for part in template.split("{")[1:]:
        name = part.split("}")[0]
        value = values.get(fill.get(name, name), PROBE_VALUES.get(name, 999999))
        out = out.replace("{" + name + "}", str(value))
    return out


def _items(body: Any) -> list[Any]:
    return list(body["items"] if isinstance(body, dict) else body)


def _expected(rule: Rule, role: Role, scope: str) -> int | None:
    """403 when the role or scope may not call the route at all, else None."""
    if role not in rule.roles or (rule.bureau and scope != "bureau"):
        return 403
    return None


def _check(
    failures: list[str], who: str, method: str, url: str, got: Any, wanted: frozenset[int] | set[int]
) -> bool:
    if got.status_code not in wanted:
        failures.append(f"{who}: {method} {url} -> {got.status_code}, wanted {sorted(wanted)}: {got.text[:120]}")
        return False
    return True


def _anonymous(client: httpx.Client) -> list[str]:
    """Every route without a login: public ones answer, pages go to the login, the API answers 401."""
    failures: list[str] = []
    for (method, template), rule in ROUTES.items():
        if rule.kind in ("auth", "ws"):
            continue
        probe = _path(template, {}, {}) + rule.query
        got = client.request(method, probe)
        wanted = {"public": {200}, "page": {303}}.get(rule.kind, {401})
        _check(failures, "anonymous", method, probe, got, wanted)
    return failures


def _one_user(client: httpx.Client, role: Role, scope: str, fx: Fx) -> list[str]:
    """Every route as one user: see the module docstring."""
    failures: list[str] = []
    who = f"{role.value}@{scope}"
    for (method, template), rule in ROUTES.items():
        if rule.kind in ("auth", "ws", "public"):
            continue
        probe = _path(template, {}, {}) + rule.query
        denied = _expected(rule, role, scope)
        if method == "GET":
            urls: list[tuple[str | None, str]] = [
                (k, _path(template, fx[k], rule.fill) + rule.query) for k in rule.keys
            ]
            urls = urls or [(None, probe)]
            if denied is not None and rule.kind != "page":
                urls = urls[:1]  # a refusal by role or scope does not depend on the row
            for key, url in urls:
                got = client.get(url)
                if denied is not None and rule.kind != "page":
                    _check(failures, who, method, url, got, {denied})
                elif key is not None and not rule.match(scope, key) and rule.listed is None:
                    _check(failures, who, method, url, got, {404} if rule.kind != "page" else {403, 404})
                elif _check(failures, who, method, url, got, rule.ok) and rule.listed and got.status_code == 200:
                    fixture_field, item_field = rule.listed
                    named = {fx[k][fixture_field]: k for k in rule.keys}
                    seen = {named[i[item_field]] for i in _items(got.json()) if i[item_field] in named}
                    wanted = {k for k in rule.keys if rule.match(scope, k)}
                    if seen != wanted:
                        failures.append(f"{who}: GET {url} lists {sorted(seen)}, wanted {sorted(wanted)}")
                if rule.listed is not None:
                    break  # a list is read once
            continue
        # Writes: a probe that names nothing or does not validate, then valid writes outside the scope.
        got = client.request(method, probe, json=[1])
        if denied is not None:
            _check(failures, who, method, probe, got, {denied})
            continue
        _check(failures, who, method, probe, got, {404, 409, 422})
        if rule.body is None or scope == "bureau":
            continue
        for key in rule.keys:
            if not rule.match(scope, key):
                url = _path(template, fx[key], rule.fill)
                _check(failures, who, method, url, client.request(method, url, **rule.body(key, role)), {404})
    return failures


def test_matrix(api: TestClient, bureau: Bureau, settings: Settings, clock: ManualClock) -> None:
    fx = build_fixture(api, bureau, settings, clock)
    names = matrix_users(bureau)
    # A client per user, all on the app's one event-loop portal (``api`` is open), run side by side.
    transport = api._transport
    clients: dict[tuple[Role, str], httpx.Client] = {}
    for who, name in names.items():
        login(api, name)
        client = httpx.Client(transport=transport, base_url=str(api.base_url), cookies=dict(api.cookies))
        client.headers[CSRF_HEADER] = api.headers[CSRF_HEADER]
        clients[who] = client
    anonymous = httpx.Client(transport=transport, base_url=str(api.base_url))
    with ThreadPoolExecutor(max_workers=4) as pool:
        jobs = [pool.submit(_one_user, client, role, scope, fx) for (role, scope), client in clients.items()]
        failures = _anonymous(anonymous) + [f for job in jobs for f in job.result()]
    assert not failures, f"{len(failures)} unexpected answers:\n" + "\n".join(failures[:60])


def test_the_websocket_feed_refuses_anonymous_clients(api: TestClient) -> None:
    anonymous = TestClient(api.app)
    with pytest.raises(WebSocketDisconnect), anonymous.websocket_connect("/ws/feed") as ws:
        ws.receive_text()


def test_scoped_users_work_on_their_own_rows(
    api: TestClient, bureau: Bureau, settings: Settings, clock: ManualClock
) -> None:
    """Inside the scope the same writes succeed: the school's officer rectifies its hazard, the district's
    officer records a verdict on its camera of a bureau-wide task and files a hazard at its school."""
    fx = build_fixture(api, bureau, settings, clock)
    login(api, "school11")
    started = api.post(f"/api/hazards/{fx['S11']['hazard_id']}/start", json={})
    assert started.status_code == 200 and started.json()["status"] == "rectifying", started.text
    assert api.post(f"/api/hazards/{fx['S12']['hazard_id']}/start", json={}).status_code == 404
    assert [h["school_code"] for h in api.get("/api/hazards").json()["items"]] == ["S11"]
    login(api, "officer_d1")
    task = fx["bureau"]["task_id"]
    detail = api.get(f"/api/patrol-tasks/{task}").json()
    assert {i["school_code"] for i in detail["items"]} == {"S11", "S12", "S13"}
    assert detail["cameras_total"] == 12
    verdict = api.post(f"/api/patrol-tasks/{task}/items/S12-DORM/verdict", data={"verdict": "normal"})
    assert verdict.status_code == 200, verdict.text
    refused = api.post(f"/api/patrol-tasks/{task}/items/S22-DORM/verdict", data={"verdict": "normal"})
    assert refused.status_code == 404
    filed = api.post("/api/hazards", json={"school_code": "S13", "title": "gate lock", "camera_code": "S13-GATE"})
    assert filed.status_code == 201, filed.text
    wrong_camera = api.post("/api/hazards", json={"school_code": "S13", "title": "x", "camera_code": "S12-GATE"})
    assert wrong_camera.status_code == 422
    # The district's wall shows its tiles; the bureau-wide tour's cameras elsewhere read as empty tiles.
    state = api.get(f"/api/walls/{fx['D1']['wall_id']}/state").json()
    assert {a["school_code"] for a in [state["alarm"], *state["queued"]] if a} <= {"S11", "S12", "S13"}
    login(api, "school11")
    assert api.get(f"/api/walls/{fx['D1']['wall_id']}/state").status_code == 404
    school_wall = api.get(f"/api/walls/{fx['S11']['wall_id']}/state").json()
    assert all(t["camera_code"] is None or t["camera_code"].startswith("S11-") for t in school_wall["tiles"])
