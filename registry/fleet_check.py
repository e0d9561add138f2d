"""Validation of fleet rows, before anything is written: per cell, across rows, and against the database.

The result is a :class:`ParsedFleet`: what the file says about each district, school and camera, plus every
problem found. All problems are collected (none stops the check early), so one run names every bad row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import unquote

from kernel.secrets import redact_text
from registry.errors import RowProblem
from registry.fleet_file import PROGRESS_EVERY, FleetRow, ProgressCallback
from registry.fleet_values import (
    MAX_LENGTHS,
    clean_url,
    parse_bool,
    parse_scene_type,
    parse_school_kind,
    parse_tags,
)
from registry.models import SceneType, SchoolKind

REQUIRED_VALUES = ("district_code", "school_code", "camera_code", "camera_name", "scene_type", "main_url")
CODE_COLUMNS = ("district_code", "school_code", "camera_code")
#: School columns whose empty cell means "not given here" (keep the stored value, or take it from another row).
SCHOOL_COLUMNS = ("school_name", "school_kind", "school_address", "contact_name", "contact_phone")
TEXT_COLUMNS = tuple(c for c in MAX_LENGTHS if c not in ("main_url", "sub_url"))

SchoolValue = str | SchoolKind
_T = TypeVar("_T")
_SPACE_RE = re.compile(r"\s")


@dataclass
class DistrictSpec:
    """What the file says about one district."""

    code: str
    rows: list[int] = field(default_factory=list)
    name: str | None = None
    name_row: int = 0


@dataclass
class SchoolSpec:
    """What the file says about one school: its district, and each school column some row filled in."""

    code: str
    district_code: str
    district_row: int = 0
    rows: list[int] = field(default_factory=list)
    values: dict[str, SchoolValue] = field(default_factory=dict)
    value_rows: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str | None:
        """The school name, if any row gives one."""
        value = self.values.get("school_name")
        return value if isinstance(value, str) else None

    @property
    def kind(self) -> SchoolKind | None:
        """The school kind, if any row gives one."""
        value = self.values.get("school_kind")
        return value if isinstance(value, SchoolKind) else None


@dataclass(frozen=True)
class CameraSpec:
    """One camera as the file states it; ``password`` None means "keep the stored password"."""

    row: int
    code: str
    name: str
    school_code: str
    scene_type: SceneType
    main_url: str
    sub_url: str | None
    username: str | None
    password: str | None
    enabled: bool
    key_scene: bool
    tags: list[str]
    location: str


@dataclass
class ParsedFleet:
    """Everything a fleet file says, and every problem found in it."""

    districts: dict[str, DistrictSpec] = field(default_factory=dict)
    schools: dict[str, SchoolSpec] = field(default_factory=dict)
    cameras: dict[str, CameraSpec] = field(default_factory=dict)
    problems: list[RowProblem] = field(default_factory=list)
    rows: int = 0


def parse_rows(rows: Sequence[FleetRow], progress: ProgressCallback | None = None) -> ParsedFleet:
    """Check every row on its own and against the other rows; collect all problems."""
    fleet = ParsedFleet(rows=len(rows))
    camera_rows: dict[str, int] = {}
    for index, row in enumerate(rows, start=1):
        if progress is not None and index % PROGRESS_EVERY == 0:
            progress("validate", index, len(rows))
        problems: list[RowProblem] = []
        camera = _parse_row(row, problems)
        _merge_district_and_school(fleet, row, problems)
        code = row.get("camera_code")
        if code:
            first = camera_rows.setdefault(code, row.row)
            if first != row.row:
                problems.append(
                    RowProblem(row.row, "camera_code", f"duplicate camera code {code!r} (first in row {first})")
                )
        if camera is not None and not problems:
            fleet.cameras[camera.code] = camera
        elif problems:
            # Second line of defence: a password typed into the wrong cell must not be echoed back.
            secrets = row_secrets(row)
            problems = [RowProblem(p.row, p.column, redact_text(p.message, secrets)) for p in problems]
        fleet.problems.extend(problems)
    if progress is not None:
        progress("validate", len(rows), len(rows))
    return fleet


def _parse_row(row: FleetRow, problems: list[RowProblem]) -> CameraSpec | None:
    """Check the cells of one row; return the camera when they are all fine."""
    start = len(problems)
    n = row.row
    for column in REQUIRED_VALUES:
        if not row.get(column):
            problems.append(RowProblem(n, column, "a value is required"))
    for column in CODE_COLUMNS:
        if _SPACE_RE.search(row.get(column)):
            problems.append(RowProblem(n, column, "a code must not contain spaces"))
    for column in TEXT_COLUMNS:
        if len(row.get(column)) > MAX_LENGTHS[column]:
            problems.append(RowProblem(n, column, f"longer than {MAX_LENGTHS[column]} characters"))
    scene_type = _checked(problems, n, "scene_type", lambda: parse_scene_type(row.get("scene_type")))
    if row.get("school_kind"):
        _checked(problems, n, "school_kind", lambda: parse_school_kind(row.get("school_kind")))
    enabled = _checked(problems, n, "enabled", lambda: parse_bool(row.get("enabled"), True))
    key_scene = _checked(problems, n, "key_scene", lambda: parse_bool(row.get("key_scene"), False))
    main = sub = None
    if row.get("main_url"):
        main = _checked(problems, n, "main_url", lambda: clean_url(row.get("main_url")))
    if row.get("sub_url"):
        sub = _checked(problems, n, "sub_url", lambda: clean_url(row.get("sub_url")))
    for column, cleaned in (("main_url", main), ("sub_url", sub)):
        if cleaned is not None and len(cleaned.url) > MAX_LENGTHS[column]:
            problems.append(RowProblem(n, column, f"longer than {MAX_LENGTHS[column]} characters"))
    username = _one_credential(
        problems,
        n,
        "username",
        row.get("username"),
        main.username if main else None,
        sub.username if sub else None,
    )
    password = _one_credential(
        problems,
        n,
        "password",
        row.get("password"),
        main.password if main else None,
        sub.password if sub else None,
    )
    if len(problems) > start or scene_type is None or enabled is None or key_scene is None or main is None:
        return None
    return CameraSpec(
        row=n,
        code=row.get("camera_code"),
        name=row.get("camera_name"),
        school_code=row.get("school_code"),
        scene_type=scene_type,
        main_url=main.url,
        sub_url=sub.url if sub else None,
        username=username,
        password=password,
        enabled=enabled,
        key_scene=key_scene,
        tags=parse_tags(row.get("tags")),
        location=row.get("location"),
    )


def row_secrets(row: FleetRow) -> tuple[str, ...]:
    """The password cell and any password written in the row's URLs (raw and percent-decoded)."""
    secrets = [row.get("password")]
    for column in ("main_url", "sub_url"):
        _, sep, after = row.get(column).partition("://")
        userinfo = after.rpartition("@")[0] if sep else ""
        secret = userinfo.partition(":")[2]
        secrets += [secret, unquote(secret)]
    # Longest first, so that a password containing another is masked whole.
    return tuple(sorted({s for s in secrets if s}, key=len, reverse=True))


