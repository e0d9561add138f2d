"""ByteTrack: multi-object tracking by detection, one :class:`ByteTracker` per camera.

Our own compact implementation of ByteTrack (Zhang et al., 2022): a constant-velocity Kalman filter per track on
(centre x, centre y, aspect, height); high-score detections are matched first to every live track by IoU
(Hungarian assignment, scipy), then low-score detections to the tracks still unmatched, which keeps people through
partial occlusion; unmatched high-score detections start tracks. The kept implementations (supervision's, and
roboflow ``trackers``) require ``opencv-python``, which cannot live beside our ``opencv-python-headless`` (both
install ``cv2``), so they do not fit our dependencies.

Two changes for analyze mode, where frames come at a few per second and the batcher drops a camera's frame when a
newer one arrives before it was detected: the filter predicts by the time elapsed (in nominal frame periods), so a
skipped frame is a longer step rather than a lost person; and a high-score detection that overlaps no prediction is
matched in a last stage by centre distance relative to the person's height (gated, sizes alike), because a person
walking across the picture at 4 frames per second moves further than their own width between frames; the same
stage pairs a box lying inside a prediction (or around it), as a small detector flips between torso and body.

Each track keeps when it was first and last seen and its recent foot points (bottom centre), which the rules use
for dwell times and line crossings.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from analytics.detections import Detections, FloatArray

_STD_POSITION = 1.0 / 20
_STD_VELOCITY = 1.0 / 160


class _Kalman:
    """Constant-velocity Kalman filter on (cx, cy, aspect, height) as in ByteTrack."""

    _update = np.eye(4, 8)

    def __init__(self, box: FloatArray) -> None:
        xyah = _to_xyah(box)
        self.mean = np.r_[xyah, np.zeros(4)]
        h = xyah[3]
        std = [2 * _STD_POSITION * h, 2 * _STD_POSITION * h, 1e-2, 2 * _STD_POSITION * h]
        std += [10 * _STD_VELOCITY * h, 10 * _STD_VELOCITY * h, 1e-5, 10 * _STD_VELOCITY * h]
        self.covariance = np.diag(np.square(std))

    def predict(self, steps: float) -> None:
        """Advance by ``steps`` nominal frame periods (fractional for early frames, several for skipped ones)."""
        h = self.mean[3]
        std = [_STD_POSITION * h, _STD_POSITION * h, 1e-2, _STD_POSITION * h]
        std += [_STD_VELOCITY * h, _STD_VELOCITY * h, 1e-5, _STD_VELOCITY * h]
        motion = np.eye(8)
        motion[:4, 4:] = steps * np.eye(4)
        self.mean = motion @ self.mean
        self.covariance = motion @ self.covariance @ motion.T + steps * np.diag(np.square(std))

    def update(self, box: FloatArray) -> None:
        h = self.mean[3]
        noise = np.diag(np.square([_STD_POSITION * h, _STD_POSITION * h, 1e-1, _STD_POSITION * h]))
        projected_cov = self._update @ self.covariance @ self._update.T + noise
        gain = self.covariance @ self._update.T @ np.linalg.inv(projected_cov)
        self.mean = self.mean + gain @ (_to_xyah(box) - self._update @ self.mean)
        self.covariance = self.covariance - gain @ projected_cov @ gain.T

    def box(self) -> FloatArray:
        cx, cy, a, h = self.mean[:4]
        w = a * h
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], np.float32)


def _to_xyah(box: FloatArray) -> npt.NDArray[np.float64]:
    w, h = max(float(box[2] - box[0]), 1e-6), max(float(box[3] - box[1]), 1e-6)
    return np.array([box[0] + w / 2, box[1] + h / 2, w / h, h])


def iou_matrix(a: FloatArray, b: FloatArray) -> npt.NDArray[np.float64]:
    """Pairwise IoU of xyxy boxes ``a`` (N x 4) and ``b`` (M x 4)."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    result: npt.NDArray[np.float64] = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    return result


def centre_shift_matrix(a: FloatArray, b: FloatArray, max_shift: float) -> npt.NDArray[np.float64]:
    """Cost of pairing xyxy boxes ``a`` (N x 4) with ``b`` (M x 4) when they hardly overlap: the distance between
    their centres in heights of the taller. Finite only for boxes of alike height (ratio within 1.5) at most
    ``max_shift`` apart, the same person further along; or where the smaller box lies mostly (70 %) inside the
    larger, a small detector flipping between a person's torso and whole body."""
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    ca = np.stack([(a[:, 0] + a[:, 2]) / 2, (a[:, 1] + a[:, 3]) / 2], axis=1)
    cb = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
    ha = np.maximum(a[:, 3] - a[:, 1], 1e-6)[:, None]
    hb = np.maximum(b[:, 3] - b[:, 1], 1e-6)[None, :]
    shift = np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=2) / np.maximum(ha, hb)
    alike = (ha / hb >= 2 / 3) & (ha / hb <= 1.5) & (shift <= max_shift)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]))[:, None]
    area_b = ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[None, :]
    nested = inter >= 0.7 * np.maximum(np.minimum(area_a, area_b), 1e-12)
    result: npt.NDArray[np.float64] = np.where(alike | nested, shift, np.inf)
    return result


