"""The pipeline follows the console's rules file: new, changed and removed rules apply without a restart."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import create_engine

from analytics.events import EventRecorder
from analytics.pipeline import AnalyticsPipeline
from analytics.rules import RuleEvent
from config import Settings
from config.rules import CameraRulesConfig
from config.rules_file import rules_file_path, write_camera_rules
from kernel.bus import InMemoryBus
from kernel.db import make_session_factory
from tests.analytics.test_tracking_and_batching import CountingDetector

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
POST = {"name": "post", "polygon": [[0, 0], [0.5, 0], [0.5, 0.5]]}


class CollectingRecorder(EventRecorder):
    """Keeps the events instead of writing them."""

    def __init__(self) -> None:
        super().__init__(make_session_factory(create_engine("sqlite://")), InMemoryBus(), source="test")
        self.events: list[RuleEvent] = []

    def record(self, event: RuleEvent, jpeg: bytes | None) -> None:
        self.events.append(event)


def guard_rules(absent_s: float) -> CameraRulesConfig:
    rule = {"type": "guard_post_empty", "name": "post empty", "zone": "post", "absent_s": absent_s}
    return CameraRulesConfig.model_validate({"zones": [POST], "rules": [rule]})


def test_rules_file_changes_apply_to_a_running_pipeline(settings: Settings) -> None:
    settings = settings.model_copy(
        update={"analytics": settings.analytics.model_validate({"batch": {"max_batch": 1, "max_wait_ms": 0}})}
    )
    path = rules_file_path(settings.data_dir)
    write_camera_rules(path, "CAM", guard_rules(5))
    recorder = CollectingRecorder()
    done = threading.Semaphore(0)
    pipeline = AnalyticsPipeline(
        settings, recorder, detector=CountingDetector(("person",)), on_result=lambda *_: done.release()
    )
    assert pipeline.analyze_cameras(T0) == {"CAM"}
    pipeline.batcher.start()
    try:
        for i in range(8):  # nobody at the post for 7 s: the event starts
            pipeline.on_frame("CAM", T0 + timedelta(seconds=i), np.zeros((16, 16, 3), np.uint8))
            assert done.acquire(timeout=5)
        assert [(e.kind, e.type) for e in recorder.events] == [("started", "guard_post_empty")]

        # An unrelated camera added: CAM keeps its state (no event ends, none starts again).
        write_camera_rules(path, "OTHER", guard_rules(60))
        assert pipeline.analyze_cameras(T0) == {"CAM", "OTHER"}
        assert len(recorder.events) == 1

        # CAM's rules changed: its open event ends, the new rules start from scratch.
        write_camera_rules(path, "CAM", guard_rules(600))
        assert pipeline.analyze_cameras(T0) == {"CAM", "OTHER"}
        assert [e.kind for e in recorder.events] == ["started", "ended"]

        # Removed: no longer analysed, and a late frame of it is dropped.
        write_camera_rules(path, "CAM", None)
        assert pipeline.analyze_cameras(T0) == {"OTHER"}
        pipeline.on_frame("CAM", T0 + timedelta(seconds=9), np.zeros((16, 16, 3), np.uint8))
    finally:
        pipeline.batcher.stop()
    assert len(recorder.events) == 2


def test_a_broken_rules_file_keeps_the_rules_in_force(settings: Settings) -> None:
    path = rules_file_path(settings.data_dir)
    write_camera_rules(path, "CAM", guard_rules(5))
    pipeline = AnalyticsPipeline(settings, CollectingRecorder(), detector=CountingDetector(("person",)))
    path.write_text("cameras:\n  CAM: {rules: [{type: nonsense}]}\n", encoding="utf-8")
    assert pipeline.analyze_cameras(T0) == {"CAM"}
    path.unlink()
    assert pipeline.analyze_cameras(T0) == set()
