"""Where ingest meets analytics: the analytics pipeline as the frame service of an ingest worker process.

``ingest`` does not import ``analytics``; this module (the application layer) builds the pipeline and hands it to
the worker, in the demo and in every ``campuswatch ingest`` process.
"""

from __future__ import annotations

import click
from sqlalchemy.orm import Session, sessionmaker

from analytics.errors import AnalyticsError
from analytics.events import EventRecorder
from analytics.pipeline import AnalyticsPipeline
from config import Settings
from kernel.bus import EventBus


def build_analytics(
    settings: Settings, session_factory: sessionmaker[Session], bus: EventBus, source: str
) -> AnalyticsPipeline | None:
    """The pipeline for the configured rules; None when analytics is off or no camera has rules.

    Raises :class:`AnalyticsError` (a missing model file names itself and the fetch command).
    """
    if not settings.analytics.enabled or not settings.analytics.cameras:
        return None
    return AnalyticsPipeline(settings, EventRecorder(session_factory, bus, source=source))


def analytics_for_worker(
    settings: Settings, session_factory: sessionmaker[Session], bus: EventBus, worker_id: str
) -> AnalyticsPipeline | None:
    """:data:`ingest.worker.FrameServiceFactory` for ``campuswatch ingest``: errors become command errors."""
    try:
        return build_analytics(settings, session_factory, bus, worker_id)
    except AnalyticsError as err:
        raise click.ClickException(f"analytics cannot start: {err}") from err
