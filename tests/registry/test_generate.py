"""The generated demo fleet: counts, unique codes, realistic content, and a 15,000-camera import."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from kernel.db import make_session_factory
from kernel.secrets import SecretBox
from registry.fleet_file import COLUMNS, read_fleet_file, write_fleet_file
from registry.fleet_values import clean_url
from registry.generate import chinese_number, generate_fleet
from registry.models import Camera, SceneType, SchoolKind
from tests.registry.fleet_helpers import run_import


@pytest.fixture(scope="module")
def fleet() -> list[dict[str, str]]:
    """The reference fleet: 600 schools over 6 districts, 25 cameras each."""
    return generate_fleet(6, 600, 25, seed=7)


def test_reference_fleet_counts_and_unique_codes(fleet: list[dict[str, str]]) -> None:
    assert len(fleet) == 15_000
    assert all(list(row) == list(COLUMNS) for row in fleet)
    assert len({r["camera_code"] for r in fleet}) == 15_000
    schools = Counter(r["school_code"] for r in fleet)
    assert len(schools) == 600 and set(schools.values()) == {25}
    per_district = Counter(code[:6] for code in schools)
    assert len(per_district) == 6 and set(per_district.values()) == {100}
    districts = {r["district_code"]: r["district_name"] for r in fleet}
    assert districts["370202"] == "市南区" and "崂山区" in districts.values()
    assert len({r["school_name"] for r in fleet}) == 600


def test_same_seed_same_fleet_other_seed_other_content(fleet: list[dict[str, str]]) -> None:
    assert generate_fleet(6, 600, 25, seed=7) == fleet
    other = generate_fleet(6, 600, 25, seed=8)
    assert [r["camera_code"] for r in other] == [r["camera_code"] for r in fleet]
    assert [r["school_name"] for r in other] != [r["school_name"] for r in fleet]


def test_school_kinds_and_names_look_real(fleet: list[dict[str, str]]) -> None:
    schools = {r["school_code"]: r for r in fleet}.values()
    kinds = Counter(r["school_kind"] for r in schools)
    assert set(kinds) == {k.value for k in SchoolKind}
    top_two = {k for k, _ in kinds.most_common(2)}
    assert top_two == {"kindergarten", "primary"}
    suffixes = {"kindergarten": "幼儿园", "primary": "小学", "vocational": "学校"}
    for school in schools:
        suffix = suffixes.get(school["school_kind"])
        assert suffix is None or suffix in school["school_name"], school["school_name"]
        assert school["contact_phone"].startswith(("1", "0532-"))
        assert school["school_address"].startswith(school["district_name"])


def test_cameras_cover_realistic_scenes(fleet: list[dict[str, str]]) -> None:
    by_school: dict[str, list[dict[str, str]]] = {}
    for row in fleet:
        by_school.setdefault(row["school_code"], []).append(row)
    for cameras in by_school.values():
        scenes = [c["scene_type"] for c in cameras]
        kind = cameras[0]["school_kind"]
        assert scenes[:3] == ["gate", "gate", "guard_post"]
        assert {"playground", "canteen", "perimeter", "corridor", "classroom"} <= set(scenes)
        assert scenes.count("water") <= 1
        if "dormitory" in scenes:
            assert kind in ("middle", "high", "vocational")
        assert len({c["camera_name"] for c in cameras}) == len(cameras)
        for camera in cameras:
            key = camera["scene_type"] in (SceneType.GATE, SceneType.WATER, SceneType.GUARD_POST)
            assert camera["key_scene"] == ("true" if key else "false")
    assert sum(r["enabled"] == "false" for r in fleet) < 0.05 * len(fleet)


def test_urls_are_private_rtsp_of_hikvision_or_dahua_style(fleet: list[dict[str, str]]) -> None:
    for row in fleet:
        main = clean_url(row["main_url"])
        assert main.username is None and main.url == row["main_url"]
        assert row["main_url"].startswith("rtsp://10.") and ":554/" in row["main_url"]
        if "/Streaming/Channels/" in row["main_url"]:
            assert row["main_url"].endswith("01")
            assert row["sub_url"] in ("", row["main_url"][:-2] + "02")
        else:
            assert "/cam/realmonitor?channel=" in row["main_url"] and row["main_url"].endswith("&subtype=0")
            assert row["sub_url"] in ("", row["main_url"][:-1] + "1")
        assert row["username"] and len(row["password"]) == 12
    assert len({r["main_url"] for r in fleet}) == len(fleet)


def test_schools_are_spread_over_districts_and_bad_counts_refused() -> None:
    rows = generate_fleet(4, 10, 3, seed=1)
    per_district = Counter(r["district_code"] for r in rows[::3])
    assert sorted(per_district.values(), reverse=True) == [3, 3, 2, 2]
    for args in ((0, 1, 1), (3, 2, 1), (1, 1, 0), (1, 1, 1001), (100, 100, 1)):
        with pytest.raises(ValueError):
            generate_fleet(*args)
    big = generate_fleet(30, 30, 1, seed=1)
    assert len({r["district_code"] for r in big}) == 30


@pytest.mark.parametrize(
    ("n", "text"),
    [(1, "一"), (10, "十"), (12, "十二"), (20, "二十"), (105, "一百零五"), (110, "一百一十"), (2006, "二千零六")],
)
def test_chinese_numbers(n: int, text: str) -> None:
    assert chinese_number(n) == text


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_generated_file_reads_back(tmp_path: Path, suffix: str) -> None:
    rows = generate_fleet(2, 4, 30, seed=3)
    path = tmp_path / f"fleet{suffix}"
    assert write_fleet_file(path, rows) == 120
    assert [dict(r.values) for r in read_fleet_file(path)] == rows


def test_reference_fleet_imports_into_sqlite_quickly(
    fleet: list[dict[str, str]], sqlite_engine: Engine, box: SecretBox, tmp_path: Path
) -> None:
    path = tmp_path / "fleet.csv"
    write_fleet_file(path, fleet)
    sessions = make_session_factory(sqlite_engine)
    start = time.perf_counter()
    result = run_import(sessions, path, box)
    seconds = time.perf_counter() - start
    assert (result.districts.created, result.schools.created, result.cameras.created) == (6, 600, 15_000)
    # The goal is "well under 15 s"; the benchmark measures it, this only catches a gross regression.
    assert seconds < 15, seconds
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Camera)) == 15_000
    assert not run_import(sessions, path, box).changed
