"""Distributed-mode bus on Redis Streams.

Keys, for ``prefix`` (default ``campuswatch:bus:``), a topic and a group (the ``{topic}`` hash tag keeps a
topic's keys in one Redis Cluster slot, which the Lua scripts need):

* ``<prefix>{<topic>}`` — the stream; one entry per event, field ``event`` = the event's JSON. ``XADD`` trims it
  to about ``maxlen`` entries (``MAXLEN ~``: Redis drops whole internal nodes, so it may hold up to about 100
  more).
* ``<prefix>{<topic>}:dead`` — dead letters: fields ``entry``, ``group``, ``consumer``, ``error``, ``raw``.
* ``<prefix>{<topic>}:<group>:done`` — sorted set of event ids the group acknowledged, scored by ack time (Redis
  server clock, ms). Ids older than ``dedup_ttl_s`` are removed on each ack, and the key expires
  ``dedup_ttl_s`` after the group's last ack, so it holds about ``ack rate × dedup_ttl_s`` ids.
* ``<prefix>{<topic>}:<group>:held`` — hash event id → the entry currently carrying it in the group; lets a
  retried publish of an in-flight event be recognised. Same expiry.
* ``<prefix>{<topic>}:<group>:seen`` — when a consumer last joined the group or fetched from it (Unix time),
  expiring a week later: Redis 7.0's consumer idle time counts from the last entry read (and a consumer exists
  only once it read one), so a live group of a quiet topic would look idle; :meth:`RedisStreamsBus.idle_groups`
  reads this instead.

The consumer group itself is the stream's (``XGROUP CREATE ... MKSTREAM``). Deciding whether an entry is handed
out and acknowledging run as Lua scripts, so two consumers racing on duplicates see one consistent state.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import redis
from pydantic import ValidationError
from redis import exceptions as redis_errors

from kernel.bus.base import DEFAULT_DEDUP_TTL_S, DEFAULT_MAXLEN, Consumer, EventBus
from kernel.bus.events import DeadLetter, Delivery, Event, check_name, check_topic
from kernel.errors import BusError
from kernel.secrets import redact_text, redact_url

logger = logging.getLogger(__name__)

SEEN_TTL_S = 7 * 86_400
"""How long a group's ``seen`` key outlives its last fetch."""

DEFAULT_PREFIX = "campuswatch:bus:"
EVENT_FIELD = b"event"

# Verdict per (entry, event id): 1 hand it out, 0 already acknowledged, 2 duplicate of another entry in flight.
# Entries that are not handed out are XACKed here, in the same atomic step. A holder entry counts as in flight
# only while it is both pending and still in the stream (an entry trimmed while pending can never be acked).
_ADMIT_LUA = """
local stream, done, held = KEYS[1], KEYS[2], KEYS[3]
local group, ttl = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 3, #ARGV, 2 do
  local entry, ev = ARGV[i], ARGV[i + 1]
  local verdict = 1
  local score = redis.call('ZSCORE', done, ev)
  if score and tonumber(score) > now - ttl then
    verdict = 0
  else
    local holder = redis.call('HGET', held, ev)
    if holder and holder ~= entry
        and #redis.call('XPENDING', stream, group, holder, holder, 1) > 0
        and #redis.call('XRANGE', stream, holder, holder) > 0 then
      verdict = 2
    end
  end
  if verdict == 1 then
    redis.call('HSET', held, ev, entry)
  else
    redis.call('XACK', stream, group, entry)
  end
  out[#out + 1] = verdict
end
redis.call('PEXPIRE', held, ttl)
return out
"""

_ACK_LUA = """
local stream, done, held = KEYS[1], KEYS[2], KEYS[3]
local group, ttl = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 3, #ARGV, 2 do
  local entry, ev = ARGV[i], ARGV[i + 1]
  redis.call('XACK', stream, group, entry)
  redis.call('ZADD', done, now, ev)
  if redis.call('HGET', held, ev) == entry then
    redis.call('HDEL', held, ev)
  end
end
redis.call('ZREMRANGEBYSCORE', done, '-inf', now - ttl)
redis.call('PEXPIRE', done, ttl)
redis.call('PEXPIRE', held, ttl)
return 1
"""

