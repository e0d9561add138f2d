"""Database engine and sessions (SQLAlchemy 2).

One engine per process, created lazily after any fork by :func:`make_engine`. SQLite (the embedded default)
gets WAL, a busy timeout and enforced foreign keys; PostgreSQL is used as given by its URL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, Enum, MetaData, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from kernel.errors import DatabaseError
from kernel.secrets import redact_url

DB_FILE_NAME = "campuswatch.db"

# Stable constraint names so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table of every package."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Refuse naive datetimes; store UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        """Return aware UTC datetimes."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def str_enum(cls: type[StrEnum], name: str) -> Enum:
    """A column type for ``cls``: VARCHAR + CHECK of its values, not a native PostgreSQL enum, so that adding a
    value is a plain migration."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda e: [m.value for m in e],
    )


def default_database_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file in the data directory."""
    return f"sqlite:///{(data_dir / DB_FILE_NAME).resolve()}"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """Create the process's engine for ``url`` (``sqlite:///...`` or ``postgresql+psycopg://...``)."""
    try:
        parsed = make_url(url)
    except ArgumentError as err:
        raise DatabaseError(f"bad database URL {redact_url(url)!r}: {err}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, echo=echo, pool_pre_ping=True)
    raise DatabaseError(
        f"unsupported database {parsed.get_backend_name()!r} in {redact_url(url)!r}: use sqlite or postgresql"
    )


def _sqlite_pragmas(dbapi_conn: sqlite3.Connection, _record: object) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine``; objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A transaction: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dialect_insert(session: Session, model: type[Base]) -> sqlite.Insert | postgresql.Insert:
    """An INSERT of ``model`` in the session's dialect, with its ON CONFLICT clauses (SQLite, PostgreSQL)."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite.insert(model)
    if dialect == "postgresql":
        return postgresql.insert(model)
    raise DatabaseError(f"ON CONFLICT inserts need SQLite or PostgreSQL, not {dialect}")


def insert_new(session: Session, model: type[Base], rows: list[dict[str, Any]], key: str) -> set[Any]:
    """Insert ``rows`` into ``model``'s table, skipping those whose key exists already (SQLite, PostgreSQL).

    Returns the ``key`` values of the rows this call inserted: a row another process inserted first is left as
    it is, and the caller can tell the two apart without a unique-violation rolling back its transaction.
    """
    if not rows:
        return set()
    statement = dialect_insert(session, model).values(rows).on_conflict_do_nothing().returning(getattr(model, key))
    return set(session.scalars(statement))
