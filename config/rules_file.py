"""The console's rules file: zones, lines and rules by camera code, edited through the web API.

``<data_dir>/camera_rules.yaml`` holds one :class:`~config.rules.CameraRulesConfig` per camera under a
``cameras`` key. A camera listed in it uses those rules *instead of* its entry in ``analytics.cameras`` of the
configuration file (an empty entry switches that camera's configured rules off); cameras not listed keep the
configured ones. So the configuration file stays the operator's and is never rewritten by the console.

The web API writes the file atomically (a temporary file renamed over it, under an exclusive ``flock`` so two web
processes never lose each other's change); the analytics pipeline re-reads it when its modification time or size
changes (:class:`RulesFileWatcher`). The file is machine-written: comments other than the header are not kept.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.loader import ConfigError, parse_yaml
from config.rules import CameraRulesConfig

log = logging.getLogger(__name__)

RULES_FILE_NAME = "camera_rules.yaml"
_HEADER = """\
# Zones, lines and rules by camera code, written by the campuswatch console (PUT /api/cameras/{code}/rules).
# A camera listed here uses these rules instead of its entry in analytics.cameras of the configuration file;
# the analytics service re-reads this file when it changes. Edit it through the console: comments are not kept.
"""


def rules_file_path(data_dir: Path) -> Path:
    """Where the console's rules file of the installation with this data directory is."""
    return data_dir / RULES_FILE_NAME


def read_rules_file(path: Path) -> dict[str, CameraRulesConfig]:
    """The cameras' rules in ``path`` (empty when the file does not exist).

    Raises :class:`~config.loader.ConfigError` naming the file, line and field of every problem.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(str(path), [f"{path}: cannot read: {err}"]) from err
    name = str(path)
    data, lines = parse_yaml(text, name)
    cameras = data.get("cameras") or {}
    unknown = sorted(set(data) - {"cameras"})
    problems = [f"{name}: unknown key {key!r} (only 'cameras')" for key in unknown]
    if not isinstance(cameras, dict):
        raise ConfigError(name, [*problems, f"{name}:{lines.get(('cameras',), 0)}: cameras must be a mapping"])
    out: dict[str, CameraRulesConfig] = {}
    for code, value in cameras.items():
        try:
            out[str(code)] = CameraRulesConfig.model_validate(value or {})
        except ValidationError as err:
            for error in err.errors():
                loc = ("cameras", str(code), *error["loc"])
                line = next((lines[loc[:d]] for d in range(len(loc), 0, -1) if loc[:d] in lines), 0)
                where = ".".join(str(p) for p in loc)
                problems.append(f"{name}:{line}: {where}: {error['msg']}")
    if problems:
        raise ConfigError(name, problems)
    return out


def effective_rules(
    configured: Mapping[str, CameraRulesConfig], console: Mapping[str, CameraRulesConfig]
) -> dict[str, CameraRulesConfig]:
    """The rules in force: the configured ones, each camera of the console's file replacing its entry; cameras
    left with no rule are dropped (they are never analysed)."""
    merged = {**configured, **console}
    return {code: rules for code, rules in merged.items() if rules.rules}


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _dump(cameras: Mapping[str, CameraRulesConfig]) -> str:
    data: dict[str, Any] = {"cameras": {code: cameras[code].model_dump(mode="json") for code in sorted(cameras)}}
    return _HEADER + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=115)


def _write_atomically(path: Path, text: str) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write_camera_rules(path: Path, code: str, rules: CameraRulesConfig | None) -> None:
    """Set (or, with None, remove) one camera's entry of the rules file, keeping every other camera's.

    Raises :class:`~config.loader.ConfigError` when the stored file is invalid (it is then left as it is), and
    :class:`OSError` when it cannot be written.
    """
    with _locked(path):
        cameras = read_rules_file(path)
        if rules is None:
            if code not in cameras:
                return
            del cameras[code]
        else:
            cameras[code] = rules
        _write_atomically(path, _dump(cameras))
    log.info("rules of camera %s %s in %s", code, "removed" if rules is None else "written", path)


@dataclass(frozen=True)
class _Stamp:
    mtime_ns: int
    size: int
    inode: int


def _stamp(path: Path) -> _Stamp | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return _Stamp(st.st_mtime_ns, st.st_size, st.st_ino)


class RulesFileWatcher:
    """Tells when the rules file changed and what the rules in force then are (not thread-safe: one poller)."""

    def __init__(self, path: Path, configured: Mapping[str, CameraRulesConfig]) -> None:
        self.path = path
        self._configured = dict(configured)
        self._stamp = _stamp(path)
        self._console = self._read_or_keep({})

    def _read_or_keep(self, last: dict[str, CameraRulesConfig]) -> dict[str, CameraRulesConfig]:
        try:
            return read_rules_file(self.path)
        except ConfigError as err:
            # A bad hand edit must not switch every rule off: keep what was in force.
            log.error("rules file not applied, keeping the rules in force: %s", err)
            return last

    def current(self) -> dict[str, CameraRulesConfig]:
        """The rules in force as last read."""
        return effective_rules(self._configured, self._console)

    def poll(self) -> dict[str, CameraRulesConfig] | None:
        """The rules in force if the file changed since the last poll (a new, changed or removed file), else
        None."""
        stamp = _stamp(self.path)
        if stamp == self._stamp:
            return None
        self._stamp = stamp
        before = self.current()
        self._console = self._read_or_keep(self._console) if stamp is not None else {}
        after = self.current()
        return after if after != before else None
