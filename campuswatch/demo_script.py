"""The demo's scripted intrusion, and how long its alarm takes to reach the duty room.

Every ``demo.intrusion_every_s`` an intruder climbs the perimeter wall on one camera that otherwise shows an
empty yard: the camera's schedule switches to the line-crossing scene for one clip, then back. The simulator
records when the first frame of the scene went into the stream; this worker then watches the bus for the
analytics event of that camera and logs both latencies (scene → event raised, scene → webhook received, the
latter reported by :meth:`ScriptedIntrusion.webhook_received`). The browser's side (scene → alarm on screen) is
measured by ``benchmarks/alarm_latency.py``, which reads the scene time from the log line written here.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from config import Settings
from config.notify import NotifyConfig
from ingest.simulator import CameraSchedule, CameraSimulator, SceneKind, SceneSegment
from kernel.bus import EventBus
from kernel.errors import BusError
from patrol.notify import Received, WebhookReceiver
from patrol.topics import ANALYTICS_EVENTS_TOPIC

log = logging.getLogger(__name__)
SCENE = SceneKind.LINE_CROSSING


@dataclass
class Intrusion:
    """One scripted intrusion and when its alarm arrived where (``time.time()`` seconds)."""

    number: int
    camera_code: str
    scripted_at: float
    scene_at: float | None = None
    event_id: int | None = None
    event_at: float | None = None
    webhook_at: dict[int, float] = field(default_factory=dict)


def stamp(t: float) -> str:
    """``t`` (``time.time()``) as an ISO time in UTC with milliseconds, the form the log lines use."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds")


