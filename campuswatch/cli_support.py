"""What every ``campuswatch`` subcommand shares: the --config/--data-dir options, settings, a migrated database."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session, sessionmaker

from campuswatch.database import upgrade
from config import ConfigError, Settings, load_settings
from kernel.db import make_engine, make_session_factory
from kernel.errors import KernelError
from kernel.logs import configure_logging

config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML configuration file (see config/example.yaml).",
)
data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    envvar="CAMPUSWATCH_DATA_DIR",
    help="Data directory (database, key files, clips); overrides the configuration. Env: CAMPUSWATCH_DATA_DIR.",
)
verbose_option = click.option(
    "-v", "--verbose", is_flag=True, help="Log at the configured level (default: warnings)."
)


def cli_settings(config_file: Path | None, data_dir: Path | None, *, quiet: bool = False) -> Settings:
    """Load the settings (``--data-dir`` wins over file and environment) and set up logging; exit 2 on errors.

    ``quiet`` logs warnings only: for commands that print their own summary (migrations log at INFO every run).
    """
    overrides: dict[str, Any] = {} if data_dir is None else {"data_dir": data_dir}
    try:
        settings = load_settings(config_file, **overrides)
    except ConfigError as err:
        click.echo(str(err), err=True)
        sys.exit(2)
    configure_logging("WARNING" if quiet else settings.logging.level, json_lines=settings.logging.json_lines)
    return settings


@contextmanager
def migrated_database(settings: Settings) -> Iterator[sessionmaker[Session]]:
    """A session factory on the configured database, upgraded to the newest schema; errors become click errors."""
    try:
        engine = make_engine(settings.database_url())
    except (KernelError, OSError) as err:
        raise click.ClickException(str(err)) from err
    try:
        upgrade(engine)
        yield make_session_factory(engine)
    except KernelError as err:
        raise click.ClickException(str(err)) from err
    finally:
        engine.dispose()
