"""The event bus: ingest → analytics → bus → web / patrol.

Embedded mode uses :class:`InMemoryBus`, distributed mode :class:`RedisStreamsBus`; :func:`create_bus` picks one
from a URL. Delivery is at-least-once per consumer group and idempotent by event id; see :mod:`kernel.bus.base`.
"""

from kernel.bus.base import DEFAULT_DEDUP_TTL_S, DEFAULT_MAXLEN, Consumer, EventBus, aack, afetch, apublish
from kernel.bus.events import DeadLetter, Delivery, Event
from kernel.bus.factory import create_bus
from kernel.bus.memory import InMemoryBus
from kernel.bus.redis_streams import RedisStreamsBus

__all__ = [
    "DEFAULT_DEDUP_TTL_S",
    "DEFAULT_MAXLEN",
    "Consumer",
    "DeadLetter",
    "Delivery",
    "Event",
    "EventBus",
    "InMemoryBus",
    "RedisStreamsBus",
    "aack",
    "afetch",
    "apublish",
    "create_bus",
]
