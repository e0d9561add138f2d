"""The cameras a worker may read: enabled cameras from the registry, with their credentials put into the URL.

The URL with credentials exists only in memory, in the reader that opens it; every log line and error redacts it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ingest.errors import IngestError
from kernel.db import session_scope
from kernel.errors import KernelError
from kernel.secrets import SecretBox
from registry.models import Camera

log = logging.getLogger(__name__)


class FleetError(IngestError):
    """The camera list could not be read."""


@dataclass(frozen=True)
class CameraTarget:
    """One camera to read: its id, code, scene type and the URL to open (credentials included)."""

    id: int
    code: str
    scene_type: str
    url: str

    def __repr__(self) -> str:  # never show the URL: it may hold a password
        return f"CameraTarget(id={self.id}, code={self.code!r}, scene_type={self.scene_type!r})"


def with_credentials(url: str, username: str | None, password: str | None) -> str:
    """``url`` with ``username:password@`` put in front of the host (percent-encoded)."""
    if not username:
        return url
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    userinfo = quote(username, safe="")
    if password:
        userinfo += ":" + quote(password, safe="")
    return f"{scheme}://{userinfo}@{rest}"


def load_targets(session: Session, box: SecretBox, *, prefer_sub_stream: bool = True) -> dict[str, CameraTarget]:
    """Every enabled camera by code."""
    rows = session.execute(
        select(
            Camera.id,
            Camera.code,
            Camera.scene_type,
            Camera.main_url,
            Camera.sub_url,
            Camera.username,
            Camera.password_encrypted,
        ).where(Camera.enabled.is_(True))
    )
    targets: dict[str, CameraTarget] = {}
    for row in rows:
        url = row.sub_url if prefer_sub_stream and row.sub_url else row.main_url
        password = box.decrypt(row.password_encrypted) if row.password_encrypted else None
        targets[row.code] = CameraTarget(
            row.id, row.code, row.scene_type.value, with_credentials(url, row.username, password)
        )
    return targets


class FleetCache:
    """The camera list, re-read from the database at most every ``refresh_s`` (thread-safe)."""

    def __init__(
        self, session_factory: sessionmaker[Session], box: SecretBox, *, refresh_s: float, prefer_sub_stream: bool
    ) -> None:
        self._factory = session_factory
        self._box = box
        self._refresh_s = refresh_s
        self._prefer_sub = prefer_sub_stream
        self._lock = threading.Lock()
        self._targets: dict[str, CameraTarget] | None = None
        self._loaded_at = 0.0

    def targets(self) -> Mapping[str, CameraTarget]:
        """The cameras; raises :class:`FleetError` only if they have never been read."""
        with self._lock:
            if self._targets is None or time.monotonic() - self._loaded_at >= self._refresh_s:
                try:
                    with session_scope(self._factory) as session:
                        self._targets = load_targets(session, self._box, prefer_sub_stream=self._prefer_sub)
                    self._loaded_at = time.monotonic()
                except (SQLAlchemyError, KernelError) as err:
                    if self._targets is None:
                        raise FleetError(f"cannot read the camera list: {err}") from err
                    log.warning("camera list not refreshed, keeping the last one: %s", err)
                    self._loaded_at = time.monotonic()
            return self._targets

    def camera_ids(self) -> dict[str, int]:
        """Camera ids by code."""
        return {code: target.id for code, target in self.targets().items()}
