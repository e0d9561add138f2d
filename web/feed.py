"""The console's real-time feed: bus events fanned out to the WebSockets of this web process, by scope.

One :class:`FeedBroadcaster` per app process reads the feed's topics (``events``, ``duty``, ``walls``,
``camera.health``, ``camera.quality``) in its own consumer group (unique to the process, starting at the next
event: every process sees every event, and a restart does not replay the past). The group is dropped when the
process stops; groups that processes which died left behind (not fetched for :data:`STALE_GROUP_S`) are dropped
by the next process that starts. Each topic is read by one
thread the broadcaster owns (a stop event, joined with a timeout); a thread turns each bus event into one
:class:`FeedMessage` (its JSON text, once, and the schools it concerns) and hands it to the asyncio loop with
``call_soon_threadsafe``. On the loop, every registered :class:`FeedClient` whose scope covers the message's
schools gets it in its bounded queue; a client whose queue is full is dropped (its socket is closed with 4429),
never waited for, so a slow or dead browser cannot hold up the app or the other clients.

Scope: a message concerns the schools named in its payload (``school_code``, ``school_codes``), or found from
its ``camera_code``, ``alarm_id``, ``event_id`` or ``wall_id`` (a wall concerns the schools it watches). A
client sees a message when it can see every school it concerns; a message that concerns no particular school
(a task, the daily report, a wall watching the whole bureau) goes to bureau-wide accounts only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import JsonValue
from sqlalchemy import Select, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from analytics.tables import SafetyEvent
from kernel.bus import Consumer, Delivery, Event, EventBus
from kernel.errors import KernelError
from patrol.tables import VideoWall, WallAlarm
from registry.models import Camera, District, School

log = logging.getLogger(__name__)

FEED_TOPICS = ("events", "duty", "walls", "camera.health", "camera.quality")
DEFAULT_QUEUE_SIZE = 256
CLOSE_TOO_SLOW = 4429
CLOSE_SHUTDOWN = 1001
HEARTBEAT_S = 20.0
PONG_TIMEOUT_S = 60.0
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
GROUP_PREFIX = "web-feed-"
STALE_GROUP_S = 3600.0
"""A feed group not fetched for this long belongs to a process that died (a live one fetches every few s)."""


@dataclass(frozen=True, slots=True)
class FeedMessage:
    """One message of the feed: the JSON text sent, and the school codes it concerns (empty: bureau only)."""

    text: str
    schools: frozenset[str]


def feed_json(event: Event) -> str:
    """The feed's JSON for a bus event: ``{"topic", "type", "id", "time", "payload"}``."""
    body: dict[str, JsonValue] = {
        "topic": event.topic,
        "type": event.type,
        "id": event.id,
        "time": event.time.isoformat(),
        "payload": event.payload,
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


class FleetDirectory:
    """Which school a camera, alarm, event or wall belongs to, read from the database and cached.

    Cameras and walls are reloaded at most every ``refresh_s`` seconds, and at once (but at most every
    ``miss_s``) when an unknown camera or wall turns up. Thread-safe: every consumer thread asks it."""

    def __init__(
        self, session_factory: sessionmaker[Session], *, refresh_s: float = 60.0, miss_s: float = 5.0
    ) -> None:
        self._factory = session_factory
        self._refresh_s = refresh_s
        self._miss_s = miss_s
        self._lock = threading.Lock()
        self._cameras: dict[str, str] = {}
        self._walls: dict[int, frozenset[str]] = {}
        self._loaded_at = -1e9

    def schools_of(self, topic: str, payload: Mapping[str, JsonValue]) -> frozenset[str]:
        """The school codes a bus event's payload concerns (empty: none in particular)."""
        codes = payload.get("school_codes")
        if isinstance(codes, list):
            return frozenset(str(c) for c in codes)
        school = payload.get("school_code")
        if isinstance(school, str) and school:
            return frozenset({school})
        camera = payload.get("camera_code")
        if isinstance(camera, str) and camera:
            found = self._camera_school(camera)
            return frozenset({found}) if found else frozenset()
        tiles = payload.get("tiles")
        if topic == "walls" and isinstance(tiles, dict):
            # A page names every camera it shows (a tour may rotate cameras of any school): only a user who
            # may see all of them, and the alarm's school, gets it.
            shown = {self._camera_school(str(c)) for c in tiles.values() if isinstance(c, str) and c}
            schools = frozenset(s for s in shown if s) | self._looked_up(topic, payload)
            return schools or self._wall_schools_of(payload)
        return self._looked_up(topic, payload)

    def _wall_schools_of(self, payload: Mapping[str, JsonValue]) -> frozenset[str]:
        wall_id = payload.get("wall_id")
        return self._wall_schools(wall_id) if isinstance(wall_id, int) else frozenset()

    def _looked_up(self, topic: str, payload: Mapping[str, JsonValue]) -> frozenset[str]:
        """The schools of a payload that names only an alarm, an event or a wall."""
        alarm_id, event_id, wall_id = payload.get("alarm_id"), payload.get("event_id"), payload.get("wall_id")
        if topic == "walls" and isinstance(alarm_id, int):
            return self._query(select(WallAlarm.school_code).where(WallAlarm.id == alarm_id))
        if isinstance(event_id, int):
            of_event = select(School.code).join(SafetyEvent, SafetyEvent.school_id == School.id)
            return self._query(of_event.where(SafetyEvent.id == event_id))
        if topic == "walls" and isinstance(wall_id, int):
            return self._wall_schools(wall_id)
        return frozenset()

    def _camera_school(self, code: str) -> str | None:
        with self._lock:
            self._load_if(code not in self._cameras)
            return self._cameras.get(code)

    def _wall_schools(self, wall_id: int) -> frozenset[str]:
        with self._lock:
            self._load_if(wall_id not in self._walls)
            return self._walls.get(wall_id, frozenset())

    def _load_if(self, missing: bool) -> None:
        age = time.monotonic() - self._loaded_at
        if age < self._refresh_s and not (missing and age >= self._miss_s):
            return
        try:
            with self._factory() as session:
                cameras = {
                    str(code): str(school)
                    for code, school in session.execute(
                        select(Camera.code, School.code).join(School, School.id == Camera.school_id)
                    )
                }
                by_district: dict[str, set[str]] = {}
                for school, district in session.execute(
                    select(School.code, District.code).join(District, District.id == School.district_id)
                ):
                    by_district.setdefault(str(district), set()).add(str(school))
                walls: dict[int, frozenset[str]] = {}
                for wall_id, districts, schools in session.execute(
                    select(VideoWall.id, VideoWall.districts, VideoWall.schools)
                ):
                    watched = {str(s) for s in schools}
                    for district in districts:
                        watched |= by_district.get(str(district), set())
                    # A wall watching nothing in particular watches the whole bureau: bureau accounts only.
                    walls[int(wall_id)] = frozenset(watched)
        except SQLAlchemyError as err:
            log.warning("feed: could not read the fleet for scoping: %s", err)
            self._loaded_at = time.monotonic()
            return
        self._cameras, self._walls, self._loaded_at = cameras, walls, time.monotonic()

    def _query(self, stmt: Select[tuple[str]]) -> frozenset[str]:
        try:
            with self._factory() as session:
                found = session.scalar(stmt)
        except SQLAlchemyError as err:
            log.warning("feed: could not look up a message's school: %s", err)
            return frozenset()
        return frozenset({str(found)}) if found is not None else frozenset()


@dataclass(eq=False)
class FeedClient:
    """One WebSocket's subscription: the schools it may see (None: the whole bureau) and its bounded queue.

    Touched on the event loop only. ``queue`` yields message texts; ``kicked`` is set when the client must go
    (too slow, or the app is stopping), with ``close_code``/``close_reason`` saying why."""

    visible: frozenset[str] | None
    queue_size: int = DEFAULT_QUEUE_SIZE
    queue: asyncio.Queue[str] = field(init=False)
    kicked: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    close_code: int = field(default=1000, init=False)
    close_reason: str = field(default="", init=False)
    sent: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.queue_size)

    def wants(self, message: FeedMessage) -> bool:
        """Whether this client's scope covers every school the message concerns."""
        if self.visible is None:
            return True
        return bool(message.schools) and message.schools <= self.visible

    def offer(self, text: str) -> bool:
        """Queue ``text``; False (and the client kicked) when the queue is full."""
        if self.kicked.is_set():
            return False
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.kick(CLOSE_TOO_SLOW, "too slow: messages were piling up")
            return False
        return True

    def kick(self, code: int, reason: str) -> None:
        """Make the connection close with ``code`` (the first reason given wins)."""
        if not self.kicked.is_set():
            self.close_code, self.close_reason = code, reason
            self.kicked.set()


