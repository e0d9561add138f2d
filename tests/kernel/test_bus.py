"""The event bus: one suite run against the in-memory bus and against Redis Streams on the real server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis
from pydantic import ValidationError

from kernel.bus import (
    Consumer,
    Delivery,
    Event,
    EventBus,
    InMemoryBus,
    RedisStreamsBus,
    aack,
    afetch,
    apublish,
    create_bus,
)
from kernel.errors import BusError

REDIS_URL = "redis://127.0.0.1:6379/0"
REPO_ROOT = Path(__file__).resolve().parents[2]
TOPIC = "camera.health"
# Redis trims ``MAXLEN ~`` streams by whole internal nodes (stream-node-max-entries, 100 by default).
REDIS_TRIM_SLACK = 100


@dataclass
class BusMaker:
    """Makes buses of one kind; for Redis all share a unique key prefix, deleted after the test."""

    kind: str
    prefix: str
    buses: list[EventBus] = field(default_factory=list)

    def __call__(self, **options: Any) -> EventBus:
        if self.kind == "memory":
            bus: EventBus = InMemoryBus(**options)
        else:
            bus = RedisStreamsBus(REDIS_URL, key_prefix=self.prefix, **options)
        self.buses.append(bus)
        return bus

    def inject_raw(self, bus: EventBus, topic: str, raw: bytes) -> None:
        """Append an entry as another program would: Redis through a plain client, memory via publish_raw."""
        if isinstance(bus, InMemoryBus):
            bus.publish_raw(topic, raw.decode("utf-8", "replace"))
            return
        assert isinstance(bus, RedisStreamsBus)
        client = redis.Redis.from_url(REDIS_URL)
        try:
            client.xadd(bus.stream_key(topic), {"event": raw})
        finally:
            client.close()


def _bus_maker(kind: str) -> Iterator[BusMaker]:
    maker = BusMaker(kind, f"cwtest:{uuid.uuid4().hex[:12]}:")
    yield maker
    for bus in maker.buses:
        bus.close()
    if kind == "redis":
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{maker.prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def make_bus(request: pytest.FixtureRequest) -> Iterator[BusMaker]:
    """Each test of the shared suite runs once per implementation."""
    yield from _bus_maker(request.param)


@pytest.fixture
def redis_bus() -> Iterator[RedisStreamsBus]:
    """A Redis bus alone, for the Redis-specific tests (mark them ``redis``)."""
    for maker in _bus_maker("redis"):
        bus = maker()
        assert isinstance(bus, RedisStreamsBus)
        yield bus


@pytest.fixture
def bus(make_bus: BusMaker) -> EventBus:
    return make_bus()


def event(n: int = 0, *, topic: str = TOPIC, **kwargs: Any) -> Event:
    return Event(topic=topic, type="camera.up", source="test", payload={"n": n, "tags": ["a"]}, **kwargs)


def publish_many(bus: EventBus, count: int) -> list[Event]:
    events = [event(n) for n in range(count)]
    for item in events:
        bus.publish(item)
    return events


def drain(consumer: Consumer, batch: int = 100) -> list[Delivery]:
    """Fetch (and ack) everything the group has not been handed yet."""
    out: list[Delivery] = []
    while got := consumer.fetch(batch):
        consumer.ack(*got)
        out += got
    return out


def ids(deliveries: list[Delivery]) -> list[str]:
    return [d.event.id for d in deliveries]


# -- the shared suite ------------------------------------------------------------------------------------------


def test_publish_fetch_ack_round_trip(bus: EventBus) -> None:
    consumer = bus.consumer(TOPIC, "web", "web-1")
    sent = Event(
        topic=TOPIC, type="camera.down", source="ingest-3", payload={"camera": 7, "x": {"y": [1.5, None]}}
    )
    entry_id = bus.publish(sent)
    [delivery] = consumer.fetch(10)
    assert delivery.event == sent
    assert (delivery.topic, delivery.group, delivery.delivery_id, delivery.delivery_count) == (
        TOPIC,
        "web",
        entry_id,
        1,
    )
    consumer.ack(delivery)
    assert consumer.fetch(10) == []
    assert consumer.reclaim(0) == []


def test_events_arrive_in_publish_order(bus: EventBus) -> None:
    consumer = bus.consumer(TOPIC, "web", "web-1")
    sent = publish_many(bus, 40)
    got: list[Delivery] = []
    while batch := consumer.fetch(7):
        assert len(batch) <= 7
        got += batch
    assert ids(got) == [e.id for e in sent]


def test_every_group_gets_every_event(bus: EventBus) -> None:
    web, patrol = bus.consumer(TOPIC, "web", "w"), bus.consumer(TOPIC, "patrol", "p")
    sent = [e.id for e in publish_many(bus, 10)]
    assert ids(drain(web)) == sent
    assert ids(drain(patrol)) == sent


def test_consumers_of_one_group_share_the_events(bus: EventBus) -> None:
    first, second = bus.consumer(TOPIC, "patrol", "p1"), bus.consumer(TOPIC, "patrol", "p2")
    sent = {e.id for e in publish_many(bus, 20)}
    seen: dict[str, list[str]] = {"p1": [], "p2": []}
    while True:
        batch1, batch2 = first.fetch(3), second.fetch(3)
        if not batch1 and not batch2:
            break
        seen["p1"] += ids(batch1)
        seen["p2"] += ids(batch2)
        first.ack(*batch1)
        second.ack(*batch2)
    assert seen["p1"] and seen["p2"]
    assert set(seen["p1"]).isdisjoint(seen["p2"])
    assert set(seen["p1"]) | set(seen["p2"]) == sent


def test_new_group_can_start_at_the_next_event(bus: EventBus) -> None:
    publish_many(bus, 3)
    late = bus.consumer(TOPIC, "late", "l1", from_start=False)
    fresh = event(99)
    bus.publish(fresh)
    assert ids(drain(late)) == [fresh.id]
    assert len(drain(bus.consumer(TOPIC, "history", "h1"))) == 4


def test_unacked_events_are_reclaimed_after_min_idle_and_acked_ones_are_not(bus: EventBus) -> None:
    worker, rescuer = bus.consumer(TOPIC, "patrol", "p1"), bus.consumer(TOPIC, "patrol", "p2")
    sent = publish_many(bus, 4)
    got = worker.fetch(10)
    worker.ack(*got[:2])
    assert rescuer.reclaim(min_idle_s=30) == []  # not idle long enough yet
    time.sleep(0.15)
    reclaimed = rescuer.reclaim(min_idle_s=0.1)
    assert ids(reclaimed) == [e.id for e in sent[2:]]
    assert [d.delivery_count for d in reclaimed] == [2, 2]
    rescuer.ack(*reclaimed)
    time.sleep(0.15)
    assert rescuer.reclaim(min_idle_s=0.1) == []
    assert worker.reclaim(min_idle_s=0) == []


def test_a_republished_event_id_is_processed_once(bus: EventBus) -> None:
    consumer = bus.consumer(TOPIC, "web", "w1")
    original = event(1)
    bus.publish(original)
    bus.publish(original)  # a producer retrying after a timeout
    bus.publish(event(2))
    got = consumer.fetch(10)
    assert [d.event.payload["n"] for d in got] == [1, 2]
    consumer.ack(*got)
    bus.publish(original)  # much later, after the group acked it
    assert consumer.fetch(10) == []
    # Another group has its own memory of what it processed.
    assert [d.event.id for d in drain(bus.consumer(TOPIC, "patrol", "p1"))] == [original.id, got[1].event.id]


def test_a_duplicate_of_an_event_in_flight_is_held_back_and_the_original_reclaimed(bus: EventBus) -> None:
    dead, alive = bus.consumer(TOPIC, "web", "w1"), bus.consumer(TOPIC, "web", "w2")
    original = event(1)
    bus.publish(original)
    [first] = dead.fetch(10)
    bus.publish(original)  # retried publish while the first copy is still being processed
    assert alive.fetch(10) == []
    dead.close()
    time.sleep(0.15)
    [again] = alive.reclaim(min_idle_s=0.1)
    assert (again.delivery_id, again.delivery_count, again.event) == (first.delivery_id, 2, original)
    alive.ack(again)
    time.sleep(0.15)
    assert alive.reclaim(min_idle_s=0.1) == []
    assert alive.fetch(10) == []


def test_blocking_fetch_wakes_when_another_thread_publishes(bus: EventBus) -> None:
    consumer = bus.consumer(TOPIC, "web", "w1")
    started = time.monotonic()
    assert consumer.fetch(10, block_s=0.3) == []
    assert 0.25 <= time.monotonic() - started < 2
    sent = event(5)
    timer = threading.Timer(0.2, bus.publish, args=(sent,))
    started = time.monotonic()
    timer.start()
    try:
        got = consumer.fetch(10, block_s=10)
    finally:
        timer.join()
    assert ids(got) == [sent.id]
    assert time.monotonic() - started < 3


def test_concurrent_producer_threads(bus: EventBus) -> None:
    consumer = bus.consumer(TOPIC, "web", "w1")
    batches = [[event(n) for n in range(k * 25, k * 25 + 25)] for k in range(4)]
    threads = [threading.Thread(target=lambda b=b: [bus.publish(e) for e in b]) for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = drain(consumer)
    assert sorted(ids(got)) == sorted(e.id for b in batches for e in b)
    for batch in batches:  # each producer's events stay in its order
        wanted = {e.id for e in batch}
        assert [i for i in ids(got) if i in wanted] == [e.id for e in batch]


def test_retention_is_bounded(make_bus: BusMaker) -> None:
    bus = make_bus(maxlen=20)
    sent = publish_many(bus, 300)
    kept = ids(drain(bus.consumer(TOPIC, "late", "l1")))
    slack = REDIS_TRIM_SLACK if make_bus.kind == "redis" else 0
    assert 20 <= len(kept) <= 20 + slack
    assert kept == [e.id for e in sent[-len(kept) :]]  # the newest survive, in order


def test_malformed_entries_are_dead_lettered_without_stopping_the_consumer(make_bus: BusMaker) -> None:
    bus = make_bus()
    consumer = bus.consumer(TOPIC, "web", "w1")
    good = [event(1), event(2)]
    bus.publish(good[0])
    make_bus.inject_raw(bus, TOPIC, b'{"id": "not json')
    make_bus.inject_raw(bus, TOPIC, json.dumps({"topic": TOPIC, "type": "x"}).encode())  # fields missing
    make_bus.inject_raw(bus, TOPIC, event(3, topic="door.open").to_json().encode())  # wrong stream
    bus.publish(good[1])
    assert ids(drain(consumer)) == [e.id for e in good]
    dead = bus.dead_letters(TOPIC)
    assert len(dead) == 3
    assert all(d.group == "web" and d.consumer == "w1" and d.error.startswith("not a valid event") for d in dead)
    assert "not json" in dead[0].raw
    assert "Invalid JSON" in dead[0].error
    assert "source" in dead[1].error
    assert "door.open" in dead[2].error
    time.sleep(0.05)
    assert consumer.reclaim(min_idle_s=0) == []  # dead letters are acknowledged, never redelivered
    late = event(4)
    bus.publish(late)
    assert ids(consumer.fetch(10)) == [late.id]


@pytest.mark.redis
def test_undecodable_bytes_and_foreign_fields_are_dead_lettered(redis_bus: RedisStreamsBus) -> None:
    consumer = redis_bus.consumer(TOPIC, "web", "w1")
    client = redis.Redis.from_url(REDIS_URL)
    client.xadd(redis_bus.stream_key(TOPIC), {"event": b"\xff\xfe\x00garbage"})
    client.xadd(redis_bus.stream_key(TOPIC), {"other": "field"})
    client.close()
    good = event(1)
    redis_bus.publish(good)
    assert ids(consumer.fetch(10)) == [good.id]
    errors = [d.error for d in redis_bus.dead_letters(TOPIC)]
    assert len(errors) == 2
    assert "no 'event' field" in errors[1]


_DOOMED_CONSUMER = """
import sys, time
from kernel.bus import RedisStreamsBus
prefix, topic, fetch_count, ack_count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
bus = RedisStreamsBus("redis://127.0.0.1:6379/0", key_prefix=prefix)
consumer = bus.consumer(topic, "patrol", "doomed")
got = consumer.fetch(fetch_count)
consumer.ack(*got[:ack_count])
for delivery in got[:ack_count]:
    print("ACKED", delivery.event.id)
