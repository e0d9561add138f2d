"""One RTSP camera stream read by PyAV in its own thread: bounded waits, reconnects, keyframes, figures.

Every wait is bounded: opening (``open_timeout_s``, PyAV's interrupt callback, probing kept tiny), and every
read (``read_timeout_s``, FFmpeg's socket timeout). PyAV's read timeout is not used: its interrupt callback takes
the GIL on each of FFmpeg's I/O checks, which tripled the CPU of reading a stream (0.0011 -> 0.0036 core, measured
on 60 streams). A stream that ends is a disconnect. Reconnects back off exponentially with jitter up to
``backoff_max_s`` and the back-off resets once a connection has stayed up for ``stable_after_s``. A shared
:class:`OpenGate` caps concurrent opens, so a worker that starts (or restarts) with thousands of cameras does not
stampede them.

In *watch* mode only keyframes are decoded (non-key packets are counted, then dropped before the decoder), and at
most one per ``watch_keyframe_every_s`` (always the first of a connection); in *analyze* mode every packet is
decoded and frames are handed on at ``analyze_fps``. The mode switches on the live connection; a switch to analyze
takes effect at the next keyframe, where the decoder has a clean reference.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

import av
import av.error
import numpy as np
from av.container import InputContainer
from av.video.frame import VideoFrame

from ingest.models import (
    THUMBNAIL_HEIGHT,
    THUMBNAIL_WIDTH,
    HealthReason,
    HealthState,
    Image,
    Keyframe,
    ReadMode,
    StreamFigures,
)
from kernel.clock import utcnow
from kernel.secrets import redact_text, redact_url

log = logging.getLogger(__name__)

_FIGURES_WINDOW_S = 10.0
_DECODE_ERRORS_DEGRADED = 3
"""Decode errors within the figures window that make a camera degraded."""


@dataclass(frozen=True)
class ReaderSettings:
    """Timeouts, back-off and decode settings of stream readers (see ``config.IngestConfig``)."""

    open_timeout_s: float = 5.0
    read_timeout_s: float = 5.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    stable_after_s: float = 30.0
    no_keyframe_s: float = 10.0
    analyze_fps: float = 5.0
    watch_keyframe_every_s: float = 0.0


class StreamSink(ABC):
    """Receives what readers produce; called from reader threads, so implementations must be thread-safe."""

    @abstractmethod
    def on_state(self, code: str, state: HealthState, reason: HealthReason, detail: str) -> None:
        """The camera's health changed (only changes are reported)."""

    @abstractmethod
    def on_keyframe(self, keyframe: Keyframe) -> None:
        """A keyframe was decoded (both modes)."""

    def on_frame(self, code: str, at: datetime, image: Image) -> None:  # noqa: B027 - optional hook
        """A frame at ``analyze_fps`` (analyze mode only), full size, BGR."""


class OpenGate:
    """Caps how many streams a worker opens at the same time."""

    def __init__(self, max_concurrent: int) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self._semaphore = threading.BoundedSemaphore(max_concurrent)

    def enter(self, stop: threading.Event) -> bool:
        """Wait for a slot; False if ``stop`` was set first."""
        while not stop.is_set():
            if self._semaphore.acquire(timeout=0.25):
                return True
        return False

    def leave(self) -> None:
        """Give the slot back."""
        self._semaphore.release()


def backoff_delay(failures: int, initial_s: float, max_s: float, rng: random.Random) -> float:
    """Seconds to wait before reconnect attempt ``failures`` (1-based): capped exponential, equal jitter."""
    ceiling = min(max_s, initial_s * 2 ** max(0, failures - 1))
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


def classify_error(err: BaseException, elapsed_s: float, timeout_s: float) -> HealthReason:
    """The health reason behind an error raised while opening or reading a stream."""
    if isinstance(err, av.error.HTTPNotFoundError):
        return HealthReason.NOT_FOUND
    if isinstance(err, ConnectionRefusedError | av.error.HTTPError | ConnectionResetError):
        return HealthReason.REFUSED
    if isinstance(err, TimeoutError | av.error.ExitError):
        return HealthReason.TIMEOUT
    # A frozen server makes open fail with InvalidDataError once the timeout strikes; garbage fails at once.
    if elapsed_s >= timeout_s * 0.9:
        return HealthReason.TIMEOUT
    if isinstance(err, av.error.InvalidDataError | av.error.EOFError):
        return HealthReason.BAD_STREAM
    return HealthReason.BAD_STREAM


def _bgr(frame: VideoFrame) -> Image:
    array = frame.to_ndarray(format="bgr24")
    assert array.dtype == np.uint8  # bgr24 is 8-bit by definition
    return cast(Image, array)


