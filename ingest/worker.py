"""One ingest worker: its share of the fleet read, diagnosed, thumbnailed, and its health stored and published.

Start order: health recorder, reader pool, shard watcher (which hands the pool its cameras), housekeeping (signal
loss checks; read modes). :meth:`IngestWorker.stop` stops them in reverse order, each with a bounded wait.

Analyze-mode frames go to a :class:`FrameConsumer` (the analytics pipeline, wired in by whoever composes the
process), which also says which cameras need analyze mode now; the worker switches its readers accordingly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from config import Settings
from config.diagnosis import DiagnosisConfig
from ingest.diagnosis import CameraDiagnosis
from ingest.fleet import CameraTarget, FleetCache
from ingest.membership import Membership
from ingest.models import FaultChange, HealthReason, HealthState, Image, Keyframe, ReadMode, StreamFigures
from ingest.pool import ReaderPool
from ingest.reader import ReaderSettings, StreamSink
from ingest.recorder import HealthRecorder
from ingest.sharding import ShardWatcher
from ingest.thumbnails import Thumbnail, ThumbnailStore, encode_jpeg
from kernel.bus import EventBus
from kernel.clock import utcnow
from kernel.secrets import SecretBox

log = logging.getLogger(__name__)

_SILENCE_CHECK_S = 1.0


class FrameConsumer(Protocol):
    """Who takes analyze-mode frames (the analytics pipeline)."""

    def analyze_cameras(self, at: datetime) -> set[str]:
        """The cameras that need analyze mode at ``at``."""
        ...

    def on_frame(self, code: str, at: datetime, image: Image) -> None:
        """A decoded frame of a camera in analyze mode; called from reader threads, must not block."""
        ...


class FrameService(FrameConsumer, Protocol):
    """A frame consumer with a lifecycle: started before the worker, stopped after it."""

    def start(self) -> None:
        """Start its threads."""
        ...

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop its threads, waiting at most ``timeout_s``."""
        ...


FrameServiceFactory = Callable[[Settings, "sessionmaker[Session]", EventBus, str], FrameService | None]
"""Builds the frame service of a worker process (settings, sessions, bus, worker id); None: no analytics.

A module-level function, so that spawned worker processes receive it by reference."""


def reader_settings(settings: Settings) -> ReaderSettings:
    """The readers' settings from the ``ingest`` section."""
    cfg = settings.ingest
    return ReaderSettings(
        open_timeout_s=cfg.open_timeout_s,
        read_timeout_s=cfg.read_timeout_s,
        backoff_initial_s=cfg.backoff_initial_s,
        backoff_max_s=cfg.backoff_max_s,
        stable_after_s=cfg.stable_after_s,
        no_keyframe_s=cfg.no_keyframe_s,
        analyze_fps=cfg.analyze_fps,
        watch_keyframe_every_s=cfg.watch_keyframe_every_s,
    )


class FleetSink(StreamSink):
    """Routes what readers produce: thumbnails, diagnosis, health records."""

    def __init__(
        self,
        recorder: HealthRecorder,
        thumbnails: ThumbnailStore,
        diagnosis: DiagnosisConfig,
        targets: FleetCache,
        *,
        jpeg_quality: int,
        frames: FrameConsumer | None = None,
    ) -> None:
        self._frames = frames
        self._recorder = recorder
        self._thumbnails = thumbnails
        self._diagnosis_config = diagnosis
        self._targets = targets
        self._jpeg_quality = jpeg_quality
        self._lock = threading.Lock()
        self._diagnoses: dict[str, CameraDiagnosis] = {}
        self._online: set[str] = set()  # cameras connected now
        self._last_jpeg: dict[str, bytes] = {}

    def on_state(self, code: str, state: HealthState, reason: HealthReason, detail: str) -> None:
        self._recorder.transition(code, state, reason, detail)
        with self._lock:
            if state is HealthState.OFFLINE:
                self._online.discard(code)
            else:
                self._online.add(code)

    def on_keyframe(self, keyframe: Keyframe) -> None:
        jpeg = encode_jpeg(keyframe.image, self._jpeg_quality)
        self._thumbnails.put(keyframe.camera_code, Thumbnail(jpeg, keyframe.captured_at))
        diagnosis = self._diagnosis(keyframe.camera_code)
        with self._lock:
            self._last_jpeg[keyframe.camera_code] = jpeg
        if diagnosis is not None:
            self._faults(diagnosis.update(keyframe), jpeg)

    def on_frame(self, code: str, at: datetime, image: Image) -> None:
        """Analyze-mode frames go to the frame consumer (analytics)."""
        if self._frames is not None:
            self._frames.on_frame(code, at, image)

    def check_silence(self, since_keyframe: Mapping[str, float]) -> None:
        """Raise signal loss for connected cameras whose keyframes stopped coming.

        ``since_keyframe``: seconds since each connected camera's last keyframe *arrived* (watch mode decodes only
        a sample of them, so the decoded ones do not tell).
        """
        with self._lock:
            quiet = [(code, since_keyframe[code]) for code in self._online if code in since_keyframe]
        for code, silent_s in quiet:
            diagnosis = self._diagnosis(code)
            if diagnosis is not None:
                with self._lock:
                    jpeg = self._last_jpeg.get(code)
                self._faults(diagnosis.silence(utcnow(), silent_s), jpeg)

    def forget(self, code: str) -> None:
        """Drop the state of a camera this worker no longer reads."""
        with self._lock:
            self._diagnoses.pop(code, None)
            self._online.discard(code)
            self._last_jpeg.pop(code, None)

    def _faults(self, changes: list[FaultChange], jpeg: bytes | None) -> None:
        for change in changes:
            self._recorder.fault(change, jpeg if change.active else None)

    def _diagnosis(self, code: str) -> CameraDiagnosis | None:
        if not self._diagnosis_config.enabled:
            return None
        with self._lock:
            diagnosis = self._diagnoses.get(code)
        if diagnosis is not None:
            return diagnosis
        target = self._targets.targets().get(code)
        if target is None:
            return None
        diagnosis = CameraDiagnosis.from_config(code, target.scene_type, self._diagnosis_config)
        with self._lock:
            return self._diagnoses.setdefault(code, diagnosis)


