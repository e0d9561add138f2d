"""Benchmark: import a 15,000-camera fleet file into SQLite and PostgreSQL.

Run from the repository root::

    .venv/bin/python -m benchmarks.fleet_import [--no-postgres] [--repeat 3]

For each database it times the first import of a generated CSV fleet (6 districts, 600 schools, 25 cameras
each), the second import of the same file (nothing changes), and an export. To cancel out the drift of a noisy
machine, each database also gets a *floor* measured in the same run: a plain executemany INSERT of the same
15,000 camera rows (already encrypted, no validation) into freshly migrated tables; the report gives import
time relative to it. PostgreSQL runs in its own schemas (``bench_fleet``, ``bench_fleet_floor``), dropped
afterwards, so other users of the ``test`` database are not disturbed.

The last line of output is one JSON object: ``{"bench": "fleet_import", "sqlite_s": ..., "postgres_s": ...}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from cryptography.fernet import Fernet
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.exc import OperationalError

from campuswatch.database import upgrade
from kernel.clock import utcnow
from kernel.db import make_engine, make_session_factory, session_scope
from kernel.secrets import SecretBox
from registry.fleet_check import parse_rows
from registry.fleet_file import read_fleet_file, write_fleet_file
from registry.fleet_io import ImportResult, export_fleet, import_fleet
from registry.generate import generate_fleet
from registry.models import Camera, District, School

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = "bench_fleet"
_T = TypeVar("_T")


def timed(fn: Callable[[], _T]) -> tuple[float, _T]:
    """Seconds taken by ``fn()`` and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