@dataclass
class Track:
    """One tracked object."""

    track_id: int
    class_id: int
    first_seen: datetime
    last_seen: datetime
    score: float
    box: FloatArray
    kalman: _Kalman = field(repr=False)
    predicted_at: datetime = field(repr=False)
    """The time the filter's state is for (advanced to every frame's time)."""
    feet: deque[tuple[datetime, float, float]] = field(default_factory=lambda: deque(maxlen=64), repr=False)
    """Recent foot points (bottom centre, normalised) with their times."""
    lost_since: datetime | None = None

    def foot(self) -> tuple[float, float]:
        """The bottom centre of the latest box."""
        return float((self.box[0] + self.box[2]) / 2), float(self.box[3])


def _assign(cost: npt.NDArray[np.float64], limit: float) -> list[tuple[int, int]]:
    """Minimum-cost pairs (row, column) with cost at most ``limit``."""
    if cost.size == 0:
        return []
    finite = np.isfinite(cost)
    rows, cols = linear_sum_assignment(np.where(finite, cost, 1e9))  # infinite: never a pair
    return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if finite[r, c] and cost[r, c] <= limit]


class ByteTracker:
    """Tracks one camera's detections over time. Not thread-safe: one camera's frames arrive in order.

    ``match_iou`` is lower than ByteTrack's usual 0.2: frames come at a few per second in analyze mode, so boxes
    move further between frames, and a small detector flips between a person's whole body and torso.
    ``frame_s`` is the nominal time between frames (the ingest's analyze interval) the motion model steps by;
    ``max_centre_shift`` gates the last, centre-distance stage: how far from its predicted centre, in the track's
    heights, a detection may be.
    """

    def __init__(
        self,
        *,
        high_score: float = 0.35,
        match_iou: float = 0.1,
        low_match_iou: float = 0.5,
        lost_timeout_s: float = 3.0,
        frame_s: float = 0.2,
        max_centre_shift: float = 0.6,
    ) -> None:
        if frame_s <= 0:
            raise ValueError(f"frame_s must be positive, not {frame_s}")
        self.high_score = high_score
        self.match_iou = match_iou
        self.low_match_iou = low_match_iou
        self.lost_timeout_s = lost_timeout_s
        self.frame_s = frame_s
        self.max_centre_shift = max_centre_shift
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def tracks(self) -> list[Track]:
        """Tracks seen in the latest frame."""
        return [t for t in self._tracks if t.lost_since is None]

    def update(self, detections: Detections) -> Detections:
        """Match ``detections`` to the tracks; returns them with tracker ids (-1: a low score left unmatched)."""
        at = detections.captured_at
        for track in self._tracks:
            elapsed = (at - track.predicted_at).total_seconds()
            track.kalman.predict(max(elapsed, 0.0) / self.frame_s)
            track.predicted_at = at
        ids = np.full(len(detections), -1, np.int32)
        boxes, scores, classes = detections.boxes, detections.scores, detections.class_ids
        high = np.flatnonzero(scores >= self.high_score)
        low = np.flatnonzero(scores < self.high_score)
        unmatched_tracks = list(range(len(self._tracks)))

        def match(candidates: npt.NDArray[np.intp], pool: list[int], by_centre: bool, limit: float) -> list[int]:
            if not len(candidates) or not pool:
                return [int(d) for d in candidates]
            predicted = np.array([self._tracks[i].kalman.box() for i in pool], np.float32)
            if by_centre:
                cost = centre_shift_matrix(boxes[candidates], predicted, self.max_centre_shift)
            else:
                cost = 1.0 - iou_matrix(boxes[candidates], predicted)
            pool_classes = np.array([self._tracks[i].class_id for i in pool])
            same_class = classes[candidates][:, None] == pool_classes[None, :]
            cost[~same_class] = np.inf
            pairs = _assign(cost, limit)
            for d, t in pairs:
                self._hit(self._tracks[pool[t]], boxes[candidates[d]], float(scores[candidates[d]]), at)
                ids[candidates[d]] = self._tracks[pool[t]].track_id
            taken = {pool[t] for _, t in pairs}
            pool[:] = [i for i in pool if i not in taken]
            matched = {p[0] for p in pairs}
            return [int(candidates[d]) for d in range(len(candidates)) if d not in matched]

        unmatched_high = match(high, unmatched_tracks, False, 1.0 - self.match_iou)
        live = [i for i in unmatched_tracks if self._tracks[i].lost_since is None]
        match(low, live, False, 1.0 - self.low_match_iou)
        taken_by_low = {i for i in unmatched_tracks if self._tracks[i].last_seen == at}
        remaining = [i for i in unmatched_tracks if i not in taken_by_low]
        fresh = match(np.array(unmatched_high, np.intp), remaining, True, np.inf)
        for track in self._tracks:
            if track.last_seen != at and track.lost_since is None:
                track.lost_since = at  # matched by no stage
        for d in fresh:
            track = Track(
                self._next_id,
                int(classes[d]),
                at,
                at,
                float(scores[d]),
                boxes[d].copy(),
                _Kalman(boxes[d]),
                at,
            )
            track.feet.append((at, *track.foot()))
            self._next_id += 1
            self._tracks.append(track)
            ids[d] = track.track_id
        self._tracks = [
            t
            for t in self._tracks
            if t.lost_since is None or (at - t.lost_since).total_seconds() <= self.lost_timeout_s
        ]
        return detections.with_tracker_ids(ids)

    @staticmethod
    def _hit(track: Track, box: FloatArray, score: float, at: datetime) -> None:
        track.kalman.update(box)
        track.box = box.copy()
        track.score = score
        track.last_seen = at
        track.lost_since = None
        track.feet.append((at, *track.foot()))
