"""Per-camera scene schedules: which scene a simulated camera shows when, and when it drops off the network.

Times are seconds since the simulator started. A schedule is a default scene, timed scene segments and timed
drops; a YAML file (:class:`FleetSchedule`) gives schedules to many cameras at once. Scene switches take effect
at the next keyframe of the clip being played (at most 2 s later), so the stream stays decodable.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Self

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from ingest.errors import ScheduleError
from ingest.simulator.scenes import SceneKind

MAX_SCHEDULE_S = 10 * 365 * 24 * 3600.0
"""Upper bound of any schedule time: ten years of simulated running."""

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""Camera codes are URL-path-safe: letters, digits, ``_``, ``.``, ``-``; starting with a letter or digit."""

CameraCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64, pattern=CODE_PATTERN),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DropMode(StrEnum):
    """How a camera drops off the network."""

    STALL = "stall"
    """The stream stops sending but keeps the connection: readers with a read timeout time out."""
    REFUSE = "refuse"
    """Existing sessions are closed and new requests answered 503 Service Unavailable while the drop lasts."""
    DISCONNECT = "disconnect"
    """Existing sessions are closed once (readers see end of stream); reconnecting works at once."""


class SceneSegment(_Model):
    """From ``at_s`` on, the camera shows ``scene`` (until the next segment)."""

    at_s: float = Field(ge=0, le=MAX_SCHEDULE_S, description="Seconds since the simulator started")
    scene: SceneKind = Field(description="Scene shown from then on")


class Drop(_Model):
    """The camera drops off at ``at_s`` for ``duration_s`` seconds (forever if unset)."""

    at_s: float = Field(ge=0, le=MAX_SCHEDULE_S, description="Seconds since the simulator started")
    duration_s: float | None = Field(
        None, gt=0, le=MAX_SCHEDULE_S, description="How long the drop lasts; unset: forever (not for disconnect)"
    )
    mode: DropMode = Field(DropMode.STALL, description="stall, refuse or disconnect")

    @model_validator(mode="after")
    def _disconnect_is_instant(self) -> Self:
        if self.mode is DropMode.DISCONNECT and self.duration_s is not None:
            raise ValueError("duration_s does not apply to mode=disconnect (it closes sessions once)")
        return self

    @property
    def end_s(self) -> float:
        """When the drop ends (``inf`` for a drop that lasts forever, ``at_s`` for a disconnect)."""
        if self.mode is DropMode.DISCONNECT:
            return self.at_s
        return float("inf") if self.duration_s is None else self.at_s + self.duration_s

    def active_at(self, t: float) -> bool:
        """Whether a stall or refusal is in force at time ``t`` (a disconnect never is)."""
        return self.at_s <= t < self.end_s


class CameraSchedule(_Model):
    """One camera's scene schedule and drops."""

    default_scene: SceneKind = Field(SceneKind.EMPTY_YARD, description="Scene shown before the first segment")
    segments: tuple[SceneSegment, ...] = Field(
        (), max_length=10_000, description="Timed scene changes; sorted by at_s when loaded"
    )
    drops: tuple[Drop, ...] = Field((), max_length=10_000, description="Timed drops off the network")

    @model_validator(mode="after")
    def _sorted(self) -> Self:
        # Sorted once here so that lookups can bisect; frozen models need object.__setattr__.
        object.__setattr__(self, "segments", tuple(sorted(self.segments, key=lambda s: s.at_s)))
        object.__setattr__(self, "drops", tuple(sorted(self.drops, key=lambda d: d.at_s)))
        return self

    def scene_at(self, t: float) -> SceneKind:
        """The scene scheduled at time ``t``."""
        i = bisect.bisect_right([s.at_s for s in self.segments], t)
        return self.segments[i - 1].scene if i else self.default_scene

    def drop_at(self, t: float) -> Drop | None:
        """The stall or refusal in force at ``t`` (the latest-starting one if several overlap), or None."""
        active = [d for d in self.drops if d.active_at(t)]
        return active[-1] if active else None

    def change_points(self) -> list[float]:
        """Sorted times at which the scene or drop state may change."""
        points = {s.at_s for s in self.segments}
        for d in self.drops:
            points.add(d.at_s)
            if d.end_s != float("inf"):
                points.add(d.end_s)
        return sorted(points)

    @classmethod
    def showing(cls, scene: SceneKind | str) -> CameraSchedule:
        """A schedule that shows ``scene`` all the time."""
        return cls(default_scene=SceneKind(scene))


