"""Models and migrations on SQLite and on the real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect, select
from sqlalchemy.exc import IntegrityError

from campuswatch.database import current_revision, downgrade, head_revision, upgrade
from kernel.db import make_engine, make_session_factory, session_scope
from kernel.errors import DatabaseError
from registry.models import Camera, District, SceneType, School, SchoolKind
from web.models import User


def test_migrations_create_every_table_and_go_back(empty_engine: Engine) -> None:
    assert current_revision(empty_engine) is None
    upgrade(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    tables = set(inspect(empty_engine).get_table_names())
    assert {"districts", "schools", "cameras", "users", "alembic_version"} <= tables
    downgrade(empty_engine, "base")
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}
    upgrade(empty_engine)  # and forward again
    assert current_revision(empty_engine) == head_revision()


def test_migrated_schema_matches_the_models(migrated_engine: Engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from campuswatch.models import Base

    with migrated_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_registry_round_trip_keeps_aware_times_and_tags(migrated_engine: Engine) -> None:
    factory = make_session_factory(migrated_engine)
    with session_scope(factory) as session:
        district = District(code="D01", name="市南区")
        school = School(code="S0001", name="青岛市实验小学", district=district, kind=SchoolKind.PRIMARY)
        session.add(
            Camera(
                code="C000001",
                name="南门",
                school=school,
                scene_type=SceneType.GATE,
                main_url="rtsp://10.1.2.3:554/Streaming/Channels/101",
                tags=["gate", "key"],
                key_scene=True,
            )
        )
    with factory() as session:
        camera = session.scalars(select(Camera).where(Camera.code == "C000001")).one()
        assert camera.school.district.name == "市南区"
        assert camera.scene_type is SceneType.GATE
        assert camera.tags == ["gate", "key"]
        assert camera.enabled is True
        assert camera.created_at.tzinfo is not None
        assert abs((datetime.now(UTC) - camera.created_at).total_seconds()) < 60


def test_unique_codes_and_foreign_keys_are_enforced(migrated_engine: Engine) -> None:
    factory = make_session_factory(migrated_engine)
    with session_scope(factory) as session:
        session.add(District(code="D01", name="A"))
    with pytest.raises(IntegrityError), session_scope(factory) as session:
        session.add(District(code="D01", name="B"))
    with pytest.raises(IntegrityError), session_scope(factory) as session:
        session.add(School(code="S1", name="x", district_id=9999, kind=SchoolKind.OTHER))
    with pytest.raises(IntegrityError), session_scope(factory) as session:
        session.add(User(username="u", password_hash="h", role="nonsense"))


def test_bad_database_urls_give_clear_errors() -> None:
    with pytest.raises(DatabaseError, match="unsupported database 'mysql'") as info:
        make_engine("mysql://root:hunter2@db/x")
    assert "hunter2" not in str(info.value)
    with pytest.raises(DatabaseError, match="bad database URL"):
        make_engine("not a url")
