"""Fleet import and export: districts, schools and cameras from and to a CSV or XLSX file.

File format
    One camera per row under a header row. Columns (names are case-insensitive, in any order; spaces and
    hyphens in a name count as ``_``): see :data:`registry.fleet_file.COLUMNS`. The header must have
    ``district_code, school_code, camera_code, camera_name, scene_type, main_url``; any other column may be left
    out (every cell of it then reads as empty). An unknown or repeated column name is an error. CSV files are
    UTF-8 (a BOM is fine) or, failing that, GBK/GB18030 as Chinese Excel writes them; XLSX files are read from
    their first sheet. Row numbers in messages are the spreadsheet's: the header is row 1.

Rules
    * All-or-nothing. Every row is checked first and *every* problem is reported (row, column, reason) in one
      :class:`~registry.errors.FleetImportError`; if there is any, nothing is written.
    * Cameras are upserted by ``camera_code``; a code may appear once per file. Cameras, schools and districts
      absent from the file are left alone: import never deletes.
    * Camera cells state the camera completely: an empty ``sub_url``, ``username``, ``tags`` or ``location``
      clears it; an empty ``enabled`` means true and an empty ``key_scene`` false. Booleans read
      true/false, yes/no, 1/0, y/n, on/off, 是/否.
    * An empty ``password`` cell keeps the stored password (export leaves the column empty, so an exported file
      re-imports without change). A password can be set but not cleared by import.
    * ``scene_type`` and ``school_kind`` take the enum values (``guard_post``, ``primary``) in any case, or
      their Chinese names (门卫室, 小学). ``tags`` are separated by ``;`` or ``,``.
    * Both URLs must be ``rtsp://`` or ``rtsps://`` with a host (HTTP is refused for the sub stream too: the
      ingest reads RTSP only). User-info in a URL (``rtsp://user:pw@host/...``) is moved to the username and
      password and removed from the stored URL; values given in several places must agree. A credential in the
      query string (``?password=...``) is refused. Passwords are stored encrypted (:class:`SecretBox`).
    * Districts: a ``district_code`` not in the database is created when some row gives its ``district_name``;
      otherwise it is an unknown district. A given name updates the stored one.
    * Schools: a ``school_code`` not in the database is created when some row gives its ``school_name`` and a
      ``school_kind``. The school columns (name, kind, address, contact name and phone) may be repeated on every
      row of the school or given on one only; an empty cell keeps the stored value, and non-empty values for
      one school must agree across its rows. All rows of a school name the same ``district_code``; a different
      district from the stored one moves the school.
    * Importing the same file twice changes nothing: values are compared (the password by decrypting the
      stored one) and only rows that differ are written, so ``updated_at`` stays as it was.

Error messages never contain a password: URLs are not quoted in them and credentials are never echoed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Result, Row, insert, select, update
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.orm import Session

from kernel.clock import utcnow
from kernel.errors import SecretsError
from kernel.secrets import SecretBox, redact_text
from registry.errors import FleetImportError, FleetWriteError
from registry.fleet_check import CameraSpec, ParsedFleet, SchoolSpec, check_references, parse_rows
from registry.fleet_file import FleetRow, ProgressCallback, read_fleet_file, write_fleet_file
from registry.fleet_values import format_tags
from registry.models import Camera, District, School

log = logging.getLogger(__name__)

WRITE_CHUNK = 1000
_SCHOOL_FIELDS = {
    "school_name": "name",
    "school_kind": "kind",
    "school_address": "address",
    "contact_name": "contact_name",
    "contact_phone": "contact_phone",
}
_CAMERA_FIELDS = (
    "name",
    "scene_type",
    "main_url",
    "sub_url",
    "username",
    "enabled",
    "key_scene",
    "tags",
    "location",
)


@dataclass
class EntityCounts:
    """How many rows of one table an import created, updated, or found already up to date."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


