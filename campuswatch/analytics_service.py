"""Where ingest meets analytics: the analytics pipeline as the frame service of an ingest worker process.

``ingest`` does not import ``analytics``; this module (the application layer) builds the pipeline and hands it to
the worker, in the demo and in every ``campuswatch ingest`` process.
"""

from __future__ import annotations

import logging

import click
from sqlalchemy.orm import Session, sessionmaker

from analytics.errors import AnalyticsError
from analytics.events import EventRecorder
from analytics.pipeline import AnalyticsPipeline
from config import ConfigError, Settings
from config.rules_file import effective_rules, read_rules_file, rules_file_path
from kernel.bus import EventBus

log = logging.getLogger(__name__)


def build_analytics(
    settings: Settings, session_factory: sessionmaker[Session], bus: EventBus, source: str
) -> AnalyticsPipeline | None:
    """The pipeline for the configured rules (with the console's rules file over them); None when analytics is
    off or no camera has rules. A running pipeline follows later edits of the rules file; rules given to cameras
    while none had any take effect at the next start of the process.

    Raises :class:`AnalyticsError` (a missing model file names itself and the fetch command); a rules file
    that cannot be read raises :class:`~config.ConfigError`.
    """
    if not settings.analytics.enabled:
        return None
    console = read_rules_file(rules_file_path(settings.data_dir))
    if not effective_rules(settings.analytics.cameras, console):
        log.info("no camera has analytics rules: analytics is not started")
        return None
    return AnalyticsPipeline(settings, EventRecorder(session_factory, bus, source=source))


def analytics_for_worker(
    settings: Settings, session_factory: sessionmaker[Session], bus: EventBus, worker_id: str
) -> AnalyticsPipeline | None:
    """:data:`ingest.worker.FrameServiceFactory` for ``campuswatch ingest``: errors become command errors."""
    try:
        return build_analytics(settings, session_factory, bus, worker_id)
    except (AnalyticsError, ConfigError) as err:
        raise click.ClickException(f"analytics cannot start: {err}") from err