class FeedBroadcaster:
    """Reads the feed's topics in threads and fans the messages out to the registered clients on the loop.

    ``heartbeat_s`` and ``pong_timeout_s`` are read by each socket (``web.routers.feed``)."""

    def __init__(
        self,
        bus: EventBus,
        session_factory: sessionmaker[Session],
        *,
        topics: tuple[str, ...] = FEED_TOPICS,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        fetch_block_s: float = 0.5,
        join_timeout_s: float = 5.0,
        heartbeat_s: float = HEARTBEAT_S,
        pong_timeout_s: float = PONG_TIMEOUT_S,
    ) -> None:
        self._bus = bus
        self.heartbeat_s = heartbeat_s
        """Seconds between the pings each socket gets."""
        self.pong_timeout_s = pong_timeout_s
        """A socket that sent nothing for this long is closed (4408)."""
        self.directory = FleetDirectory(session_factory)
        self._topics = topics
        self.queue_size = queue_size
        self._block_s = fetch_block_s
        self._join_timeout_s = join_timeout_s
        self.group = ""
        """This process's consumer group (a new one at each :meth:`start`)."""
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._consumers: dict[str, Consumer] = {}
        self._clients: set[FeedClient] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.dropped = 0

    @property
    def running(self) -> bool:
        """Whether :meth:`start` was called and :meth:`aclose` not yet."""
        return self._loop is not None and not self._stop.is_set()

    @property
    def clients(self) -> int:
        """How many WebSockets are registered."""
        return len(self._clients)

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Join the topics (from the next event on) and start one reading thread per topic; messages go to
        ``loop`` (default: the running one). Started again after :meth:`aclose`, it reads in a new group."""
        self._loop = loop or asyncio.get_running_loop()
        self._stop.clear()
        self._consumers.clear()
        host = _NAME_CHARS.sub("-", socket.gethostname())[:60] or "host"
        self.group = f"{GROUP_PREFIX}{host}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        for topic in self._topics:
            try:
                self._drop_stale_groups(topic)
                self._consumers[topic] = self._consumer(topic)
            except KernelError as err:  # the bus is down: the thread retries
                log.error("feed: cannot read %s yet: %s", topic, err)
            thread = threading.Thread(target=self._run, args=(topic,), name=f"feed-{topic}")
            thread.start()
            self._threads.append(thread)
        log.info("feed: reading %s as group %s", ", ".join(self._topics), self.group)

    async def aclose(self) -> None:
        """Close every client's socket (1001), stop the threads and join them (off the loop)."""
        for client in list(self._clients):
            client.kick(CLOSE_SHUTDOWN, "server shutting down")
        self._clients.clear()
        await asyncio.to_thread(self._stop_threads)

    def register(self, visible: frozenset[str] | None, *, queue_size: int | None = None) -> FeedClient:
        """A new client seeing ``visible`` school codes (None: the whole bureau). Call on the loop."""
        client = FeedClient(visible, queue_size or self.queue_size)
        self._clients.add(client)
        return client

    def unregister(self, client: FeedClient) -> None:
        """Forget ``client`` (its socket closed). Call on the loop."""
        self._clients.discard(client)

    def deliver(self, message: FeedMessage) -> None:
        """Hand ``message`` to every client that may see it; drop those that cannot keep up. On the loop."""
        for client in list(self._clients):
            if client.wants(message) and not client.offer(message.text):
                self._clients.discard(client)
                self.dropped += 1
                log.warning("feed: dropped a client that could not keep up (%d queued)", client.queue.qsize())

    # -- the reading threads ---------------------------------------------------------------------------------

    def _consumer(self, topic: str) -> Consumer:
        return self._bus.consumer(topic, self.group, f"{self.group}-{topic}", from_start=False)

    def _run(self, topic: str) -> None:
        wait_s, backoff_s = 0.0, 1.0
        while not self._stop.wait(wait_s):
            wait_s = 0.0
            try:
                consumer = self._consumers.get(topic)
                if consumer is None:
                    consumer = self._consumers[topic] = self._consumer(topic)
                deliveries = consumer.fetch(max_count=100, block_s=self._block_s)
                if deliveries:
                    self._hand_over(deliveries)
                    consumer.ack(*deliveries)
                backoff_s = 1.0
            except KernelError as err:
                if self._stop.is_set():
                    break
                log.warning("feed: reading %s failed (retry in %.0f s): %s", topic, backoff_s, err)
                wait_s, backoff_s = backoff_s, min(backoff_s * 2, 30.0)

    def _hand_over(self, deliveries: list[Delivery]) -> None:
        loop = self._loop
        for delivery in deliveries:
            event = delivery.event
            message = FeedMessage(feed_json(event), self.directory.schools_of(event.topic, event.payload))
            if loop is None or loop.is_closed():
                return
            try:
                loop.call_soon_threadsafe(self.deliver, message)
            except RuntimeError:  # the loop closed between the check and the call
                return

    def _stop_threads(self) -> None:
        self._stop.set()
        for consumer in self._consumers.values():
            consumer.close()
        for thread in reversed(self._threads):
            thread.join(self._join_timeout_s)
            if thread.is_alive():
                log.error("feed: thread %s did not stop within %.0f s", thread.name, self._join_timeout_s)
        self._threads.clear()
        for topic in self._topics:  # nobody reads this process's group again
            try:
                self._bus.drop_group(topic, self.group)
            except KernelError as err:
                log.warning("feed: group %s of %s left in the bus: %s", self.group, topic, err)

    def _drop_stale_groups(self, topic: str) -> None:
        for group in self._bus.idle_groups(topic, GROUP_PREFIX, STALE_GROUP_S):
            if self._bus.drop_group(topic, group):
                log.info("feed: dropped group %s of %s (not read for %.0f s)", group, topic, STALE_GROUP_S)
