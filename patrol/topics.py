"""Bus topics the patrol service publishes on, and the event types on them.

``walls``: what the walls show (``wall.page``, ``wall.alarm``, ``wall.alarm_acknowledged``), for the console.
``duty``: what somebody must act on or be told of, for the console and the notifier: ``task.done``,
``task.missed``, ``hazard.created``, ``hazard.status``, ``hazard.overdue``, ``hazard.escalated``,
``incident.created``, ``incident.major``, ``clock.overdue``, ``spotcheck.drawn``, ``report.daily``.
"""

from __future__ import annotations

from pydantic import JsonValue

from kernel.bus import Event

ANALYTICS_EVENTS_TOPIC = "events"
"""Where analytics announces ``event.started`` / ``event.ended`` (the bus contract; walls raise alarms on it)."""
WALLS_TOPIC = "walls"
DUTY_TOPIC = "duty"
SOURCE = "patrol"


def duty_event(event_type: str, payload: dict[str, JsonValue]) -> Event:
    """An event on the ``duty`` topic."""
    return Event(topic=DUTY_TOPIC, type=event_type, source=SOURCE, payload=payload)


def wall_event(event_type: str, payload: dict[str, JsonValue]) -> Event:
    """An event on the ``walls`` topic."""
    return Event(topic=WALLS_TOPIC, type=event_type, source=SOURCE, payload=payload)
