"""``campuswatch user``: create console users and reset their passwords from the command line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from campuswatch.database import upgrade
from config import ConfigError, Settings, load_settings
from kernel.db import make_engine, make_session_factory, session_scope
from kernel.errors import KernelError
from kernel.logs import configure_logging
from web.auth import create_user, generate_password, hash_password
from web.models import Role, User


def _settings(config_file: Path | None, data_dir: Path | None) -> Settings:
    try:
        settings = load_settings(config_file, **({"data_dir": data_dir} if data_dir is not None else {}))
    except ConfigError as err:
        click.echo(str(err), err=True)
        sys.exit(2)
    configure_logging("WARNING", json_lines=settings.logging.json_lines)
    return settings


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    try:
        engine = make_engine(settings.database_url())
    except (KernelError, OSError) as err:
        raise click.ClickException(str(err)) from err
    try:
        upgrade(engine)
        with session_scope(make_session_factory(engine)) as session:
            yield session
    except KernelError as err:
        raise click.ClickException(str(err)) from err
    finally:
        engine.dispose()


_config = click.option("--config", "config_file", type=click.Path(path_type=Path, dir_okay=False), default=None)
_data_dir = click.option(
    "--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None, envvar="CAMPUSWATCH_DATA_DIR"
)


@click.group("user")
def user_group() -> None:
    """Console users: create, list, reset passwords."""


@user_group.command("create")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.DUTY_OFFICER.value,
    show_default=True,
    help="What the user may do.",
)
@click.option("--name", "display_name", default="", help="Name shown in the console.")
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input instead of generating one."
)
@_config
@_data_dir
def create(
    username: str,
    role: str,
    display_name: str,
    password_stdin: bool,
    config_file: Path | None,
    data_dir: Path | None,
) -> None:
    """Create USERNAME; prints a generated password unless --password-stdin is given."""
    password = _read_password() if password_stdin else generate_password()
    with _session(_settings(config_file, data_dir)) as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise click.ClickException(f"user {username!r} already exists")
        create_user(session, username, password, Role(role), display_name)
    click.echo(f"created {role} {username!r}")
    if not password_stdin:
        click.echo(f"password: {password}")


@user_group.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@_config
@_data_dir
def set_password(username: str, password_stdin: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """Give USERNAME a new password (generated and printed unless --password-stdin is given)."""
    password = _read_password() if password_stdin else generate_password()
    with _session(_settings(config_file, data_dir)) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise click.ClickException(f"no user {username!r}")
        user.password_hash = hash_password(password)
    click.echo(f"new password set for {username!r}")
    if not password_stdin:
        click.echo(f"password: {password}")


@user_group.command("list")
@_config
@_data_dir
def list_users(config_file: Path | None, data_dir: Path | None) -> None:
    """List users with their roles."""
    with _session(_settings(config_file, data_dir)) as session:
        for user in session.scalars(select(User).order_by(User.username)):
            state = "" if user.active else " (disabled)"
            click.echo(f"{user.username}\t{user.role.value}\t{user.display_name}{state}")


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise click.ClickException("the password must have at least 8 characters")
    return password
