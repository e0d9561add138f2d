"""Checks of single registry records edited through the API, with the fleet import's rules.

The same URL rules as :mod:`registry.fleet_io`: both streams ``rtsp://`` or ``rtsps://`` with a valid host and
port; a user name and password written into a URL are moved out of it (and must agree with the ones given in
their own fields); a credential in the query string is refused. Codes have no whitespace; lengths are the
columns'. Every problem is collected into one :class:`~registry.errors.RegistryValueError`, whose messages never
quote a URL or a password.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.errors import FieldProblem, RegistryValueError
from registry.fleet_values import MAX_LENGTHS, CleanUrl, clean_url

_SPACE_RE = re.compile(r"\s")
MAX_PASSWORD_LENGTH = 200
"""Longest camera password accepted (it is stored encrypted, so the column has no length of its own)."""


@dataclass(frozen=True)
class Streams:
    """A camera's stream URLs without credentials, and its credentials (from their fields or the URLs)."""

    main_url: str
    sub_url: str | None
    username: str | None
    password: str | None


class Checker:
    """Collects the problems of one edit; :meth:`raise_if_any` raises them together."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def add(self, field: str, message: str) -> None:
        """Record a problem of ``field``."""
        self.problems.append(FieldProblem(field, message))

    def code(self, field: str, value: str, column: str) -> None:
        """A code: not empty, no whitespace, no longer than its column."""
        if not value:
            self.add(field, "a value is required")
        elif _SPACE_RE.search(value):
            self.add(field, "a code must not contain spaces")
        self.length(field, value, column)

    def text(self, field: str, value: str, column: str, *, required: bool = False) -> None:
        """A text: no longer than its column (and not blank when required)."""
        if required and not value.strip():
            self.add(field, "a value is required")
        self.length(field, value, column)

    def length(self, field: str, value: str, column: str) -> None:
        """No longer than the column ``column`` of :data:`~registry.fleet_values.MAX_LENGTHS`."""
        if len(value) > MAX_LENGTHS[column]:
            self.add(field, f"longer than {MAX_LENGTHS[column]} characters")

    def streams(
        self, main_url: str, sub_url: str | None, username: str | None, password: str | None
    ) -> Streams | None:
        """The checked streams, or None (problems recorded)."""
        start = len(self.problems)
        main = self._url("main_url", main_url)
        sub = self._url("sub_url", sub_url) if sub_url else None
        user = self._credential("username", username, main, sub)
        secret = self._credential("password", password, main, sub)
        if user is not None:
            self.length("username", user, "username")
        if secret is not None and len(secret) > MAX_PASSWORD_LENGTH:
            self.add("password", f"longer than {MAX_PASSWORD_LENGTH} characters")
        if len(self.problems) > start or main is None:
            return None
        return Streams(main.url, sub.url if sub else None, user, secret)

    def _url(self, field: str, value: str) -> CleanUrl | None:
        if not value:
            self.add(field, "a value is required")
            return None
        try:
            cleaned = clean_url(value)
        except ValueError as err:
            self.add(field, str(err))
            return None
        if len(cleaned.url) > MAX_LENGTHS[field]:
            self.add(field, f"longer than {MAX_LENGTHS[field]} characters")
            return None
        return cleaned

    def _credential(
        self, field: str, given: str | None, main: CleanUrl | None, sub: CleanUrl | None
    ) -> str | None:
        values = [
            (where, value)
            for where, value in (
                (field, given),
                ("main_url", getattr(main, field) if main else None),
                ("sub_url", getattr(sub, field) if sub else None),
            )
            if value
        ]
        if len({v for _, v in values}) > 1:
            # Never quote the values: one of them may be a password.
            self.add(field, f"the {field}s in {' and '.join(w for w, _ in values)} differ")
            return None
        return values[0][1] if values else None

    def raise_if_any(self) -> None:
        """Raise :class:`RegistryValueError` listing every problem recorded, if any."""
        if self.problems:
            raise RegistryValueError(self.problems)
