"""The bus contract (:class:`EventBus`, :class:`Consumer`) and its thin asyncio helpers.

Delivery guarantees, shared by every implementation:

* **At-least-once per group.** Every event published to a topic is handed to at least one consumer of every
  group reading that topic, as long as it is still retained (see ``maxlen``) when the group gets to it. An
  event stays *pending* at the consumer that fetched it until that consumer :meth:`Consumer.ack`\\ s it; a
  consumer that dies or is closed first leaves it pending, and any consumer of the group takes it over with
  :meth:`Consumer.reclaim` once it has been idle ``min_idle_s``.
* **Idempotent by event id.** Within a group, an event id that has been acknowledged is never handed out again
  for ``dedup_ttl_s`` after the ack, and while one entry carrying an id is pending, other entries with the same
  id (a producer's retried publish) are acknowledged silently instead of being handed out. So a producer retry
  or a reclaim race never makes a group process an event twice.
* **What is not guaranteed.** A consumer that processed an event but died before acking will see it handed out
  again (that is the "at least" in at-least-once: make side effects idempotent, or ack promptly). A slow
  consumer whose delivery is reclaimed by another (``min_idle_s`` shorter than its processing time) races it;
  pick ``min_idle_s`` well above the longest processing time. Ordering is publish order per topic for one
  consumer's fetches; reclaimed events arrive out of order.
* **Malformed entries** (not a valid :class:`~kernel.bus.events.Event` JSON, e.g. written by another program)
  are dead-lettered: logged, recorded with the reason (:meth:`EventBus.dead_letters`) and acknowledged, so they
  never stop or block a consumer.

The core API is synchronous and thread-safe (producers are ingest threads); asyncio code uses
:func:`apublish` / :func:`afetch` / :func:`aack`, which run the calls in a worker thread.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from kernel.bus.events import DeadLetter, Delivery, Event
from kernel.errors import BusError

DEFAULT_MAXLEN = 10_000
# Long enough to cover producer retries and consumer restarts, short enough to keep the id sets small.
DEFAULT_DEDUP_TTL_S = 3600.0


class Consumer(ABC):
    """One named member of a consumer group reading one topic.

    A consumer is meant to be driven by one thread (or task) at a time; create one per worker.
    """

    def __init__(self, topic: str, group: str, name: str) -> None:
        self.topic = topic
        self.group = group
        self.name = name
        self._closed = False

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (or the bus closed)."""
        return self._closed

    @abstractmethod
    def fetch(self, max_count: int = 10, block_s: float = 0.0) -> list[Delivery]:
        """Up to ``max_count`` events not yet handed to this group, oldest first.

        Waits up to ``block_s`` seconds for the first one (``0`` returns at once). Returns ``[]`` on timeout,
        or if the consumer is closed by another thread while waiting (Redis notices at the end of its current
        wait slice, under ``socket_timeout_s``). The events stay pending at this consumer until acked.
        """

    @abstractmethod
    def ack(self, *deliveries: Delivery) -> None:
        """Mark deliveries processed: they leave the pending list and their event ids count as done."""

    @abstractmethod
    def reclaim(self, min_idle_s: float, max_count: int = 100) -> list[Delivery]:
        """Take over up to ``max_count`` events pending in this group for at least ``min_idle_s``.

        Meant for entries left behind by a dead consumer; includes this consumer's own stale entries.
        ``delivery_count`` of each returned delivery says how often the entry has been handed out.
        """

    def close(self) -> None:
        """Stop using this consumer. Its unacked events stay pending, for :meth:`reclaim` by another."""
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise BusError(f"consumer {self.name!r} of group {self.group!r} on {self.topic!r} is closed")

    def _check_own(self, deliveries: tuple[Delivery, ...]) -> None:
        for delivery in deliveries:
            if delivery.topic != self.topic or delivery.group != self.group:
                raise BusError(
                    f"cannot ack {delivery.delivery_id} of {delivery.topic!r}/{delivery.group!r} "
                    f"through a consumer of {self.topic!r}/{self.group!r}"
                )

    @staticmethod
    def _check_counts(max_count: int, seconds: float, what: str) -> None:
        if max_count < 1:
            raise BusError(f"max_count must be at least 1, got {max_count}")
        if seconds < 0:
            raise BusError(f"{what} must not be negative, got {seconds}")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class EventBus(ABC):
    """A publish/subscribe log of :class:`~kernel.bus.events.Event`\\ s, one per topic, with consumer groups."""

    @abstractmethod
    def publish(self, event: Event) -> str:
        """Append ``event`` to its topic; returns the entry id (the future ``Delivery.delivery_id``)."""

    @abstractmethod
    def consumer(self, topic: str, group: str, name: str, *, from_start: bool = True) -> Consumer:
        """A consumer ``name`` in ``group`` on ``topic``; the group is created on first use.

        A new group starts at the oldest retained event if ``from_start`` (nothing published before the group
        existed is missed), else at the next event published. An existing group keeps its position.
        """

    @abstractmethod
    def drop_group(self, topic: str, group: str) -> bool:
        """Delete ``group`` of ``topic`` with its pending entries and de-duplication state: for a group nobody
        reads again (a web process's feed at shutdown), after its consumers are closed. Whether it existed."""

    @abstractmethod
    def idle_groups(self, topic: str, prefix: str, idle_s: float) -> list[str]:
        """The groups of ``topic`` named ``prefix``… that nobody has joined (:meth:`consumer`) or fetched from
        for ``idle_s`` or more: left by processes that died without dropping them."""

    @abstractmethod
    def dead_letters(self, topic: str, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` retained dead letters of ``topic`` (entries no group could decode)."""

    @abstractmethod
    def close(self) -> None:
        """Release connections; consumers stop. Published and pending events are kept (Redis) or dropped."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


async def apublish(bus: EventBus, event: Event) -> str:
    """:meth:`EventBus.publish` from asyncio code, run in a worker thread."""
    return await asyncio.to_thread(bus.publish, event)


async def afetch(consumer: Consumer, max_count: int = 10, block_s: float = 0.0) -> list[Delivery]:
    """:meth:`Consumer.fetch` from asyncio code, run in a worker thread.

    Cancelling the awaiting task does not stop the thread: it finishes its wait (up to ``block_s``) and what
    it fetched stays pending until reclaimed. Keep ``block_s`` short (about a second) in a loop.
    """
    return await asyncio.to_thread(consumer.fetch, max_count, block_s)


async def aack(consumer: Consumer, *deliveries: Delivery) -> None:
    """:meth:`Consumer.ack` from asyncio code, run in a worker thread."""
    await asyncio.to_thread(consumer.ack, *deliveries)
