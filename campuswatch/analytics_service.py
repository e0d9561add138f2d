"""Where ingest meets analytics: the analytics pipeline as the frame service of an ingest worker process.

``ingest`` does not import ``analytics``; this module (the application layer) builds the pipeline and hands it to
the worker, in the demo and in every ``campuswatch ingest`` process. While no camera has rules (a fresh install)
the worker gets a :class:`DeferredAnalytics`, which loads no model and starts the pipeline once the console gives
a camera its first rules.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import click
from sqlalchemy.orm import Session, sessionmaker

from analytics.errors import AnalyticsError
from analytics.events import EventRecorder
from analytics.pipeline import AnalyticsPipeline
from config import ConfigError, Settings
from config.rules_file import RulesFileWatcher, effective_rules, read_rules_file, rules_file_path
from ingest.models import Image
from ingest.worker import FrameService
from kernel.bus import EventBus

log = logging.getLogger(__name__)


def build_analytics(
    settings: Settings, session_factory: sessionmaker[Session], bus: EventBus, source: str
) -> FrameService | None:
    """The analytics of a worker process; None when analytics is off. With rules configured (or in the console's
    rules file) the running pipeline, which follows later edits of the rules file; without, a
    :class:`DeferredAnalytics` that starts it when the first rules arrive.

    Raises :class:`AnalyticsError` (a missing model file names itself and the fetch command); a rules file
    that cannot be read raises :class:`~config.ConfigError`.
    """
    if not settings.analytics.enabled:
        return None
    console = read_rules_file(rules_file_path(settings.data_dir))
    if not effective_rules(settings.analytics.cameras, console):
        log.info("no camera has analytics rules yet: analytics starts when one gets rules")
        return DeferredAnalytics(settings, session_factory, bus, source)
    return AnalyticsPipeline(settings, EventRecorder(session_factory, bus, source=source))


class DeferredAnalytics:
    """A worker's frame service while no camera has rules: no model loaded, no camera in analyze mode. It looks
    at the console's rules file each time the worker asks which cameras to analyse (every
    ``analytics.analyze_check_s``), and once a camera has rules it builds and starts the pipeline and hands
    everything on to it from then on. A pipeline that cannot be built (a model file missing) is logged and tried
    again at the next change of the rules file."""

    def __init__(
        self, settings: Settings, session_factory: sessionmaker[Session], bus: EventBus, source: str
    ) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._bus = bus
        self._source = source
        self._watcher = RulesFileWatcher(rules_file_path(settings.data_dir), settings.analytics.cameras)
        self._lock = threading.Lock()  # analyze_cameras (the worker's thread) against stop
        self._stopped = False
        self._failed = False
        self.pipeline: AnalyticsPipeline | None = None
        """The pipeline once started (on_frame reads it without the lock: one reference, set once)."""

    def start(self) -> None:
        """Nothing runs until a camera has rules."""

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the pipeline if it was started; no pipeline starts afterwards."""
        with self._lock:
            self._stopped = True
            pipeline = self.pipeline
        if pipeline is not None:
            pipeline.stop(timeout_s)

    def analyze_cameras(self, at: datetime) -> set[str]:
        """The pipeline's cameras in analyze mode; none while no camera has rules."""
        pipeline = self.pipeline or self._start_if_rules()
        return set() if pipeline is None else pipeline.analyze_cameras(at)

    def on_frame(self, code: str, at: datetime, image: Image) -> None:
        """Hand the frame to the pipeline (none come before it runs: no camera is in analyze mode)."""
        pipeline = self.pipeline
        if pipeline is not None:
            pipeline.on_frame(code, at, image)

    def _start_if_rules(self) -> AnalyticsPipeline | None:
        with self._lock:
            changed = self._watcher.poll() is not None
            if self._stopped or not self._watcher.current() or (self._failed and not changed):
                return None
            try:
                pipeline = AnalyticsPipeline(
                    self._settings, EventRecorder(self._session_factory, self._bus, source=self._source)
                )
            except AnalyticsError as err:
                self._failed = True  # logged once, tried again when the rules file changes
                log.error("cameras got analytics rules, but analytics cannot start: %s", err)
                return None
            pipeline.start()
            self.pipeline = pipeline
        log.info("cameras got analytics rules: analytics started")
        return pipeline


def analytics_for_worker(
    settings: Settings, session_factory: sessionmaker[Session], bus: EventBus, worker_id: str
) -> FrameService | None:
    """:data:`ingest.worker.FrameServiceFactory` for ``campuswatch ingest``: errors become command errors."""
    try:
        return build_analytics(settings, session_factory, bus, worker_id)
    except (AnalyticsError, ConfigError) as err:
        raise click.ClickException(f"analytics cannot start: {err}") from err
