"""The media side of live view: one RTSP pull per camera stream, its H.264 packets fanned out to WebRTC tracks.

A :class:`Relay` demuxes the camera's stream with PyAV in its own thread, without decoding, and hands every
access unit to the event loop (``run_coroutine_threadsafe``), where each viewer's :class:`PacketTrack` queues it
for aiortc. aiortc sends an :class:`av.Packet` through its H.264 encoder's ``pack()`` path (RTP packetization
only), so the browser receives the camera's own bitstream. Every wait is bounded: opening (``open_timeout_s``)
and every read (``read_timeout_s``: a stalled camera ends the relay with a reason, never a hang).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

import av
import av.error
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.container import InputContainer
from av.video.stream import VideoStream

from kernel.secrets import redact_text, redact_url
from web.errors import WebError

log = logging.getLogger(__name__)

RTP_TIME_BASE = Fraction(1, 90_000)
"""The clock of H.264 over RTP; packets handed to aiortc carry pts in it."""
TRACK_QUEUE_PACKETS = 90
"""Packets a viewer may fall behind (6 s at 15 fps) before its queue is dropped and restarts at a keyframe."""
_HANDOFF_TIMEOUT_S = 2.0
"""Longest wait of the reader thread for the event loop to take a packet (a busy loop drops packets)."""
_NAL_SPS = 7


class StreamKind(StrEnum):
    """Which of a camera's streams is played."""

    MAIN = "main"
    SUB = "sub"


class LiveError(WebError):
    """Base of live view's errors."""


