"""Tests of the analytics package."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from analytics.detections import Image


def read_photo(path: Path) -> Image:
    """A photo as a BGR uint8 image (fails loudly when it cannot be read)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"cannot read {path}"
    return np.asarray(image, dtype=np.uint8)
