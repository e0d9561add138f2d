"""Cheap picture measures for video-quality diagnosis, taken on one keyframe (and its predecessor).

A worker diagnoses thousands of cameras, one keyframe every ~2 s each, so :func:`measure` has to be cheap: it
works on a 160x90 copy of the 320x180 keyframe (one ``cv2.resize``), split into a 16x9 grid of 10x10 blocks.
Block statistics make the measures robust to a camera's OSD (clock and name, a few blocks of the top row) and
give "how much of the picture" answers (flat share) that a single global figure cannot.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import numpy.typing as npt

from ingest.errors import IngestError
from ingest.models import Image

WORK_WIDTH = 160
WORK_HEIGHT = 90
"""The measures are taken on a copy of this size (half the 320x180 keyframe in each direction)."""

GRID_COLUMNS = 16
GRID_ROWS = 9
"""Blocks of the work copy: 16x9 blocks of 10x10 pixels."""

SATURATED_LUMA = 250.0
"""Blocks this bright are clipped white: overexposure (too_bright), not a cover, so they never count as flat."""

DEFAULT_FLAT_BLOCK_STD = 3.0
"""Standard deviation (grey levels) at or below which a block counts as flat, unless the caller says otherwise."""

_BLOCKS = GRID_COLUMNS * GRID_ROWS
_GRID = (GRID_COLUMNS, GRID_ROWS)
# Order statistics over the blocks. np.partition rather than np.percentile: the latter costs ~100 us here.
_SHARPNESS_RANK = int(0.80 * _BLOCKS)  # the sharpest fifth of the picture decides, so bare walls and sky do not
_CHANGE_RANK = int(0.75 * _BLOCKS)  # a quarter of the picture changing counts; an OSD clock alone (<10 %) not
_MID_GREY = 128.0
_SHARPNESS_LUMA_FLOOR = 16.0  # below this the picture is black or too dark anyway; keeps the ratio finite

Grey = npt.NDArray[np.uint8]
"""A grey picture, shape (WORK_HEIGHT, WORK_WIDTH)."""


class DiagnosisError(IngestError):
    """Video-quality diagnosis was given something it cannot diagnose (a malformed picture, a bad setting)."""


@dataclass(frozen=True)
class ReducedFrame:
    """A keyframe reduced to what the measures need; keep the previous keyframe's to measure change."""

    grey: Grey
    """160x90 grey copy."""
    mean_bgr: tuple[float, float, float]
    """Mean blue, green and red of the picture (0..255)."""


@dataclass(frozen=True)
class QualityMeasures:
    """What :func:`measure` found on one keyframe. Grey levels are 0..255, shares 0..1."""

    luma: float
    """Mean grey level."""
    contrast: float
    """Standard deviation of the grey levels."""
    sharpness: float
    """Edge strength of the sharpest fifth of the picture (80th percentile over the blocks of the block's mean
    absolute Laplacian), scaled to a mid-grey exposure (x 128 / mean grey, the mean grey taken as at least 16)."""
    flat_share: float
    """Share of blocks whose grey standard deviation is at most the flat-block limit (and not clipped white)."""
    colour_cast: float
    """Distance of the mean colour from grey in the CbCr plane (8-bit units; 0 = neutral)."""
    change: float | None
    """75th percentile over the blocks of the mean absolute grey difference to the previous keyframe (None:
    no previous keyframe)."""

    def as_details(self) -> dict[str, float]:
        """The measures as ``FaultChange.details`` (rounded; ``change`` left out when there is none)."""
        return {key: round(value, 3) for key, value in asdict(self).items() if value is not None}


def reduce(image: Image) -> ReducedFrame:
    """Reduce a BGR keyframe (normally 320x180) to its 160x90 grey copy and mean colour.

    Raises :class:`DiagnosisError` when ``image`` is not a non-empty uint8 BGR array.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        kind = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image)
        raise DiagnosisError(f"expected a uint8 BGR picture of shape (height, width, 3), got a {kind}")
    if image.shape[0] < 2 or image.shape[1] < 2:
        raise DiagnosisError(f"picture too small to diagnose: {image.shape[1]}x{image.shape[0]}")
    # INTER_AREA averages 2x2 pixels of the 320x180 keyframe: it also halves the pixel noise.
    small = cv2.resize(image, (WORK_WIDTH, WORK_HEIGHT), interpolation=cv2.INTER_AREA)
    grey = np.asarray(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), dtype=np.uint8)
    blue, green, red, _ = cv2.mean(small)
    return ReducedFrame(grey, (blue, green, red))


def measure(
    image: Image | ReducedFrame,
    previous: Image | ReducedFrame | None = None,
    *,
    flat_block_std: float = DEFAULT_FLAT_BLOCK_STD,
) -> QualityMeasures:
    """Measure one keyframe; ``previous`` (the camera's previous keyframe) gives :attr:`QualityMeasures.change`.

    Pure and cheap (~0.1 ms for a 320x180 keyframe). Pass :class:`ReducedFrame` values (from :func:`reduce`) to
    avoid reducing the previous keyframe again.
    """
    current = image if isinstance(image, ReducedFrame) else reduce(image)
    grey = current.grey
    mean, std = cv2.meanStdDev(grey)

    grey_f = grey.astype(np.float32)
    block_mean = cv2.resize(grey_f, _GRID, interpolation=cv2.INTER_AREA)
    block_square = cv2.resize(grey_f * grey_f, _GRID, interpolation=cv2.INTER_AREA)
    # Variance = E[x^2] - E[x]^2 per block, compared with the squared limit: no square roots needed.
    block_var = block_square - block_mean * block_mean
    flat = (block_var <= flat_block_std * flat_block_std) & (block_mean < SATURATED_LUMA)

    edges = np.abs(cv2.Laplacian(grey_f, cv2.CV_32F, ksize=1))
    block_edges = cv2.resize(edges, _GRID, interpolation=cv2.INTER_AREA).ravel()
    # Scaled to a mid-grey exposure (Weber): a dim but sharp scene keeps its sharpness, as the eye sees it.
    luma = float(mean[0, 0])
    edge_strength = float(np.partition(block_edges, _SHARPNESS_RANK)[_SHARPNESS_RANK])
    sharpness = edge_strength * _MID_GREY / max(luma, _SHARPNESS_LUMA_FLOOR)

    blue, green, red = current.mean_bgr
    # BT.601 chroma of the mean colour (linear, so equal to the mean chroma up to clipping).
    y = 0.299 * red + 0.587 * green + 0.114 * blue
    cast = math.hypot(0.713 * (red - y), 0.564 * (blue - y))

    change: float | None = None
    if previous is not None:
        before = previous if isinstance(previous, ReducedFrame) else reduce(previous)
        diff = cv2.absdiff(grey, before.grey).astype(np.float32)
        block_diff = cv2.resize(diff, _GRID, interpolation=cv2.INTER_AREA).ravel()
        change = float(np.partition(block_diff, _CHANGE_RANK)[_CHANGE_RANK])

    return QualityMeasures(
        luma=luma,
        contrast=float(std[0, 0]),
        sharpness=sharpness,
        flat_share=float(np.count_nonzero(flat)) / _BLOCKS,
        colour_cast=cast,
        change=change,
    )
