"""Fleet export: the import's columns, never a password, and a round trip that changes nothing."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from kernel.secrets import SecretBox
from registry.errors import FleetFileError
from registry.fleet_file import COLUMNS
from registry.fleet_io import export_fleet
from tests.registry.fleet_helpers import PASSWORD, dump, good_rows, run_import, write_csv


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def _read_xlsx(path: Path) -> list[dict[str, str]]:
    workbook = load_workbook(path, read_only=True)
    values = [
        ["" if v is None else str(v) for v in row] for row in workbook.worksheets[0].iter_rows(values_only=True)
    ]
    workbook.close()
    return [dict(zip(values[0], row, strict=True)) for row in values[1:]]


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_has_the_import_columns_and_never_a_password(
    sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path, suffix: str
) -> None:
    run_import(sessions, write_csv(tmp_path / "in.csv", good_rows()), box)
    out = tmp_path / f"out{suffix}"
    with sessions() as session:
        assert export_fleet(session, out) == 6
    rows = _read_csv(out) if suffix == ".csv" else _read_xlsx(out)
    assert list(rows[0]) == list(COLUMNS)
    assert [r["camera_code"] for r in rows] == ["C001", "C002", "C003", "C004", "C005", "C006"]
    assert all(r["password"] == "" for r in rows)
    assert rows[0]["username"] == "admin" and rows[3]["username"] == "viewer"
    assert rows[0]["tags"] == "出入口;重点" and rows[0]["key_scene"] == "true" and rows[4]["enabled"] == "false"
    assert rows[5]["sub_url"] == "" and rows[2]["school_kind"] == "kindergarten"
    raw = out.read_bytes()
    if suffix == ".xlsx":
        with zipfile.ZipFile(out) as archive:
            raw = b"".join(archive.read(name) for name in archive.namelist())
    assert PASSWORD.encode() not in raw


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_then_import_changes_nothing(
    engine: Engine, sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path, suffix: str
) -> None:
    rows = good_rows()
    rows[0]["main_url"] = f"rtsp://admin:{PASSWORD}@10.16.1.200:554/Streaming/Channels/101"
    rows[0]["password"] = ""
    run_import(sessions, write_csv(tmp_path / "in.csv", rows), box)
    before = dump(engine)
    out = tmp_path / f"out{suffix}"
    with sessions() as session:
        export_fleet(session, out)
    result = run_import(sessions, out, box)
    assert not result.changed
    assert (result.districts.unchanged, result.schools.unchanged, result.cameras.unchanged) == (2, 3, 6)
    assert dump(engine) == before


def test_export_of_an_empty_registry_is_a_header(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    out = tmp_path / "empty.csv"
    with sessions() as session:
        assert export_fleet(session, out) == 0
    assert out.read_text(encoding="utf-8-sig").strip() == ",".join(COLUMNS)


def test_export_refuses_unknown_file_types(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    with sessions() as session, pytest.raises(FleetFileError, match="unsupported file type"):
        export_fleet(session, tmp_path / "fleet.json")
