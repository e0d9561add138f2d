"""Fixtures of the patrol tests and their API tests: a small bureau, users of every role, a clock, a client.

Imported by ``tests/patrol/conftest.py`` and ``tests/web/conftest.py``.

The bureau: districts D1 and D2, schools S11..S13 and S21..S23, and four cameras a school: ``<school>-GATE``
(gate, key scene), ``<school>-DORM`` (dormitory, tag ``night``), ``<school>-CORR`` (corridor) and
``<school>-YARD`` (playground), 24 in all. Users (password :data:`PASSWORD`): admin, officer1, officer2,
leader1, leader2, inspector, school11 (safety officer scoped to school S11), auditor, and
officer_d1 (a duty officer scoped to district D1); the others see the whole bureau.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from campuswatch.patrol_facts import StoredFleetFacts
from config import Settings
from ingest.thumbnails import MemoryThumbnailStore
from kernel.bus import InMemoryBus
from kernel.db import make_session_factory, session_scope
from registry.models import Camera, District, SceneType, School, SchoolKind
from web.app import create_app
from web.auth import hash_password
from web.csrf import CSRF_COOKIE, CSRF_HEADER
from web.models import Role, ScopeKind, User

PASSWORD = "correct horse battery"
USERS: dict[str, Role] = {
    "admin": Role.ADMINISTRATOR,
    "officer1": Role.DUTY_OFFICER,
    "officer2": Role.DUTY_OFFICER,
    "leader1": Role.LEADER_ON_DUTY,
    "leader2": Role.LEADER_ON_DUTY,
    "inspector": Role.INSPECTOR,
    "school11": Role.SCHOOL_SAFETY_OFFICER,
    "auditor": Role.AUDITOR,
    "officer_d1": Role.DUTY_OFFICER,
}
SCOPES: dict[str, tuple[ScopeKind, str]] = {
    "school11": (ScopeKind.SCHOOL, "S11"),
    "officer_d1": (ScopeKind.DISTRICT, "D1"),
}
"""Users with a scope narrower than the bureau, and the code of their district or school."""
CAMERA_KINDS: tuple[tuple[str, SceneType, bool, list[str]], ...] = (
    ("GATE", SceneType.GATE, True, []),
    ("DORM", SceneType.DORMITORY, False, ["night"]),
    ("CORR", SceneType.CORRIDOR, False, []),
    ("YARD", SceneType.PLAYGROUND, False, []),
)
# A Tuesday in term, 10:00 in Asia/Shanghai.
START = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move the clock forward by ``timedelta(**delta)``; returns the new time."""
        self.now += timedelta(**delta)
        return self.now


@dataclass
class Bureau:
    """What the :func:`bureau` fixture created."""

    factory: sessionmaker[Session]
    users: dict[str, int] = field(default_factory=dict)
    schools: dict[str, int] = field(default_factory=dict)
    cameras: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def bureau(migrated_engine: Engine) -> Bureau:
    """The small bureau and its users, in a migrated database (SQLite and PostgreSQL)."""
    factory = make_session_factory(migrated_engine)
    result = Bureau(factory)
    with session_scope(factory) as session:
        districts: dict[str, int] = {}
        for d in (1, 2):
            district = District(code=f"D{d}", name=f"第{d}区")
            session.add(district)
            session.flush()
            districts[district.code] = district.id
            for s in (1, 2, 3):
                code = f"S{d}{s}"
                school = School(code=code, name=f"第{d}{s}中学", district=district, kind=SchoolKind.MIDDLE)
                session.add(school)
                session.flush()
                result.schools[code] = school.id
                for suffix, scene, key, tags in CAMERA_KINDS:
                    camera = Camera(
                        code=f"{code}-{suffix}",
                        name=f"{code} {suffix.lower()}",
                        school=school,
                        scene_type=scene,
                        key_scene=key,
                        tags=list(tags),
                        main_url=f"rtsp://10.{d}.{s}.1:554/{suffix.lower()}",
                    )
                    session.add(camera)
                    session.flush()
                    result.cameras[camera.code] = camera.id
        for name, role in USERS.items():
            user = User(username=name, password_hash=_password_hash(), role=role, display_name=name.title())
            kind, code = SCOPES.get(name, (ScopeKind.BUREAU, ""))
            user.scope = kind
            if kind is ScopeKind.DISTRICT:
                user.district_id = districts[code]
            elif kind is ScopeKind.SCHOOL:
                user.school_id = result.schools[code]
            session.add(user)
            session.flush()
            result.users[name] = user.id
    return result


@cache
def _password_hash() -> str:
    # argon2 is slow on purpose: hash once for every user of every test.
    return hash_password(PASSWORD)


@pytest.fixture
def clock() -> ManualClock:
    """A clock starting at :data:`START`."""
    return ManualClock()


@pytest.fixture
def bus() -> Iterator[InMemoryBus]:
    """The bus the app publishes on."""
    with InMemoryBus() as the_bus:
        yield the_bus


@pytest.fixture
def thumbnails() -> MemoryThumbnailStore:
    """The app's thumbnail store (empty until a test puts one)."""
    return MemoryThumbnailStore()


@pytest.fixture
def api(
    settings: Settings,
    migrated_engine: Engine,
    bureau: Bureau,
    clock: ManualClock,
    bus: InMemoryBus,
    thumbnails: MemoryThumbnailStore,
) -> Iterator[TestClient]:
    """A client of the whole app on the bureau's database, with the manual clock and the test's bus."""
    app = create_app(
        settings, engine=migrated_engine, facts=StoredFleetFacts(), bus=bus, clock=clock, thumbnails=thumbnails
    )
    with TestClient(app) as client:
        yield client


def login(client: TestClient, username: str) -> None:
    """Log ``client`` in as ``username`` (one of :data:`USERS`), replacing any earlier login."""
    client.cookies.clear()
    client.headers.pop(CSRF_HEADER, None)
    response = client.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303, response.text
    # What console.js does: echo the readable CSRF cookie on every state-changing request.
    client.headers[CSRF_HEADER] = client.cookies[CSRF_COOKIE]