class _Rates:
    """Packet and byte counters, keyframe and decode-error arrivals; rates over a sliding window.

    Non-key packets only bump two counters (the reader's per-packet work is most of its CPU beyond FFmpeg's);
    :meth:`figures` turns the counters into rates against marks it keeps, the oldest one at least a window old.
    """

    def __init__(self) -> None:
        self.packets = 0
        self.bytes = 0
        self.keyframes: deque[float] = deque()
        self.errors: deque[float] = deque()
        self._marks: deque[tuple[float, int, int]] = deque()
        self._marks_lock = threading.Lock()  # marks: the reader's thread restarts them, the figures' reads them

    def restart(self, now: float) -> None:
        """A new connection: rates count from ``now``."""
        with self._marks_lock:
            self._marks.clear()
            self._marks.append((now, self.packets, self.bytes))

    # Only the reader's thread appends to and trims the arrival deques; figures() reads a copy.
    def add_keyframe(self, now: float) -> None:
        self.keyframes.append(now)
        self._trim(now)

    def add_error(self, now: float) -> None:
        self.errors.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        horizon = now - _FIGURES_WINDOW_S
        for times in (self.keyframes, self.errors):
            while times and times[0] < horizon:
                times.popleft()

    def figures(self, now: float) -> tuple[float, float, float]:
        """(bitrate kbit/s, packets per second, mean keyframe interval s) over the window."""
        packets, nbytes = self.packets, self.bytes
        with self._marks_lock:
            marks = self._marks
            marks.append((now, packets, nbytes))
            while len(marks) > 2 and marks[1][0] <= now - _FIGURES_WINDOW_S:
                marks.popleft()
            start, start_packets, start_bytes = marks[0]
        span = now - start
        if span < 0.5:
            return 0.0, 0.0, 0.0
        kf = [t for t in list(self.keyframes) if t >= now - _FIGURES_WINDOW_S]
        interval = (kf[-1] - kf[0]) / (len(kf) - 1) if len(kf) >= 2 else 0.0
        return (nbytes - start_bytes) * 8 / span / 1000, (packets - start_packets) / span, interval


