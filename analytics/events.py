"""Event evidence pictures, and the recorder that stores events and publishes them on the bus.

The recorder's writer thread commits queued events every ``flush_s`` (short: events are what the duty officer
waits for) and publishes each one after its commit, so the bus never announces an event the database lacks.
Bus topic ``events``: types ``event.started`` and ``event.ended``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import JsonValue
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from analytics.detections import Image
from analytics.rules import RuleEvent
from analytics.tables import SafetyEvent
from kernel.bus import Event, EventBus
from kernel.db import session_scope
from kernel.writer import BatchWriter
from registry.models import Camera, School

log = logging.getLogger(__name__)

EVENTS_TOPIC = "events"
EVIDENCE_WIDTH = 960
_MAX_QUEUE = 10_000


def evidence_jpeg(image: Image, event: RuleEvent, *, quality: int = 80) -> bytes:
    """The frame with the event's zone or line (yellow) and boxes (red) drawn, at most 960 px wide, as JPEG."""
    scale = min(1.0, EVIDENCE_WIDTH / image.shape[1])
    picture = (
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image.copy()
    )
    height, width = picture.shape[:2]
    size = np.array([width, height], np.float32)
    if event.polygon:
        corners = (np.array(event.polygon, np.float32) * size).astype(np.int32)
        cv2.polylines(picture, [corners], True, (0, 215, 255), 2, cv2.LINE_AA)
    if event.line is not None:
        a, b = ((np.array(p, np.float32) * size).astype(int) for p in event.line)
        cv2.line(picture, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), (0, 215, 255), 2, cv2.LINE_AA)
    for x1, y1, x2, y2 in event.boxes:
        p1 = (int(x1 * width), int(y1 * height))
        p2 = (int(x2 * width), int(y2 * height))
        cv2.rectangle(picture, p1, p2, (0, 0, 255), 2)
    label = f"{event.type} {event.zone} {event.started_at:%Y-%m-%d %H:%M:%S}Z"
    cv2.putText(picture, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(picture, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    ok, buffer = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding of the evidence failed")
    return bytes(buffer)


@dataclass(frozen=True)
class _Queued:
    event: RuleEvent
    jpeg: bytes | None


class EventRecorder(BatchWriter[_Queued]):
    """Stores rule events and publishes them; ``record`` never blocks on the database."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        bus: EventBus,
        *,
        source: str,
        flush_s: float = 0.1,
    ) -> None:
        super().__init__(bus, name="event-recorder", flush_s=flush_s, max_queue=_MAX_QUEUE)
        self._factory = session_factory
        self._source = source
        self._open: dict[tuple[str, str], int] = {}  # (camera, rule) -> id of its open event

    def record(self, event: RuleEvent, jpeg: bytes | None) -> None:
        """Queue an event (its evidence with it when it starts)."""
        self.put(_Queued(event, jpeg))

    def store(self, items: list[_Queued], *, final: bool) -> list[Event]:
        return self._write(items)

    def _write(self, items: list[_Queued]) -> list[Event]:
        messages = []
        with session_scope(self._factory) as session:
            codes = {i.event.camera_code for i in items}
            where = session.execute(
                select(Camera.code, Camera.id, School.id, School.code, School.name)
                .join(School, School.id == Camera.school_id)
                .where(Camera.code.in_(codes))
            ).all()
            cameras = {code: (cid, sid, scode, sname) for code, cid, sid, scode, sname in where}
            rows: list[tuple[SafetyEvent, _Queued]] = []
            for item in items:
                event = item.event
                known = cameras.get(event.camera_code)
                if known is None:
                    log.warning("event on unknown camera %s dropped", event.camera_code)
                    continue
                key = (event.camera_code, event.rule)
                if event.kind == "started":
                    row = SafetyEvent(
                        camera_id=known[0],
                        school_id=known[1],
                        type=event.type,
                        rule=event.rule,
                        severity=event.severity,
                        zone=event.zone,
                        started_at=event.started_at,
                        track_ids=",".join(str(t) for t in event.track_ids)[:300],
                        confidence=round(event.confidence, 4),
                        detail=event.detail[:200],
                        evidence_jpeg=item.jpeg,
                        worker_id=self._source,
                    )
                    session.add(row)
                    session.flush()
                    self._open[key] = row.id
                else:
                    event_id = self._open.pop(key, None)
                    found = session.get(SafetyEvent, event_id) if event_id is not None else None
                    if found is None:
                        continue  # its start was never stored (unknown camera): nothing to end
                    found.ended_at = event.at
                    row = found
                rows.append((row, item))
            for row, item in rows:
                _, _, school_code, school_name = cameras[item.event.camera_code]
                messages.append(self._message(row, item.event, school_code, school_name))
        return messages

    def _message(self, row: SafetyEvent, event: RuleEvent, school_code: str, school_name: str) -> Event:
        payload: dict[str, JsonValue] = {
            "event_id": row.id,
            "type": event.type,
            "rule": event.rule,
            "severity": event.severity,
            "camera_code": event.camera_code,
            "school_code": school_code,
            "school_name": school_name,
            "zone": event.zone,
            "started_at": event.started_at.isoformat(),
            "ended_at": row.ended_at.isoformat() if row.ended_at else None,
            "track_ids": [int(t) for t in event.track_ids],
            "confidence": round(event.confidence, 4),
            "detail": event.detail,
            "evidence_url": f"/api/events/{row.id}/evidence.jpg",
        }
        return Event(
            topic=EVENTS_TOPIC,
            type=f"event.{event.kind}",
            time=event.at,
            source=self._source,
            payload=payload,
        )
