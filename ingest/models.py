"""The small typed values that ingest passes between its parts and, through the bus, to the rest of the system.

Frames never leave the worker that decoded them: :class:`Keyframe` stays in-process; what travels is health,
quality faults and small JPEG thumbnails.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

THUMBNAIL_WIDTH = 320
THUMBNAIL_HEIGHT = 180
"""Every keyframe is scaled once to this size (16:9, BGR); diagnosis and thumbnails both work on it."""


class ReadMode(StrEnum):
    """How much of a camera's stream is decoded."""

    WATCH = "watch"
    """Keyframes only (one every ~2 s): the fleet default, for health, diagnosis and thumbnails."""
    ANALYZE = "analyze"
    """Every frame up to the configured analysis fps, for cameras whose analytics rules are active now."""


class HealthState(StrEnum):
    """Whether a camera works."""

    ONLINE = "online"
    DEGRADED = "degraded"
    OFFLINE = "offline"


class HealthReason(StrEnum):
    """Why a camera is degraded or offline (``ok`` when online)."""

    OK = "ok"
    REFUSED = "refused"
    """The server refused the connection or the request (connection refused, 503, 401/403)."""
    TIMEOUT = "timeout"
    """Opening or reading took longer than the configured timeout."""
    NOT_FOUND = "not_found"
    """The server answered that the stream does not exist (404)."""
    NO_DATA = "no_data"
    """Connected, but no video arrived (stream ended, or no keyframe within the expected time)."""
    DECODE_ERRORS = "decode_errors"
    """Video arrives but a share of it cannot be decoded."""
    BAD_STREAM = "bad_stream"
    """The server's answers are not RTSP/H.264 that can be played (garbage, no video track)."""


class QualityFault(StrEnum):
    """A video-quality fault found on keyframes."""

    SIGNAL_LOSS = "signal_loss"
    BLACK = "black"
    FROZEN = "frozen"
    BLUR = "blur"
    OCCLUSION = "occlusion"
    TOO_DARK = "too_dark"
    TOO_BRIGHT = "too_bright"
    COLOUR_CAST = "colour_cast"


Image = npt.NDArray[np.uint8]
"""A BGR picture, shape (height, width, 3)."""


@dataclass(frozen=True)
class Keyframe:
    """One decoded keyframe of a camera, scaled to the thumbnail size."""

    camera_code: str
    captured_at: datetime
    image: Image
    source_width: int
    source_height: int


@dataclass
class StreamFigures:
    """A reader's running figures for one camera."""

    bitrate_kbps: float = 0.0
    fps: float = 0.0
    keyframe_interval_s: float = 0.0
    width: int = 0
    height: int = 0
    last_frame_at: datetime | None = None
    reconnects: int = 0
    decode_errors: int = 0


@dataclass(frozen=True)
class FaultChange:
    """A quality fault starting (``active``) or clearing on a camera, with the measured value behind it."""

    camera_code: str
    fault: QualityFault
    active: bool
    at: datetime
    value: float
    threshold: float
    details: dict[str, float] = field(default_factory=dict)