class StreamReader:
    """Reads one camera until stopped; owned by whoever starts it (normally :class:`ingest.pool.ReaderPool`)."""

    def __init__(
        self,
        code: str,
        url: str,
        sink: StreamSink,
        settings: ReaderSettings,
        gate: OpenGate,
        *,
        mode: ReadMode = ReadMode.WATCH,
        rng: random.Random | None = None,
    ) -> None:
        self.code = code
        self._url = url
        self._sink = sink
        self._settings = settings
        self._gate = gate
        self._mode = mode
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._figures = StreamFigures()
        self._state: tuple[HealthState, HealthReason] | None = None
        self._rates = _Rates()
        self._keyframe_seen: float | None = None  # monotonic: last keyframe packet (or connect); None: offline

    # -- control ------------------------------------------------------------------------------------------------

    @property
    def mode(self) -> ReadMode:
        """The current read mode."""
        return self._mode

    def set_mode(self, mode: ReadMode) -> None:
        """Switch between watch and analyze without reconnecting."""
        if mode is not self._mode:
            log.info("camera %s: %s mode", self.code, mode.value)
            self._mode = mode

    def start(self) -> None:
        """Start the reader thread (once)."""
        if self._thread is not None:
            raise RuntimeError(f"reader {self.code} already started")
        self._thread = threading.Thread(target=self._run, name=f"reader-{self.code}")
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to stop; it notices within one packet or one read timeout."""
        self._stop.set()

    def join(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the thread; True if it has ended."""
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def since_keyframe_s(self) -> float | None:
        """Seconds since the last keyframe arrived (decoded or not) or since connecting; None if not connected."""
        seen = self._keyframe_seen
        return None if seen is None else time.monotonic() - seen

    def figures(self) -> StreamFigures:
        """A snapshot of the running figures."""
        kbps, fps, interval = self._rates.figures(time.monotonic())
        with self._lock:
            return replace(self._figures, bitrate_kbps=kbps, fps=fps, keyframe_interval_s=interval)

    # -- the thread ---------------------------------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            connected_at = time.monotonic()
            reason, detail = self._session()
            if self._stop.is_set():
                break
            if time.monotonic() - connected_at >= self._settings.stable_after_s:
                failures = 0  # it had been up long enough: start the back-off over
            failures += 1
            self._report(HealthState.OFFLINE, reason, detail)
            with self._lock:
                self._figures.reconnects += 1
            delay = backoff_delay(
                failures, self._settings.backoff_initial_s, self._settings.backoff_max_s, self._rng
            )
            log.debug("camera %s: reconnect in %.1f s (%s)", self.code, delay, reason.value)
            if self._stop.wait(delay):
                break

    def _session(self) -> tuple[HealthReason, str]:
        """One connection: open, then read until it fails, ends or we are stopped; returns why it ended."""
        if not self._gate.enter(self._stop):
            return HealthReason.OK, "stopped"
        started = time.monotonic()
        try:
            container = av.open(
                self._url,
                options={
                    "rtsp_transport": "tcp",
                    "analyzeduration": "0",
                    "probesize": "32",
                    "timeout": str(int(self._settings.read_timeout_s * 1_000_000)),
                },
                # Open timeout only: PyAV's read timeout takes the GIL on every FFmpeg I/O check, which tripled
                # the CPU of reading a stream (measured); reads are bounded by the socket ``timeout`` above.
                timeout=(self._settings.open_timeout_s, None),
            )
        except (av.error.FFmpegError, OSError) as err:
            elapsed = time.monotonic() - started
            # Whichever strikes first: the open timeout or the socket read timeout inside the RTSP handshake.
            limit = min(self._settings.open_timeout_s, self._settings.read_timeout_s)
            return classify_error(err, elapsed, limit), self._describe(err)
        finally:
            self._gate.leave()
        self._keyframe_seen = time.monotonic()
        try:
            return self._read(container)
        finally:
            self._keyframe_seen = None
            container.close()

    def _read(self, container: InputContainer) -> tuple[HealthReason, str]:
        if not container.streams.video:
            return HealthReason.BAD_STREAM, "no video track"
        stream = container.streams.video[0]
        codec = stream.codec_context
        codec.thread_count = 1  # thousands of decoders: no per-decoder thread pools
        rates = self._rates
        last_keyframe = time.monotonic()
        rates.restart(last_keyframe)
        analyze_from_keyframe = False
        next_analyzed = 0.0
        next_watched = 0.0  # the first keyframe of a connection is always decoded
        # A little slack, so that keyframes every 2 s sampled every 10 s are not taken every 12 s by jitter.
        watch_every = self._settings.watch_keyframe_every_s * 0.95
        no_keyframe_s = self._settings.no_keyframe_s
        stop = self._stop
        try:
            for packet in container.demux(stream):
                # Most packets end at the first ``continue`` below: keep the path to it short.
                if stop.is_set():
                    return HealthReason.OK, "stopped"
                size = packet.size
                if not size:
                    continue  # demuxer flush packet
                rates.packets += 1
                rates.bytes += size
                key = packet.is_keyframe
                analyzing = self._mode is ReadMode.ANALYZE
                if key:
                    now = time.monotonic()
                    rates.add_keyframe(now)
                    analyze_from_keyframe = analyzing
                    last_keyframe = self._keyframe_seen = now
                    if not analyzing:
                        if now < next_watched:
                            continue  # watch mode samples keyframes: this one is not needed
                        next_watched = now + watch_every
                elif not (analyzing and analyze_from_keyframe):
                    # Checked every 16th packet (about a second at 15 fps): a clock read per packet costs.
                    if not rates.packets & 15 and time.monotonic() - last_keyframe > no_keyframe_s:
                        self._report(HealthState.DEGRADED, HealthReason.NO_DATA, "no keyframe")
                    continue
                else:
                    now = time.monotonic()
                try:
                    frames = codec.decode(packet)
                except av.error.InvalidDataError as err:
                    rates.add_error(now)
                    with self._lock:
                        self._figures.decode_errors += 1
                    if len(rates.errors) >= _DECODE_ERRORS_DEGRADED:
                        self._report(HealthState.DEGRADED, HealthReason.DECODE_ERRORS, self._describe(err))
                    continue
                for frame in frames:
                    if key:
                        self._keyframe(frame)
                    elif now >= next_analyzed:
                        next_analyzed = now + 1.0 / self._settings.analyze_fps
                        self._sink.on_frame(self.code, utcnow(), _bgr(frame))
        except (av.error.FFmpegError, OSError) as err:
            return classify_error(err, 0.0, self._settings.read_timeout_s), self._describe(err)
        return HealthReason.NO_DATA, "stream ended"

    def _keyframe(self, frame: VideoFrame) -> None:
        at = utcnow()
        image = _bgr(frame.reformat(width=THUMBNAIL_WIDTH, height=THUMBNAIL_HEIGHT, format="bgr24"))
        with self._lock:
            self._figures.width, self._figures.height = frame.width, frame.height
            self._figures.last_frame_at = at
        if len(self._rates.errors) < _DECODE_ERRORS_DEGRADED:
            self._report(HealthState.ONLINE, HealthReason.OK, "")
        self._sink.on_keyframe(Keyframe(self.code, at, image, frame.width, frame.height))

    def _report(self, state: HealthState, reason: HealthReason, detail: str) -> None:
        if self._state == (state, reason):
            return
        self._state = (state, reason)
        if state is HealthState.ONLINE:
            log.info("camera %s online", self.code)
        else:
            log.info("camera %s %s: %s (%s)", self.code, state.value, reason.value, detail)
        self._sink.on_state(self.code, state, reason, detail)

    def _describe(self, err: BaseException) -> str:
        # FFmpeg errors quote the URL (with its password): redact it and anything URL-like.
        text = str(err).replace(self._url, redact_url(self._url))
        return redact_text(f"{type(err).__name__}: {text}")[:300]
