"""Fixtures of the registry tests: a migrated database on SQLite and on the real PostgreSQL, and a secret box."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from campuswatch.database import upgrade
from kernel.db import make_engine, make_session_factory
from kernel.secrets import SecretBox

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_schema_url(schema: str) -> str:
    """A URL whose connections see only ``schema`` (``search_path``), Alembic's version table included."""
    # The same as connect_args={"options": f"-csearch_path={schema}"}, but as a URL that make_engine and the
    # CLI (CAMPUSWATCH_STORAGE__DATABASE_URL) accept as it is.
    return f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a SQLite file, or a fresh PostgreSQL schema ``cw_test_<hex>`` dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fleet.db'}"
        return
    schema = f"cw_test_{uuid.uuid4().hex}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        yield postgres_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on ``db_url``, migrated to the newest revision."""
    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database only, for checks that do not depend on the backend."""
    eng = make_engine(f"sqlite:///{tmp_path / 'checks.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions on :func:`engine`."""
    return make_session_factory(engine)


@pytest.fixture
def box() -> SecretBox:
    """A secret box with a fresh key."""
    return SecretBox(Fernet.generate_key())
