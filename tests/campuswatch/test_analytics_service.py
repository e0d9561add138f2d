"""The deferred analytics of a fresh install: nothing loaded while no camera has rules, the pipeline started at
the first rules, a missing model logged once (not every check) and tried again when the rules change."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from campuswatch.analytics_service import DeferredAnalytics, build_analytics
from config import Settings, load_settings
from config.rules import CameraRulesConfig
from config.rules_file import rules_file_path, write_camera_rules
from kernel.bus import InMemoryBus
from kernel.db import make_session_factory

AT = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
GUARD = CameraRulesConfig.model_validate(
    {
        "zones": [{"name": "post", "polygon": [[0, 0], [0.5, 0], [0.5, 0.5]]}],
        "rules": [{"type": "guard_post_empty", "name": "post", "zone": "post", "absent_s": 5}],
    }
)


def deferred(settings: Settings) -> DeferredAnalytics:
    service = build_analytics(settings, make_session_factory(create_engine("sqlite://")), InMemoryBus(), "test")
    assert isinstance(service, DeferredAnalytics)
    return service


def test_the_first_rules_start_the_pipeline_and_stop_stops_it(tmp_path: Path, models_dir: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path / "data", analytics={"models_dir": str(models_dir)})
    service = deferred(settings)
    service.start()
    assert service.analyze_cameras(AT) == set() and service.pipeline is None
    write_camera_rules(rules_file_path(settings.data_dir), "CAM", GUARD)
    assert service.analyze_cameras(AT) == {"CAM"}
    pipeline = service.pipeline
    assert pipeline is not None
    assert any(t.name == "detect-batches" and t.is_alive() for t in threading.enumerate())
    assert service.analyze_cameras(AT) == {"CAM"} and service.pipeline is pipeline  # started once
    service.stop(timeout_s=5)
    assert not any(t.name == "detect-batches" and t.is_alive() for t in threading.enumerate())


def test_after_stop_no_pipeline_starts(tmp_path: Path, models_dir: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path / "data", analytics={"models_dir": str(models_dir)})
    service = deferred(settings)
    service.stop()
    write_camera_rules(rules_file_path(settings.data_dir), "CAM", GUARD)
    assert service.analyze_cameras(AT) == set() and service.pipeline is None


def test_a_missing_model_is_logged_once_and_tried_again_when_the_rules_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(None, data_dir=tmp_path / "data", analytics={"models_dir": str(tmp_path / "none")})
    service = deferred(settings)
    path = rules_file_path(settings.data_dir)
    write_camera_rules(path, "CAM", GUARD)
    with caplog.at_level(logging.ERROR, logger="campuswatch.analytics_service"):
        for _ in range(3):
            assert service.analyze_cameras(AT) == set()
        failures = [r for r in caplog.records if "analytics cannot start" in r.getMessage()]
        assert len(failures) == 1 and "models fetch" in failures[0].getMessage(), failures
        write_camera_rules(path, "CAM2", GUARD)
        assert service.analyze_cameras(AT) == set()
        assert len([r for r in caplog.records if "analytics cannot start" in r.getMessage()]) == 2
    assert service.pipeline is None
    service.stop()
