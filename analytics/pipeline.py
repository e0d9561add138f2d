"""The detection pipeline: frames from many cameras -> batches -> detector -> tracker -> rules -> events.

Reader threads hand frames to :meth:`AnalyticsPipeline.on_frame`, which never blocks: each camera has at most one
frame waiting (a newer one replaces it, counted as dropped), so a slow detector costs frames, never latency. One
batching thread takes up to ``max_batch`` waiting frames, oldest first, as soon as the batch is full or the oldest
has waited ``max_wait_ms``, and runs them through one inference call; tracking and rules follow per camera, in
time order. Events go to the :class:`~analytics.events.EventRecorder`.

:meth:`AnalyticsPipeline.analyze_cameras` tells the ingest worker which cameras have an active rule now: only
those are read in analyze mode.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from analytics.detections import Detections, Frame, Image
from analytics.detectors.base import Detector, create_detector
from analytics.errors import AnalyticsError
from analytics.events import EventRecorder, evidence_jpeg
from analytics.rules import CameraRules, RuleEvent
from analytics.tracking import ByteTracker
from config import Settings
from config.analytics import BatchConfig
from kernel.calendar import SchoolCalendar
from kernel.clock import utcnow

log = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """Counters of the batching thread."""

    frames_in: int = 0
    frames_replaced: int = 0
    frames_done: int = 0
    batches: int = 0
    failures: int = 0

    def mean_batch(self) -> float:
        """Frames per inference call."""
        return self.frames_done / self.batches if self.batches else 0.0


class FrameBatcher:
    """Latest frame per camera waits; one thread processes them in batches."""

    def __init__(self, process: Callable[[list[Frame]], None], config: BatchConfig) -> None:
        self._process = process
        self._max_batch = config.max_batch
        self._max_wait_s = config.max_wait_ms / 1000
        self._waiting: OrderedDict[str, tuple[float, Frame]] = OrderedDict()
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = BatchStats()

    def submit(self, frame: Frame) -> None:
        """Queue ``frame``, replacing its camera's waiting frame (which keeps its place in line)."""
        with self._ready:
            self.stats.frames_in += 1
            previous = self._waiting.get(frame.camera_code)
            if previous is not None:
                self.stats.frames_replaced += 1
                self._waiting[frame.camera_code] = (previous[0], frame)
            else:
                self._waiting[frame.camera_code] = (time.monotonic(), frame)
            if len(self._waiting) >= self._max_batch or len(self._waiting) == 1:
                self._ready.notify()  # a full batch, or the first frame whose wait starts now

    def start(self) -> None:
        """Start the batching thread."""
        self._thread = threading.Thread(target=self._run, name="detect-batches")
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop after the batch in progress; waiting frames are dropped."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.error("detection batching thread did not stop within %.1f s", timeout_s)

    def _take(self) -> list[Frame]:
        with self._ready:
            while not self._stop.is_set():
                if self._waiting:
                    oldest = next(iter(self._waiting.values()))[0]
                    left = oldest + self._max_wait_s - time.monotonic()
                    if len(self._waiting) >= self._max_batch or left <= 0:
                        break
                    self._ready.wait(left)
                else:
                    self._ready.wait(0.5)
            if self._stop.is_set():
                return []
            batch: list[Frame] = []
            while self._waiting and len(batch) < self._max_batch:
                batch.append(self._waiting.popitem(last=False)[1][1])
            return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._take()
            if not batch:
                continue
            try:
                self._process(batch)
            except AnalyticsError as err:
                self.stats.failures += 1
                log.error("a batch of %d frames failed: %s", len(batch), err)
            self.stats.batches += 1
            self.stats.frames_done += len(batch)


class AnalyticsPipeline:
    """Detection, tracking and rules for the cameras that have rules (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        recorder: EventRecorder,
        *,
        detector: Detector | None = None,
        fall_detector: Detector | None = None,
        on_result: Callable[[Frame, Detections, list[RuleEvent]], None] | None = None,
    ) -> None:
        cfg = settings.analytics
        models_dir = settings.models_dir()
        self.detector = detector or create_detector(cfg.detector, models_dir)
        wants_fall = any(r.type == "fall" for camera in cfg.cameras.values() for r in camera.rules)
        if fall_detector is None and wants_fall and cfg.fall_detector is not None:
            fall_detector = create_detector(cfg.fall_detector, models_dir)
        if wants_fall and fall_detector is None:
            raise AnalyticsError("a fall rule is configured but analytics.fall_detector is none")
        self.fall_detector = fall_detector
        self.calendar = SchoolCalendar(cfg.calendar)
        self._rules = {code: CameraRules(code, rules, self.calendar) for code, rules in cfg.cameras.items()}
        self._trackers = {code: ByteTracker() for code in self._rules}
        self._fall_every_s = cfg.fall_every_s
        self._last_falls: dict[str, Detections] = {}  # camera -> the fall model's latest result
        self._recorder = recorder
        self._on_result = on_result
        self.batcher = FrameBatcher(self._process, cfg.batch)

    def analyze_cameras(self, at: datetime) -> set[str]:
        """Cameras with a rule active at ``at`` (to be read in analyze mode)."""
        return {code for code, rules in self._rules.items() if rules.active(at)}

    def on_frame(self, code: str, at: datetime, image: Image) -> None:
        """A decoded frame from a reader thread (never blocks)."""
        if code in self._rules:
            self.batcher.submit(Frame(code, at, image))

    def start(self) -> None:
        """Start the event recorder, then the batching thread."""
        self._recorder.start()
        self.batcher.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop in reverse order: batching, then the recorder (which writes what is queued, open events ended)."""
        deadline = time.monotonic() + timeout_s
        self.batcher.stop(max(0.5, timeout_s / 2))
        # Events still going on end now (at the last frame that showed them), so none stays open for ever.
        now = utcnow()
        for rules in self._rules.values():
            for event in rules.close(now):
                self._recorder.record(event, None)
        self._recorder.stop(max(0.5, deadline - time.monotonic()))
        for detector in (self.detector, self.fall_detector):
            if detector is not None:
                detector.close()

    def _process(self, frames: list[Frame]) -> None:
        detections = self.detector.detect(frames)
        falls = self._falls(frames)
        for frame, found in zip(frames, detections, strict=True):
            tracked = self._trackers[frame.camera_code].update(found)
            events = self._rules[frame.camera_code].evaluate(
                frame.captured_at, tracked, falls.get(frame.camera_code)
            )
            for event in events:
                jpeg = evidence_jpeg(frame.image, event) if event.kind == "started" else None
                self._recorder.record(event, jpeg)
                log.info(
                    "%s %s on %s (%s %s)", event.type, event.kind, event.camera_code, event.zone, event.detail
                )
            if self._on_result is not None:
                self._on_result(frame, tracked, events)

    def _falls(self, frames: Sequence[Frame]) -> dict[str, Detections]:
        """The fall model's view of each frame that needs it: run at most once per fall_every_s per camera."""
        if self.fall_detector is None:
            return {}
        wanted = [f for f in frames if self._rules[f.camera_code].wants_fall_model(f.captured_at)]
        due = [
            f
            for f in wanted
            if (last := self._last_falls.get(f.camera_code)) is None
            or (f.captured_at - last.captured_at).total_seconds() >= self._fall_every_s
        ]
        for frame, found in zip(due, self.fall_detector.detect(due), strict=True):
            self._last_falls[frame.camera_code] = found
        return {f.camera_code: self._last_falls[f.camera_code] for f in wanted}
