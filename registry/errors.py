"""The registry's exception tree.

Everything the registry raises on purpose derives from :class:`RegistryError`. A fleet file that cannot be read
at all raises :class:`FleetFileError`; a file that can be read but holds bad rows raises
:class:`FleetImportError`, which carries *every* problem found (the import is all-or-nothing, so the user
fixes the whole file in one go). Messages never contain a password: URLs are passed through
:func:`kernel.secrets.redact_url` before they are quoted.
"""

from __future__ import annotations

from dataclasses import dataclass


class RegistryError(Exception):
    """Base of every error raised by the registry package."""


class FleetFileError(RegistryError):
    """A fleet file cannot be opened, decoded or written, or has an unsupported format."""


@dataclass(frozen=True, order=True)
class RowProblem:
    """One problem of a fleet file, located as a spreadsheet shows it.

    ``row`` is 1 for the header and 2 for the first data row; ``column`` is the column name, or ``None`` when
    the problem concerns the whole row or file.
    """

    row: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" if self.column is None else f"row {self.row}, column {self.column}"
        return f"{where}: {self.message}"


class FleetImportError(RegistryError):
    """A fleet file has bad rows; nothing was imported. ``problems`` lists each one, in row order."""

    def __init__(self, problems: list[RowProblem], *, source: str = "fleet file") -> None:
        self.problems = sorted(problems)
        self.source = source
        self.bad_rows = len({p.row for p in self.problems})
        super().__init__(
            f"{source}: {len(self.problems)} problem(s) in {self.bad_rows} row(s); nothing was imported"
        )

    def report(self) -> str:
        """Every problem on its own line, then the summary."""
        return "\n".join([*(str(p) for p in self.problems), str(self)])


class FleetWriteError(RegistryError):
    """The database refused the import's writes (e.g. a concurrent change); the transaction is rolled back."""


@dataclass(frozen=True)
class FieldProblem:
    """One bad field of a registry edit made through the API; the message never quotes a credential."""

    field: str
    message: str


class RegistryValueError(RegistryError):
    """A district, school or camera edit has bad fields; ``problems`` names each one. Nothing was written."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
