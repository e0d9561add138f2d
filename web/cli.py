"""``campuswatch user``: create console users and reset their passwords from the command line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from campuswatch.cli_support import cli_settings, config_option, data_dir_option, migrated_database
from kernel.db import session_scope
from web.auth import create_user, generate_password, hash_password
from web.models import Role, User


@contextmanager
def _session(config_file: Path | None, data_dir: Path | None) -> Iterator[Session]:
    with (
        migrated_database(cli_settings(config_file, data_dir, quiet=True)) as factory,
        session_scope(factory) as s,
    ):
        yield s


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
@config_option
@data_dir_option
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
    with _session(config_file, data_dir) as session:
        if session.scalar(select(User.id).where(User.username == username)) is not None:
            raise click.ClickException(f"user {username!r} already exists")
        create_user(session, username, password, Role(role), display_name)
    click.echo(f"created {role} {username!r}")
    if not password_stdin:
        click.echo(f"password: {password}")


@user_group.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@config_option
@data_dir_option
def set_password(username: str, password_stdin: bool, config_file: Path | None, data_dir: Path | None) -> None:
    """Give USERNAME a new password (generated and printed unless --password-stdin is given)."""
    password = _read_password() if password_stdin else generate_password()
    with _session(config_file, data_dir) as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            raise click.ClickException(f"no user {username!r}")
        user.password_hash = hash_password(password)
        user.session_version += 1  # the user's sessions end, as with a reset in the console
    click.echo(f"new password set for {username!r}")
    if not password_stdin:
        click.echo(f"password: {password}")


@user_group.command("list")
@config_option
@data_dir_option
def list_users(config_file: Path | None, data_dir: Path | None) -> None:
    """List users with their roles."""
    with _session(config_file, data_dir) as session:
        for user in session.scalars(select(User).order_by(User.username)):
            state = "" if user.active else " (disabled)"
            click.echo(f"{user.username}\t{user.role.value}\t{user.display_name}{state}")


def _read_password() -> str:
    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise click.ClickException("the password must have at least 8 characters")
    return password
