"""Bus events that a transaction announces, published only once it has committed.

Domain code calls :func:`announce` with the session it writes through; whoever commits that session calls
:func:`publish_announced` afterwards. A transaction that rolls back (or a session closed without commit) takes
its announcements with it, so the bus never tells of a record the database lacks.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from kernel.bus import Event, EventBus
from kernel.errors import KernelError

log = logging.getLogger(__name__)
_KEY = "campuswatch.announced"


def announce(session: Session, event: Event) -> None:
    """Publish ``event`` once ``session``'s transaction has committed."""
    session.info.setdefault(_KEY, []).append(event)


def take_announced(session: Session) -> list[Event]:
    """The events announced on ``session`` so far, removed from it."""
    events: list[Event] = session.info.pop(_KEY, [])
    return events


def publish_announced(session: Session, bus: EventBus) -> int:
    """Publish what ``session`` announced (call after its commit); a bus error is logged, not raised."""
    events = take_announced(session)
    for event in events:
        try:
            bus.publish(event)
        except KernelError as err:
            log.error("could not publish %s on %s: %s", event.type, event.topic, err)
    return len(events)


def commit_and_publish(session: Session, bus: EventBus) -> None:
    """Commit ``session``, then publish its announcements."""
    session.commit()
    publish_announced(session, bus)
