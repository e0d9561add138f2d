"""Stores what readers and diagnosis report, in batches, and publishes the changes on the bus.

Reader threads only enqueue (never block on the database); one writer thread commits every ``flush_s`` and
publishes after the commit, so the bus never announces a state the database does not hold. The previous state
comes from the stored row, so a camera handed over between workers is not announced as "recovered".

Bus topics: ``camera.health`` (types ``camera.offline``, ``camera.degraded``, ``camera.recovered``) and
``camera.quality`` (types ``quality.fault``, ``quality.cleared``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from ingest.models import FaultChange, HealthReason, HealthState, StreamFigures
from ingest.tables import CameraHealth, CameraHealthTransition, CameraQualityFault
from kernel.bus import Event, EventBus
from kernel.clock import utcnow
from kernel.db import insert_new, session_scope
from kernel.writer import BatchWriter

log = logging.getLogger(__name__)

HEALTH_TOPIC = "camera.health"
QUALITY_TOPIC = "camera.quality"
_MAX_QUEUE = 100_000


@dataclass(frozen=True)
class _Transition:
    code: str
    state: HealthState
    reason: HealthReason
    detail: str
    at: datetime


@dataclass(frozen=True)
class _Fault:
    change: FaultChange
    jpeg: bytes | None


class HealthRecorder(BatchWriter[_Transition | _Fault]):
    """Batches health transitions, quality faults and stream figures into the database and onto the bus."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        bus: EventBus,
        *,
        worker_id: str,
        camera_ids: Callable[[], Mapping[str, int]],
        figures: Callable[[], Mapping[str, StreamFigures]],
        flush_s: float = 1.0,
        figures_every_s: float = 10.0,
    ) -> None:
        super().__init__(bus, name="health-recorder", flush_s=flush_s, max_queue=_MAX_QUEUE)
        self._factory = session_factory
        self._worker_id = worker_id
        self._camera_ids = camera_ids
        self._figures = figures
        self._figures_every_s = figures_every_s
        self._since_figures = 0.0
        self._figures_due = False

    def transition(self, code: str, state: HealthState, reason: HealthReason, detail: str) -> None:
        """Record that camera ``code`` is now ``state`` (called from reader threads)."""
        self.put(_Transition(code, state, reason, detail, utcnow()))

    def fault(self, change: FaultChange, jpeg: bytes | None) -> None:
        """Record a quality fault starting or clearing, with the keyframe that showed it."""
        self.put(_Fault(change, jpeg))

    def due(self, items: list[_Transition | _Fault], *, final: bool) -> bool:
        # Figures every figures_every_s, and with the last flush.
        self._since_figures += self._flush_s
        self._figures_due = final or self._since_figures >= self._figures_every_s
        return bool(items) or self._figures_due

    def store(self, items: list[_Transition | _Fault], *, final: bool) -> list[Event]:
        events = self.write(items, with_figures=self._figures_due)
        if self._figures_due:
            self._since_figures = 0.0
        return events

    def write(self, items: list[_Transition | _Fault], *, with_figures: bool = False) -> list[Event]:
        """Store ``items`` (and the figures) in one transaction; returns the events to publish."""
        ids = self._camera_ids()
        events: list[Event] = []
        with session_scope(self._factory) as session:
            wanted = {ids[i.code] for i in items if isinstance(i, _Transition) and i.code in ids}
            rows = self._health_rows(session, wanted)
            # First sightings: insert their rows now, ignoring those another worker inserted meanwhile (a
            # camera handed over at its first connection), so that no unique violation fails the whole batch.
            firsts: dict[int, _Transition] = {}
            for item in items:
                if isinstance(item, _Transition) and item.code in ids and ids[item.code] not in rows:
                    firsts.setdefault(ids[item.code], item)
            fresh = insert_new(
                session,
                CameraHealth,
                [self._first_row(camera_id, item) for camera_id, item in firsts.items()],
                key="camera_id",
            )
            if firsts:
                rows.update(self._health_rows(session, set(firsts)))
            for item in items:
                code = item.code if isinstance(item, _Transition) else item.change.camera_code
                camera_id = ids.get(code)
                if camera_id is None:
                    continue  # removed from the fleet meanwhile
                if isinstance(item, _Transition):
                    event = self._store_transition(session, rows, camera_id, item, first=camera_id in fresh)
                    fresh.discard(camera_id)
                else:
                    event = self._store_fault(session, camera_id, item)
                if event is not None:
                    events.append(event)
            if with_figures:
                self._store_figures(session, ids)
        return events

    @staticmethod
    def _health_rows(session: Session, camera_ids: set[int]) -> dict[int, CameraHealth]:
        query = select(CameraHealth).where(CameraHealth.camera_id.in_(camera_ids))
        return {row.camera_id: row for row in session.scalars(query)}

    def _first_row(self, camera_id: int, item: _Transition) -> dict[str, object]:
        return {
            "camera_id": camera_id,
            "state": item.state,
            "reason": item.reason,
            "detail": item.detail,
            "since": item.at,
            "worker_id": self._worker_id,
            "updated_at": item.at,
        }

    def _store_transition(
        self, session: Session, rows: dict[int, CameraHealth], camera_id: int, item: _Transition, *, first: bool
    ) -> Event | None:
        """Record ``item``; ``first``: its row was just inserted by this batch (no previous state)."""
        row = rows[camera_id]
        previous = None if first else row.state
        session.add(
            CameraHealthTransition(
                camera_id=camera_id,
                at=item.at,
                state=item.state,
                reason=item.reason,
                previous_state=previous,
                detail=item.detail,
                worker_id=self._worker_id,
            )
        )
        if previous is not item.state:
            row.since = item.at
        row.state, row.reason, row.detail = item.state, item.reason, item.detail
        row.worker_id, row.updated_at = self._worker_id, item.at
        if previous is item.state:
            return None
        if item.state is HealthState.ONLINE:
            if previous is None:
                return None  # first sighting: nothing recovered
            kind = "camera.recovered"
        else:
            kind = f"camera.{item.state.value}"
        payload = {
            "camera_code": item.code,
            "state": item.state.value,
            "previous_state": previous.value if previous else None,
            "reason": item.reason.value,
            "detail": item.detail,
        }
        return Event(topic=HEALTH_TOPIC, type=kind, time=item.at, source=self._worker_id, payload=payload)

    def _store_fault(self, session: Session, camera_id: int, item: _Fault) -> Event | None:
        change = item.change
        if change.active:
            fault = CameraQualityFault(
                camera_id=camera_id,
                fault=change.fault,
                open=True,
                started_at=change.at,
                value=change.value,
                threshold=change.threshold,
                snapshot_jpeg=item.jpeg,
            )
            session.add(fault)
            session.flush()
            fault_id = fault.id
        else:
            open_faults = session.scalars(
                select(CameraQualityFault).where(
                    CameraQualityFault.camera_id == camera_id,
                    CameraQualityFault.fault == change.fault,
                    CameraQualityFault.open.is_(True),
                )
            ).all()
            if not open_faults:
                return None
            for fault in open_faults:
                fault.open, fault.cleared_at = False, change.at
            fault_id = open_faults[-1].id
        payload = {
            "camera_code": change.camera_code,
            "fault": change.fault.value,
            "fault_id": fault_id,
            "value": round(change.value, 4),
            "threshold": round(change.threshold, 4),
            "snapshot_url": f"/api/quality-faults/{fault_id}/snapshot.jpg",
        }
        kind = "quality.fault" if change.active else "quality.cleared"
        return Event(topic=QUALITY_TOPIC, type=kind, time=change.at, source=self._worker_id, payload=payload)

    def _store_figures(self, session: Session, ids: Mapping[str, int]) -> None:
        now = utcnow()
        values = []
        for code, fig in self._figures().items():
            camera_id = ids.get(code)
            if camera_id is None:
                continue
            values.append(
                {
                    "camera_id": camera_id,
                    # The worker reading the camera now corrects a late write by the previous holder.
                    "worker_id": self._worker_id,
                    "bitrate_kbps": round(fig.bitrate_kbps, 1),
                    "fps": round(fig.fps, 2),
                    "keyframe_interval_s": round(fig.keyframe_interval_s, 2),
                    "width": fig.width,
                    "height": fig.height,
                    "last_frame_at": fig.last_frame_at,
                    "reconnects": fig.reconnects,
                    "decode_errors": fig.decode_errors,
                    "updated_at": now,
                }
            )
        if not values:
            return
        existing = set(
            session.scalars(
                select(CameraHealth.camera_id).where(CameraHealth.camera_id.in_([v["camera_id"] for v in values]))
            )
        )
        values = [v for v in values if v["camera_id"] in existing]
        if values:
            session.execute(update(CameraHealth), values)