def _checked(problems: list[RowProblem], row: int, column: str, parse: Callable[[], _T]) -> _T | None:
    try:
        return parse()
    except ValueError as err:
        problems.append(RowProblem(row, column, str(err)))
        return None


def _one_credential(
    problems: list[RowProblem], row: int, column: str, cell: str, in_main: str | None, in_sub: str | None
) -> str | None:
    """The user name or password from its column or the URLs; they must agree where several give one."""
    given = [(c, v) for c, v in ((column, cell), ("main_url", in_main), ("sub_url", in_sub)) if v]
    if len({v for _, v in given}) > 1:
        # Never quote the values: one of them is a password.
        places = " and ".join(c for c, _ in given)
        problems.append(RowProblem(row, column, f"the {column}s in {places} differ"))
        return None
    return given[0][1] if given else None


def _merge_district_and_school(fleet: ParsedFleet, row: FleetRow, problems: list[RowProblem]) -> None:
    """Record what this row says about its district and school; report disagreement with earlier rows."""
    n = row.row
    district_code, school_code = row.get("district_code"), row.get("school_code")
    if district_code:
        district = fleet.districts.setdefault(district_code, DistrictSpec(district_code))
        district.rows.append(n)
        name = row.get("district_name")
        if name and district.name is None:
            district.name, district.name_row = name, n
        elif name and name != district.name:
            problems.append(
                RowProblem(
                    n,
                    "district_name",
                    f"inconsistent district data: {name!r} here but {district.name!r} in row "
                    f"{district.name_row} for district {district_code!r}",
                )
            )
    if not school_code:
        return
    school = fleet.schools.get(school_code)
    if school is None:
        school = fleet.schools[school_code] = SchoolSpec(school_code, district_code, district_row=n)
    school.rows.append(n)
    if district_code and not school.district_code:
        school.district_code, school.district_row = district_code, n
    elif district_code and district_code != school.district_code:
        problems.append(
            RowProblem(
                n,
                "district_code",
                f"inconsistent school data: school {school_code!r} is in district {school.district_code!r} in "
                f"row {school.district_row} but in {district_code!r} here",
            )
        )
    for column in SCHOOL_COLUMNS:
        text = row.get(column)
        if not text:
            continue
        value: SchoolValue = text
        if column == "school_kind":
            try:
                value = parse_school_kind(text)
            except ValueError:
                continue  # already reported by the cell check
        if column not in school.values:
            school.values[column], school.value_rows[column] = value, n
        elif school.values[column] != value:
            first = school.values[column]
            problems.append(
                RowProblem(
                    n,
                    column,
                    f"inconsistent school data: {str(value)!r} here but {str(first)!r} in row "
                    f"{school.value_rows[column]} for school {school_code!r}",
                )
            )


def check_references(
    fleet: ParsedFleet, known_districts: Collection[str], known_schools: Collection[str]
) -> list[RowProblem]:
    """Problems of codes that are neither in the database nor created by the file.

    A district or school code not in the database is created when some row names it (``district_name``,
    ``school_name``); a new school also needs a ``school_kind``. Otherwise every row using the code is bad.
    """
    problems: list[RowProblem] = []
    for code, district in fleet.districts.items():
        if code not in known_districts and district.name is None:
            message = (
                f"unknown district {code!r}: it is not in the database and no row gives a district_name to "
                "create it"
            )
            problems.extend(RowProblem(n, "district_code", message) for n in district.rows)
    for code, school in fleet.schools.items():
        if code in known_schools:
            continue
        if school.name is None:
            message = (
                f"unknown school {code!r}: it is not in the database and no row gives a school_name to create it"
            )
            problems.extend(RowProblem(n, "school_code", message) for n in school.rows)
        elif school.kind is None and "school_kind" not in _bad_columns(fleet, school):
            problems.append(
                RowProblem(school.rows[0], "school_kind", f"a school_kind is required to create school {code!r}")
            )
    return problems


def _bad_columns(fleet: ParsedFleet, school: SchoolSpec) -> set[str]:
    """Columns already reported bad on the school's rows (so a bad kind is not also called missing)."""
    rows = set(school.rows)
    return {p.column for p in fleet.problems if p.row in rows and p.column}