class IngestWorker:
    """Reads this worker's share of the fleet until stopped."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        bus: EventBus,
        thumbnails: ThumbnailStore,
        membership: Membership,
        *,
        box: SecretBox | None = None,
        flush_s: float = 1.0,
        frames: FrameConsumer | None = None,
        analyze_check_s: float = 5.0,
    ) -> None:
        cfg = settings.ingest
        self.worker_id = membership.worker_id
        self._fleet = FleetCache(
            session_factory,
            box or SecretBox.for_data_dir(settings.data_dir),
            refresh_s=cfg.fleet_refresh_s,
            prefer_sub_stream=cfg.prefer_sub_stream,
        )
        self._settings = settings
        self._pool: ReaderPool | None = None
        self._recorder = HealthRecorder(
            session_factory,
            bus,
            worker_id=self.worker_id,
            camera_ids=self._fleet.camera_ids,
            figures=self._figures,
            flush_s=flush_s,
            figures_every_s=cfg.figures_every_s,
        )
        self._sink = FleetSink(
            self._recorder,
            thumbnails,
            settings.diagnosis,
            self._fleet,
            jpeg_quality=cfg.thumbnail_quality,
            frames=frames,
        )
        self._frames = frames
        self._analyze_check_s = analyze_check_s
        self._pool = ReaderPool(
            self._sink,
            reader_settings(settings),
            max_concurrent_opens=cfg.max_concurrent_opens,
            on_removed=self._sink.forget,
        )
        self._watcher = ShardWatcher(
            membership,
            codes=lambda: self._fleet.targets().keys(),
            on_change=self._assignment_changed,
            heartbeat_s=cfg.heartbeat_s,
        )
        self._stop = threading.Event()
        self._silence: threading.Thread | None = None

    def _figures(self) -> dict[str, StreamFigures]:
        return dict(self._pool.figures()) if self._pool is not None else {}

    def _assignment_changed(self, added: set[str], removed: set[str]) -> None:
        assert self._pool is not None
        targets = self._fleet.targets()
        mine = (self._pool.codes() | added) - removed
        self._pool.apply({code: targets[code] for code in mine if code in targets})
        log.info("worker %s reads %d cameras (+%d -%d)", self.worker_id, len(mine), len(added), len(removed))
        if added:
            self.apply_modes()

    def start(self) -> None:
        """Start reading (returns at once; cameras connect in the background)."""
        self._recorder.start()
        self._watcher.start()
        self._silence = threading.Thread(target=self._housekeeping, name="ingest-housekeeping")
        self._silence.start()

    def _housekeeping(self) -> None:
        next_modes = 0.0
        while not self._stop.wait(_SILENCE_CHECK_S):
            if self._pool is None:
                continue
            self._sink.check_silence(self._pool.since_keyframe())
            if self._frames is not None and time.monotonic() >= next_modes:
                next_modes = time.monotonic() + self._analyze_check_s
                self.apply_modes()

    def apply_modes(self) -> None:
        """Read the cameras the frame consumer needs now in analyze mode, the others in watch mode."""
        if self._frames is None or self._pool is None:
            return
        wanted = self._frames.analyze_cameras(utcnow())
        for code in self._pool.codes():
            self._pool.set_mode(code, ReadMode.ANALYZE if code in wanted else ReadMode.WATCH)

    def set_mode(self, code: str, mode: ReadMode) -> bool:
        """Switch a camera this worker reads between watch and analyze; False if it reads no such camera."""
        return self._pool.set_mode(code, mode) if self._pool is not None else False

    def mode(self, code: str) -> ReadMode | None:
        """The read mode of a camera this worker reads (None if it does not read it)."""
        return self._pool.mode(code) if self._pool is not None else None

    def since_keyframe(self) -> dict[str, float]:
        """Seconds since each connected camera's last keyframe arrived."""
        return self._pool.since_keyframe() if self._pool is not None else {}

    def reading(self) -> set[str]:
        """Codes of the cameras this worker reads now."""
        return self._pool.codes() if self._pool is not None else set()

    def targets(self) -> Mapping[str, CameraTarget]:
        """The fleet as this worker last read it."""
        return self._fleet.targets()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop in reverse start order: silence check, shard watcher (leaves the fleet), readers, recorder."""
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        if self._silence is not None:
            self._silence.join(_SILENCE_CHECK_S * 2)
        self._watcher.stop(timeout_s=max(0.5, min(3.0, deadline - time.monotonic())), leave=True)
        if self._pool is not None:
            self._pool.stop(timeout_s=max(0.5, deadline - time.monotonic() - 1.0))
        self._recorder.stop(timeout_s=max(0.5, deadline - time.monotonic()))
        log.info("ingest worker %s stopped", self.worker_id)