class CameraSpec(_Model):
    """One simulated camera: its code (the RTSP path) and its schedule."""

    code: CameraCode = Field(description="Camera code, served at rtsp://host:port/<code>")
    schedule: CameraSchedule = Field(default_factory=CameraSchedule, description="Scene schedule and drops")


class FleetSchedule(_Model):
    """A YAML schedule file: a default schedule and per-camera schedules by code."""

    default: CameraSchedule = Field(
        default_factory=CameraSchedule, description="Schedule of cameras not listed under cameras"
    )
    cameras: dict[CameraCode, CameraSchedule] = Field(
        default_factory=dict, max_length=100_000, description="Schedules by camera code"
    )

    def schedule_for(self, code: str) -> CameraSchedule:
        """The schedule of camera ``code``."""
        return self.cameras.get(code, self.default)


def load_schedule_file(path: Path) -> FleetSchedule:
    """Read a YAML :class:`FleetSchedule`; raises :class:`ScheduleError` with the file name on any problem."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ScheduleError(f"cannot read schedule file {path}: {err}") from err
    try:
        return FleetSchedule.model_validate(raw or {})
    except ValidationError as err:
        raise ScheduleError(f"invalid schedule file {path}:\n{err}") from err


def camera_codes(count: int, prefix: str = "CAM", digits: int = 5) -> list[str]:
    """Codes ``CAM00001`` … for ``count`` generated cameras."""
    return [f"{prefix}{i:0{digits}d}" for i in range(1, count + 1)]


def build_camera_specs(
    codes: Sequence[str],
    schedules: Mapping[str, CameraSchedule | SceneKind | str] | None = None,
    default: CameraSchedule | None = None,
) -> list[CameraSpec]:
    """Camera specs for ``codes``; ``schedules`` maps some codes to a schedule or simply a scene.

    Raises :class:`pydantic.ValidationError` for a bad code and :class:`ScheduleError` for a schedule naming a
    camera that is not in ``codes``.
    """
    schedules = dict(schedules or {})
    unknown = set(schedules) - set(codes)
    if unknown:
        raise ScheduleError(f"schedules given for unknown cameras: {sorted(unknown)[:10]}")
    if len(set(codes)) != len(codes):
        raise ScheduleError("camera codes must be unique")
    base = default or CameraSchedule()
    specs = []
    for code in codes:
        chosen = schedules.get(code, base)
        schedule = chosen if isinstance(chosen, CameraSchedule) else CameraSchedule.showing(chosen)
        specs.append(CameraSpec(code=code, schedule=schedule))
    return specs


DEMO_MIX: tuple[CameraSchedule, ...] = (
    CameraSchedule.showing(SceneKind.PEOPLE_WALKING),
    CameraSchedule.showing(SceneKind.PEOPLE_WALKING),
    CameraSchedule.showing(SceneKind.PERSON_LINGERING),
    CameraSchedule.showing(SceneKind.CROWD_FORMING),
    CameraSchedule.showing(SceneKind.LINE_CROSSING),
    CameraSchedule.showing(SceneKind.BLACK),
    CameraSchedule.showing(SceneKind.FROZEN),
    CameraSchedule.showing(SceneKind.BLURRED),
    CameraSchedule.showing(SceneKind.LENS_COVERED),
    CameraSchedule.showing(SceneKind.TOO_DARK),
    CameraSchedule.showing(SceneKind.COLOUR_CAST),
    CameraSchedule(
        default_scene=SceneKind.EMPTY_YARD,
        segments=(SceneSegment(at_s=60, scene=SceneKind.PEOPLE_WALKING),),
        drops=(Drop(at_s=120, duration_s=60, mode=DropMode.STALL),),
    ),
    CameraSchedule(drops=(Drop(at_s=90, mode=DropMode.REFUSE),)),
)
"""The demo's special cameras: people scenes, one of each fault, a late stall and one that goes offline."""


def demo_camera_specs(codes: Sequence[str], *, seed: int = 2026) -> list[CameraSpec]:
    """Demo specs: the schedules of :data:`DEMO_MIX` spread over ``codes`` (seeded), the rest an empty yard."""
    order = [int(i) for i in np.random.default_rng(seed).permutation(len(codes))]
    chosen = {codes[i]: schedule for i, schedule in zip(order, DEMO_MIX, strict=False)}
    return build_camera_specs(codes, chosen)
