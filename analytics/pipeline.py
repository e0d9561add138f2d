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
from collections.abc import Callable, Mapping, Sequence
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
from config.rules import CameraRulesConfig, FallRule
from config.rules_file import RulesFileWatcher, rules_file_path
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
        self._settings = settings
        # The configured rules, with the console's rules file over them (re-read when it changes).
        self._rules_file = RulesFileWatcher(rules_file_path(settings.data_dir), cfg.cameras)
        cameras = self._rules_file.current()
        models_dir = settings.models_dir()
        self.detector = detector or create_detector(cfg.detector, models_dir)
        wants_fall = any(_has_fall(camera) for camera in cameras.values())
        if fall_detector is None and wants_fall and cfg.fall_detector is not None:
            fall_detector = create_detector(cfg.fall_detector, models_dir)
        if wants_fall and fall_detector is None:
            raise AnalyticsError("a fall rule is configured but analytics.fall_detector is none")
        self.fall_detector = fall_detector
        self.calendar = SchoolCalendar(cfg.calendar)
        # Swapped whole by reload_rules (another thread); _rules_lock keeps a frame's rules step and a swap apart.
        self._rules_lock = threading.Lock()
        self._rules = {code: CameraRules(code, rules, self.calendar) for code, rules in cameras.items()}
        # The motion model steps by the analyze interval; frames the batcher skipped are longer steps.
        self._frame_s = 1.0 / settings.ingest.analyze_fps
        self._trackers = {code: ByteTracker(frame_s=self._frame_s) for code in self._rules}
        self._fall_every_s = cfg.fall_every_s
        self._last_falls: dict[str, Detections] = {}  # camera -> the fall model's latest result
        self._recorder = recorder
        self._on_result = on_result
        self.batcher = FrameBatcher(self._process, cfg.batch)

    def analyze_cameras(self, at: datetime) -> set[str]:
        """Cameras with a rule active at ``at`` (to be read in analyze mode). Called every
        ``analytics.analyze_check_s`` by the ingest worker, so it also applies a changed rules file first."""
        changed = self._rules_file.poll()
        if changed is not None:
            self.reload_rules(changed)
        return {code for code, rules in self._rules.items() if rules.active(at)}

    def reload_rules(self, cameras: Mapping[str, CameraRulesConfig]) -> None:
        """Put ``cameras`` in force: a camera whose rules are unchanged keeps its state (open events, tracks);
        a changed or removed one ends its open events first. A fall rule with no fall model available keeps that
        camera's old rules (logged)."""
        wanted = dict(cameras)
        if self.fall_detector is None and any(_has_fall(c) for c in wanted.values()):
            self.fall_detector = self._fall_detector_or_none()
            if self.fall_detector is None:
                for code in [c for c, rules in wanted.items() if _has_fall(rules)]:
                    log.error("camera %s: its fall rule needs the fall model; its old rules stay", code)
                    old = self._rules.get(code)
                    if old is None:
                        del wanted[code]
                    else:
                        wanted[code] = old.config
        now = utcnow()
        with self._rules_lock:
            rules: dict[str, CameraRules] = {}
            for code, config in wanted.items():
                old = self._rules.get(code)
                rules[code] = (
                    old if old is not None and old.config == config else CameraRules(code, config, self.calendar)
                )
            for code, old in self._rules.items():
                if rules.get(code) is not old:
                    for event in old.close(now):
                        self._recorder.record(event, None)
            self._trackers = {
                code: self._trackers.get(code) or ByteTracker(frame_s=self._frame_s) for code in rules
            }
            self._rules = rules
        log.info("analytics rules reloaded: %d cameras with rules", len(rules))

    def _fall_detector_or_none(self) -> Detector | None:
        config = self._settings.analytics.fall_detector
        if config is None:
            return None
        try:
            return create_detector(config, self._settings.models_dir())
        except AnalyticsError as err:
            log.error("the fall model cannot be loaded: %s", err)
            return None

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
        with self._rules_lock:
            for rules in self._rules.values():
                for event in rules.close(now):
                    self._recorder.record(event, None)
        self._recorder.stop(max(0.5, deadline - time.monotonic()))
        for detector in (self.detector, self.fall_detector):
            if detector is not None:
                detector.close()

    def _process(self, frames: list[Frame]) -> None:
        known = self._rules
        frames = [f for f in frames if f.camera_code in known]  # its rules may have been removed meanwhile
        if not frames:
            return
        detections = self.detector.detect(frames)
        falls = self._falls(frames)
        for frame, found in zip(frames, detections, strict=True):
            with self._rules_lock:
                camera_rules = self._rules.get(frame.camera_code)
                if camera_rules is None:
                    continue
                tracked = self._trackers[frame.camera_code].update(found)
                events = camera_rules.evaluate(frame.captured_at, tracked, falls.get(frame.camera_code))
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
        known = self._rules
        wanted = [
            f for f in frames if f.camera_code in known and known[f.camera_code].wants_fall_model(f.captured_at)
        ]
        due = [
            f
            for f in wanted
            if (last := self._last_falls.get(f.camera_code)) is None
            or (f.captured_at - last.captured_at).total_seconds() >= self._fall_every_s
        ]
        for frame, found in zip(due, self.fall_detector.detect(due), strict=True):
            self._last_falls[frame.camera_code] = found
        return {f.camera_code: self._last_falls[f.camera_code] for f in wanted}


def _has_fall(config: CameraRulesConfig) -> bool:
    return any(isinstance(rule, FallRule) for rule in config.rules)