@dataclass
class ImportResult:
    """What an import did (or, for a dry run, would do) to each table."""

    rows: int
    dry_run: bool = False
    districts: EntityCounts = field(default_factory=EntityCounts)
    schools: EntityCounts = field(default_factory=EntityCounts)
    cameras: EntityCounts = field(default_factory=EntityCounts)

    @property
    def changed(self) -> bool:
        """Whether anything was (or would be) written."""
        return any(c.created or c.updated for c in (self.districts, self.schools, self.cameras))

    def summary(self) -> str:
        """One line per table."""
        return "\n".join(
            f"{name}: {counts}"
            for name, counts in (
                ("districts", self.districts),
                ("schools", self.schools),
                ("cameras", self.cameras),
            )
        )


@dataclass
class _Snapshot:
    """The registry as stored, loaded once and keyed by code (no per-row queries)."""

    districts: dict[str, Row[Any]]
    schools: dict[str, Row[Any]]
    cameras: dict[str, Row[Any]]
    district_codes: dict[int, str]
    school_codes: dict[int, str]


@dataclass
class _Plan:
    """The writes an import needs; codes are resolved to ids only when writing (new rows have none yet)."""

    result: ImportResult
    new_districts: list[dict[str, Any]] = field(default_factory=list)
    changed_districts: list[dict[str, Any]] = field(default_factory=list)
    new_schools: list[dict[str, Any]] = field(default_factory=list)
    changed_schools: list[dict[str, Any]] = field(default_factory=list)
    new_cameras: list[dict[str, Any]] = field(default_factory=list)
    changed_cameras: list[dict[str, Any]] = field(default_factory=list)