class LiveStreamError(LiveError):
    """The camera's stream could not be opened or played; ``timeout`` when it did not answer in time."""

    def __init__(self, message: str, *, timeout: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout


@dataclass(frozen=True)
class CameraSource:
    """A camera stream to pull. ``url`` holds the decrypted credentials: never log it, use :attr:`safe_url`."""

    camera_id: int
    code: str
    stream: StreamKind
    url: str = field(repr=False)
    password: str = field(default="", repr=False)

    @property
    def safe_url(self) -> str:
        """The URL with credentials masked."""
        return redact_url(self.url)

    def redact(self, text: str) -> str:
        """``text`` (an FFmpeg error, say) with the URL's credentials and the password masked."""
        return redact_text(text, (self.password,) if self.password else ())


@dataclass(frozen=True)
class StreamInfo:
    """What the camera sends, read from the stream when it opened."""

    codec: str
    profile: str
    width: int
    height: int


class PacketTrack(MediaStreamTrack):
    """A WebRTC video track that hands out the camera's H.264 access units as :class:`av.Packet` (no frames).

    Fed on the event loop by :meth:`push`; a viewer starts at a keyframe, and a viewer that falls
    :data:`TRACK_QUEUE_PACKETS` behind loses its queue and restarts at the next keyframe.
    """

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._queue: asyncio.Queue[av.Packet | None] = asyncio.Queue(TRACK_QUEUE_PACKETS + 1)
        self._need_keyframe = True
        self.packets_sent = 0
        self.packets_dropped = 0
        self.first_packet_at: float | None = None

    def push(self, packet: av.Packet, keyframe: bool, *, gap: bool = False) -> None:
        """Queue one access unit; ``gap``: packets were lost before it (wait for a keyframe)."""
        if gap and not keyframe:
            self._need_keyframe = True
        if self._need_keyframe:
            if not keyframe:
                self.packets_dropped += 1
                return
            self._need_keyframe = False
        if self._queue.qsize() >= TRACK_QUEUE_PACKETS:
            self.packets_dropped += self._drain()
            if not keyframe:
                self._need_keyframe = True
                self.packets_dropped += 1
                return
        self._queue.put_nowait(packet)

    def finish(self) -> None:
        """No more packets: ``recv`` raises :class:`MediaStreamError` and aiortc's sender stops."""
        self._drain()
        self._queue.put_nowait(None)

    def _drain(self) -> int:
        dropped = 0
        while not self._queue.empty():
            self._queue.get_nowait()
            dropped += 1
        return dropped

    async def recv(self) -> av.Packet:
        """The next access unit, waiting for it."""
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            self.stop()
            raise MediaStreamError
        if self.first_packet_at is None:
            self.first_packet_at = time.monotonic()
        self.packets_sent += 1
        return packet


def has_sps(data: bytes) -> bool:
    """Whether an Annex B access unit holds a sequence parameter set."""
    i = data.find(b"\x00\x00\x01")
    while i >= 0 and i + 3 < len(data):
        if data[i + 3] & 0x1F == _NAL_SPS:
            return True
        i = data.find(b"\x00\x00\x01", i + 3)
    return False


def describe_open_error(err: BaseException, elapsed_s: float, limit_s: float) -> tuple[str, bool]:
    """A viewer-facing reason for a failed open, and whether it was a timeout."""
    if isinstance(err, av.error.HTTPNotFoundError):
        return "the camera has no such stream (404 from the camera)", False
    if isinstance(err, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return "the camera refused the stored credentials", False
    if isinstance(err, ConnectionRefusedError | av.error.HTTPError | ConnectionResetError):
        return "the camera refused the connection", False
    if isinstance(err, TimeoutError | av.error.ExitError) or elapsed_s >= limit_s * 0.9:
        return f"the camera did not answer within {limit_s:g} s", True
    return "the camera's answer is not a playable stream", False


class Relay:
    """One RTSP pull of one camera stream, shared by all its viewers; owned by :class:`web.live.LiveManager`.

    Created and used on the event loop. ``ready`` resolves once the stream is open and is H.264 (or fails with
    :class:`LiveStreamError`); ``on_end(relay, reason)`` is called on the loop once the pull ends for any reason
    but :meth:`request_stop`.
    """

    def __init__(
        self,
        source: CameraSource,
        loop: asyncio.AbstractEventLoop,
        *,
        open_timeout_s: float,
        read_timeout_s: float,
        on_end: Callable[[Relay, str], None],
    ) -> None:
        self.source = source
        self.tracks: set[PacketTrack] = set()
        self.waiting = 0
        """Viewers whose offer waits for ``ready`` (they keep the relay from stopping)."""
        self.ready: asyncio.Future[StreamInfo] = loop.create_future()
        self.packets = 0
        self.ended: str | None = None
        self._loop = loop
        self._open_timeout_s = open_timeout_s
        self._read_timeout_s = read_timeout_s
        self._on_end = on_end
        self._stop = threading.Event()
        self._gap = False
        self._thread = threading.Thread(target=self._run, name=f"live-relay-{source.code}-{source.stream.value}")

    @property
    def viewers(self) -> int:
        """Viewers playing or about to."""
        return len(self.tracks) + self.waiting

    def start(self) -> None:
        """Start the reader thread."""
        log.info(
            "live: camera %s: opening %s stream %s", self.source.code, self.source.stream, self.source.safe_url
        )
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the thread to stop; it notices within one packet or one read timeout."""
        self._stop.set()

    async def join(self, timeout_s: float) -> bool:
        """Wait (off the loop) up to ``timeout_s`` for the thread; True if it has ended."""
        if self._thread.ident is None:
            return True
        await asyncio.to_thread(self._thread.join, timeout_s)
        return not self._thread.is_alive()

    # -- reader thread --------------------------------------------------------------------------------------------

    def _post(self, coro: Coroutine[Any, Any, None]) -> bool:
        """Run ``coro`` on the loop and wait for it (bounded); False if the loop did not take it in time."""
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:  # the loop is closed: nobody is left to hand packets to
            coro.close()
            self._stop.set()
            return False
        try:
            future.result(timeout=_HANDOFF_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return False
        except concurrent.futures.CancelledError:
            return False
        return True

    def _run(self) -> None:
        source = self.source
        started = time.monotonic()
        try:
            container = av.open(
                source.url,
                options={
                    "rtsp_transport": "tcp",
                    "analyzeduration": "0",
                    "probesize": "32",
                    "timeout": str(int(self._read_timeout_s * 1_000_000)),
                },
                # A read timeout too (unlike ingest's readers, a handful of live streams can afford PyAV's
                # interrupt callback): a camera that keeps RTCP alive but sends no video must still end the view.
                timeout=(self._open_timeout_s, self._read_timeout_s),
            )
        except (av.error.FFmpegError, OSError) as err:
            reason, timed_out = describe_open_error(
                err, time.monotonic() - started, min(self._open_timeout_s, self._read_timeout_s)
            )
            log.warning("live: camera %s: %s (%s)", source.code, reason, source.redact(str(err)))
            self._post(self._failed(LiveStreamError(reason, timeout=timed_out)))
            return
        try:
            reason = self._pump(container)
        finally:
            container.close()
        if not self._stop.is_set():
            self._post(self._finished(reason))
        log.info("live: camera %s: relay ended (%s) after %d packets", source.code, reason, self.packets)

    def _check(self, container: InputContainer) -> tuple[VideoStream, bytes] | None:
        """The video stream and its out-of-band SPS/PPS, or None (reported) if it cannot be played."""
        if not container.streams.video:
            self._post(self._failed(LiveStreamError("the camera's stream has no video")))
            return None
        stream = container.streams.video[0]
        codec = stream.codec_context
        if codec.name != "h264":
            message = f"the camera sends {codec.name}; live view passes H.264 through and cannot play it"
            self._post(self._failed(LiveStreamError(message)))
            return None
        extradata = codec.extradata or b""
        # SPS/PPS given out of band (the RTSP SDP) are put before keyframes that lack them: a browser joining
        # mid-stream needs them with its first keyframe.
        headers = extradata if extradata.startswith((b"\x00\x00\x01", b"\x00\x00\x00\x01")) else b""
        info = StreamInfo("h264", str(codec.profile or ""), codec.width, codec.height)
        if not self._post(self._opened(info)):
            return None
        return stream, headers

    def _pump(self, container: InputContainer) -> str:
        source = self.source
        checked = self._check(container)
        if checked is None:
            return "not playable"
        stream, headers = checked
        time_base = stream.time_base or RTP_TIME_BASE
        first_pts: int | None = None
        started = time.monotonic()
        try:
            for packet in container.demux(stream):
                if self._stop.is_set():
                    return "stopped"
                if not packet.size:
                    continue  # demuxer flush packet
                data = bytes(packet)
                keyframe = packet.is_keyframe
                if keyframe and headers and not has_sps(data):
                    data = headers + data
                if packet.pts is not None:
                    pts = int(packet.pts * time_base / RTP_TIME_BASE)
                    first_pts = pts if first_pts is None else first_pts
                    pts -= first_pts
                else:
                    pts = int((time.monotonic() - started) / RTP_TIME_BASE)
                out = av.Packet(data)
                out.pts = max(pts, 0)
                out.time_base = RTP_TIME_BASE
                self.packets += 1
                if not self._post(self._fanout(out, keyframe, self._gap)):
                    self._gap = True  # viewers wait for the next keyframe instead of showing broken pictures
                else:
                    self._gap = False
        except (TimeoutError, av.error.ExitError) as err:
            log.warning("live: camera %s: stalled (%s)", source.code, source.redact(str(err)))
            return f"the camera's stream stalled (no video for {self._read_timeout_s:g} s)"
        except (av.error.FFmpegError, OSError) as err:
            log.warning("live: camera %s: stream error (%s)", source.code, source.redact(str(err)))
            return "the camera's stream broke off"
        if self._stop.is_set():
            return "stopped"
        return "the camera ended the stream"

    # -- on the loop ----------------------------------------------------------------------------------------------

    async def _opened(self, info: StreamInfo) -> None:
        if not self.ready.done():
            self.ready.set_result(info)

    async def _failed(self, err: LiveStreamError) -> None:
        if not self.ready.done():
            self.ready.set_exception(err)
            self.ready.exception()  # retrieved here: a failure nobody waits for is not an "unretrieved" error
        self._end(str(err))

    async def _finished(self, reason: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(LiveStreamError(reason))
            self.ready.exception()
        self._end(reason)

    def _end(self, reason: str) -> None:
        if self.ended is None:
            self.ended = reason
            self._on_end(self, reason)

    async def _fanout(self, packet: av.Packet, keyframe: bool, gap: bool) -> None:
        for track in list(self.tracks):
            track.push(packet, keyframe, gap=gap)
