"""Batch pre- and post-processing shared by the YOLO backends: letterbox, head decoding, NMS, back to frames.

Pre-processing resizes each frame once (OpenCV, into its slot of one preallocated batch), then converts the
whole batch in one vectorised step (BGR -> RGB, HWC -> CHW, uint8 -> float32 / 255). Decoding works on the whole
batch's output at once; only NMS runs per frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from analytics.detections import Detections, FloatArray, Frame, Image

PAD_VALUE = 114  # the grey YOLO letterboxes with


@dataclass(frozen=True)
class Letterboxed:
    """A batch ready for the network and what undoes the letterbox."""

    batch: FloatArray
    """N x 3 x S x S float32 RGB in [0, 1]."""
    scales: FloatArray
    """N: network pixels per frame pixel."""
    offsets: FloatArray
    """N x 2: left and top padding in network pixels."""


def letterbox(images: Sequence[Image], size: int, *, out: npt.NDArray[np.uint8] | None = None) -> Letterboxed:
    """Fit every image into a ``size`` square keeping its aspect ratio, padded with grey; one batch array."""
    n = len(images)
    canvas = out if out is not None and out.shape[0] >= n else np.empty((n, size, size, 3), np.uint8)
    canvas = canvas[:n]
    canvas.fill(PAD_VALUE)
    scales = np.empty(n, np.float32)
    offsets = np.empty((n, 2), np.float32)
    for i, image in enumerate(images):
        height, width = image.shape[:2]
        scale = min(size / width, size / height)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        left, top = (size - new_w) // 2, (size - new_h) // 2
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        canvas[i, top : top + new_h, left : left + new_w] = resized
        scales[i] = scale
        offsets[i] = (left, top)
    # One pass over the whole batch: BGR->RGB, HWC->CHW, scale to [0, 1].
    batch = np.ascontiguousarray(canvas[..., ::-1].transpose(0, 3, 1, 2), dtype=np.float32)
    batch *= np.float32(1.0 / 255.0)
    return Letterboxed(batch, scales, offsets)


def _sigmoid(x: FloatArray) -> FloatArray:
    out: FloatArray = (1.0 / (1.0 + np.exp(-x))).astype(np.float32, copy=False)
    return out


def decode_darknet(
    outputs: Sequence[FloatArray], heads: Sequence[dict[str, Any]], input_size: int
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """Raw darknet ``[yolo]`` heads -> (N x K x 4 boxes xyxy in network pixels, N x K scores, N x K classes)."""
    all_boxes, all_scores, all_classes = [], [], []
    for raw, head in zip(outputs, heads, strict=True):
        n, channels, gh, gw = raw.shape
        anchors = np.asarray(head["anchors"], np.float32)  # A x 2 (w, h) in network pixels
        a = len(anchors)
        pred = raw.reshape(n, a, channels // a, gh, gw).transpose(0, 1, 3, 4, 2)  # N, A, gh, gw, 5+C
        grid_y, grid_x = np.meshgrid(
            np.arange(gh, dtype=np.float32), np.arange(gw, dtype=np.float32), indexing="ij"
        )
        cx = (_sigmoid(pred[..., 0]) + grid_x) * (input_size / gw)
        cy = (_sigmoid(pred[..., 1]) + grid_y) * (input_size / gh)
        w = np.exp(np.minimum(pred[..., 2], 10.0)) * anchors[None, :, None, None, 0]
        h = np.exp(np.minimum(pred[..., 3], 10.0)) * anchors[None, :, None, None, 1]
        objectness = _sigmoid(pred[..., 4])
        class_probs = _sigmoid(pred[..., 5:])
        best = class_probs.argmax(-1)
        score = objectness * np.take_along_axis(class_probs, best[..., None], -1)[..., 0]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
        all_boxes.append(boxes.reshape(n, -1, 4))
        all_scores.append(score.reshape(n, -1))
        all_classes.append(best.reshape(n, -1))
    return (
        np.concatenate(all_boxes, 1).astype(np.float32),
        np.concatenate(all_scores, 1).astype(np.float32),
        np.concatenate(all_classes, 1),
    )


def decode_yolov8(output: FloatArray) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]:
    """A YOLOv8/11 head (N x (4+C) x K: cx, cy, w, h in network pixels, then class scores) -> boxes, scores."""
    pred = output.transpose(0, 2, 1)  # N, K, 4+C
    cx, cy, w, h = pred[..., 0], pred[..., 1], pred[..., 2], pred[..., 3]
    classes = pred[..., 4:].argmax(-1)
    scores = np.take_along_axis(pred[..., 4:], classes[..., None], -1)[..., 0]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)
    return boxes.astype(np.float32), scores.astype(np.float32), classes


def to_detections(
    frames: Sequence[Frame],
    prepared: Letterboxed,
    decoded: tuple[FloatArray, FloatArray, npt.NDArray[np.int64]],
    names: tuple[str, ...],
    *,
    score_threshold: float,
    nms_iou: float,
    keep_classes: npt.NDArray[np.int64] | None,
    contained: float = 0.0,
) -> list[Detections]:
    """Threshold, per-class NMS, duplicates inside stronger boxes dropped, the letterbox undone, frame by frame."""
    boxes, scores, classes = decoded
    results = []
    for i, frame in enumerate(frames):
        mask = scores[i] >= score_threshold
        if keep_classes is not None:
            mask &= np.isin(classes[i], keep_classes)
        b, s, c = boxes[i][mask], scores[i][mask], classes[i][mask]
        if len(s):
            xywh = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1)
            kept = cv2.dnn.NMSBoxesBatched(
                xywh.tolist(), s.tolist(), c.astype(np.int32).tolist(), score_threshold, nms_iou
            )
            index = np.asarray(kept, dtype=np.int64).reshape(-1)
            b, s, c = b[index], s[index], c[index]
            if contained > 0 and len(s) > 1:
                keep = _not_contained(b, s, c, contained)
                b, s, c = b[keep], s[keep], c[keep]
        # Network pixels -> frame pixels.
        b = (b - np.tile(prepared.offsets[i], 2)) / prepared.scales[i]
        results.append(Detections.from_pixels(frame, b, s, c, names))
    return results


def _not_contained(
    boxes: FloatArray, scores: FloatArray, classes: npt.NDArray[np.int64], share: float
) -> npt.NDArray[np.bool_]:
    """Boxes to keep: drop one when ``share`` of the smaller of it and a stronger box of its class overlap.

    Small detectors report a person twice (whole body and torso) with an IoU under the NMS threshold; the
    overlap measured on the smaller box catches that nesting.
    """
    order = np.argsort(-scores)
    keep = np.ones(len(scores), bool)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for rank, i in enumerate(order):
        if not keep[i]:
            continue
        for j in order[rank + 1 :]:
            if not keep[j] or classes[j] != classes[i]:
                continue
            w = min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0])
            h = min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1])
            if w > 0 and h > 0 and w * h >= share * min(areas[i], areas[j]):
                keep[j] = False
    return keep
