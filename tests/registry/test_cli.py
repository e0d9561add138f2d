"""``campuswatch fleet`` commands: generate, import (good, bad, dry run), export; exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from registry.cli import fleet_group, progress_bar
from tests.registry.fleet_helpers import PASSWORD, good_rows, write_csv


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A runner whose settings come only from the command line."""
    for name in ("CAMPUSWATCH_DATA_DIR", "CAMPUSWATCH_STORAGE__DATABASE_URL", "CAMPUSWATCH_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def test_generate_import_reimport_export(runner: CliRunner, tmp_path: Path) -> None:
    fleet, data = tmp_path / "fleet.xlsx", tmp_path / "data"
    args = ["generate", "--districts", "2", "--schools", "6", "--cameras-per-school", "5", "--output", str(fleet)]
    result = runner.invoke(fleet_group, args)
    assert result.exit_code == 0, result.output
    assert "wrote 30 camera(s) of 6 school(s) in 2 district(s)" in result.stdout

    result = runner.invoke(fleet_group, ["import", str(fleet), "--data-dir", str(data), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "cameras: 30 created, 0 updated, 0 unchanged" in result.stdout
    assert (data / "campuswatch.db").exists() and (data / "secret.key").exists()

    result = runner.invoke(fleet_group, ["import", str(fleet), "--data-dir", str(data)])
    assert "cameras: 0 created, 0 updated, 30 unchanged" in result.stdout

    out = tmp_path / "export.csv"
    result = runner.invoke(fleet_group, ["export", str(out), "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "exported 30 camera(s)" in result.stdout
    result = runner.invoke(fleet_group, ["import", str(out), "--data-dir", str(data), "--dry-run"])
    assert "cameras: 0 created, 0 updated, 30 unchanged" in result.stdout
    assert "dry run: nothing was written" in result.stdout


def test_bad_file_lists_every_row_and_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    rows = good_rows()
    rows[5]["main_url"] = f"http://admin:{PASSWORD}@10.0.0.1/live"
    rows[1]["scene_type"] = "roof"
    path = write_csv(tmp_path / "bad.csv", rows)
    result = runner.invoke(fleet_group, ["import", str(path), "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("row 3, column scene_type: unknown scene type 'roof'")
    assert lines[1] == "row 7, column main_url: scheme 'http' is not allowed (use rtsp or rtsps)"
    assert "2 problem(s) in 2 row(s); nothing was imported" in result.stderr
    assert "S3cr3t" not in result.output


def test_config_errors_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("web:\n  port: 0\n", encoding="utf-8")
    path = write_csv(tmp_path / "fleet.csv", good_rows())
    result = runner.invoke(fleet_group, ["import", str(path), "--config", str(config)])
    assert result.exit_code == 2
    assert "web.port" in result.stderr


def test_generate_refuses_impossible_counts(runner: CliRunner, tmp_path: Path) -> None:
    args = [
        "generate",
        "--districts",
        "6",
        "--schools",
        "3",
        "--cameras-per-school",
        "5",
        "-o",
        str(tmp_path / "x.csv"),
    ]
    result = runner.invoke(fleet_group, args)
    assert result.exit_code == 2
    assert "schools must be" in result.output


def test_progress_bar_accepts_every_phase() -> None:
    with progress_bar(True) as update:
        assert update is not None
        for phase in ("read", "validate", "write"):
            update(phase, 5, 10)
            update(phase, 10, 10)
    with progress_bar(False) as update:
        assert update is None
