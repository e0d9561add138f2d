"""Detections: model output becomes a validated type, or a clear error."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import numpy as np
import pytest

from analytics.detections import Detections, Frame
from analytics.errors import DetectionsError

AT = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
NAMES = ("person", "car")


def make(boxes: list[list[float]], scores: list[float], classes: list[int]) -> Detections:
    return Detections(
        "CAM1",
        AT,
        np.array(boxes, np.float32).reshape(-1, 4),
        np.array(scores, np.float32),
        np.array(classes, np.int32),
        NAMES,
    )


def test_valid_detections_are_read_only_and_filterable() -> None:
    d = make([[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.9, 0.9]], [0.9, 0.4], [0, 1])
    assert len(d) == 2 and d.labels() == ["person", "car"]
    with pytest.raises(ValueError, match="read-only"):
        d.boxes[0, 0] = 0.5
    people = d.only("person")
    assert len(people) == 1 and people.scores[0] == pytest.approx(0.9)
    tracked = people.with_tracker_ids(np.array([7], np.int32))
    assert tracked.tracker_ids is not None and tracked.tracker_ids.tolist() == [7]
    assert len(Detections.empty("CAM1", AT, NAMES)) == 0


@pytest.mark.parametrize(
    ("boxes", "scores", "classes", "message"),
    [
        ([[0.1, 0.2, 0.3, 0.4]], [0.9, 0.8], [0, 0], "do not line up"),
        ([[0.1, 0.2, 1.3, 0.4]], [0.9], [0], "normalised"),
        ([[0.3, 0.2, 0.1, 0.4]], [0.9], [0], "x2 < x1"),
        ([[0.1, 0.2, 0.3, float("nan")]], [0.9], [0], "NaN"),
        ([[0.1, 0.2, 0.3, 0.4]], [1.5], [0], r"scores must be in \[0, 1\]"),
        ([[0.1, 0.2, 0.3, 0.4]], [0.5], [2], "outside the model's 2 classes"),
    ],
)
def test_invalid_detections_are_refused(
    boxes: list[list[float]], scores: list[float], classes: list[int], message: str
) -> None:
    with pytest.raises(DetectionsError, match=message):
        make(boxes, scores, classes)


def test_naive_time_and_wrong_dtypes_are_refused() -> None:
    with pytest.raises(DetectionsError, match="timezone-aware"):
        Detections.empty("CAM1", datetime(2026, 1, 1), NAMES)
    with pytest.raises(DetectionsError, match="float32"):
        float64_boxes = cast(Any, np.zeros((1, 4)))  # what a careless backend hands over
        Detections("CAM1", AT, float64_boxes, np.zeros(1, np.float32), np.zeros(1, np.int32), NAMES)


def test_from_pixels_normalises_and_clips_to_the_frame() -> None:
    frame = Frame("CAM1", AT, np.zeros((100, 200, 3), np.uint8))
    d = Detections.from_pixels(
        frame, np.array([[-10.0, 10.0, 100.0, 150.0]]), np.array([0.8]), np.array([1]), NAMES
    )
    np.testing.assert_allclose(d.boxes, [[0.0, 0.1, 0.5, 1.0]])
    assert d.class_ids.dtype == np.int32


def test_frames_must_be_bgr_images() -> None:
    with pytest.raises(DetectionsError, match="HxWx3 uint8"):
        Frame("CAM1", AT, np.zeros((100, 200), np.uint8))
