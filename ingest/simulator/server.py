"""The camera simulator: a GStreamer RTSP server replaying pre-encoded scene clips on one mount per camera.

Design (measured, see FACTS.md):

- Every camera is a media factory, mounted the first time a reader asks for it: GStreamer's mount table re-sorts
  itself on every insertion, so mounting 15,000 cameras up front takes over 20 s, while an unwatched camera
  costs only a Python object here.
- Each reader gets its own pipeline ``appsrc ! h264parse ! rtph264pay``. Media are deliberately not shared: a
  shared media still being torn down when its camera's reader reconnects (as readers do right after a stall or
  disconnect) makes the server answer 503 "can't prepare media". Per-reader pipelines cost the same when, as
  usual, one reader watches a camera.
- One GLib main loop, in a thread this object owns, accepts connections and runs a frame tick that pushes the
  next access unit of each stream's clip, timestamped on a regular 15 fps grid. Clips are shared bytes
  (``GLib.Bytes``), so a stream costs a buffer header per frame.
- RTCP is disabled: a stalled camera must really go silent, or readers would never time out.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from ingest.errors import SimulatorError, UnknownCameraError
from ingest.simulator._gst import GstModules, load_gst
from ingest.simulator.clips import FPS, GOP, ClipLibrary, ClipSettings, EncodedClip
from ingest.simulator.scenes import SceneKind
from ingest.simulator.schedule import CameraSchedule, CameraSpec, Drop, DropMode
from ingest.simulator.stats import SimulatorStats

log = logging.getLogger(__name__)

_LAUNCH = (
    "( appsrc name=src is-live=true format=time do-timestamp=false"
    # A reader that never plays must not make the queue grow without bound: keep at most 6 s.
    " max-bytes=0 max-buffers=90 leaky-type=downstream"
    ' caps="video/x-h264,stream-format=byte-stream,alignment=au,width=640,height=360,framerate=15/1"'
    # h264parse puts SPS/PPS before each keyframe; rtph264pay config-interval=-1 would repeat them per slice.
    " ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 )"
)


@dataclass
class _Camera:
    """One mount: its schedule, factory and the RTSP clients that asked for it."""

    code: str
    schedule: CameraSchedule
    factory: Any = None
    version: int = 0
    clients: set[Any] = field(default_factory=set)
    # Cached (scene, drop) for times in [_from, _until) of schedule version _version; loop thread only.
    _state: tuple[SceneKind, Drop | None] | None = None
    _version: int = -1
    _from: float = 0.0
    _until: float = -1.0

    def state(self, now: float) -> tuple[SceneKind, Drop | None]:
        """Scene and stall/refusal in force at ``now`` (cached until the schedule's next change point)."""
        version = self.version
        if self._state is not None and self._version == version and self._from <= now < self._until:
            return self._state
        # Read the version before the schedule: if set_schedule races us, the cache is marked stale.
        schedule = self.schedule
        points = schedule.change_points()
        earlier = [p for p in points if p <= now]
        later = [p for p in points if p > now]
        self._from = earlier[-1] if earlier else -math.inf
        self._until = later[0] if later else math.inf
        self._state = (schedule.scene_at(now), schedule.drop_at(now))
        self._version = version
        return self._state


@dataclass
class _Feed:
    """One playing media (a watched camera): where it is in its clip and on its timestamp grid."""

    camera: _Camera
    appsrc: Any
    clip: EncodedClip | None = None
    pos: int = 0
    rt0: int | None = None
    next_frame: int = 0
    resync: bool = True
    """Skip frames until the next keyframe (at start, after a drop, after falling behind)."""


class CameraSimulator:
    """A fleet of simulated RTSP cameras at ``rtsp://host:port/<code>``.

    ``start()`` loads (or renders) the scene clips and returns once the server listens;
    ``stop()`` closes every connection and joins the main-loop thread. Usable as a context manager.

    ``cache_dir`` holds the encoded clips (e.g. ``<data_dir>/sim-clips``); ``clips`` skips loading them (tests
    share one library); ``port=0`` picks a free port (read :attr:`port` after ``start()``);
    ``client_threads`` is the number of GStreamer threads answering RTSP requests.
    """

    def __init__(
        self,
        cameras: Sequence[CameraSpec],
        *,
        cache_dir: Path,
        port: int = 8554,
        host: str = "127.0.0.1",
        clip_settings: ClipSettings | None = None,
        clips: ClipLibrary | None = None,
        client_threads: int = 2,
    ) -> None:
        if not 0 <= port <= 65535:
            raise SimulatorError(f"port {port} out of range")
        codes = [c.code for c in cameras]
        if len(set(codes)) != len(codes):
            raise SimulatorError("camera codes must be unique")
        self._cameras = {c.code: _Camera(c.code, c.schedule) for c in cameras}
        self._cache_dir = Path(cache_dir)
        self._requested_port = port
        self._host = host
        self._clip_settings = clip_settings or (clips.settings if clips else ClipSettings())
        self._clips = clips
        self._client_threads = client_threads
        self._lock = threading.RLock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._gst: GstModules | None = None
        self._server: Any = None
        self._mounts: Any = None
        self._context: Any = None
        self._loop: Any = None
        self._server_source: Any = None
        self._tick_source: Any = None
        self._bytes: dict[SceneKind, tuple[Any, ...]] = {}
        self._feeds: dict[Any, _Feed] = {}
        self._clients: dict[Any, set[str]] = {}
        """Connected RTSP clients and the codes of the cameras each asked for."""
        self._events: list[tuple[float, int, str, int]] = []
        self._event_seq = itertools.count()
        self._port: int | None = None
        self._t0 = 0.0
        self._tick_no = 0
        self._frames_sent = 0
        self._switches: dict[str, list[tuple[float, SceneKind]]] = {}
        """Per camera: when (``time.time()``) a stream started showing a scene, for latency measurements."""

    # -- public API ------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the server listens on (the real one when 0 was asked for); only after ``start()``."""
        if self._port is None:
            raise SimulatorError("the simulator is not started")
        return self._port

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    @property
    def codes(self) -> tuple[str, ...]:
        """Camera codes served, in the order given."""
        return tuple(self._cameras)

    @property
    def clips(self) -> ClipLibrary:
        """The scene clips being served; only after ``start()``."""
        if self._clips is None:
            raise SimulatorError("the simulator is not started")
        return self._clips

    @property
    def running(self) -> bool:
        """Whether the main loop thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def url(self, code: str) -> str:
        """``rtsp://host:port/<code>`` of camera ``code``."""
        if code not in self._cameras:
            raise UnknownCameraError(code)
        wildcard = self._host in ("0.0.0.0", "::", "")  # noqa: S104 - recognising a wildcard, not binding one
        host = "127.0.0.1" if wildcard else self._host
        if ":" in host:
            host = f"[{host}]"
        return f"rtsp://{host}:{self.port}/{code}"

    def elapsed_s(self) -> float:
        """Seconds since ``start()``: the clock schedules are written in."""
        return time.monotonic() - self._t0 if self._t0 else 0.0

    def schedule(self, code: str) -> CameraSchedule:
        """The current schedule of camera ``code``."""
        return self._camera(code).schedule

    def set_schedule(self, code: str, schedule: CameraSchedule) -> None:
        """Replace camera ``code``'s schedule (thread-safe; times stay relative to the simulator's start).

        Drops that started in the past are honoured as far as they are still in force (a refusal in force now
        closes the camera's sessions at the next tick); past disconnects are not replayed.
        """
        camera = self._camera(code)
        with self._lock:
            camera.schedule = schedule
            camera.version += 1
            if self._t0:
                self._queue_drop_events(camera, self.elapsed_s())

    def scene_switches(self, code: str) -> list[tuple[float, SceneKind]]:
        """When (``time.time()``, the frame pushed into the stream) camera ``code``'s streams started showing
        each scene, oldest first (the last 100). The start of a latency measurement: scene in the stream."""
        self._camera(code)
        with self._lock:
            return list(self._switches.get(code, ()))

    def stats(self) -> SimulatorStats:
        """Counters: cameras, watched streams, connections, frames sent, process CPU seconds, uptime."""
        with self._lock:
            streams = sum(1 for f in self._feeds.values() if f.rt0 is not None)
            clients = len(self._clients)
            frames = self._frames_sent
        return SimulatorStats(len(self._cameras), streams, clients, frames, time.process_time(), self.elapsed_s())

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- start / stop ----------------------------------------------------------------------------------------

    def start(self) -> None:
        """Load (or render) the clips and start serving; returns once the server is listening."""
        if self._thread is not None or self._stopped:
            raise SimulatorError("a CameraSimulator can be started once")
        gst = self._gst = load_gst()
        if self._clips is None:
            self._clips = ClipLibrary.load_or_generate(self._cache_dir, self._clip_settings)
        self._clip_settings = self._clips.settings
        self._bytes = {
            clip.scene: tuple(gst.GLib.Bytes.new(frame) for frame in clip.frames) for clip in self._clips
        }
        started = time.perf_counter()
        self._context = gst.GLib.MainContext.new()
        self._loop = gst.GLib.MainLoop.new(self._context, False)
        server = self._server = gst.GstRtspServer.RTSPServer()
        server.set_address(self._host)
        server.set_service(str(self._requested_port))
        server.get_thread_pool().set_max_threads(self._client_threads)
        self._mounts = server.get_mount_points()
        server.connect("client-connected", self._on_client_connected)
        source_id = server.attach(self._context)
        if not source_id:
            self._release()
            raise SimulatorError(f"cannot listen on {self._host}:{self._requested_port} (address in use?)")
        self._server_source = self._context.find_source_by_id(source_id)
        self._port = server.get_bound_port()
        self._t0 = time.monotonic()
        with self._lock:
            for camera in self._cameras.values():
                self._queue_drop_events(camera, 0.0)
        self._arm_tick()
        self._thread = threading.Thread(target=self._run_loop, name="camera-sim-loop")
        self._thread.start()
        log.info(
            "camera simulator listening on rtsp://%s:%d with %d cameras (ready in %.2f s; clips %s in %.2f s)",
            self._host,
            self._port,
            len(self._cameras),
            time.perf_counter() - started,
            "loaded" if self._clips.from_cache else "generated",
            self._clips.generation_s,
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close every connection, stop the main loop and join its thread; safe to call more than once."""
        thread = self._thread
        if thread is None or self._stopped:
            self._stopped = True
            return
        self._stopped = True
        self._stop_event.set()
        gst = self._gst
        assert gst is not None
        idle = gst.GLib.idle_source_new()
        idle.set_callback(self._shutdown_in_loop)
        idle.attach(self._context)
        thread.join(timeout_s)
        if thread.is_alive():
            # The idle callback could not run (loop blocked); quitting from here is thread-safe.
            self._loop.quit()
            thread.join(1.0)
        if thread.is_alive():
            raise SimulatorError(f"camera simulator loop did not stop within {timeout_s} s")
        self._wait_unprepared(timeout_s)
        self._release()
        log.info("camera simulator stopped")

    def _wait_unprepared(self, timeout_s: float) -> None:
        # The removed clients' media pipelines are torn down in GStreamer's own threads after the loop quits;
        # a process exiting while they still run can crash in them (seen: SIGTERM right after the demo started).
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                left = len(self._feeds)
            if not left:
                return
            time.sleep(0.05)  # the stop event is set already: it cannot be the wait
        log.warning("camera simulator: %d streams still being torn down after %.0f s", left, timeout_s)

    def _run_loop(self) -> None:
        self._context.push_thread_default()
        try:
            self._loop.run()
        finally:
            self._context.pop_thread_default()

    def _shutdown_in_loop(self, *_: object) -> bool:
        gst = self._gst
        assert gst is not None and self._server is not None
        # Let the server remove its own clients: closing one ourselves while its peer is half-way through a
        # handshake leaves GLib spinning on a dead stream (seen when readers and the simulator stop together).
        remove = gst.GstRtspServer.RTSPFilterResult.REMOVE
        self._server.client_filter(lambda *_args: remove, None)
        for source in (self._tick_source, self._server_source):
            if source is not None and not source.is_destroyed():
                source.destroy()
        self._loop.quit()
        return False

    def _release(self) -> None:
        # Drop every GObject reference so factories, their signal closures (which hold self) and the server go.
        with self._lock:
            self._feeds.clear()
            self._clients.clear()
            for camera in self._cameras.values():
                camera.factory = None
                camera.clients.clear()
        self._server = self._server_source = self._tick_source = self._mounts = None
        self._loop = self._context = None
        self._bytes = {}

    # -- GStreamer callbacks ---------------------------------------------------------------------------------

    def _make_factory(self, code: str) -> Any:
        assert self._gst is not None
        factory = self._gst.GstRtspServer.RTSPMediaFactory()
        factory.set_launch(_LAUNCH)
        factory.set_shared(False)  # see the module docstring: shared media race with reconnecting readers
        factory.set_enable_rtcp(False)
        factory.connect("media-configure", self._on_media_configure, code)
        return factory

    def _on_media_configure(self, _factory: Any, media: Any, code: str) -> None:
        appsrc = media.get_element().get_child_by_name("src")
        camera = self._cameras.get(code)
        if camera is None or self._stopped:
            return
        # The server prepares a media synchronously in the client's thread, waiting until a buffer has gone
        # through the pipeline. Queue the first keyframe right now (timestamp 0 = the running time at which the
        # pipeline will start), even for a stalled camera: waiting for the tick would hold every client of that
        # thread for up to a frame, and a stalled camera would hang them all until the stall ends.
        feed = _Feed(camera, appsrc, rt0=0)
        # Not camera.state(): its cache belongs to the loop thread.
        self._push_next(feed, camera.schedule.scene_at(self.elapsed_s()), None)
        with self._lock:
            if self._stopped:
                return
            self._feeds[media] = feed
        media.connect("unprepared", self._on_media_unprepared)
        log.debug("camera %s: stream started", code)

    def _on_media_unprepared(self, media: Any) -> None:
        with self._lock:
            feed = self._feeds.pop(media, None)
        if feed is not None:
            log.debug("camera %s: stream ended", feed.camera.code)

    def _on_client_connected(self, _server: Any, client: Any) -> None:
        with self._lock:
            self._clients[client] = set()
        client.connect("pre-describe-request", self._on_request)
        client.connect("pre-setup-request", self._on_request)
        client.connect("closed", self._on_client_closed)

    def _on_request(self, client: Any, ctx: Any) -> Any:
        assert self._gst is not None
        status = self._gst.GstRtsp.RTSPStatusCode
        path = ctx.uri.abspath if ctx.uri is not None else ""
        code = path.strip("/").split("/", 1)[0]
        camera = self._cameras.get(code)
        if camera is None:
            return status.NOT_FOUND
        with self._lock:
            if self._stopped:
                return status.SERVICE_UNAVAILABLE
            camera.clients.add(client)
            self._clients.setdefault(client, set()).add(code)
            drop = camera.schedule.drop_at(self.elapsed_s())
            if drop is not None and drop.mode is DropMode.REFUSE:
                log.debug("camera %s: refusing %s (scheduled drop)", code, path)
                return status.SERVICE_UNAVAILABLE
            if camera.factory is None:
                # Mounted on first request: this signal runs before the server looks the path up.
                camera.factory = self._make_factory(code)
                self._mounts.add_factory(f"/{code}", camera.factory)
        return status.OK

    def _on_client_closed(self, client: Any) -> None:
        with self._lock:
            for code in self._clients.pop(client, ()):
                self._cameras[code].clients.discard(client)

    # -- the frame tick --------------------------------------------------------------------------------------

    def _arm_tick(self) -> None:
        # A one-shot timer re-armed for the next slot of a fixed 15 Hz grid: GLib's periodic timers drift.
        assert self._gst is not None
        self._tick_no += 1
        due = self._t0 + self._tick_no / FPS
        delay_ms = max(1, math.ceil((due - time.monotonic()) * 1000))
        source = self._gst.GLib.timeout_source_new(delay_ms)
        source.set_callback(self._on_tick)
        source.attach(self._context)
        self._tick_source = source

    def _on_tick(self, *_: object) -> bool:
        if self._stop_event.is_set():
            return False
        now = self.elapsed_s()
        try:
            self._run_events(now)
            with self._lock:
                feeds = list(self._feeds.values())
            for feed in feeds:
                self._pump(feed, now)
        except Exception:  # one bad tick must not kill the whole fleet; logged with its traceback
            log.exception("camera simulator tick failed")
        if time.monotonic() - self._t0 > self._tick_no / FPS + 1.0:
            # The loop was starved for over a second: restart the grid instead of firing a burst of ticks.
            self._tick_no = math.floor((time.monotonic() - self._t0) * FPS)
        self._arm_tick()
        return False

    def _queue_drop_events(self, camera: _Camera, now: float) -> None:
        # Caller holds the lock. Events only close sessions; whether a camera refuses or stalls is read from its
        # schedule at each request and frame, so stale events (older schedule versions) are simply skipped.
        for drop in camera.schedule.drops:
            if drop.mode is DropMode.STALL:
                continue
            if drop.at_s >= now or drop.active_at(now):
                at = max(drop.at_s, now)
                heapq.heappush(self._events, (at, next(self._event_seq), camera.code, camera.version))

    def _run_events(self, now: float) -> None:
        to_close: list[tuple[str, list[Any]]] = []
        with self._lock:
            while self._events and self._events[0][0] <= now:
                _, _, code, version = heapq.heappop(self._events)
                camera = self._cameras[code]
                if camera.version == version:
                    to_close.append((code, list(camera.clients)))
                    camera.clients.clear()
        for code, clients in to_close:
            log.info("camera %s: scheduled drop, closing %d connection(s)", code, len(clients))
            for client in clients:
                client.close()

    def _pump(self, feed: _Feed, now: float) -> None:
        gst = self._gst
        assert gst is not None
        clock = feed.appsrc.get_clock()
        if clock is None:
            return  # not PLAYING yet: the pipeline has no clock until then
        running = clock.get_time() - feed.appsrc.get_base_time()
        if feed.rt0 is None:
            feed.rt0 = running
        due = (running - feed.rt0) * FPS // gst.Gst.SECOND + 1
        if due - feed.next_frame > 2 * FPS:
            # Far behind (the process was starved): skip ahead and resume at a keyframe rather than burst.
            skipped = due - feed.next_frame - 1
            feed.next_frame += skipped
            feed.pos = (feed.pos + skipped) % self._clip_settings.frame_count
            feed.resync = True
        scene, drop = feed.camera.state(now)
        while feed.next_frame < due:
            self._push_next(feed, scene, drop)

    def _push_next(self, feed: _Feed, scene: SceneKind, drop: Drop | None) -> None:
        gst = self._gst
        assert gst is not None and feed.rt0 is not None
        n = feed.next_frame
        feed.next_frame += 1
        pos = feed.pos
        feed.pos = (pos + 1) % self._clip_settings.frame_count
        if drop is not None:
            feed.resync = True  # stalled or refused: send nothing, pick up again at a keyframe
            return
        if pos % GOP == 0:
            if feed.clip is None or feed.clip.scene != scene:
                # Scene switches happen only at keyframes; the new scene starts from its beginning.
                assert self._clips is not None
                feed.clip = self._clips[scene]
                pos = 0
                feed.pos = 1
                with self._lock:
                    switches = self._switches.setdefault(feed.camera.code, [])
                    switches.append((time.time(), scene))
                    del switches[:-100]
            feed.resync = False
        elif feed.resync or feed.clip is None:
            return
        buffer = gst.Gst.Buffer.new_wrapped_bytes(self._bytes[feed.clip.scene][pos])
        buffer.pts = buffer.dts = feed.rt0 + n * gst.Gst.SECOND // FPS
        buffer.duration = gst.Gst.SECOND // FPS
        if pos % GOP:
            buffer.set_flags(gst.Gst.BufferFlags.DELTA_UNIT)
        feed.appsrc.emit("push-buffer", buffer)
        with self._lock:
            self._frames_sent += 1

    def _camera(self, code: str) -> _Camera:
        camera = self._cameras.get(code)
        if camera is None:
            raise UnknownCameraError(code)
        return camera