class ScriptedIntrusion:
    """A worker thread that scripts intrusions on ``camera_code`` and measures their alarms."""

    def __init__(
        self,
        simulator: CameraSimulator,
        camera_code: str,
        bus: EventBus,
        *,
        every_s: float,
        first_s: float,
        clip_s: float,
    ) -> None:
        self._simulator = simulator
        self._code = camera_code
        self._bus = bus
        self._every_s = every_s
        self._first_s = first_s
        self._clip_s = clip_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._intrusions: list[Intrusion] = []

    @property
    def camera_code(self) -> str:
        """The camera the intruder appears on."""
        return self._code

    def start(self) -> None:
        """Start the worker (the first intrusion comes ``first_s`` later)."""
        self._thread = threading.Thread(target=self._run, name="demo-intrusion")
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop and join the worker."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("the scripted-intrusion worker did not stop within %.1f s", timeout_s)

    def intrusions(self) -> list[Intrusion]:
        """Every intrusion so far, oldest first (copies)."""
        with self._lock:
            return [
                Intrusion(
                    i.number, i.camera_code, i.scripted_at, i.scene_at, i.event_id, i.event_at, dict(i.webhook_at)
                )
                for i in self._intrusions
            ]

    def webhook_received(self, event_ids: list[int], at: float) -> None:
        """The demo's webhook receiver got a message about ``event_ids`` at ``at``: log the latency of ours."""
        with self._lock:
            for intrusion in self._intrusions:
                if intrusion.event_id in event_ids and intrusion.scene_at is not None:
                    first = not intrusion.webhook_at
                    intrusion.webhook_at[len(intrusion.webhook_at)] = at
                    if first:
                        log.info(
                            "scripted intrusion %d: webhook received at %s, %.0f ms after the scene change",
                            intrusion.number,
                            stamp(at),
                            (at - intrusion.scene_at) * 1000,
                        )

    def _run(self) -> None:
        try:
            consumer = self._bus.consumer(ANALYTICS_EVENTS_TOPIC, "demo-latency", "demo-latency", from_start=False)
        except BusError:
            log.exception("the scripted intrusion cannot follow the bus; it is off")
            return
        started = time.monotonic()
        next_at = started + self._first_s
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_at:
                    self._script()
                    next_at += self._every_s
                self._note_scene()
                try:
                    deliveries = consumer.fetch(max_count=50, block_s=0.25)
                except BusError:
                    log.exception("the scripted intrusion lost the bus")
                    self._stop.wait(1.0)
                    continue
                for delivery in deliveries:
                    self._note_event(delivery.event.type, delivery.event.payload, time.time())
                if deliveries:
                    consumer.ack(*deliveries)
        finally:
            consumer.close()

    def _script(self) -> None:
        now_s = self._simulator.elapsed_s()
        schedule = CameraSchedule(
            default_scene=SceneKind.EMPTY_YARD,
            segments=(
                SceneSegment(at_s=now_s, scene=SCENE),
                SceneSegment(at_s=now_s + self._clip_s, scene=SceneKind.EMPTY_YARD),
            ),
        )
        self._simulator.set_schedule(self._code, schedule)
        with self._lock:
            number = len(self._intrusions) + 1
            self._intrusions.append(Intrusion(number, self._code, time.time()))
        log.info("scripted intrusion %d: an intruder climbs the wall on camera %s", number, self._code)

    def _note_scene(self) -> None:
        with self._lock:
            pending = [i for i in self._intrusions if i.scene_at is None]
        if not pending:
            return
        switches = [at for at, scene in self._simulator.scene_switches(self._code) if scene is SCENE]
        with self._lock:
            for intrusion in pending:
                # The first frame of the scene after it was scripted (a second viewer's stream switches later).
                fresh = [at for at in switches if at >= intrusion.scripted_at]
                if fresh:
                    intrusion.scene_at = fresh[0]
                    log.info(
                        "scripted intrusion %d: the intruder is in the stream of %s at %s",
                        intrusion.number,
                        self._code,
                        stamp(fresh[0]),
                    )

    def _note_event(self, kind: str, payload: Mapping[str, object], at: float) -> None:
        if kind != "event.started" or payload.get("camera_code") != self._code:
            return
        event_id = payload.get("event_id")
        with self._lock:
            for intrusion in self._intrusions:
                if intrusion.scene_at is not None and intrusion.event_id is None and isinstance(event_id, int):
                    intrusion.event_id = event_id
                    intrusion.event_at = at
                    log.info(
                        "scripted intrusion %d: event %d (%s) raised at %s, %.0f ms after the scene change",
                        intrusion.number,
                        event_id,
                        payload.get("type"),
                        stamp(at),
                        (at - intrusion.scene_at) * 1000,
                    )
                    return


class DemoPhone:
    """The duty phone's stand-in: a local webhook receiver (it binds its port when made) and the notifier
    channel that points at it. Each message that arrives is logged, and reported to the scripted intrusion."""

    def __init__(self, port: int) -> None:
        self._secret = secrets.token_urlsafe(24)
        self.receiver = WebhookReceiver(self._secret, host="127.0.0.1", port=port, on_receive=self._received)
        self.intrusion: ScriptedIntrusion | None = None

    def with_channel(self, settings: Settings) -> Settings:
        """``settings`` with a webhook channel to this receiver, unless the notifier has channels already."""
        if settings.notify.channels:
            return settings
        data = settings.notify.model_dump(mode="json")
        data["channels"] = [
            {"type": "webhook", "name": "demo-phone", "url": self.receiver.url, "secret": self._secret}
        ]
        return settings.model_copy(update={"notify": NotifyConfig.model_validate(data)})

    def _received(self, hit: Received) -> None:
        if not hit.verified:
            log.warning("duty phone (webhook): refused a message: %s", hit.error)
            return
        log.info("duty phone (webhook): %s", hit.body.get("title", ""))
        items = hit.body.get("items")
        ids = (
            [i["event_id"] for i in items if isinstance(i, dict) and isinstance(i.get("event_id"), int)]
            if isinstance(items, list)
            else []
        )
        if self.intrusion is not None and ids:
            self.intrusion.webhook_received(ids, hit.received_at.timestamp())
