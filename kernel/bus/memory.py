"""Embedded-mode bus: everything in this process, with the same semantics as the Redis Streams bus.

Each topic is a bounded log of JSON entries (kept as text, as Redis keeps them, so a consumer can never alter
what another one receives and foreign entries can be injected with :meth:`InMemoryBus.publish_raw`). Each
group has a cursor (last entry handed out), a pending list (entry → consumer, delivery time and count), the ids
it acknowledged (kept ``dedup_ttl_s``) and which entry currently holds each in-flight event id. One condition
variable guards the whole bus and wakes blocked fetches on publish and close.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from pydantic import ValidationError

from kernel.bus.base import DEFAULT_DEDUP_TTL_S, DEFAULT_MAXLEN, Consumer, EventBus
from kernel.bus.events import DeadLetter, Delivery, Event, check_name, check_topic
from kernel.clock import utcnow
from kernel.errors import BusError

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Entry:
    seq: int
    raw: str
    event_id: str | None  # None when ``raw`` is not a valid event; ``error`` then says why
    error: str | None = None


@dataclass(slots=True)
class _Pending:
    consumer: str
    event_id: str
    delivered_at: float  # time.monotonic()
    count: int


@dataclass(slots=True)
class _Group:
    last_seq: int
    pending: dict[int, _Pending] = field(default_factory=dict)
    done: OrderedDict[str, float] = field(default_factory=OrderedDict)  # event id → ack time, oldest first
    holders: dict[str, int] = field(default_factory=dict)  # event id → the pending entry carrying it
    read_at: float = field(default_factory=time.monotonic)  # its latest join, fetch, reclaim or ack


@dataclass(slots=True)
class _Topic:
    entries: deque[_Entry]
    dead: deque[DeadLetter]
    next_seq: int = 1
    groups: dict[str, _Group] = field(default_factory=dict)

    def entry(self, seq: int) -> _Entry | None:
        # Sequence numbers are contiguous within the retained window, so the position is arithmetic.
        if not self.entries or seq < self.entries[0].seq or seq >= self.next_seq:
            return None
        return self.entries[seq - self.entries[0].seq]


def _summary(err: ValidationError) -> str:
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "entry"
    return f"{where}: {first['msg']} ({err.error_count()} error(s))"


class InMemoryBus(EventBus):
    """In-process :class:`EventBus` (embedded mode). Thread-safe; lost when the process exits.

    ``maxlen`` bounds each topic's log (exactly: the oldest entries are dropped); ``dedup_ttl_s`` is how long a
    group remembers acknowledged event ids.
    """

    def __init__(self, *, maxlen: int = DEFAULT_MAXLEN, dedup_ttl_s: float = DEFAULT_DEDUP_TTL_S) -> None:
        if maxlen < 1:
            raise BusError(f"maxlen must be at least 1, got {maxlen}")
        if dedup_ttl_s <= 0:
            raise BusError(f"dedup_ttl_s must be positive, got {dedup_ttl_s}")
        self.maxlen = maxlen
        self.dedup_ttl_s = dedup_ttl_s
        self._cond = threading.Condition()
        self._topics: dict[str, _Topic] = {}
        self._closed = False

    # -- producer side -------------------------------------------------------------------------------------

    def publish(self, event: Event) -> str:
        """Append ``event`` to its topic; returns the entry id."""
        return self._append(event.topic, event.to_json(), event.id)

    def publish_raw(self, topic: str, raw: str) -> str:
        """Append an undecoded entry, as a foreign producer would; malformed ones are dead-lettered on fetch."""
        try:
            event = Event.from_json(raw)
        except ValidationError as err:
            return self._append(topic, raw, None, f"not a valid event: {_summary(err)}")
        if event.topic != topic:
            return self._append(topic, raw, None, f"not a valid event: event topic {event.topic!r} does not match")
        return self._append(topic, raw, event.id)

    def _append(self, topic: str, raw: str, event_id: str | None, error: str | None = None) -> str:
        try:
            check_topic(topic)
        except ValueError as err:
            raise BusError(str(err)) from err
        with self._cond:
            self._check_open()
            log = self._topic(topic)
            seq = log.next_seq
            log.next_seq += 1
            log.entries.append(_Entry(seq, raw, event_id, error))
            while len(log.entries) > self.maxlen:
                log.entries.popleft()
            self._cond.notify_all()
        return str(seq)

    # -- consumer side -------------------------------------------------------------------------------------

    def consumer(self, topic: str, group: str, name: str, *, from_start: bool = True) -> Consumer:
        """A consumer ``name`` in ``group`` on ``topic``; the group is created on first use."""
        try:
            check_topic(topic)
        except ValueError as err:
            raise BusError(str(err)) from err
        check_name("group", group)
        check_name("consumer", name)
        with self._cond:
            self._check_open()
            log = self._topic(topic)
            if group not in log.groups:
                log.groups[group] = _Group(last_seq=0 if from_start else log.next_seq - 1)
                logger.debug("created group %s on topic %s", group, topic)
            log.groups[group].read_at = time.monotonic()
        return _MemoryConsumer(self, topic, group, name)

    def drop_group(self, topic: str, group: str) -> bool:
        """Forget ``group`` of ``topic`` (its pending entries and de-duplication state); whether it existed."""
        with self._cond:
            self._check_open()
            log = self._topics.get(topic)
            found = log is not None and log.groups.pop(group, None) is not None
            self._cond.notify_all()  # its blocked fetches end
        return found

    def idle_groups(self, topic: str, prefix: str, idle_s: float) -> list[str]:
        """The groups of ``topic`` named ``prefix``… not joined or read for ``idle_s`` or more."""
        now = time.monotonic()
        with self._cond:
            self._check_open()
            log = self._topics.get(topic)
            groups = log.groups.items() if log is not None else ()
            return sorted(
                name for name, group in groups if name.startswith(prefix) and now - group.read_at >= idle_s
            )

    def dead_letters(self, topic: str, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` retained dead letters of ``topic`` (at most ``maxlen`` are kept)."""
        with self._cond:
            log = self._topics.get(topic)
            return list(log.dead)[:count] if log else []

    def close(self) -> None:
        """Drop every topic and wake blocked fetches (they return ``[]``; later calls raise)."""
        with self._cond:
            self._closed = True
            self._topics.clear()
            self._cond.notify_all()

    # -- internals, all called with ``self._cond`` held ------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BusError("the in-memory bus is closed")

    def _topic(self, topic: str) -> _Topic:
        log = self._topics.get(topic)
        if log is None:
            log = _Topic(entries=deque(), dead=deque(maxlen=self.maxlen))
            self._topics[topic] = log
        return log

    def _group(self, consumer: _MemoryConsumer) -> tuple[_Topic, _Group]:
        self._check_open()
        consumer._check_open()
        log = self._topics[consumer.topic]
        group = log.groups.get(consumer.group)
        if group is None:
            raise BusError(f"group {consumer.group!r} of topic {consumer.topic!r} was dropped")
        group.read_at = time.monotonic()
        return log, group

    def _is_done(self, group: _Group, event_id: str, now: float) -> bool:
        acked_at = group.done.get(event_id)
        return acked_at is not None and now - acked_at < self.dedup_ttl_s

    def _admit(
        self, log: _Topic, group: _Group, entry: _Entry, consumer: _MemoryConsumer, now: float
    ) -> Event | None:
        """Whether ``entry`` (new, or pending and being reclaimed) is handed out; mirrors the Redis script."""
        if entry.event_id is None:
            error = entry.error or "not a valid event"
            logger.warning(
                "dead-lettered entry %s of topic %s for group %s: %s",
                entry.seq,
                consumer.topic,
                consumer.group,
                error,
            )
            log.dead.append(
                DeadLetter(
                    consumer.topic, consumer.group, consumer.name, str(entry.seq), entry.raw, error, utcnow()
                )
            )
            return None
        event_id = entry.event_id
        if self._is_done(group, event_id, now):
            return None  # processed under this or another entry: acknowledge silently
        holder = group.holders.get(event_id)
        if (
            holder is not None
            and holder != entry.seq
            and holder in group.pending
            and log.entry(holder) is not None
        ):
            return None  # a retried publish of an event another entry is carrying right now
        group.holders[event_id] = entry.seq
        return Event.from_json(entry.raw)

    def _fetch(self, consumer: _MemoryConsumer, max_count: int, block_s: float) -> list[Delivery]:
        deadline = time.monotonic() + block_s
        with self._cond:
            log, group = self._group(consumer)
            while True:
                out = self._take_new(log, group, consumer, max_count)
                remaining = deadline - time.monotonic()
                if out or remaining <= 0:
                    return out
                self._cond.wait(remaining)
                if self._closed or consumer.closed or log.groups.get(consumer.group) is not group:
                    return []

    def _take_new(self, log: _Topic, group: _Group, consumer: _MemoryConsumer, max_count: int) -> list[Delivery]:
        out: list[Delivery] = []
        now = time.monotonic()
        if not log.entries:
            return out
        start = max(0, group.last_seq + 1 - log.entries[0].seq)
        for index in range(start, len(log.entries)):
            if len(out) >= max_count:
                break
            entry = log.entries[index]
            group.last_seq = entry.seq
            event = self._admit(log, group, entry, consumer, now)
            if event is None:
                continue
            group.pending[entry.seq] = _Pending(consumer.name, event.id, now, 1)
            out.append(Delivery(consumer.topic, consumer.group, str(entry.seq), 1, event))
        return out

    def _reclaim(self, consumer: _MemoryConsumer, min_idle_s: float, max_count: int) -> list[Delivery]:
        out: list[Delivery] = []
        with self._cond:
            log, group = self._group(consumer)
            now = time.monotonic()
            for seq in sorted(group.pending):
                if len(out) >= max_count:
                    break
                pending = group.pending[seq]
                if now - pending.delivered_at < min_idle_s:
                    continue
                entry = log.entry(seq)
                event = self._admit(log, group, entry, consumer, now) if entry else None
                if event is None:
                    # Trimmed by retention (as XAUTOCLAIM drops deleted entries) or already done elsewhere.
                    del group.pending[seq]
                    if group.holders.get(pending.event_id) == seq:
                        del group.holders[pending.event_id]
                    continue
                pending.consumer, pending.delivered_at = consumer.name, now
                pending.count += 1
                out.append(Delivery(consumer.topic, consumer.group, str(seq), pending.count, event))
        if out:
            logger.info(
                "consumer %s reclaimed %d event(s) of %s/%s",
                consumer.name,
                len(out),
                consumer.topic,
                consumer.group,
            )
        return out

    def _ack(self, consumer: _MemoryConsumer, deliveries: tuple[Delivery, ...]) -> None:
        with self._cond:
            _log, group = self._group(consumer)
            now = time.monotonic()
            for delivery in deliveries:
                seq = int(delivery.delivery_id)
                group.pending.pop(seq, None)
                event_id = delivery.event.id
                if group.holders.get(event_id) == seq:
                    del group.holders[event_id]
                group.done[event_id] = now
                group.done.move_to_end(event_id)
            # Forget ids acked longer ago than the window (oldest first, so stop at the first young one).
            while group.done:
                event_id, acked_at = next(iter(group.done.items()))
                if now - acked_at < self.dedup_ttl_s:
                    break
                del group.done[event_id]

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class _MemoryConsumer(Consumer):
    def __init__(self, bus: InMemoryBus, topic: str, group: str, name: str) -> None:
        super().__init__(topic, group, name)
        self._bus = bus

    def fetch(self, max_count: int = 10, block_s: float = 0.0) -> list[Delivery]:
        """Up to ``max_count`` new events, waiting up to ``block_s`` for the first."""
        self._check_counts(max_count, block_s, "block_s")
        return self._bus._fetch(self, max_count, block_s)

    def ack(self, *deliveries: Delivery) -> None:
        """Mark deliveries processed."""
        self._check_own(deliveries)
        self._bus._ack(self, deliveries)

    def reclaim(self, min_idle_s: float, max_count: int = 100) -> list[Delivery]:
        """Take over events pending in the group for at least ``min_idle_s``."""
        self._check_counts(max_count, min_idle_s, "min_idle_s")
        return self._bus._reclaim(self, min_idle_s, max_count)

    def close(self) -> None:
        """Stop; unacked events stay pending for another consumer's :meth:`reclaim`."""
        super().close()
        self._bus._wake()
