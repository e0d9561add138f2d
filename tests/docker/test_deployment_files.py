"""The Docker files agree with the code: every compose command exists, every variable is a real setting.

No image is built here (the machines have no container registry); these checks catch the drift that breaks a
deployment: a renamed command, a settings key that no longer exists, a package the image forgets to copy.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

from campuswatch.cli import main
from config import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text(encoding="utf-8"))
CAMPUSWATCH_SERVICES = {
    name: s for name, s in COMPOSE["services"].items() if s.get("image") == "campuswatch:latest"
}


def test_compose_has_the_platform_services() -> None:
    assert {"postgres", "redis", "migrate", "web", "patrol"} <= set(COMPOSE["services"])
    assert {"migrate", "web", "patrol"} <= set(CAMPUSWATCH_SERVICES)
    assert CAMPUSWATCH_SERVICES["patrol"]["deploy"]["replicas"] == 1  # the walls' only writer
    assert CAMPUSWATCH_SERVICES["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("service", sorted(CAMPUSWATCH_SERVICES))
def test_every_command_parses_with_the_real_cli(service: str) -> None:
    argv: list[str] = CAMPUSWATCH_SERVICES[service]["command"]
    command = main.get_command(click.Context(main), argv[0])
    assert command is not None, f"{service}: no command {argv[0]!r}"
    # Parsing the options the same way click will in the container catches renamed or removed options.
    command.make_context(argv[0], list(argv[1:]))


@pytest.mark.parametrize("service", sorted(CAMPUSWATCH_SERVICES))
def test_environment_maps_onto_settings(service: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    environment: dict[str, str] = CAMPUSWATCH_SERVICES[service]["environment"]
    for key, value in environment.items():
        # ${VAR:?message} is filled by compose from .env; stand in a value of the right shape.
        filled = re.sub(r"\$\{[^}]+\}", "x" * 32 if key.endswith("SECRET") else "pw", value)
        if key == "CAMPUSWATCH_SECRET_KEY":
            filled = "A" * 43 + "="
        monkeypatch.setenv(key, filled)
    settings = load_settings(None, data_dir=tmp_path)
    assert settings.database_url().startswith("postgresql+psycopg://campuswatch:pw@postgres:5432/")
    assert settings.bus.url.get_secret_value() == "redis://redis:6379/0"
    assert settings.web.session_secret is not None


def test_image_copies_every_package() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text(encoding="utf-8")
    copied = set(re.findall(r"^COPY (\w+) \1$", dockerfile, flags=re.MULTILINE))
    pyproject: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert packages == copied
