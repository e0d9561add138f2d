"""Reading and writing fleet files: CSV and XLSX, one camera per row, one header row.

The format is described in :mod:`registry.fleet_io`. This module only turns a file into rows of cleaned strings
(and back); it knows nothing about the database. Row numbers are those a spreadsheet shows: the header is row 1,
the first data row is row 2; blank rows are skipped but still counted, so the numbers stay right.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from registry.errors import FleetFileError, FleetImportError, RowProblem

#: Every column of a fleet file, in the order export writes them.
COLUMNS: tuple[str, ...] = (
    "district_code",
    "district_name",
    "school_code",
    "school_name",
    "school_kind",
    "school_address",
    "contact_name",
    "contact_phone",
    "camera_code",
    "camera_name",
    "scene_type",
    "main_url",
    "sub_url",
    "username",
    "password",
    "enabled",
    "key_scene",
    "tags",
    "location",
)
#: Columns the header must have; a missing optional column reads as an empty cell on every row.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "district_code",
    "school_code",
    "camera_code",
    "camera_name",
    "scene_type",
    "main_url",
)
SUFFIXES = (".csv", ".xlsx")
HEADER_ROW = 1

#: ``progress(phase, done, total)``: phase is "read", "validate" or "write"; total is 0 when unknown.
ProgressCallback = Callable[[str, int, int], None]
PROGRESS_EVERY = 500


@dataclass(frozen=True)
class FleetRow:
    """One data row: its spreadsheet row number and a value (stripped string, possibly empty) per column."""

    row: int
    values: Mapping[str, str]

    def get(self, column: str) -> str:
        """The cell of ``column``; empty when the file has no such column."""
        return self.values.get(column, "")


def file_kind(path: Path) -> str:
    """``"csv"`` or ``"xlsx"`` from the file name; :class:`FleetFileError` for anything else."""
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise FleetFileError(f"{path}: old .xls workbooks are not supported; save it as .xlsx or .csv")
    if suffix not in SUFFIXES:
        raise FleetFileError(f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv or .xlsx")
    return suffix[1:]


def read_fleet_file(path: Path, progress: ProgressCallback | None = None) -> list[FleetRow]:
    """Read every data row of a CSV or XLSX fleet file.

    Raises :class:`FleetFileError` when the file cannot be read, and :class:`FleetImportError` when its
    header is wrong (unknown, duplicate or missing columns): rows cannot be checked without a good header.
    """
    kind = file_kind(path)
    if kind == "csv":
        records, total = _csv_records(path), 0
    else:
        records, total = _xlsx_records(path)
    try:
        header = next(records, None)
        if header is None:
            raise FleetImportError(
                [RowProblem(HEADER_ROW, None, "the file is empty: no header row")], source=str(path)
            )
        columns = _check_header(header, str(path))
        rows: list[FleetRow] = []
        problems: list[RowProblem] = []
        for number, record in enumerate(records, start=HEADER_ROW + 1):
            if progress is not None and number % PROGRESS_EVERY == 0:
                progress("read", number, total)
            if not any(record):
                continue
            extra = record[len(columns) :]
            if any(extra):
                problems.append(RowProblem(number, None, "a value in a column that has no header"))
            rows.append(FleetRow(number, {c: v for c, v in zip(columns, record, strict=False) if c}))
    except csv.Error as err:
        raise FleetFileError(f"{path}: not a valid CSV file: {err}") from err
    if problems:
        raise FleetImportError(problems, source=str(path))
    if progress is not None:
        progress("read", len(rows), len(rows))
    return rows


def _check_header(cells: Sequence[str], source: str) -> list[str]:
    """Normalised column names ("" for trailing blanks); raise :class:`FleetImportError` on a bad header."""
    names = [normalise_column(c) for c in cells]
    while names and not names[-1]:
        names.pop()
    problems: list[RowProblem] = []
    seen: set[str] = set()
    for index, name in enumerate(names, start=1):
        if not name:
            problems.append(RowProblem(HEADER_ROW, f"#{index}", "a column without a name"))
        elif name not in COLUMNS:
            problems.append(
                RowProblem(HEADER_ROW, name, f"unknown column {name!r} (expected: {', '.join(COLUMNS)})")
            )
        elif name in seen:
            problems.append(RowProblem(HEADER_ROW, name, "the column appears twice"))
        seen.add(name)
    for name in REQUIRED_COLUMNS:
        if name not in seen:
            problems.append(RowProblem(HEADER_ROW, name, "required column is missing from the header"))
    if problems:
        raise FleetImportError(problems, source=source)
    return names


def normalise_column(name: str) -> str:
    """``" Camera Code"`` → ``"camera_code"``: case, spaces and hyphens do not matter in the header."""
    return "_".join(name.replace("\ufeff", "").replace("-", " ").lower().split())


def decode_csv(data: bytes, source: str) -> str:
    """UTF-8 (with or without BOM), else GB18030 (a superset of GBK, what Chinese Excel writes)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as err:
        raise FleetFileError(f"{source}: the file is neither UTF-8 nor GBK text (byte {err.start})") from err


def _csv_records(path: Path) -> Iterator[list[str]]:
    try:
        data = path.read_bytes()
    except OSError as err:
        raise FleetFileError(f"{path}: cannot read: {err.strerror or err}") from err
    text = decode_csv(data, str(path))
    for record in csv.reader(io.StringIO(text, newline="")):
        yield [cell.strip() for cell in record]


def _xlsx_records(path: Path) -> tuple[Iterator[list[str]], int]:
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, OSError, KeyError, ValueError) as err:
        raise FleetFileError(f"{path}: not a readable .xlsx workbook: {err}") from err
    sheet = workbook.worksheets[0]
    total = sheet.max_row or 0

    def records() -> Iterator[list[str]]:
        try:
            for values in sheet.iter_rows(values_only=True):
                yield [cell_text(v) for v in values]
        finally:
            workbook.close()

    return records(), total


def cell_text(value: object) -> str:
    """A spreadsheet cell as the text the user sees: codes typed as numbers keep no ``.0``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value).strip()


def write_fleet_file(path: Path, rows: Iterable[Mapping[str, str]]) -> int:
    """Write ``rows`` (every :data:`COLUMNS` key; missing ones are empty) as CSV or XLSX; return the count.

    CSV is written as UTF-8 with a BOM, so that Excel shows Chinese names correctly.
    """
    kind = file_kind(path)
    count = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "csv":
            with path.open("w", encoding="utf-8-sig", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(COLUMNS)
                for row in rows:
                    writer.writerow([row.get(c, "") for c in COLUMNS])
                    count += 1
        else:
            workbook = Workbook(write_only=True)
            sheet = workbook.create_sheet("fleet")
            sheet.append(list(COLUMNS))
            for row in rows:
                # Everything as text: codes such as 0012 must not turn into numbers.
                sheet.append([row.get(c, "") for c in COLUMNS])
                count += 1
            workbook.save(path)
    except OSError as err:
        raise FleetFileError(f"{path}: cannot write: {err.strerror or err}") from err
    return count
