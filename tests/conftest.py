"""Fixtures shared by every test package: databases (SQLite and the real PostgreSQL) and settings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from campuswatch.database import upgrade
from config import Settings, load_settings
from ingest.simulator import ClipLibrary, ClipSettings
from kernel.db import make_engine

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings with a fresh data directory."""
    return load_settings(None, data_dir=tmp_path / "data")


@pytest.fixture
def postgres_schema_url() -> Iterator[tuple[str, str]]:
    """A fresh schema in the real PostgreSQL, dropped afterwards: (url, schema)."""
    schema = f"cw_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_ADMIN_URL}?options=-csearch_path%3D{schema}", schema
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database: a SQLite file, or a fresh schema of the real PostgreSQL."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'cw.db'}")
        yield engine
        engine.dispose()
        return
    schema_fixture = request.getfixturevalue("postgres_schema_url")
    engine = make_engine(schema_fixture[0])
    yield engine
    engine.dispose()


@pytest.fixture
def migrated_engine(empty_engine: Engine) -> Engine:
    """An engine on a database migrated to the newest revision."""
    upgrade(empty_engine)
    return empty_engine


# Two GOPs (4 s) per clip keeps the whole library's encode at a couple of seconds.
TEST_CLIP_SETTINGS = ClipSettings(gops=2)


@pytest.fixture(scope="session")
def sim_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose ``sim-clips`` cache holds the session's clips (pass it as ``--data-dir``)."""
    return tmp_path_factory.mktemp("sim-data")


@pytest.fixture(scope="session")
def sim_clips(sim_data_dir: Path) -> ClipLibrary:
    """All scene clips at :data:`TEST_CLIP_SETTINGS`, cached in ``sim_data_dir / 'sim-clips'``."""
    return ClipLibrary.load_or_generate(sim_data_dir / "sim-clips", TEST_CLIP_SETTINGS)


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The real model files in ``.cache/models`` (``make test`` fetches them first; fetched here if missing)."""
    from analytics.model_files import fetch_models
    from kernel.paths import REPO_ROOT

    folder = REPO_ROOT / ".cache" / "models"
    fetch_models(folder)
    return folder


@pytest.fixture(scope="session")
def photos() -> dict[str, Path]:
    """Real photos with people (``scripts/fetch-assets.sh``): bus.jpg and zidane.jpg."""
    from kernel.paths import assets_dir

    found = {name: assets_dir() / f"{name}.jpg" for name in ("bus", "zidane")}
    missing = [str(p) for p in found.values() if not p.is_file()]
    assert not missing, f"photos missing: {missing}; run scripts/fetch-assets.sh"
    return found
