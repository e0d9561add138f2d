"""``campuswatch fleet``: import, export and generate fleet files.

Exit codes: 0 done, 1 the file has bad rows or cannot be read/written (each bad row is printed on stderr as
``row 7, column main_url: ...``; nothing is imported), 2 bad configuration or usage.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session, sessionmaker

from campuswatch.cli_support import cli_settings, config_option, data_dir_option, migrated_database, verbose_option
from config import Settings
from kernel.db import session_scope
from kernel.errors import KernelError
from kernel.secrets import SecretBox
from registry.errors import FleetImportError, RegistryError
from registry.fleet_file import ProgressCallback, write_fleet_file
from registry.fleet_io import export_fleet, import_fleet
from registry.generate import generate_fleet

_PHASES = {"read": "reading", "validate": "checking", "write": "writing"}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def fleet_group() -> None:
    """Import, export and generate fleet files (districts, schools and cameras; CSV or XLSX)."""


@contextmanager
def _database(settings: Settings) -> Iterator[tuple[sessionmaker[Session], SecretBox]]:
    """A migrated database's session factory and this installation's secret box."""
    with migrated_database(settings) as factory:
        try:
            box = SecretBox.for_data_dir(settings.data_dir)
        except KernelError as err:
            raise click.ClickException(str(err)) from err
        yield factory, box


@contextmanager
def progress_bar(enabled: bool) -> Iterator[ProgressCallback | None]:
    """A rich progress bar on stderr fed by the import's callback; None (no bar) when disabled."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, Any] = {}

        def update(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(_PHASES.get(phase, phase), total=total or None)
            bar.update(tasks[phase], completed=done, total=total or None)

        yield update


@fleet_group.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--dry-run", is_flag=True, help="Check the file and count the changes; write nothing.")
@click.option("--no-progress", is_flag=True, help="No progress bar (there is none when stderr is not a terminal).")
@config_option
@data_dir_option
@verbose_option
def import_command(
    file: Path, dry_run: bool, no_progress: bool, config_file: Path | None, data_dir: Path | None, verbose: bool
) -> None:
    """Import districts, schools and cameras from FILE (.csv or .xlsx), all or nothing.

    Cameras are matched by camera_code; running the same file again changes nothing. An empty password
    cell keeps the stored password.
    """
    settings = cli_settings(config_file, data_dir, quiet=not verbose)
    with _database(settings) as (factory, box), progress_bar(not no_progress and sys.stderr.isatty()) as progress:
        try:
            with session_scope(factory) as session:
                result = import_fleet(session, file, box, dry_run=dry_run, progress=progress)
        except FleetImportError as err:
            for problem in err.problems:
                click.echo(str(problem), err=True)
            raise click.ClickException(str(err)) from err
        except RegistryError as err:
            raise click.ClickException(str(err)) from err
    click.echo(f"{file}: {result.rows} row(s)")
    click.echo(result.summary())
    if dry_run:
        click.echo("dry run: nothing was written")


@fleet_group.command("export")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@config_option
@data_dir_option
@verbose_option
def export_command(file: Path, config_file: Path | None, data_dir: Path | None, verbose: bool) -> None:
    """Write every camera to FILE (.csv or .xlsx) in the import format, without passwords."""
    settings = cli_settings(config_file, data_dir, quiet=not verbose)
    with _database(settings) as (factory, _box):
        try:
            with session_scope(factory) as session:
                count = export_fleet(session, file)
        except RegistryError as err:
            raise click.ClickException(str(err)) from err
    click.echo(f"exported {count} camera(s) to {file} (passwords are not exported)")


@fleet_group.command("generate")
@click.option("--districts", type=click.IntRange(1, 99), required=True, help="Number of districts.")
@click.option(
    "--schools", type=click.IntRange(1), required=True, help="Schools in total, spread over the districts."
)
@click.option("--cameras-per-school", type=click.IntRange(1, 1000), required=True, help="Cameras in each school.")
@click.option("--seed", type=int, default=2026, show_default=True, help="Same seed, same fleet.")
@click.option(
    "--output", "-o", type=click.Path(path_type=Path, dir_okay=False), required=True, help=".csv or .xlsx file."
)
def generate_command(districts: int, schools: int, cameras_per_school: int, seed: int, output: Path) -> None:
    """Write a realistic demo fleet file (.csv or .xlsx) with generated camera passwords.

    --districts 6 --schools 600 --cameras-per-school 25 is the reference fleet: 600 schools spread over 6
    districts, 15,000 cameras.
    """
    try:
        rows = generate_fleet(districts, schools, cameras_per_school, seed)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    try:
        count = write_fleet_file(output, rows)
    except RegistryError as err:
        raise click.ClickException(str(err)) from err
    click.echo(
        f"wrote {count} camera(s) of {schools} school(s) in {districts} district(s) to {output} "
        "(with generated camera passwords in clear text)"
    )
