"""Our own validated detection types: what every detector backend's output becomes at the edge of ``analytics``.

Boxes are ``x1, y1, x2, y2`` normalised to the frame (0..1, top-left origin), so rules and zones (also normalised)
never depend on a camera's resolution or the network's input size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt

from analytics.errors import DetectionsError

Image = npt.NDArray[np.uint8]
"""A BGR picture, height x width x 3 (OpenCV's layout)."""
FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int32]


@dataclass(frozen=True)
class Frame:
    """One decoded picture of one camera, handed to the detection pipeline."""

    camera_code: str
    captured_at: datetime
    image: Image

    def __post_init__(self) -> None:
        if not self.camera_code:
            raise DetectionsError("a frame needs its camera code")
        if self.captured_at.tzinfo is None:
            raise DetectionsError(f"frame of {self.camera_code}: captured_at must be timezone-aware")
        shape: tuple[int, ...] = tuple(getattr(self.image, "shape", ()))
        if len(shape) != 3 or shape[2] != 3 or shape[0] < 8 or shape[1] < 8 or self.image.dtype != np.uint8:
            raise DetectionsError(f"frame of {self.camera_code}: expected an HxWx3 uint8 BGR image, got {shape}")


@dataclass(frozen=True)
class Detections:
    """The objects found in one frame. Arrays are read-only and of equal length."""

    camera_code: str
    captured_at: datetime
    boxes: FloatArray
    """N x 4 float32: x1, y1, x2, y2 normalised to the frame, x1 <= x2, y1 <= y2."""
    scores: FloatArray
    """N float32 in [0, 1]."""
    class_ids: IntArray
    """N int32 indices into ``names``."""
    names: tuple[str, ...]
    """The model's class names."""
    tracker_ids: IntArray | None = field(default=None)
    """N int32 track ids once a tracker has seen them (None before)."""

    def __post_init__(self) -> None:
        n = len(self.scores)
        where = f"detections of {self.camera_code or '?'}"
        if not self.camera_code:
            raise DetectionsError("detections need their camera code")
        if self.captured_at.tzinfo is None:
            raise DetectionsError(f"{where}: captured_at must be timezone-aware")
        if self.boxes.shape != (n, 4) or self.scores.shape != (n,) or self.class_ids.shape != (n,):
            raise DetectionsError(
                f"{where}: boxes {self.boxes.shape}, scores {self.scores.shape}, classes {self.class_ids.shape} "
                "do not line up"
            )
        if self.boxes.dtype != np.float32 or self.scores.dtype != np.float32 or self.class_ids.dtype != np.int32:
            raise DetectionsError(f"{where}: boxes and scores must be float32, class ids int32")
        if n and not (np.isfinite(self.boxes).all() and np.isfinite(self.scores).all()):
            raise DetectionsError(f"{where}: boxes or scores hold NaN or infinity")
        if n and (self.boxes.min() < 0.0 or self.boxes.max() > 1.0):
            raise DetectionsError(f"{where}: boxes must be normalised to [0, 1]")
        if n and ((self.boxes[:, 2] < self.boxes[:, 0]).any() or (self.boxes[:, 3] < self.boxes[:, 1]).any()):
            raise DetectionsError(f"{where}: a box has x2 < x1 or y2 < y1")
        if n and (self.scores.min() < 0.0 or self.scores.max() > 1.0):
            raise DetectionsError(f"{where}: scores must be in [0, 1]")
        if n and (self.class_ids.min() < 0 or self.class_ids.max() >= len(self.names)):
            raise DetectionsError(f"{where}: a class id is outside the model's {len(self.names)} classes")
        if self.tracker_ids is not None and self.tracker_ids.shape != (n,):
            raise DetectionsError(f"{where}: {len(self.tracker_ids)} tracker ids for {n} boxes")
        for array in (self.boxes, self.scores, self.class_ids, self.tracker_ids):
            if array is not None:
                array.flags.writeable = False

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls, camera_code: str, captured_at: datetime, names: tuple[str, ...]) -> Detections:
        """No objects."""
        return cls(
            camera_code,
            captured_at,
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int32),
            names,
        )

    @classmethod
    def from_pixels(
        cls,
        frame: Frame,
        boxes_px: npt.NDArray[np.floating],
        scores: npt.NDArray[np.floating],
        class_ids: npt.NDArray[np.integer],
        names: tuple[str, ...],
    ) -> Detections:
        """From boxes in the frame's pixels (clipped to the frame), as a backend produces them."""
        height, width = frame.image.shape[:2]
        size = np.array([width, height, width, height], np.float32)
        boxes: FloatArray = np.clip(np.asarray(boxes_px, dtype=np.float32).reshape(-1, 4) / size, 0.0, 1.0).astype(
            np.float32
        )
        return cls(
            frame.camera_code,
            frame.captured_at,
            boxes,
            np.clip(np.asarray(scores, dtype=np.float32), 0.0, 1.0),
            np.asarray(class_ids, dtype=np.int32),
            names,
        )

    def labels(self) -> list[str]:
        """The class name of every box."""
        return [self.names[int(i)] for i in self.class_ids]

    def only(self, *names: str) -> Detections:
        """The boxes whose class is one of ``names``."""
        wanted = [i for i, name in enumerate(self.names) if name in names]
        keep = np.isin(self.class_ids, wanted)
        return self.select(keep)

    def select(self, keep: npt.NDArray[np.bool_]) -> Detections:
        """The boxes where ``keep`` is true."""
        return Detections(
            self.camera_code,
            self.captured_at,
            self.boxes[keep].copy(),
            self.scores[keep].copy(),
            self.class_ids[keep].copy(),
            self.names,
            None if self.tracker_ids is None else self.tracker_ids[keep].copy(),
        )

    def with_tracker_ids(self, tracker_ids: IntArray) -> Detections:
        """The same boxes with track ids."""
        return Detections(
            self.camera_code,
            self.captured_at,
            self.boxes,
            self.scores,
            self.class_ids,
            self.names,
            np.asarray(tracker_ids, dtype=np.int32),
        )
