"""The WebSocket feed: a published event reaches the console at once and only within the user's scope, event
handling and wall alarms come through, the handshake needs a valid session and a same-site Origin, a slow
client is dropped without holding up the others, dead clients are noticed, and the app shuts the feed down."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from campuswatch.patrol_facts import StoredFleetFacts
from config import Settings
from kernel.bus import Event, InMemoryBus, RedisStreamsBus
from kernel.db import session_scope
from tests.bureau import Bureau, ManualClock, login
from tests.web.test_event_actions_api import add_event
from web.app import create_app
from web.feed import CLOSE_TOO_SLOW, FeedBroadcaster, FeedClient, FeedMessage
from web.models import User

ORIGIN = {"origin": "http://testserver"}
REDIS_URL = "redis://127.0.0.1:6379/0"


def started(school: str, camera: str | None = None, event_id: int = 1) -> Event:
    return Event(
        topic="events",
        type="event.started",
        source="test",
        payload={
            "event_id": event_id,
            "type": "intrusion",
            "severity": "major",
            "camera_code": camera or f"{school}-GATE",
            "school_code": school,
        },
    )


def receive(ws: WebSocketTestSession, skip_pings: bool = True) -> dict[str, Any]:
    while True:
        message: dict[str, Any] = ws.receive_json()
        if not (skip_pings and message.get("type") == "ping"):
            return message


def feed_of(api: TestClient) -> FeedBroadcaster:
    app = api.app
    assert isinstance(app, FastAPI)
    feed: FeedBroadcaster = app.state.feed
    return feed


@pytest.mark.timeout(60)
def test_a_published_event_arrives_within_the_users_scope_only(api: TestClient, bus: InMemoryBus) -> None:
    login(api, "officer_d1")
    with api.websocket_connect("/ws/feed", headers=ORIGIN) as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["user"]["username"] == "officer_d1"
        assert hello["scope"] == "district D1"
        sent_at = time.monotonic()
        bus.publish(started("S21", event_id=7))  # district D2: not for this officer
        bus.publish(started("S11", event_id=8))
        message = receive(ws)
        assert time.monotonic() - sent_at < 2.0
        assert message["topic"] == "events" and message["type"] == "event.started"
        assert message["payload"]["event_id"] == 8 and message["payload"]["school_code"] == "S11"
        assert set(message) == {"topic", "type", "id", "time", "payload"}
        # Scope from the camera alone (camera health carries no school), and none for a bureau-wide report.
        bus.publish(
            Event(topic="camera.health", type="camera.offline", source="t", payload={"camera_code": "S22-GATE"})
        )
        bus.publish(Event(topic="duty", type="report.daily", source="t", payload={"day": "2026-12-01"}))
        bus.publish(
            Event(topic="camera.health", type="camera.offline", source="t", payload={"camera_code": "S13-DORM"})
        )
        health = receive(ws)
        assert health["topic"] == "camera.health" and health["payload"]["camera_code"] == "S13-DORM"
    login(api, "officer1")  # bureau-wide: everything
    with api.websocket_connect("/ws/feed", headers=ORIGIN) as ws:
        assert ws.receive_json()["scope"] == "bureau"
        bus.publish(started("S21", event_id=9))
        bus.publish(Event(topic="duty", type="report.daily", source="t", payload={"day": "2026-12-01"}))
        got = {receive(ws)["type"] for _ in range(2)}  # two topics: no order between them
        assert got == {"event.started", "report.daily"}


@pytest.mark.timeout(60)
def test_event_handling_and_wall_alarms_come_through_for_the_school(
    api: TestClient, bureau: Bureau, bus: InMemoryBus
) -> None:
    s11 = add_event(bureau, "S11-GATE")
    s12 = add_event(bureau, "S12-GATE")
    login(api, "school11")
    with api.websocket_connect("/ws/feed", headers=ORIGIN) as school_ws:
        school_ws.receive_json()
        login(api, "officer1")  # the same client: its cookie changes, the open socket keeps its session
        assert api.post(f"/api/events/{s12}/acknowledge").status_code == 200  # not school11's
        assert api.post(f"/api/events/{s11}/acknowledge").status_code == 200
        handled = receive(school_ws)
        assert (handled["topic"], handled["type"]) == ("duty", "event.acknowledged")
        assert handled["payload"]["event_id"] == s11 and handled["payload"]["by_username"] == "officer1"
        # A wall event naming only an alarm is scoped by the alarm's school.
        bus.publish(
            Event(
                topic="walls", type="wall.alarm_acknowledged", source="t", payload={"wall_id": 99, "alarm_id": 1}
            )
        )
        bus.publish(started("S11", event_id=s11))
        assert receive(school_ws)["payload"]["event_id"] == s11  # the unknown alarm was bureau-only


@pytest.mark.timeout(60)
def test_the_handshake_needs_a_valid_session_and_a_same_site_origin(api: TestClient, bureau: Bureau) -> None:
    with pytest.raises(WebSocketDisconnect) as refused, api.websocket_connect("/ws/feed", headers=ORIGIN):
        pass
    assert refused.value.code == 1008
    login(api, "officer1")
    for origin in ("http://evil.example", "null", "http://testserver.evil.example", "ftp://testserver"):
        with (
            pytest.raises(WebSocketDisconnect) as hijack,
            api.websocket_connect("/ws/feed", headers={"origin": origin}),
        ):
            pass
        assert hijack.value.code == 1008, origin
    with api.websocket_connect("/ws/feed") as ws:  # no Origin: not a browser
        assert ws.receive_json()["type"] == "hello"
    with session_scope(bureau.factory) as session:  # a password change ends every session
        session.execute(
            update(User).where(User.username == "officer1").values(session_version=User.session_version + 1)
        )
    with pytest.raises(WebSocketDisconnect) as ended, api.websocket_connect("/ws/feed", headers=ORIGIN):
        pass
    assert ended.value.code == 1008


@pytest.mark.timeout(60)
def test_an_open_socket_ends_with_its_session_and_a_silent_one_is_closed(api: TestClient, bureau: Bureau) -> None:
    feed = feed_of(api)
    feed.heartbeat_s, feed.pong_timeout_s = 0.1, 0.45
    login(api, "officer1")
    with api.websocket_connect("/ws/feed", headers=ORIGIN) as ws:
        assert ws.receive_json()["heartbeat_s"] == 0.1
        deadline = time.monotonic() + 1.0
        pings = 0
        while time.monotonic() < deadline:  # answering the pings keeps it open
            assert ws.receive_json()["type"] == "ping"
            ws.send_json({"type": "pong"})
            pings += 1
        assert pings >= 5
        with pytest.raises(WebSocketDisconnect) as silent:
            while True:
                ws.receive_json()  # no more pongs
        assert silent.value.code == 4408
    with api.websocket_connect("/ws/feed", headers=ORIGIN) as ws:
        ws.receive_json()
        with session_scope(bureau.factory) as session:
            session.execute(update(User).where(User.username == "officer1").values(active=False))
        with pytest.raises(WebSocketDisconnect) as ended:
            while True:
                ws.receive_json()
                ws.send_json({"type": "pong"})
        assert ended.value.code == 4401


async def _register(feed: FeedBroadcaster, size: int) -> FeedClient:
    return feed.register(None, queue_size=size)


async def _burst(feed: FeedBroadcaster, count: int) -> None:
    # No await in between: the sockets' senders get no chance to drain their queues meanwhile.
    for n in range(count):
        feed.deliver(FeedMessage(f'{{"type": "burst", "n": {n}}}', frozenset({"S11"})))


@pytest.mark.timeout(60)
def test_a_slow_client_is_dropped_and_the_others_go_on(api: TestClient, bus: InMemoryBus) -> None:
    feed = feed_of(api)
    login(api, "officer1")
    assert api.portal is not None
    stuck = api.portal.call(_register, feed, 5)  # registered, never read: a browser that stopped reading
    with api.websocket_connect("/ws/feed", headers=ORIGIN) as ws:
        ws.receive_json()
        for n in range(20):
            bus.publish(started("S11", event_id=100 + n))
        assert [receive(ws)["payload"]["event_id"] for _ in range(20)] == list(range(100, 120))
        assert stuck.kicked.is_set() and stuck.close_code == CLOSE_TOO_SLOW and feed.dropped == 1
        assert feed.running and feed.clients == 1
        bus.publish(started("S11", event_id=200))
        assert receive(ws)["payload"]["event_id"] == 200
    feed.queue_size = 3
    with api.websocket_connect("/ws/feed", headers=ORIGIN) as ws:
        ws.receive_json()
        api.portal.call(_burst, feed, 10)
        with pytest.raises(WebSocketDisconnect) as dropped:
            while True:
                ws.receive_json()
        assert dropped.value.code == CLOSE_TOO_SLOW
    assert feed.dropped == 2


@pytest.mark.timeout(60)
def test_the_app_closes_the_sockets_and_stops_the_feed_threads(
    settings: Settings, migrated_engine: Engine, bureau: Bureau, clock: ManualClock
) -> None:
    with InMemoryBus() as bus:
        app = create_app(settings, engine=migrated_engine, facts=StoredFleetFacts(), bus=bus, clock=clock)
        feed: FeedBroadcaster = app.state.feed
        with TestClient(app) as client:
            threads = list(feed._threads)
            assert {t.name for t in threads} >= {"feed-events", "feed-duty", "feed-walls", "feed-camera.health"}
            login(client, "officer1")
            with client.websocket_connect("/ws/feed", headers=ORIGIN) as ws:
                ws.receive_json()
                assert client.portal is not None
                client.portal.call(feed.aclose)
                with pytest.raises(WebSocketDisconnect) as bye:
                    ws.receive_json()
                assert bye.value.code == 1001
        assert not feed.running and not any(t.is_alive() for t in threads)
        with TestClient(app) as client:  # the app started again: the feed with it
            login(client, "officer1")
            with client.websocket_connect("/ws/feed", headers=ORIGIN) as ws:
                ws.receive_json()
                bus.publish(started("S11", event_id=5))
                assert receive(ws)["payload"]["event_id"] == 5
        assert not feed.running


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"cw-test-feed-{uuid.uuid4().hex[:8]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.mark.redis
@pytest.mark.timeout(60)
def test_every_web_process_gets_every_event_over_redis(
    settings: Settings, migrated_engine: Engine, bureau: Bureau, clock: ManualClock, redis_prefix: str
) -> None:
    """Two app processes on one Redis bus: each reads in its own group, so both consoles see the event."""
    buses = [RedisStreamsBus(REDIS_URL, key_prefix=redis_prefix) for _ in range(2)]
    apps = [
        create_app(settings, engine=migrated_engine, facts=StoredFleetFacts(), bus=b, clock=clock) for b in buses
    ]
    try:
        with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
            assert apps[0].state.feed.group != apps[1].state.feed.group
            login(one, "officer1")
            login(two, "officer_d1")
            with (
                one.websocket_connect("/ws/feed", headers=ORIGIN) as ws1,
                two.websocket_connect("/ws/feed", headers=ORIGIN) as ws2,
            ):
                ws1.receive_json()
                ws2.receive_json()
                sent_at = time.monotonic()
                buses[0].publish(started("S12", event_id=42))
                assert receive(ws1)["payload"]["event_id"] == 42
                assert receive(ws2)["payload"]["event_id"] == 42
                assert time.monotonic() - sent_at < 2.0
    finally:
        for b in buses:
            b.close()


@pytest.mark.redis
@pytest.mark.timeout(60)
def test_a_stopping_process_drops_its_groups_and_a_starting_one_those_dead_processes_left(
    settings: Settings, migrated_engine: Engine, bureau: Bureau, clock: ManualClock, redis_prefix: str
) -> None:
    bus = RedisStreamsBus(REDIS_URL, key_prefix=redis_prefix)
    client = redis.Redis.from_url(REDIS_URL)
    stream = bus.stream_key("events")

    def groups() -> set[str]:
        return {g["name"].decode() for g in client.xinfo_groups(stream)} if client.exists(stream) else set()

    try:
        for name in ("web-feed-dead-1", "web-feed-alive-2"):  # two other processes' groups
            bus.consumer("events", name, f"{name}-events", from_start=False).fetch(1)
        # The dead one last fetched two hours ago; the other process is alive.
        client.set(f"{stream}:web-feed-dead-1:seen", f"{time.time() - 7200:.3f}")
        app = create_app(settings, engine=migrated_engine, facts=StoredFleetFacts(), bus=bus, clock=clock)
        with TestClient(app):
            own = app.state.feed.group
            assert groups() == {"web-feed-alive-2", own}
        assert groups() == {"web-feed-alive-2"}  # its own group went with the process
    finally:
        client.close()
        bus.close()


@pytest.mark.timeout(60)
def test_a_wall_page_reaches_only_users_who_may_see_every_camera_on_it(api: TestClient, bus: InMemoryBus) -> None:
    def page(wall_id: int, *cameras: str) -> Event:
        tiles = {str(n): code for n, code in enumerate(cameras)}
        payload = {"wall_id": wall_id, "tiles": tiles, "paused": False, "alarm_id": None, "alarm_tiles": []}
        return Event(topic="walls", type="wall.page", source="t", payload=payload)

    login(api, "officer_d1")
    with api.websocket_connect("/ws/feed", headers=ORIGIN) as ws:
        ws.receive_json()  # hello
        bus.publish(page(1, "S11-GATE", "S21-GATE"))  # a camera of district D2 on it: not for D1
        bus.publish(page(2, "S11-GATE", "S13-YARD"))
        message = receive(ws)
        assert message["type"] == "wall.page" and message["payload"]["wall_id"] == 2
