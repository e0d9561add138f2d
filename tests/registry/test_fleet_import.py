"""Fleet import: good files, idempotence, all-or-nothing validation, credentials, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from kernel.db import make_session_factory
from kernel.secrets import SecretBox
from registry import fleet_io
from registry.errors import FleetFileError, FleetImportError, FleetWriteError, RowProblem
from registry.fleet_file import COLUMNS, REQUIRED_COLUMNS
from registry.models import Camera, District, SceneType, School, SchoolKind
from tests.registry.fleet_helpers import PASSWORD, dump, good_rows, run_import, write_csv, write_xlsx

Rows = list[dict[str, str]]


def _cameras(sessions: sessionmaker[Session]) -> dict[str, Camera]:
    with sessions() as session:
        return {c.code: c for c in session.scalars(select(Camera))}


# --- good files -------------------------------------------------------------------------------------------


def test_good_csv_creates_districts_schools_and_cameras(
    sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path
) -> None:
    result = run_import(sessions, write_csv(tmp_path / "fleet.csv", good_rows()), box)
    assert (result.districts.created, result.schools.created, result.cameras.created) == (2, 3, 6)
    assert result.rows == 6 and result.changed and not result.dry_run

    with sessions() as session:
        districts = {d.code: d.name for d in session.scalars(select(District))}
        schools = {s.code: s for s in session.scalars(select(School))}
        cameras = {c.code: c for c in session.scalars(select(Camera))}
        assert districts == {"370202": "市南区", "370212": "崂山区"}
        assert schools["3702020002"].kind is SchoolKind.KINDERGARTEN
        assert schools["3702120001"].district.code == "370212"
        assert schools["3702020001"].contact_phone == "13800000000"
        gate = cameras["C001"]
        assert gate.scene_type is SceneType.GATE and gate.key_scene and gate.enabled
        assert gate.tags == ["出入口", "重点"]
        assert gate.sub_url == "rtsp://10.16.1.200:554/Streaming/Channels/102"
        assert gate.location == "南大门"
        assert gate.username == "admin"
        assert gate.password_encrypted is not None and box.decrypt(gate.password_encrypted) == PASSWORD
        assert cameras["C005"].enabled is False
        water = cameras["C006"]
        assert water.key_scene is True and water.tags == ["防溺水", "重点"] and water.sub_url is None
        assert water.main_url == "rtsps://10.16.3.13/live"
        assert cameras["C004"].username == "viewer"


def test_good_xlsx_imports_the_same_as_csv(
    sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path
) -> None:
    rows: list[dict[str, object]] = [dict(r) for r in good_rows()]
    # What Excel does to a typed sheet: numbers for codes and phones, real booleans.
    rows[0].update(district_code=370202, contact_phone=13800000000, enabled=True, key_scene=True)
    result = run_import(sessions, write_xlsx(tmp_path / "fleet.xlsx", rows), box)
    assert (result.districts.created, result.schools.created, result.cameras.created) == (2, 3, 6)
    again = run_import(sessions, write_csv(tmp_path / "fleet.csv", good_rows()), box)
    assert not again.changed
    assert (again.districts.unchanged, again.schools.unchanged, again.cameras.unchanged) == (2, 3, 6)


def test_importing_the_same_file_twice_changes_nothing(
    engine: Engine, sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "fleet.csv", good_rows())
    run_import(sessions, path, box)
    before = dump(engine)
    result = run_import(sessions, path, box)
    assert not result.changed
    assert (result.districts.unchanged, result.schools.unchanged, result.cameras.unchanged) == (2, 3, 6)
    # Same updated_at everywhere, and the same password tokens: nothing was rewritten or re-encrypted.
    assert dump(engine) == before


def test_a_changed_row_updates_only_that_camera(
    engine: Engine, sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path
) -> None:
    rows = good_rows()
    run_import(sessions, write_csv(tmp_path / "a.csv", rows), box)
    before = {c["code"]: c for c in dump(engine)["cameras"]}
    rows[1]["camera_name"] = "操场东侧"
    rows[2]["password"] = "n3w-Passw0rd"
    for row in rows[3:]:
        row["school_address"] = "崂山区新地址1号"
    result = run_import(sessions, write_csv(tmp_path / "b.csv", rows), box)
    assert (result.cameras.updated, result.cameras.unchanged) == (2, 4)
    assert (result.schools.updated, result.schools.unchanged) == (1, 2)
    after = {c["code"]: c for c in dump(engine)["cameras"]}
    changed = {code for code in after if after[code]["updated_at"] != before[code]["updated_at"]}
    assert changed == {"C002", "C003"}
    assert after["C002"]["name"] == "操场东侧"
    assert box.decrypt(after["C003"]["password_encrypted"]) == "n3w-Passw0rd"
    assert after["C001"]["password_encrypted"] == before["C001"]["password_encrypted"]


def test_an_empty_password_cell_keeps_the_stored_password(
    sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path
) -> None:
    rows = good_rows()
    run_import(sessions, write_csv(tmp_path / "a.csv", rows), box)
    for row in rows:
        row["password"] = ""
    result = run_import(sessions, write_csv(tmp_path / "b.csv", rows), box)
    assert not result.changed
    token = _cameras(sessions)["C001"].password_encrypted
    assert token is not None and box.decrypt(token) == PASSWORD


def test_dry_run_counts_but_writes_nothing(
    engine: Engine, sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path
) -> None:
    before = dump(engine)
    result = run_import(sessions, write_csv(tmp_path / "fleet.csv", good_rows()), box, dry_run=True)
    assert result.dry_run and result.cameras.created == 6
    assert dump(engine) == before


def test_import_never_deletes_and_moves_schools_and_cameras(
    sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path
) -> None:
    rows = good_rows()
    run_import(sessions, write_csv(tmp_path / "a.csv", rows), box)
    moved = [dict(rows[1]), dict(rows[2])]
    moved[0].update(school_code="3702020002", school_name="金色童年幼儿园", school_kind="kindergarten")
    moved[1].update(district_code="370212", district_name="崂山区")  # school 3702020002 moves district
    moved[0].update(district_code="370212", district_name="崂山区")
    result = run_import(sessions, write_csv(tmp_path / "b.csv", moved), box)
    assert (result.cameras.updated, result.cameras.unchanged) == (1, 1)
    assert result.schools.updated == 1
    with sessions() as session:
        assert session.query(Camera).count() == 6
        school = session.scalars(select(School).where(School.code == "3702020002")).one()
        assert school.district.code == "370212"
        camera = session.scalars(select(Camera).where(Camera.code == "C002")).one()
        assert camera.school.code == "3702020002"


def test_school_data_may_be_given_on_one_row_and_headers_are_forgiving(
    sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path
) -> None:
    rows = good_rows()[3:]
    for row in rows[1:]:
        for column in ("district_name", "school_name", "school_kind", "school_address", "contact_name"):
            row[column] = ""
    columns = [c.upper().replace("_", " ") for c in COLUMNS]  # "CAMERA CODE" reads as camera_code
    path = tmp_path / "fleet.csv"
    write_csv(path, [{c.upper().replace("_", " "): v for c, v in r.items()} for r in rows], columns)
    result = run_import(sessions, path, box)
    assert (result.districts.created, result.schools.created, result.cameras.created) == (1, 1, 3)

    # Only the required columns: the school and district exist now, so codes are enough.
    minimal = write_csv(tmp_path / "minimal.csv", rows, REQUIRED_COLUMNS)
    result = run_import(sessions, minimal, box)
    assert (result.schools.unchanged, result.districts.unchanged) == (1, 1)
    # ...but the cameras now have no sub stream, tags or user name: camera cells state the camera completely.
    camera = _cameras(sessions)["C004"]
    assert camera.username is None and camera.password_encrypted is not None


def test_chinese_names_for_kinds_scenes_and_booleans(
    sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path
) -> None:
    rows = good_rows()[:1]
    rows[0].update(school_kind="小学", scene_type="校门", enabled="是", key_scene="否", tags="出入口，重点；夜间")
    run_import(sessions, write_csv(tmp_path / "fleet.csv", rows), box)
    camera = _cameras(sessions)["C001"]
    assert camera.scene_type is SceneType.GATE and camera.enabled and not camera.key_scene
    assert camera.tags == ["出入口", "重点", "夜间"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk"])
def test_csv_with_bom_or_in_gbk_is_read(
    sqlite_engine: Engine, box: SecretBox, tmp_path: Path, encoding: str
) -> None:
    sessions = make_session_factory(sqlite_engine)
    run_import(sessions, write_csv(tmp_path / "fleet.csv", good_rows(), encoding=encoding), box)
    with sessions() as session:
        names = set(session.scalars(select(School.name)))
    assert "青岛市第二实验小学" in names and "金色童年幼儿园" in names


def test_progress_callback_sees_every_phase(sqlite_engine: Engine, box: SecretBox, tmp_path: Path) -> None:
    calls: list[tuple[str, int, int]] = []
    sessions = make_session_factory(sqlite_engine)
    run_import(sessions, write_csv(tmp_path / "f.csv", good_rows()), box, progress=lambda *a: calls.append(a))
    assert [c[0] for c in calls] == ["read", "validate", "write"]
    assert calls[-1] == ("write", 6, 6)


def test_alembic_version_lives_in_the_test_schema(engine: Engine, db_url: str) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            return
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
        assert schema.startswith("cw_test_")
        where = conn.execute(
            text("SELECT table_schema FROM information_schema.tables WHERE table_name = 'alembic_version'")
        ).scalars()
        assert schema in set(where)


# --- bad files: all or nothing ----------------------------------------------------------------------------


def test_three_bad_rows_are_all_named_and_nothing_changes(
    engine: Engine, sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path
) -> None:
    run_import(sessions, write_csv(tmp_path / "a.csv", good_rows()), box)
    before = dump(engine)
    rows = good_rows()
    rows[0]["camera_name"] = "南门（新）"  # a good change that must not be written either
    rows[1]["main_url"] = "http://10.16.1.200/Streaming/Channels/201"  # row 3
    rows[3]["school_code"] = "3702990009"  # row 5: unknown school (no name given: the name column is empty)
    rows[3]["school_name"] = ""
    rows[4]["scene_type"] = "rooftop"  # row 6
    rows.append({**rows[2], "camera_code": "C100"})  # a good new camera, not written either
    with pytest.raises(FleetImportError) as info:
        run_import(sessions, write_csv(tmp_path / "b.csv", rows), box)
    problems = info.value.problems
    assert [(p.row, p.column) for p in problems] == [(3, "main_url"), (5, "school_code"), (6, "scene_type")]
    assert str(problems[0]) == "row 3, column main_url: scheme 'http' is not allowed (use rtsp or rtsps)"
    assert "unknown school '3702990009'" in problems[1].message
    assert "unknown scene type 'rooftop'" in problems[2].message
    assert info.value.bad_rows == 3
    assert "3 problem(s) in 3 row(s); nothing was imported" in str(info.value)
    assert dump(engine) == before


def _set(index: int, **values: str) -> Callable[[Rows], None]:
    def change(rows: Rows) -> None:
        rows[index].update(values)

    return change


def _duplicate(rows: Rows) -> None:
    rows[4]["camera_code"] = rows[1]["camera_code"]


def _extra_cell(rows: Rows) -> None:
    for row in rows:
        row["location"] = ""
    rows[2]["location"] = "x"  # written after the last header cell (see the test)


ERROR_CASES: dict[str, tuple[Callable[[Rows], None], int, str | None, str]] = {
    "unknown district": (
        _set(2, district_code="999999", district_name=""),
        4,
        "district_code",
        "unknown district '999999'",
    ),
    "unknown school": (_set(2, school_code="S404", school_name=""), 4, "school_code", "unknown school 'S404'"),
    "new school without kind": (
        _set(2, school_code="S9", school_kind=""),
        4,
        "school_kind",
        "school_kind is required",
    ),
    "bad scheme": (_set(1, main_url="http://10.0.0.1/live"), 3, "main_url", "scheme 'http' is not allowed"),
    "https sub stream": (_set(1, sub_url="https://10.0.0.1/flv"), 3, "sub_url", "scheme 'https' is not allowed"),
    "missing host": (_set(1, main_url="rtsp:///Streaming/Channels/101"), 3, "main_url", "no host"),
    "not a URL": (_set(1, main_url="10.0.0.1/Streaming"), 3, "main_url", "not a URL"),
    "bad port": (_set(1, main_url="rtsp://10.0.0.1:99999/x"), 3, "main_url", "port"),
    "bad host": (_set(1, main_url="rtsp://10.0.0.1_x/x"), 3, "main_url", "host"),
    "duplicate camera code": (_duplicate, 6, "camera_code", "duplicate camera code 'C002' (first in row 3)"),
    "unknown scene type": (_set(3, scene_type="roof"), 5, "scene_type", "unknown scene type 'roof'"),
    "unknown school kind": (
        _set(3, school_kind="university"),
        5,
        "school_kind",
        "unknown school kind 'university'",
    ),
    "empty required field": (_set(5, camera_name=""), 7, "camera_name", "a value is required"),
    "empty district code": (_set(0, district_code=""), 2, "district_code", "a value is required"),
    "bad boolean": (_set(5, enabled="maybe"), 7, "enabled", "not a yes/no value"),
    "inconsistent school name": (_set(1, school_name="另一个名字"), 3, "school_name", "inconsistent school data"),
    "inconsistent school kind": (_set(1, school_kind="high"), 3, "school_kind", "inconsistent school data"),
    "school in two districts": (
        _set(4, district_code="370202", district_name="市南区"),
        6,
        "district_code",
        "inconsistent school data",
    ),
    "inconsistent district name": (
        _set(1, district_name="市北区"),
        3,
        "district_name",
        "inconsistent district data",
    ),
    "too long": (_set(0, camera_name="长" * 201), 2, "camera_name", "longer than 200 characters"),
    "code with a space": (_set(0, camera_code="C 1"), 2, "camera_code", "must not contain spaces"),
    "credential in query": (
        _set(0, main_url="rtsp://10.0.0.1/live?user=admin&password=x"),
        2,
        "main_url",
        "query",
    ),
    "conflicting user names": (_set(0, main_url="rtsp://root@10.0.0.1/live"), 2, "username", "differ"),
    "value without header": (_extra_cell, 4, None, "a value in a column that has no header"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_each_kind_of_bad_row_is_reported(
    sqlite_engine: Engine, box: SecretBox, tmp_path: Path, case: str
) -> None:
    change, row, column, reason = ERROR_CASES[case]
    rows = good_rows()
    change(rows)
    path = tmp_path / "fleet.csv"
    if case == "value without header":
        # location is the last column: drop it from the header only, so its cells have no header.
        write_csv(path, [], COLUMNS[:-1])
        with path.open("a", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([r[c] for c in COLUMNS] for r in rows)
    else:
        write_csv(path, rows)
    sessions = make_session_factory(sqlite_engine)
    before = dump(sqlite_engine)
    with pytest.raises(FleetImportError) as info:
        run_import(sessions, path, box)
    assert [(p.row, p.column) for p in info.value.problems] == [(row, column)], info.value.report()
    assert reason in info.value.problems[0].message
    assert dump(sqlite_engine) == before


@pytest.mark.parametrize(
    ("columns", "expected"),
    [
        (("camera_cod", *COLUMNS[1:]), [(1, "camera_cod"), (1, "district_code")]),
        (tuple(c for c in COLUMNS if c != "main_url"), [(1, "main_url")]),
        ((*COLUMNS, "Camera Code"), [(1, "camera_code")]),
        ((*COLUMNS[:3], "", *COLUMNS[3:]), [(1, "#4")]),
    ],
    ids=["unknown", "missing", "duplicate", "unnamed"],
)
def test_bad_headers_are_reported(
    sqlite_engine: Engine,
    box: SecretBox,
    tmp_path: Path,
    columns: tuple[str, ...],
    expected: list[tuple[int, str]],
) -> None:
    path = write_csv(tmp_path / "fleet.csv", good_rows(), columns)
    with pytest.raises(FleetImportError) as info:
        run_import(make_session_factory(sqlite_engine), path, box)
    assert sorted((p.row, p.column) for p in info.value.problems) == sorted(expected)


def test_empty_and_unreadable_files(sqlite_engine: Engine, box: SecretBox, tmp_path: Path) -> None:
    sessions = make_session_factory(sqlite_engine)
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    with pytest.raises(FleetImportError) as info:
        run_import(sessions, empty, box)
    assert info.value.problems == [RowProblem(1, None, "the file is empty: no header row")]
    header_only = write_csv(tmp_path / "header.csv", [])
    assert not run_import(sessions, header_only, box).changed
    for name, data in (
        ("fleet.xlsx", b"not a zip"),
        ("fleet.xls", b""),
        ("fleet.txt", b""),
        ("bin.csv", b"\xff\xfe\x00\x81"),
    ):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(FleetFileError):
            run_import(sessions, tmp_path / name, box)


# --- credentials --------------------------------------------------------------------------------------------


def test_credentials_in_urls_are_moved_out_and_encrypted(
    engine: Engine, sessions: sessionmaker[Session], box: SecretBox, tmp_path: Path
) -> None:
    rows = good_rows()[:2]
    rows[0].update(
        username="",
        password="",
        main_url=f"rtsp://admin:{PASSWORD}@10.16.1.200:554/Streaming/Channels/101",
        sub_url=f"RTSP://admin:{PASSWORD}@10.16.1.200:554/Streaming/Channels/102",
    )
    rows[1].update(username="", password="", main_url="rtsp://ops:p%40ss%3Aw0rd@10.16.1.201/live", sub_url="")
    run_import(sessions, write_csv(tmp_path / "fleet.csv", rows), box)
    cameras = _cameras(sessions)
    gate, other = cameras["C001"], cameras["C002"]
    assert gate.main_url == "rtsp://10.16.1.200:554/Streaming/Channels/101"
    assert gate.sub_url == "rtsp://10.16.1.200:554/Streaming/Channels/102"
    assert gate.username == "admin"
    assert gate.password_encrypted is not None and PASSWORD not in gate.password_encrypted
    assert box.decrypt(gate.password_encrypted) == PASSWORD
    assert other.username == "ops" and other.password_encrypted is not None
    assert box.decrypt(other.password_encrypted) == "p@ss:w0rd"
    assert other.main_url == "rtsp://10.16.1.201/live"
    text_dump = repr(dump(engine))
    assert PASSWORD not in text_dump and "p@ss:w0rd" not in text_dump

    # The same credentials in the columns instead of the URL: nothing to change.
    again = good_rows()[:2]
    again[1].update(username="ops", password="p@ss:w0rd", main_url="rtsp://10.16.1.201/live", sub_url="")
    assert not run_import(sessions, write_csv(tmp_path / "again.csv", again), box).changed


def test_no_secret_in_any_error_message_or_log(
    sqlite_engine: Engine, box: SecretBox, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = good_rows()
    rows[0]["main_url"] = f"http://admin:{PASSWORD}@10.0.0.1/live"  # bad scheme
    rows[1]["main_url"] = f"rtsp://admin:{PASSWORD}@/live"  # no host
    rows[2]["main_url"] = f"rtsp://admin:{PASSWORD}@10.0.0.1/live"  # differs from the password column
    rows[2]["password"] = "other-pw"
    rows[3]["main_url"] = f"rtsp://10.0.0.1/live?password={PASSWORD}"  # credential in the query
    rows[4]["main_url"] = "rtsp://admin:S3cr3t/pw@10.0.0.1/live"  # unescaped '/' in the password
    rows[5]["main_url"] = f"rtsp://admin:{PASSWORD}@10.0.0.1:port{PASSWORD}/live"  # bad port
    rows[5]["enabled"] = PASSWORD  # a shifted cell: the message quotes the bad value, masked
    caplog.set_level(logging.DEBUG)
    with pytest.raises(FleetImportError) as info:
        run_import(make_session_factory(sqlite_engine), write_csv(tmp_path / "fleet.csv", rows), box)
    assert {p.row for p in info.value.problems} == {2, 3, 4, 5, 6, 7}
    texts = [info.value.report(), str(info.value), *(r.getMessage() for r in caplog.records), caplog.text]
    for text_ in texts:
        assert "S3cr3t" not in text_ and "other-pw" not in text_
    assert "row 7, column enabled: '***' is not a yes/no value (use true or false)" in info.value.report()


def test_a_write_refused_by_the_database_rolls_back_and_names_no_secret(
    engine: Engine,
    sessions: sessionmaker[Session],
    box: SecretBox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_csv(tmp_path / "fleet.csv", good_rows())
    run_import(sessions, path, box)
    before = dump(engine)
    # As if another import had committed the same codes after this one read the registry.
    empty = fleet_io._Snapshot({}, {}, {}, {}, {})
    monkeypatch.setattr(fleet_io, "_load_snapshot", lambda session: empty)
    with pytest.raises(FleetWriteError, match="the database refused the fleet import") as info:
        run_import(sessions, path, box)
    assert "S3cr3t" not in str(info.value)
    assert dump(engine) == before
