"""Schema migrations (Alembic) applied programmatically; the schema changes only through them."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from kernel.errors import DatabaseError
from kernel.secrets import redact_url

log = logging.getLogger(__name__)
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config that runs the project's migrations on ``engine``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """The newest migration in the source tree."""
    head = ScriptDirectory.from_config(alembic_config_for_scripts()).get_current_head()
    if head is None:
        raise DatabaseError("no migrations found")
    return head


def alembic_config_for_scripts() -> Config:
    """A config for inspecting the migration scripts only (no database)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (default: the newest)."""
    try:
        command.upgrade(alembic_config(engine), revision)
    except SQLAlchemyError as err:
        raise DatabaseError(f"migrating {redact_url(str(engine.url))} failed: {err.__class__.__name__}") from err
    log.info("database %s at revision %s", redact_url(str(engine.url)), current_revision(engine))


def downgrade(engine: Engine, revision: str) -> None:
    """Take the database back to ``revision`` (``base`` empties it)."""
    command.downgrade(alembic_config(engine), revision)
