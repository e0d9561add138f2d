"""ByteTrack keeps identities through crossings and missed frames; the batcher bounds waiting and batch size."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import create_engine

from analytics.detections import Detections, Frame
from analytics.detectors.base import Decoded, Detector
from analytics.events import EventRecorder
from analytics.pipeline import AnalyticsPipeline, FrameBatcher
from analytics.tracking import ByteTracker
from analytics.yolo import Letterboxed
from config import Settings
from config.analytics import BatchConfig, OnnxDetectorConfig
from kernel.bus import InMemoryBus
from kernel.db import make_session_factory

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def boxes(at: datetime, *items: tuple[float, float, float]) -> Detections:
    """Person boxes 0.08 x 0.3 centred on (x, y) with a score each."""
    arr = np.array([[x - 0.04, y - 0.15, x + 0.04, y + 0.15] for x, y, _ in items], np.float32).reshape(-1, 4)
    scores = np.array([s for _, _, s in items], np.float32)
    return Detections("CAM", at, arr, scores, np.zeros(len(items), np.int32), ("person",))


def test_two_people_passing_keep_their_ids() -> None:
    tracker = ByteTracker()
    seen: dict[int, list[float]] = {}
    for i in range(30):
        at = T0 + timedelta(seconds=i * 0.2)
        a, b = 0.1 + 0.025 * i, 0.9 - 0.025 * i  # walking towards each other, passing at i = 16
        tracked = tracker.update(boxes(at, (a, 0.5, 0.8), (b, 0.55, 0.7)))
        assert tracked.tracker_ids is not None
        for track_id, box in zip(tracked.tracker_ids, tracked.boxes, strict=True):
            seen.setdefault(int(track_id), []).append(float(box[0] + box[2]) / 2)
    assert sorted(seen) == [1, 2]
    first, second = seen[1], seen[2]
    assert first[0] < first[-1] and second[0] > second[-1], "each id keeps walking its own way"


def test_missed_frames_and_low_scores_keep_the_track() -> None:
    tracker = ByteTracker(lost_timeout_s=2.0)
    ids = []
    for i in range(20):
        at = T0 + timedelta(seconds=i * 0.25)
        if 8 <= i < 12:
            tracked = tracker.update(boxes(at))  # four frames with no detection (1 s)
        else:
            score = 0.2 if i % 3 == 2 else 0.7  # every third frame a weak detection: kept by the second stage
            tracked = tracker.update(boxes(at, (0.5 + 0.005 * i, 0.5, score)))
        assert tracked.tracker_ids is not None
        ids += tracked.tracker_ids.tolist()
    assert set(ids) == {1}
    assert len(tracker.tracks) == 1


def walker(at: datetime, x: float, *, width: float = 0.04, height: float = 0.3, y: float = 0.55) -> Detections:
    """One person box ``width`` x ``height`` centred on (x, y), score 0.8."""
    arr = np.array([[x - width / 2, y - height / 2, x + width / 2, y + height / 2]], np.float32)
    return Detections("CAM", at, arr, np.array([0.8], np.float32), np.zeros(1, np.int32), ("person",))


def test_a_walker_faster_than_their_width_keeps_one_id_through_skipped_frames() -> None:
    # 4 frames/s, 0.037 of the width per frame (the line_crossing scene's intruder): further than the box is wide,
    # so no two consecutive boxes overlap; and the batcher skipped frames 6, 10, 11 (a busy detector).
    tracker = ByteTracker(frame_s=0.25)
    ids = []
    for i in range(22):
        if i in (6, 10, 11):
            continue
        tracked = tracker.update(walker(T0 + timedelta(seconds=i * 0.25), 0.1 + 0.037 * i))
        assert tracked.tracker_ids is not None
        ids += tracked.tracker_ids.tolist()
    assert set(ids) == {1}


def test_two_fast_people_passing_keep_their_ids() -> None:
    tracker = ByteTracker(frame_s=0.25)
    seen: dict[int, list[float]] = {}
    for i in range(20):
        if i == 9:
            continue  # skipped next to where they pass
        at = T0 + timedelta(seconds=i * 0.25)
        a, b = 0.1 + 0.04 * i, 0.9 - 0.04 * i
        both = Detections(
            "CAM",
            at,
            np.array([[a - 0.02, 0.4, a + 0.02, 0.7], [b - 0.02, 0.42, b + 0.02, 0.72]], np.float32),
            np.array([0.8, 0.7], np.float32),
            np.zeros(2, np.int32),
            ("person",),
        )
        tracked = tracker.update(both)
        assert tracked.tracker_ids is not None
        for track_id, box in zip(tracked.tracker_ids, tracked.boxes, strict=True):
            seen.setdefault(int(track_id), []).append(float(box[0] + box[2]) / 2)
    assert sorted(seen) == [1, 2]
    assert all(later > earlier for earlier, later in zip(seen[1], seen[1][1:], strict=False)), seen[1]
    assert all(later < earlier for earlier, later in zip(seen[2], seen[2][1:], strict=False)), seen[2]


def test_a_detector_flipping_between_torso_and_whole_body_keeps_the_id() -> None:
    # The lingering scene as yolov3-tiny saw it in a busy run (frames skipped): a lower body box, the torso, then
    # the whole body, which overlaps the torso's prediction less than match_iou.
    seen = [
        (0.0, [0.352, 0.419, 0.407, 0.746]),
        (0.794, [0.365, 0.416, 0.416, 0.746]),
        (1.058, [0.367, 0.418, 0.418, 0.742]),
        (2.130, [0.37, 0.486, 0.425, 0.688]),
        (2.657, [0.37, 0.484, 0.425, 0.687]),
        (3.192, [0.34, 0.329, 0.457, 0.844]),
        (3.996, [0.341, 0.327, 0.454, 0.838]),
        (4.525, [0.338, 0.317, 0.448, 0.847]),
    ]
    tracker = ByteTracker(frame_s=0.25)
    ids = []
    for t, box in seen:
        found = Detections(
            "CAM",
            T0 + timedelta(seconds=t),
            np.array([box], np.float32),
            np.array([0.6], np.float32),
            np.zeros(1, np.int32),
            ("person",),
        )
        tracked = tracker.update(found)
        assert tracked.tracker_ids is not None
        ids += tracked.tracker_ids.tolist()
    assert set(ids) == {1}


def test_a_far_jump_or_another_size_is_another_person() -> None:
    tracker = ByteTracker(frame_s=0.25)
    tracker.update(walker(T0, 0.2))
    far = tracker.update(walker(T0 + timedelta(seconds=0.25), 0.6))  # 1.3 heights away in one frame
    assert far.tracker_ids is not None and far.tracker_ids.tolist() == [2]
    other = tracker.update(walker(T0 + timedelta(seconds=0.5), 0.62, width=0.02, height=0.15, y=0.3))
    assert other.tracker_ids is not None and other.tracker_ids.tolist() == [3]  # near, but half the height


def test_a_track_lost_too_long_ends() -> None:
    tracker = ByteTracker(lost_timeout_s=1.0)
    tracker.update(boxes(T0, (0.5, 0.5, 0.9)))
    tracker.update(boxes(T0 + timedelta(seconds=0.5)))
    tracker.update(boxes(T0 + timedelta(seconds=2.0)))
    again = tracker.update(boxes(T0 + timedelta(seconds=2.5), (0.5, 0.5, 0.9)))
    assert again.tracker_ids is not None and again.tracker_ids.tolist() == [2]


def frame(code: str) -> Frame:
    return Frame(code, T0, np.zeros((16, 16, 3), np.uint8))


def test_batcher_fills_batches_and_keeps_only_the_latest_frame_per_camera() -> None:
    batches: list[list[str]] = []
    release = threading.Event()

    def process(batch: list[Frame]) -> None:
        batches.append([f.camera_code for f in batch])
        release.wait(5)

    batcher = FrameBatcher(process, BatchConfig(max_batch=4, max_wait_ms=2000))
    batcher.start()
    try:
        for code in "ABCD":
            batcher.submit(frame(code))  # a full batch at once: no waiting for max_wait
        deadline = time.monotonic() + 2
        while not batches and time.monotonic() < deadline:
            time.sleep(0.01)
        assert batches == [["A", "B", "C", "D"]]
        for code in "EEEF":  # while the detector is busy, E's newer frames replace its waiting one
            batcher.submit(frame(code))
        release.set()
        deadline = time.monotonic() + 4
        while len(batches) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert batches[1] == ["E", "F"]  # after max_wait (2 s): a partial batch
    finally:
        batcher.stop()
    stats = batcher.stats
    assert (stats.frames_in, stats.frames_replaced, stats.frames_done, stats.batches) == (8, 2, 6, 2)
    assert stats.mean_batch() == 3.0


def test_batcher_max_wait_bounds_a_lone_frame() -> None:
    done = threading.Event()
    batcher = FrameBatcher(lambda batch: done.set(), BatchConfig(max_batch=8, max_wait_ms=50))
    batcher.start()
    try:
        started = time.monotonic()
        batcher.submit(frame("A"))
        assert done.wait(2)
        assert time.monotonic() - started < 0.5
    finally:
        batcher.stop()


class CountingDetector(Detector):
    """A backend that finds nothing and counts the frames it was given."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__(names, 64, OnnxDetectorConfig(input_size=64))
        self.frames = 0

    def infer(self, prepared: Letterboxed) -> Decoded:
        n = len(prepared.batch)
        self.frames += n
        return np.zeros((n, 0, 4), np.float32), np.zeros((n, 0), np.float32), np.zeros((n, 0), np.int64)


def test_fall_model_runs_once_per_fall_every_s(settings: Settings) -> None:
    rules = {"rules": [{"type": "fall", "name": "fall"}]}
    cfg = settings.model_copy(
        update={
            "analytics": settings.analytics.model_validate(
                {"cameras": {"CAM": rules}, "fall_every_s": 1.0, "batch": {"max_batch": 1, "max_wait_ms": 0}}
            )
        }
    )
    main, fall = CountingDetector(("person",)), CountingDetector(("Normal", "Fall"))
    done = threading.Semaphore(0)
    recorder = EventRecorder(make_session_factory(create_engine("sqlite://")), InMemoryBus(), source="test")
    pipeline = AnalyticsPipeline(
        cfg, recorder, detector=main, fall_detector=fall, on_result=lambda *_: done.release()
    )
    pipeline.batcher.start()
    try:
        for i in range(9):  # 2 s of frames at 4 fps
            pipeline.on_frame("CAM", T0 + timedelta(seconds=i * 0.25), np.zeros((16, 16, 3), np.uint8))
            assert done.acquire(timeout=5)
    finally:
        pipeline.batcher.stop()
    assert (main.frames, fall.frames) == (9, 3)  # at 0, 1 and 2 s
