"""Small fleets, file writers and a database dump for the fleet tests."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from kernel.db import session_scope
from kernel.secrets import SecretBox
from registry.fleet_file import COLUMNS
from registry.fleet_io import ImportResult, import_fleet
from registry.models import Camera, District, School

PASSWORD = "S3cr3t!pw"


def _row(district: tuple[str, str], school: tuple[str, str, str], camera: dict[str, str]) -> dict[str, str]:
    row = {
        "district_code": district[0],
        "district_name": district[1],
        "school_code": school[0],
        "school_name": school[1],
        "school_kind": school[2],
        "school_address": f"{district[1]}香港中路{len(school[0])}号",
        "contact_name": "王伟",
        "contact_phone": "13800000000",
        "username": "admin",
        "password": PASSWORD,
        "enabled": "true",
        "key_scene": "false",
        "tags": "",
        "location": "",
        "sub_url": "",
    }
    row.update(camera)
    return {c: row.get(c, "") for c in COLUMNS}


def good_rows() -> list[dict[str, str]]:
    """Six cameras of three schools in two districts; row i of the list is spreadsheet row i + 2."""
    d1, d2 = ("370202", "市南区"), ("370212", "崂山区")
    s1 = ("3702020001", "青岛市第二实验小学", "primary")
    s2 = ("3702020002", "金色童年幼儿园", "kindergarten")
    s3 = ("3702120001", "崂山区第五中学", "middle")
    hik = "rtsp://10.16.1.200:554/Streaming/Channels/"
    dahua = "rtsp://10.16.2.200:554/cam/realmonitor?channel=1&subtype="
    return [
        _row(d1, s1, {"camera_code": "C001", "camera_name": "南门", "scene_type": "gate", "main_url": hik + "101",
                      "sub_url": hik + "102", "key_scene": "true", "tags": "出入口;重点", "location": "南大门"}),
        _row(d1, s1, {"camera_code": "C002", "camera_name": "操场", "scene_type": "playground",
                      "main_url": hik + "201", "sub_url": hik + "202"}),
        _row(d1, s2, {"camera_code": "C003", "camera_name": "门卫室", "scene_type": "guard_post",
                      "main_url": dahua + "0", "sub_url": dahua + "1", "key_scene": "true"}),
        _row(d2, s3, {"camera_code": "C004", "camera_name": "食堂", "scene_type": "canteen",
                      "main_url": "rtsp://10.16.3.11:554/Streaming/Channels/101", "username": "viewer"}),
        _row(d2, s3, {"camera_code": "C005", "camera_name": "男生宿舍", "scene_type": "dormitory",
                      "main_url": "rtsp://10.16.3.12:554/Streaming/Channels/101", "enabled": "false"}),
        _row(d2, s3, {"camera_code": "C006", "camera_name": "荷花池", "scene_type": "water",
                      "main_url": "rtsps://10.16.3.13/live", "key_scene": "yes", "tags": "防溺水,重点"}),
    ]  # fmt: skip


def write_csv(
    path: Path, rows: Sequence[dict[str, str]], columns: Sequence[str] = COLUMNS, encoding: str = "utf-8"
) -> Path:
    """Write ``rows`` under a header of ``columns`` (cells of other keys are left out)."""
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c, "") for c in columns])
    return path


def write_xlsx(path: Path, rows: Sequence[dict[str, Any]], columns: Sequence[str] = COLUMNS) -> Path:
    """Write ``rows`` to the first sheet of a workbook, under a header of ``columns``."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(columns))
    for row in rows:
        sheet.append([row.get(c, "") for c in columns])
    workbook.save(path)
    return path


def dump(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every column of every registry row, in code order: equal dumps mean an unchanged database."""
    out: dict[str, list[dict[str, Any]]] = {}
    with engine.connect() as conn:
        for model in (District, School, Camera):
            table = model.__table__
            rows = conn.execute(select(table).order_by(table.c.code)).mappings()
            out[model.__tablename__] = [dict(r) for r in rows]
    return out


def run_import(sessions: sessionmaker[Session], path: Path, box: SecretBox, **kwargs: Any) -> ImportResult:
    """Import ``path`` in one committed transaction."""
    with session_scope(sessions) as session:
        return import_fleet(session, path, box, **kwargs)