def import_fleet(
    session: Session,
    path: Path,
    box: SecretBox,
    *,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> ImportResult:
    """Import the fleet file at ``path`` (``.csv`` or ``.xlsx``) following the rules of this module.

    Writes through ``session`` without committing: the caller owns the transaction (e.g.
    :func:`kernel.db.session_scope`). Raises :class:`FleetFileError` for an unreadable file,
    :class:`FleetImportError` (listing every problem; nothing written) for bad rows, and
    :class:`FleetWriteError` if the database refuses the writes. ``dry_run`` checks and counts, writes nothing.
    """
    rows = read_fleet_file(path, progress)
    return import_rows(session, rows, box, dry_run=dry_run, progress=progress, source=str(path))


def import_rows(
    session: Session,
    rows: Sequence[FleetRow],
    box: SecretBox,
    *,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    source: str = "fleet file",
) -> ImportResult:
    """Import rows already read from a file (see :func:`import_fleet`)."""
    fleet = parse_rows(rows, progress)
    snapshot = _load_snapshot(session)
    problems = fleet.problems + check_references(fleet, snapshot.districts, snapshot.schools)
    if problems:
        error = FleetImportError(problems, source=source)
        # A user's bad file, not a fault of the system: the caller reports the problems.
        log.info("%s", error)
        raise error
    plan = _plan(fleet, snapshot, box)
    plan.result.dry_run = dry_run
    if not dry_run:
        _apply(session, plan, snapshot, utcnow(), progress)
    log.info(
        "fleet import of %s%s: %s",
        source,
        " (dry run)" if dry_run else "",
        plan.result.summary().replace("\n", "; "),
    )
    return plan.result


def _load_snapshot(session: Session) -> _Snapshot:
    districts = {r.code: r for r in session.execute(select(District.id, District.code, District.name))}
    schools = {
        r.code: r
        for r in session.execute(
            select(
                School.id,
                School.code,
                School.district_id,
                School.name,
                School.kind,
                School.address,
                School.contact_name,
                School.contact_phone,
            )
        )
    }
    cameras = {
        r.code: r
        for r in session.execute(
            select(Camera.id, Camera.code, Camera.school_id, Camera.password_encrypted, *_camera_columns())
        )
    }
    return _Snapshot(
        districts=districts,
        schools=schools,
        cameras=cameras,
        district_codes={r.id: code for code, r in districts.items()},
        school_codes={r.id: code for code, r in schools.items()},
    )


def _camera_columns() -> list[Any]:
    return [getattr(Camera, name) for name in _CAMERA_FIELDS]


def _plan(fleet: ParsedFleet, snapshot: _Snapshot, box: SecretBox) -> _Plan:
    plan = _Plan(ImportResult(rows=fleet.rows))
    counts = plan.result.districts
    for code, district in fleet.districts.items():
        stored = snapshot.districts.get(code)
        if stored is None:
            plan.new_districts.append({"code": code, "name": district.name})
            counts.created += 1
        elif district.name is not None and district.name != stored.name:
            plan.changed_districts.append({"id": stored.id, "name": district.name})
            counts.updated += 1
        else:
            counts.unchanged += 1
    for school in fleet.schools.values():
        _plan_school(plan, school, snapshot)
    for camera in fleet.cameras.values():
        _plan_camera(plan, camera, snapshot, box)
    return plan


def _plan_school(plan: _Plan, school: SchoolSpec, snapshot: _Snapshot) -> None:
    counts = plan.result.schools
    given = {_SCHOOL_FIELDS[column]: value for column, value in school.values.items()}
    stored = snapshot.schools.get(school.code)
    if stored is None:
        values = {"address": "", "contact_name": "", "contact_phone": "", **given}
        plan.new_schools.append({"code": school.code, "district_code": school.district_code, **values})
        counts.created += 1
        return
    if snapshot.district_codes[stored.district_id] == school.district_code and all(
        getattr(stored, name) == value for name, value in given.items()
    ):
        counts.unchanged += 1
        return
    # The update writes every column, so one executemany fits all changed schools.
    values = {name: given.get(name, getattr(stored, name)) for name in _SCHOOL_FIELDS.values()}
    plan.changed_schools.append({"id": stored.id, "district_code": school.district_code, **values})
    counts.updated += 1


def _plan_camera(plan: _Plan, camera: CameraSpec, snapshot: _Snapshot, box: SecretBox) -> None:
    counts = plan.result.cameras
    values = {name: getattr(camera, name) for name in _CAMERA_FIELDS}
    stored = snapshot.cameras.get(camera.code)
    if stored is None:
        token = box.encrypt(camera.password) if camera.password is not None else None
        plan.new_cameras.append(
            {"code": camera.code, "school_code": camera.school_code, "password_encrypted": token, **values}
        )
        counts.created += 1
        return
    token = stored.password_encrypted
    if camera.password is not None and not _same_secret(box, token, camera.password):
        # Encrypt only new or changed passwords: Fernet tokens differ on every call, so re-encrypting an
        # unchanged password would rewrite every row on every import.
        token = box.encrypt(camera.password)
    if (
        token == stored.password_encrypted
        and snapshot.school_codes[stored.school_id] == camera.school_code
        and all(getattr(stored, name) == value for name, value in values.items())
    ):
        counts.unchanged += 1
        return
    plan.changed_cameras.append(
        {"id": stored.id, "school_code": camera.school_code, "password_encrypted": token, **values}
    )
    counts.updated += 1


def _same_secret(box: SecretBox, token: str | None, password: str) -> bool:
    if token is None:
        return False
    try:
        return box.decrypt(token) == password
    except SecretsError:
        # Encrypted under a key we no longer have: the file's password replaces it, under the current key.
        log.warning("a stored camera password cannot be decrypted with the current key; it is replaced")
        return False


def _apply(
    session: Session, plan: _Plan, snapshot: _Snapshot, now: datetime, progress: ProgressCallback | None
) -> None:
    stamps = {"created_at": now, "updated_at": now}
    try:
        district_ids = {code: r.id for code, r in snapshot.districts.items()}
        if plan.new_districts:
            stmt = insert(District).returning(District.code, District.id)
            district_ids.update(_pairs(session.execute(stmt, [{**d, **stamps} for d in plan.new_districts])))
        if plan.changed_districts:
            session.execute(update(District), [{**d, "updated_at": now} for d in plan.changed_districts])

        school_ids = {code: r.id for code, r in snapshot.schools.items()}
        if plan.new_schools:
            params = [_resolve(s, "district_code", "district_id", district_ids) | stamps for s in plan.new_schools]
            school_ids.update(_pairs(session.execute(insert(School).returning(School.code, School.id), params)))
        if plan.changed_schools:
            params = [_resolve(s, "district_code", "district_id", district_ids) for s in plan.changed_schools]
            session.execute(update(School), [p | {"updated_at": now} for p in params])

        total, done = len(plan.new_cameras) + len(plan.changed_cameras), 0
        for start in range(0, len(plan.new_cameras), WRITE_CHUNK):
            chunk = plan.new_cameras[start : start + WRITE_CHUNK]
            session.execute(
                insert(Camera), [_resolve(c, "school_code", "school_id", school_ids) | stamps for c in chunk]
            )
            done += len(chunk)
            if progress is not None:
                progress("write", done, total)
        for start in range(0, len(plan.changed_cameras), WRITE_CHUNK):
            chunk = plan.changed_cameras[start : start + WRITE_CHUNK]
            params = [_resolve(c, "school_code", "school_id", school_ids) | {"updated_at": now} for c in chunk]
            session.execute(update(Camera), params)
            done += len(chunk)
            if progress is not None:
                progress("write", done, total)
        session.flush()
    except SQLAlchemyError as err:
        # The driver's message names the constraint and key; never the statement's parameters.
        detail = str(err.orig) if isinstance(err, DBAPIError) else type(err).__name__
        raise FleetWriteError(f"the database refused the fleet import: {redact_text(detail)}") from err


def _pairs(result: Result[Any]) -> dict[str, int]:
    # (code, id) rows of an INSERT ... RETURNING; the order of the rows does not matter.
    return {row[0]: row[1] for row in result}


def _resolve(values: dict[str, Any], code_key: str, id_key: str, ids: dict[str, int]) -> dict[str, Any]:
    out = {k: v for k, v in values.items() if k != code_key}
    out[id_key] = ids[values[code_key]]
    return out


def fleet_rows(session: Session) -> Iterator[dict[str, str]]:
    """Every camera as a fleet-file row, ordered by district, school and camera code; never the password."""
    stmt = (
        select(
            District.code,
            District.name,
            School.code,
            School.name,
            School.kind,
            School.address,
            School.contact_name,
            School.contact_phone,
            Camera.code,
            *_camera_columns(),
        )
        .join(School, Camera.school_id == School.id)
        .join(District, School.district_id == District.id)
        .order_by(District.code, School.code, Camera.code)
    )
    for row in session.execute(stmt):
        d_code, d_name, s_code, s_name, kind, address, contact, phone, c_code, *camera = row
        values = dict(zip(_CAMERA_FIELDS, camera, strict=True))
        yield {
            "district_code": d_code,
            "district_name": d_name,
            "school_code": s_code,
            "school_name": s_name,
            "school_kind": str(kind),
            "school_address": address,
            "contact_name": contact,
            "contact_phone": phone,
            "camera_code": c_code,
            "camera_name": values["name"],
            "scene_type": str(values["scene_type"]),
            "main_url": values["main_url"],
            "sub_url": values["sub_url"] or "",
            "username": values["username"] or "",
            "password": "",  # never exported; an empty cell on import keeps the stored password
            "enabled": "true" if values["enabled"] else "false",
            "key_scene": "true" if values["key_scene"] else "false",
            "tags": format_tags([str(t) for t in values["tags"]]),
            "location": values["location"],
        }


def export_fleet(session: Session, path: Path) -> int:
    """Write every camera to ``path`` (CSV or XLSX by extension) with the import columns; return the count.

    The password column is always empty (the user name is exported). Districts and schools without cameras
    have no row. Importing the exported file changes nothing.
    """
    count = write_fleet_file(path, fleet_rows(session))
    log.info("exported %d cameras to %s", count, path)
    return count