print("READY", len(got), flush=True)
time.sleep(60)
"""


def _kill_consumer_mid_stream(make_bus: BusMaker, bus: EventBus, fetch_count: int, ack_count: int) -> list[str]:
    """A consumer of group ``patrol`` fetches, acks some, and dies; returns the ids it acked."""
    if make_bus.kind == "memory":
        doomed = bus.consumer(TOPIC, "patrol", "doomed")
        got = doomed.fetch(fetch_count)
        doomed.ack(*got[:ack_count])
        doomed.close()  # abandoned without acking the rest
        return ids(got[:ack_count])
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    args = [make_bus.prefix, TOPIC, str(fetch_count), str(ack_count)]
    proc = subprocess.Popen(
        [sys.executable, "-c", _DOOMED_CONSUMER, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            word, _, rest = line.strip().partition(" ")
            if word == "ACKED":
                acked.append(rest)
            elif word == "READY":
                assert int(rest) == fetch_count
                break
        else:
            pytest.fail(f"consumer process ended early: {proc.stderr.read() if proc.stderr else ''}")
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()
    return acked


def test_events_of_a_killed_consumer_go_to_another_exactly_once(make_bus: BusMaker) -> None:
    bus = make_bus()
    bus.consumer(TOPIC, "patrol", "survivor")  # create the group before publishing
    sent = publish_many(bus, 20)
    bus.publish(sent[5])  # a producer retry: still one event for the group
    acked_by_dead = _kill_consumer_mid_stream(make_bus, bus, fetch_count=8, ack_count=3)
    assert acked_by_dead == [e.id for e in sent[:3]]

    survivor = bus.consumer(TOPIC, "patrol", "survivor")
    processed: list[str] = []
    fresh = survivor.fetch(100)  # what nobody had been given yet
    assert ids(fresh) == [e.id for e in sent[8:]]
    processed += ids(fresh)
    survivor.ack(*fresh)
    time.sleep(0.2)
    reclaimed = survivor.reclaim(min_idle_s=0.15)
    assert ids(reclaimed) == [e.id for e in sent[3:8]]
    assert all(d.delivery_count == 2 for d in reclaimed)
    processed += ids(reclaimed)
    survivor.ack(*reclaimed)
    time.sleep(0.2)
    assert survivor.reclaim(min_idle_s=0.15) == []
    assert survivor.fetch(100) == []

    everything = acked_by_dead + processed
    assert len(everything) == len(set(everything))  # none processed twice
    assert set(everything) == {e.id for e in sent}  # none lost


def test_ack_through_a_consumer_of_another_group_is_refused(bus: EventBus) -> None:
    web, patrol = bus.consumer(TOPIC, "web", "w1"), bus.consumer(TOPIC, "patrol", "p1")
    bus.publish(event())
    [delivery] = web.fetch()
    with pytest.raises(BusError, match="cannot ack"):
        patrol.ack(delivery)


def test_closed_consumer_refuses_work_and_bad_names_are_refused(bus: EventBus) -> None:
    consumer = bus.consumer(TOPIC, "web", "w1")
    consumer.close()
    with pytest.raises(BusError, match="closed"):
        consumer.fetch()
    with pytest.raises(BusError, match="group name"):
        bus.consumer(TOPIC, "we:b", "w1")
    with pytest.raises(BusError, match="invalid topic"):
        bus.consumer("Camera Health", "web", "w1")
    with pytest.raises(BusError, match="max_count"):
        bus.consumer(TOPIC, "web", "w2").fetch(0)


def test_asyncio_helpers(bus: EventBus) -> None:
    consumer = bus.consumer(TOPIC, "web", "w1")
    sent = event(1)

    async def scenario() -> list[Delivery]:
        waiter = asyncio.create_task(afetch(consumer, 10, 5.0))
        await asyncio.sleep(0.1)
        await apublish(bus, sent)
        got = await waiter
        await aack(consumer, *got)
        return got

    got = asyncio.run(scenario())
    assert ids(got) == [sent.id]
    assert consumer.reclaim(0) == []


# -- implementation-specific -------------------------------------------------------------------------------------


def test_closing_the_consumer_wakes_a_blocked_fetch() -> None:
    bus = InMemoryBus()
    consumer = bus.consumer(TOPIC, "web", "w1")
    timer = threading.Timer(0.1, consumer.close)
    started = time.monotonic()
    timer.start()
    assert consumer.fetch(block_s=10) == []
    timer.join()
    assert time.monotonic() - started < 2
    bus.close()
    with pytest.raises(BusError, match="closed"):
        bus.publish(event())


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_redis_down_gives_a_clear_error_without_the_password() -> None:
    url = f"redis://:Sup3rS3cret@127.0.0.1:{_closed_port()}/0"
    bus = create_bus(url)
    started = time.monotonic()
    with pytest.raises(BusError, match="cannot reach Redis at redis://") as info:
        bus.publish(event())
    assert time.monotonic() - started < 5
    with pytest.raises(BusError, match="cannot reach Redis") as info2:
        bus.consumer(TOPIC, "web", "w1")
    for message in (str(info.value), str(info2.value)):
        assert "Sup3rS3cret" not in message
        assert "***" in message
    bus.close()


@pytest.mark.redis
def test_redis_wrong_password_is_reported_without_it() -> None:
    bus = create_bus("redis://:Sup3rS3cret@127.0.0.1:6379/0", key_prefix="cwtest:nopw:")
    with pytest.raises(BusError, match="rejected the credentials") as info:
        bus.publish(event())
    assert "Sup3rS3cret" not in str(info.value)
    bus.close()


def test_factory_picks_the_implementation() -> None:
    for url in (None, "memory://"):
        bus = create_bus(url, maxlen=5)
        assert isinstance(bus, InMemoryBus)
        assert bus.maxlen == 5
    redis_bus = create_bus("redis://127.0.0.1:6379/0", key_prefix="x:")  # no connection until used
    assert isinstance(redis_bus, RedisStreamsBus)
    assert redis_bus.stream_key("camera.health") == "x:{camera.health}"
    redis_bus.close()
    with pytest.raises(BusError, match="unsupported event bus URL") as info:
        create_bus("kafka://admin:hunter2@broker:9092")
    assert "hunter2" not in str(info.value)
    with pytest.raises(BusError, match="unknown InMemoryBus option"):
        create_bus("memory://", key_prefix="x")


# -- the event model -------------------------------------------------------------------------------------------


def test_event_defaults_validation_and_json_round_trip() -> None:
    sent = event(1)
    assert uuid.UUID(sent.id)
    assert sent.time.tzinfo is UTC
    assert abs(datetime.now(UTC) - sent.time) < timedelta(seconds=5)
    assert Event.from_json(sent.to_json()) == sent
    local = datetime(2025, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
    moved = event(time=local, id=sent.id.upper())
    assert moved.time == local and moved.time.utcoffset() == timedelta(0)
    assert moved.id == sent.id  # canonical form, so the upper-case spelling is the same event
    with pytest.raises(ValidationError, match="frozen"):
        sent.topic = "door.open"  # type: ignore[misc]
    for bad in ({"topic": "Camera.Health"}, {"topic": "camera..health"}, {"topic": "camera:health"}):
        with pytest.raises(ValidationError, match="invalid topic"):
            Event(type="t", source="s", **bad)
    with pytest.raises(ValidationError, match="timezone"):
        event(time=datetime(2025, 1, 1))  # naive on purpose
    with pytest.raises(ValidationError, match="not a UUID"):
        event(id="42")
    with pytest.raises(ValidationError):
        Event(topic=TOPIC, type="t", source="s", payload={"frame": object()})


@pytest.mark.redis
def test_redis_group_is_recreated_if_the_stream_is_deleted(redis_bus: RedisStreamsBus) -> None:
    consumer = redis_bus.consumer(TOPIC, "web", "w1")
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(redis_bus.stream_key(TOPIC))  # an operator cleaning up
    client.close()
    assert consumer.fetch(10) == []
    sent = event(1)
    redis_bus.publish(sent)
    assert ids(consumer.fetch(10)) == [sent.id]


def test_a_dropped_group_is_gone_with_its_pending_entries(bus: EventBus) -> None:
    consumer = bus.consumer(TOPIC, "feed-a", "c1")
    other = bus.consumer(TOPIC, "other", "c1")
    first = event(1)
    bus.publish(first)
    assert len(consumer.fetch(10)) == 1  # one pending, never acknowledged
    consumer.close()
    assert bus.drop_group(TOPIC, "feed-a") is True
    assert bus.drop_group(TOPIC, "feed-a") is False
    assert bus.drop_group("no.such.topic", "feed-a") is False
    assert bus.idle_groups(TOPIC, "feed-", 0.0) == []
    # Another group keeps its place; the dropped name starts afresh when used again (nothing pending).
    assert ids(drain(other)) == [first.id]
    again = bus.consumer(TOPIC, "feed-a", "c2", from_start=False)
    assert again.reclaim(0.0) == []
    second = event(2)
    bus.publish(second)
    assert ids(again.fetch(10)) == [second.id]


def test_idle_groups_lists_only_groups_of_the_prefix_not_read_for_a_while(bus: EventBus) -> None:
    bus.publish(event(1))
    old = bus.consumer(TOPIC, "web-feed-old", "c")
    old.fetch(10)
    bus.consumer(TOPIC, "web-feed-new", "c").fetch(10)
    bus.consumer(TOPIC, "notify", "c").fetch(10)
    assert bus.idle_groups(TOPIC, "web-feed-", 0.0) == ["web-feed-new", "web-feed-old"]
    time.sleep(1.2)
    bus.consumer(TOPIC, "web-feed-new", "c").fetch(10)  # still read
    assert bus.idle_groups(TOPIC, "web-feed-", 1.0) == ["web-feed-old"]
    assert bus.idle_groups("no.such.topic", "web-feed-", 0.0) == []