@contextmanager
def database(kind: str, workdir: Path, name: str) -> Iterator[Engine]:
    """A freshly migrated database: a new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{workdir / f'{name}.db'}")
        try:
            upgrade(engine)
            yield engine
        finally:
            engine.dispose()
        return
    schema = f"{SCHEMA}_{name}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def floor_insert(engine: Engine, rows: list[dict[str, str]], box: SecretBox) -> float:
    """Seconds for one plain executemany INSERT of every camera (districts and schools inserted first, untimed)."""
    now = utcnow()
    stamps = {"created_at": now, "updated_at": now}
    districts = {r["district_code"]: r["district_name"] for r in rows}
    schools = {r["school_code"]: r for r in rows}
    token = box.encrypt("benchmark")
    with engine.begin() as conn:
        conn.execute(insert(District), [{"code": c, "name": n, **stamps} for c, n in districts.items()])
        district_ids = dict(conn.execute(select(District.code, District.id)).tuples().all())
        conn.execute(
            insert(School),
            [
                {
                    "code": code,
                    "name": r["school_name"],
                    "district_id": district_ids[r["district_code"]],
                    "kind": r["school_kind"],
                    "address": r["school_address"],
                    "contact_name": r["contact_name"],
                    "contact_phone": r["contact_phone"],
                    **stamps,
                }
                for code, r in schools.items()
            ],
        )
        school_ids = dict(conn.execute(select(School.code, School.id)).tuples().all())
    cameras = [
        {
            "code": r["camera_code"],
            "name": r["camera_name"],
            "school_id": school_ids[r["school_code"]],
            "scene_type": r["scene_type"],
            "main_url": r["main_url"],
            "sub_url": r["sub_url"] or None,
            "username": r["username"],
            "password_encrypted": token,
            "enabled": r["enabled"] == "true",
            "key_scene": r["key_scene"] == "true",
            "tags": r["tags"].split(";"),
            "location": r["location"],
            **stamps,
        }
        for r in rows
    ]
    start = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(Camera), cameras)
    return time.perf_counter() - start


def run_import(engine: Engine, path: Path, box: SecretBox) -> tuple[float, ImportResult]:
    """Seconds for one import in one transaction (commit included)."""
    factory = make_session_factory(engine)

    def go() -> ImportResult:
        with session_scope(factory) as session:
            return import_fleet(session, path, box)

    return timed(go)


def bench_backend(
    kind: str, workdir: Path, path: Path, rows: list[dict[str, str]], box: SecretBox, repeat: int
) -> dict[str, float]:
    """Best-of-``repeat`` figures for one database."""
    first, second, export, floor = [], [], [], []
    for attempt in range(repeat):
        with database(kind, workdir, f"import{attempt}") as engine:
            seconds, result = run_import(engine, path, box)
            assert result.cameras.created == len(rows), result.summary()
            first.append(seconds)
            seconds, result = run_import(engine, path, box)
            assert not result.changed and result.cameras.unchanged == len(rows), result.summary()
            second.append(seconds)
            with make_session_factory(engine)() as session:
                start = time.perf_counter()
                export_fleet(session, workdir / f"export-{kind}.csv")
                export.append(time.perf_counter() - start)
        with database(kind, workdir, f"floor{attempt}") as engine:
            floor.append(floor_insert(engine, rows, box))
    figures = {
        f"{kind}_s": min(first),
        f"{kind}_reimport_s": min(second),
        f"{kind}_export_s": min(export),
        f"{kind}_floor_s": min(floor),
    }
    figures[f"{kind}_vs_floor"] = figures[f"{kind}_s"] / figures[f"{kind}_floor_s"]
    figures[f"{kind}_reimport_vs_floor"] = figures[f"{kind}_reimport_s"] / figures[f"{kind}_floor_s"]
    print(
        f"{kind:<8} import {figures[f'{kind}_s']:6.2f} s  re-import {figures[f'{kind}_reimport_s']:6.2f} s  "
        f"export {figures[f'{kind}_export_s']:6.2f} s  floor (executemany) {figures[f'{kind}_floor_s']:6.2f} s  "
        f"import/floor {figures[f'{kind}_vs_floor']:5.1f}x  "
        f"re-import/floor {figures[f'{kind}_reimport_vs_floor']:5.1f}x"
    )
    return figures


def postgres_available() -> bool:
    """Whether the benchmark's PostgreSQL answers."""
    engine = create_engine(POSTGRES_URL)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except OperationalError:
        return False
    finally:
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a human report and one final JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--districts", type=int, default=6)
    parser.add_argument("--schools", type=int, default=600)
    parser.add_argument("--cameras-per-school", type=int, default=25)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs per figure")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)

    box = SecretBox(Fernet.generate_key())
    results: dict[str, Any] = {"bench": "fleet_import"}
    with tempfile.TemporaryDirectory(prefix="cw-bench-fleet-") as tmp:
        workdir = Path(tmp)
        gen_s, rows = timed(
            lambda: generate_fleet(args.districts, args.schools, args.cameras_per_school, args.seed)
        )
        csv_path, xlsx_path = workdir / "fleet.csv", workdir / "fleet.xlsx"
        write_csv_s, _ = timed(lambda: write_fleet_file(csv_path, rows))
        write_xlsx_s, _ = timed(lambda: write_fleet_file(xlsx_path, rows))
        read_csv_s, file_rows = timed(lambda: read_fleet_file(csv_path))
        read_xlsx_s, _ = timed(lambda: read_fleet_file(xlsx_path))
        validate_s, _ = timed(lambda: parse_rows(file_rows))
        passwords = [r["password"] for r in rows]
        encrypt_s, tokens = timed(lambda: [box.encrypt(p) for p in passwords])
        decrypt_s, _ = timed(lambda: [box.decrypt(t) for t in tokens])
        print(
            f"fleet: {len(rows)} cameras, {args.schools} schools, {args.districts} districts; "
            f"{os.cpu_count()} CPU(s); python {sys.version.split()[0]}"
        )
        print(
            f"generate {gen_s:.2f} s  write csv {write_csv_s:.2f} s  write xlsx {write_xlsx_s:.2f} s  "
            f"read csv {read_csv_s:.2f} s  read xlsx {read_xlsx_s:.2f} s  validate {validate_s:.2f} s"
        )
        print(f"fernet: encrypt {len(passwords)} passwords {encrypt_s:.2f} s, decrypt {decrypt_s:.2f} s")
        results.update(
            cameras=len(rows),
            generate_s=gen_s,
            read_csv_s=read_csv_s,
            read_xlsx_s=read_xlsx_s,
            validate_s=validate_s,
            encrypt_s=encrypt_s,
            decrypt_s=decrypt_s,
        )
        results.update(bench_backend("sqlite", workdir, csv_path, rows, box, args.repeat))
        if args.no_postgres or not postgres_available():
            print("postgres: skipped (--no-postgres or no server at 127.0.0.1:5432)")
            results["postgres_s"] = None
        else:
            results.update(bench_backend("postgres", workdir, csv_path, rows, box, args.repeat))
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