_Entry = tuple[bytes, dict[bytes, bytes] | None]


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class RedisStreamsBus(EventBus):
    """:class:`EventBus` on Redis Streams (distributed mode). Thread-safe (one connection pool per bus).

    ``url`` is a ``redis://``, ``rediss://`` or ``unix://`` URL; it is only ever logged or reported redacted.
    No connection is made until the first call. ``socket_timeout_s`` bounds every Redis call, so blocking
    fetches wait in slices shorter than it.
    """

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = DEFAULT_PREFIX,
        maxlen: int = DEFAULT_MAXLEN,
        dedup_ttl_s: float = DEFAULT_DEDUP_TTL_S,
        socket_timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
    ) -> None:
        if maxlen < 1:
            raise BusError(f"maxlen must be at least 1, got {maxlen}")
        if dedup_ttl_s < 0.001:
            raise BusError(f"dedup_ttl_s must be positive, got {dedup_ttl_s}")
        if socket_timeout_s <= 0.2:
            raise BusError(f"socket_timeout_s must be above 0.2 s, got {socket_timeout_s}")
        self.url = redact_url(url)
        self.key_prefix = key_prefix
        self.maxlen = maxlen
        self.dedup_ttl_ms = int(dedup_ttl_s * 1000)
        # Leave room for the reply to come back before the socket timeout would cut a blocking read.
        self.block_slice_s = max(0.1, socket_timeout_s - 0.5)
        password = urlsplit(url).password or ""
        self._secrets = (password, unquote(password))
        try:
            # Raw bytes, not decode_responses: an entry with invalid UTF-8 must be dead-lettered, not crash reads.
            self._client = redis.Redis.from_url(
                url,
                socket_timeout=socket_timeout_s,
                socket_connect_timeout=connect_timeout_s,
                decode_responses=False,
                protocol=2,
            )
        except ValueError as err:
            raise BusError(f"invalid Redis URL {self.url}: {self._redact(err)}") from err
        self._admit_script = self._client.register_script(_ADMIT_LUA)
        self._ack_script = self._client.register_script(_ACK_LUA)
        self._closed = False

    # -- keys and error handling -----------------------------------------------------------------------------

    def stream_key(self, topic: str) -> str:
        """The Redis key of ``topic``'s stream."""
        return f"{self.key_prefix}{{{topic}}}"

    def _group_keys(self, topic: str, group: str) -> list[str]:
        stream = self.stream_key(topic)
        return [stream, f"{stream}:{group}:done", f"{stream}:{group}:held"]

    def _seen_key(self, topic: str, group: str) -> str:
        return f"{self.stream_key(topic)}:{group}:seen"

    def _redact(self, err: BaseException) -> str:
        return redact_text(str(err), self._secrets)

    @contextmanager
    def _call(self, action: str) -> Iterator[None]:
        """Turn redis-py errors into :class:`BusError` naming the action and the (redacted) server."""
        if self._closed:
            raise BusError(f"the Redis bus at {self.url} is closed")
        try:
            yield
        except redis_errors.AuthenticationError as err:  # a ConnectionError subclass, but a different fix
            reason = self._redact(err)
            raise BusError(f"Redis at {self.url} rejected the credentials ({action}): {reason}") from err
        except redis_errors.ConnectionError as err:
            raise BusError(f"cannot reach Redis at {self.url} to {action}: {self._redact(err)}") from err
        except redis_errors.TimeoutError as err:
            raise BusError(f"Redis at {self.url} timed out trying to {action}: {self._redact(err)}") from err
        except redis_errors.RedisError as err:
            raise BusError(f"Redis at {self.url} failed to {action}: {self._redact(err)}") from err

    # -- producer side -------------------------------------------------------------------------------------

    def publish(self, event: Event) -> str:
        """``XADD`` the event to its topic's stream (trimmed to about ``maxlen``); returns the entry id."""
        return self.publish_raw(event.topic, {EVENT_FIELD: event.to_json().encode()})

    def publish_raw(self, topic: str, fields: dict[bytes, bytes]) -> str:
        """``XADD`` arbitrary fields, as a foreign producer would; malformed entries are dead-lettered on fetch."""
        try:
            check_topic(topic)
        except ValueError as err:
            raise BusError(str(err)) from err
        with self._call(f"publish to {topic!r}"):
            entry_id = self._client.xadd(
                self.stream_key(topic), cast(Any, fields), maxlen=self.maxlen, approximate=True
            )
        return _text(cast(bytes, entry_id))

    # -- consumer side -------------------------------------------------------------------------------------

    def consumer(self, topic: str, group: str, name: str, *, from_start: bool = True) -> Consumer:
        """A consumer ``name`` in ``group`` on ``topic``; creates the group (and stream) if missing."""
        try:
            check_topic(topic)
        except ValueError as err:
            raise BusError(str(err)) from err
        check_name("group", group)
        check_name("consumer", name)
        self._ensure_group(topic, group, from_start)
        self._mark_seen(topic, group)
        return _RedisConsumer(self, topic, group, name, from_start)

    def _mark_seen(self, topic: str, group: str) -> None:
        with self._call(f"mark group {group!r} of {topic!r} as read"):
            self._client.set(self._seen_key(topic, group), f"{time.time():.3f}", ex=SEEN_TTL_S)

    def _ensure_group(self, topic: str, group: str, from_start: bool) -> None:
        with self._call(f"create group {group!r} on {topic!r}"):
            try:
                self._client.xgroup_create(
                    self.stream_key(topic), group, id="0" if from_start else "$", mkstream=True
                )
                logger.debug("created group %s on topic %s", group, topic)
            except redis_errors.ResponseError as err:
                if "BUSYGROUP" not in str(err):
                    raise  # turned into BusError by _call
                # Another process created it first: fine, groups are shared.

    def drop_group(self, topic: str, group: str) -> bool:
        """``XGROUP DESTROY`` the group and delete its de-duplication keys; whether the group existed."""
        check_name("group", group)
        stream, *state = self._group_keys(topic, group)
        with self._call(f"drop group {group!r} of {topic!r}"):
            found = bool(self._client.exists(stream)) and bool(self._client.xgroup_destroy(stream, group))
            self._client.delete(*state, self._seen_key(topic, group))
        return found

    def idle_groups(self, topic: str, prefix: str, idle_s: float) -> list[str]:
        """Groups named ``prefix``… whose last join or fetch (the group's ``seen`` key) is ``idle_s`` or more
        ago, or so long ago that the key expired (or that predates these keys)."""
        stream = self.stream_key(topic)
        stale = []
        with self._call(f"list the groups of {topic!r}"):
            if not self._client.exists(stream):
                return []
            now = time.time()
            for info in self._client.xinfo_groups(stream):
                name = _text(info["name"])
                if not name.startswith(prefix):
                    continue
                seen = self._client.get(self._seen_key(topic, name))
                if seen is None or now - float(_text(cast(bytes, seen))) >= idle_s:
                    stale.append(name)
        return sorted(stale)

    def dead_letters(self, topic: str, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` retained entries of ``topic``'s dead-letter stream."""
        with self._call(f"read dead letters of {topic!r}"):
            rows = cast(list[_Entry], self._client.xrange(f"{self.stream_key(topic)}:dead", count=count))
        out = []
        for entry_id, fields in rows:
            values = {_text(key): _text(value) for key, value in (fields or {}).items()}
            seconds = int(_text(entry_id).split("-")[0]) / 1000
            out.append(
                DeadLetter(
                    topic=topic,
                    group=values.get("group", ""),
                    consumer=values.get("consumer", ""),
                    delivery_id=values.get("entry", ""),
                    raw=values.get("raw", ""),
                    error=values.get("error", ""),
                    time=datetime.fromtimestamp(seconds, tz=UTC),
                )
            )
        return out

    def close(self) -> None:
        """Close the connection pool; streams, groups and pending entries stay in Redis."""
        if self._closed:
            return
        self._closed = True
        try:
            self._client.close()
        except redis_errors.RedisError as err:
            logger.debug("closing the Redis bus at %s: %s", self.url, self._redact(err))

    # -- internals used by consumers -----------------------------------------------------------------------

    def _admit(
        self, consumer: _RedisConsumer, entries: Sequence[_Entry], counts: dict[str, int]
    ) -> list[Delivery]:
        """Dead-letter the malformed entries, then let the admit script drop acked ids and in-flight duplicates."""
        topic, group = consumer.topic, consumer.group
        candidates: list[tuple[str, Event]] = []
        for raw_id, fields in entries:
            entry_id = _text(raw_id)
            if fields is None:
                continue  # deleted by trimming while pending (Redis 6.2 XAUTOCLAIM reports these as nil)
            try:
                data = fields.get(EVENT_FIELD)
                if data is None:
                    raise ValueError(f"no {EVENT_FIELD.decode()!r} field")
                event = Event.from_json(data)
                if event.topic != topic:
                    raise ValueError(f"event topic {event.topic!r} does not match the stream's")
            except ValueError as err:  # pydantic's ValidationError included
                self._dead_letter(consumer, entry_id, fields, err)
                continue
            candidates.append((entry_id, event))
        if not candidates:
            return []
        args: list[str | int] = [group, self.dedup_ttl_ms]
        for entry_id, event in candidates:
            args += [entry_id, event.id]
        with self._call(f"fetch from {topic!r}"):
            verdicts = cast(list[int], self._admit_script(keys=self._group_keys(topic, group), args=args))
        return [
            Delivery(topic, group, entry_id, counts.get(entry_id, 1), event)
            for (entry_id, event), verdict in zip(candidates, verdicts, strict=True)
            if verdict == 1
        ]

    def _dead_letter(
        self, consumer: _RedisConsumer, entry_id: str, fields: dict[bytes, bytes], err: ValueError
    ) -> None:
        if isinstance(err, ValidationError):
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "entry"
            error = f"not a valid event: {where}: {first['msg']} ({err.error_count()} error(s))"
        else:
            error = f"not a valid event: {err}"
        raw = json.dumps({_text(key): _text(value) for key, value in fields.items()}, ensure_ascii=False)
        logger.warning(
            "dead-lettered entry %s of topic %s for group %s: %s", entry_id, consumer.topic, consumer.group, error
        )
        stream = self.stream_key(consumer.topic)
        record = {
            "entry": entry_id,
            "group": consumer.group,
            "consumer": consumer.name,
            "error": error,
            "raw": raw,
        }
        with self._call(f"dead-letter entry {entry_id} of {consumer.topic!r}"):
            pipe = self._client.pipeline(transaction=True)
            pipe.xadd(f"{stream}:dead", cast(Any, record), maxlen=self.maxlen, approximate=True)
            pipe.xack(stream, consumer.group, entry_id)
            pipe.execute()

    def _read_new(self, consumer: _RedisConsumer, max_count: int, block_ms: int | None) -> list[_Entry]:
        stream = self.stream_key(consumer.topic)
        with self._call(f"fetch from {consumer.topic!r}"):
            try:
                reply = self._client.xreadgroup(
                    consumer.group, consumer.name, {stream: ">"}, count=max_count, block=block_ms
                )
            except redis_errors.ResponseError as err:
                if "NOGROUP" not in str(err):
                    raise
                # The stream was deleted under us (e.g. by an operator): recreate it and the group, read again.
                logger.warning("group %s on %s vanished; recreating it", consumer.group, consumer.topic)
                self._ensure_group(consumer.topic, consumer.group, consumer.from_start)
                return []
        streams = cast(list[tuple[bytes, list[_Entry]]], reply or [])
        return [entry for _key, entries in streams for entry in entries]

    def _fetch(self, consumer: _RedisConsumer, max_count: int, block_s: float) -> list[Delivery]:
        deadline = time.monotonic() + block_s
        self._mark_seen(consumer.topic, consumer.group)
        while True:
            remaining = deadline - time.monotonic()
            block_ms = max(1, int(min(remaining, self.block_slice_s) * 1000)) if remaining > 0 else None
            entries = self._read_new(consumer, max_count, block_ms)
            out = self._admit(consumer, entries, {})
            if out or consumer.closed:  # closed by another thread while we waited: stop, as the memory bus does
                return out
            # Entries that were all duplicates or dead letters: read on at once; nothing new: wait out the time.
            if not entries and time.monotonic() >= deadline:
                return []

    def _reclaim(self, consumer: _RedisConsumer, min_idle_s: float, max_count: int) -> list[Delivery]:
        stream = self.stream_key(consumer.topic)
        out: list[Delivery] = []
        start = "0-0"
        while len(out) < max_count:
            with self._call(f"reclaim from {consumer.topic!r}"):
                reply = self._client.xautoclaim(
                    stream,
                    consumer.group,
                    consumer.name,
                    int(min_idle_s * 1000),
                    start_id=start,
                    count=max_count - len(out),
                )
            start = _text(reply[0])
            claimed = [entry for entry in cast(list[_Entry], reply[1]) if entry and entry[1] is not None]
            out += self._admit(consumer, claimed, self._delivery_counts(consumer, claimed))
            if start == "0-0":
                break
        if out:
            logger.info(
                "consumer %s reclaimed %d event(s) of %s/%s",
                consumer.name,
                len(out),
                consumer.topic,
                consumer.group,
            )
        return out

    def _delivery_counts(self, consumer: _RedisConsumer, entries: Sequence[_Entry]) -> dict[str, int]:
        """Times each just-claimed entry has been delivered (XAUTOCLAIM does not say; XPENDING does)."""
        if not entries:
            return {}
        stream = self.stream_key(consumer.topic)
        with self._call(f"reclaim from {consumer.topic!r}"):
            pipe = self._client.pipeline(transaction=False)
            for entry_id, _fields in entries:
                pipe.xpending_range(stream, consumer.group, min=entry_id, max=entry_id, count=1)
            replies = cast(list[list[dict[str, Any]]], pipe.execute())
        return {_text(row["message_id"]): int(row["times_delivered"]) for rows in replies for row in rows}

    def _ack(self, consumer: _RedisConsumer, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        args: list[str | int] = [consumer.group, self.dedup_ttl_ms]
        for delivery in deliveries:
            args += [delivery.delivery_id, delivery.event.id]
        with self._call(f"acknowledge on {consumer.topic!r}"):
            self._ack_script(keys=self._group_keys(consumer.topic, consumer.group), args=args)


class _RedisConsumer(Consumer):
    def __init__(self, bus: RedisStreamsBus, topic: str, group: str, name: str, from_start: bool) -> None:
        super().__init__(topic, group, name)
        self._bus = bus
        self.from_start = from_start

    def fetch(self, max_count: int = 10, block_s: float = 0.0) -> list[Delivery]:
        """``XREADGROUP >`` up to ``max_count`` events, blocking up to ``block_s`` (in slices) for the first."""
        self._check_open()
        self._check_counts(max_count, block_s, "block_s")
        return self._bus._fetch(self, max_count, block_s)

    def ack(self, *deliveries: Delivery) -> None:
        """``XACK`` the deliveries and record their event ids as done, atomically."""
        self._check_open()
        self._check_own(deliveries)
        self._bus._ack(self, deliveries)

    def reclaim(self, min_idle_s: float, max_count: int = 100) -> list[Delivery]:
        """``XAUTOCLAIM`` entries idle at least ``min_idle_s``; delivery counts from ``XPENDING``."""
        self._check_open()
        self._check_counts(max_count, min_idle_s, "min_idle_s")
        return self._bus._reclaim(self, min_idle_s, max_count)
