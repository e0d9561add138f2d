"""Live view of a camera over WebRTC: sessions, limits, audit, and their shared camera relays.

The browser makes the offer (receive-only video, no STUN: ``iceServers: []``); :class:`LiveManager` answers with
an aiortc peer connection whose video transceiver is forced to H.264 and whose track (:class:`PacketTrack`) hands
out the camera's own access units. One :class:`Relay` (one RTSP pull) per camera stream serves all its viewers
and stops with the last one. Only host candidates are used (``RTCConfiguration(iceServers=[])``): the console
is reached over the LAN or loopback.

Every live view is two audit rows (``live.view``): one when it starts (so that a view is on record even if the
process dies), one when it ends with ``started_at``, ``ended_at``, ``duration_s`` and the reason, written also
when the app shuts down.

A live view lasts no longer than its viewer's console session: every ``live.session_check_s`` one query reads the
login session of every view and its user (``asyncio.to_thread``), and a view whose session is no longer valid
(:func:`web.auth.session_valid`: logged out or ended by an administrator, expired, the user gone or disabled, or
a newer session version than when the offer was accepted: password, role or scope changed) ends with
:data:`REASON_SESSION_ENDED`. Everything here runs on the event loop except the relays' reader threads, that
query and the audit writes (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpCodecCapability,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from config.live import LiveConfig
from kernel.clock import utcnow
from kernel.db import session_scope
from web.audit import AuditAction, record_audit
from web.auth import load_logins, session_valid
from web.live_relay import CameraSource, LiveError, LiveStreamError, PacketTrack, Relay, StreamInfo, StreamKind

log = logging.getLogger(__name__)

__all__ = [
    "REASON_SESSION_ENDED",
    "REASON_VIEWER_LEFT",
    "CameraSource",
    "LiveClosedError",
    "LiveError",
    "LiveLimitError",
    "LiveManager",
    "LiveOfferError",
    "LiveSession",
    "LiveStreamError",
    "StreamKind",
    "Viewer",
]

ENDED_KEPT = 256
"""Ended sessions remembered, so that a viewer can still ask why its view ended."""
JOIN_TIMEOUT_S = 5.0
"""Longest wait for one relay thread at shutdown (a read is bounded by ``read_timeout_s``)."""
REASON_VIEWER_LEFT = "the viewer stopped the live view"
REASON_VIEWER_GONE = "the viewer's connection was lost"
REASON_NEVER_CONNECTED = "the viewer's WebRTC connection did not come up"
REASON_TIME_LIMIT = "the live view reached its time limit"
REASON_SHUTDOWN = "the server is shutting down"
REASON_SESSION_ENDED = (
    "the viewer's console session ended (logged out or ended, expired, password, role or scope changed, "
    "or account disabled)"
)


class LiveLimitError(LiveError):
    """Too many live viewers (of the camera, of the user, or in all)."""


class LiveOfferError(LiveError):
    """The SDP offer is malformed or offers nothing live view can send (H.264, packetization mode 1)."""


class LiveClosedError(LiveError):
    """Live view is shutting down."""


@dataclass(frozen=True)
class Viewer:
    """Who asks for a live view (copies: the session outlives the request)."""

    user_id: int
    username: str
    ip: str
    session_version: int
    """The user's ``session_version`` when the offer was accepted: a newer one ends the view."""
    login_session_id: str
    """The key of the viewer's login session (:class:`web.models.LoginSession`, not the cookie's token): the
    view ends when that session does."""


@dataclass
class LiveSession:
    """One viewer watching one camera stream."""

    id: str
    viewer: Viewer
    source: CameraSource
    started_at: datetime
    codec: str
    info: StreamInfo
    track: PacketTrack = field(repr=False)
    pc: RTCPeerConnection = field(repr=False)
    relay: Relay = field(repr=False)
    started_mono: float = field(default_factory=time.monotonic)
    state: Literal["connecting", "playing", "ended"] = "connecting"
    """connecting, playing or ended."""
    reason: str = ""
    ended_at: datetime | None = None
    duration_s: float | None = None
    watchdog: asyncio.Task[None] | None = field(default=None, repr=False)
    connected: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def packets_sent(self) -> int:
        """Access units handed to the viewer's WebRTC sender."""
        return self.track.packets_sent


def offered_h264(offer_sdp: str) -> bool:
    """Whether a (parsed) offer has a video section with H.264 in packetization mode 1."""
    try:
        description = aiortc_sdp.SessionDescription.parse(offer_sdp)
    except Exception as err:
        # aiortc's parser meets untrusted text and fails on it with whatever it trips over (ValueError,
        # IndexError, StopIteration, AssertionError... seen fuzzing it): each is a bad offer, not a server error.
        raise LiveOfferError(f"the offer is not a valid SDP description: {type(err).__name__} {err}") from err
    video = [m for m in description.media if m.kind == "video"]
    if not video:
        raise LiveOfferError("the offer has no video section (add a receive-only video transceiver)")
    return any(
        codec.mimeType.lower() == "video/h264" and str(codec.parameters.get("packetization-mode", "0")) == "1"
        for media in video
        for codec in media.rtp.codecs
    )


def _h264_preferences() -> list[RTCRtpCodecCapability]:
    codecs = RTCRtpSender.getCapabilities("video").codecs
    return [c for c in codecs if c.mimeType.lower() in ("video/h264", "video/rtx")]


def _answer_codec(answer_sdp: str) -> str:
    description = aiortc_sdp.SessionDescription.parse(answer_sdp)
    for media in description.media:
        if media.kind == "video" and media.rtp.codecs:
            codec = media.rtp.codecs[0]
            fmtp = ";".join(f"{k}={v}" for k, v in sorted(codec.parameters.items()))
            return f"{codec.mimeType} {fmtp}".strip()
    return ""


class LiveManager:
    """Live sessions and their relays; created with the app, closed in its lifespan (:meth:`close`).

    Not thread-safe: used on the app's event loop only (the loop is taken from the first offer).
    """

    def __init__(
        self,
        config: LiveConfig,
        session_factory: sessionmaker[Session],
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self._factory = session_factory
        self._clock = clock
        self._relays: dict[tuple[int, StreamKind], Relay] = {}
        self._sessions: dict[str, LiveSession] = {}
        self._ended: OrderedDict[str, LiveSession] = OrderedDict()
        self._stopping: set[Relay] = set()
        self._tasks: set[asyncio.Task[object]] = set()
        self._guard: asyncio.Task[None] | None = None
        self._opening: dict[int, list[Viewer]] = {}
        """Offers being negotiated, by user: they count towards the limits before they are sessions."""
        self._closing = False
        self.relays_opened = 0
        """RTSP pulls started since the app started (tests check that viewers share one)."""

    # -- queries --------------------------------------------------------------------------------------------------

    def sessions(self) -> list[LiveSession]:
        """The sessions not ended, oldest first."""
        return sorted(self._sessions.values(), key=lambda s: s.started_mono)

    def get(self, session_id: str) -> LiveSession | None:
        """A session, live or recently ended."""
        return self._sessions.get(session_id) or self._ended.get(session_id)

    def relay_count(self) -> int:
        """Camera streams being pulled now."""
        return len(self._relays)

    # -- sessions -------------------------------------------------------------------------------------------------

    async def open(self, viewer: Viewer, source: CameraSource, offer_sdp: str) -> tuple[LiveSession, str]:
        """Start a live view: returns the session and the SDP answer. Raises :class:`LiveOfferError`,
        :class:`LiveLimitError`, :class:`LiveStreamError` (the camera) or :class:`LiveClosedError`."""
        if self._closing:
            raise LiveClosedError("live view is shutting down")
        if not offered_h264(offer_sdp):
            raise LiveOfferError(
                "the browser offers no H.264 (packetization-mode=1): live view passes the camera's H.264 "
                "through without re-encoding and cannot play in this browser"
            )
        self._check_limits(viewer, source)
        # Counted by the limits until it is a session: offers arriving while this one negotiates see it.
        opening = self._opening.setdefault(viewer.user_id, [])
        opening.append(viewer)
        try:
            relay = self._relay_for(source)
            relay.waiting += 1
            try:
                info, pc, track = await self._negotiate(relay, offer_sdp)
                relay.tracks.add(track)  # before the relay is released: it has a viewer now
            finally:
                relay.waiting -= 1
                self._release_if_unused(relay)
            answer = pc.localDescription.sdp
            session = LiveSession(
                id=uuid.uuid4().hex,
                viewer=viewer,
                source=source,
                started_at=self._clock(),
                codec=_answer_codec(answer),
                info=info,
                track=track,
                pc=pc,
                relay=relay,
            )
            self._sessions[session.id] = session
        finally:
            opening.remove(viewer)
            if not opening:
                del self._opening[viewer.user_id]
        self._start_guard()

        @pc.on("connectionstatechange")
        def _state_changed() -> None:
            state = pc.connectionState
            if state == "connected" and session.state == "connecting":
                session.state = "playing"
                session.connected.set()
            elif state in ("failed", "closed") and session.state != "ended":
                self._spawn(self.end(session.id, REASON_VIEWER_GONE))

        session.watchdog = asyncio.create_task(self._watch(session), name=f"live-watch-{session.id[:8]}")
        log.info(
            "live: %s watches camera %s (%s stream, session %s, %d viewer(s) of the camera)",
            viewer.username,
            source.code,
            source.stream,
            session.id,
            len(relay.tracks),
        )
        await self._audit_start(session)
        return session, answer

    async def _negotiate(self, relay: Relay, offer_sdp: str) -> tuple[StreamInfo, RTCPeerConnection, PacketTrack]:
        """Wait for the camera's stream, then answer the offer with a track of it (H.264 forced)."""
        try:
            info = await asyncio.wait_for(
                asyncio.shield(relay.ready), self.config.open_timeout_s + self.config.read_timeout_s + 2
            )
        except TimeoutError as err:
            raise LiveStreamError(
                f"the camera did not answer within {self.config.open_timeout_s:g} s", timeout=True
            ) from err
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        track = PacketTrack()
        try:
            transceiver = pc.addTransceiver(track, direction="sendonly")
            # Force H.264: the track hands out H.264 packets, which only the H.264 encoder can packetize.
            transceiver.setCodecPreferences(_h264_preferences())
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as err:
            # As in offered_h264: an odd offer fails inside aiortc with OperationError, ValueError, even
            # AttributeError (a missing DTLS setup, seen fuzzing); every one is the offer's fault.
            await pc.close()
            raise LiveOfferError(f"the offer cannot be answered: {type(err).__name__} {err}") from err
        if relay.ended is not None or self._closing:
            await pc.close()
            raise LiveStreamError(relay.ended or "live view is shutting down")
        return info, pc, track

    async def end(self, session_id: str, reason: str) -> LiveSession | None:
        """End a session (idempotent); returns it, or None if there is no such session."""
        session = self._sessions.pop(session_id, None)
        if session is None:
            return self._ended.get(session_id)
        session.state = "ended"
        session.reason = reason
        session.ended_at = self._clock()
        session.duration_s = round(time.monotonic() - session.started_mono, 3)
        self._ended[session.id] = session
        while len(self._ended) > ENDED_KEPT:
            self._ended.popitem(last=False)
        relay = session.relay
        relay.tracks.discard(session.track)
        session.track.finish()
        self._release_if_unused(relay)
        if session.watchdog is not None and session.watchdog is not asyncio.current_task():
            session.watchdog.cancel()
        await session.pc.close()
        log.info(
            "live: %s stopped watching camera %s after %.1f s: %s",
            session.viewer.username,
            session.source.code,
            session.duration_s,
            reason,
        )
        await self._audit_end(session)
        return session

    async def close(self) -> None:
        """End every session (audited), stop every relay and join their threads; for the app's shutdown."""
        self._closing = True
        if self._guard is not None:
            self._guard.cancel()
            await asyncio.gather(self._guard, return_exceptions=True)
            self._guard = None
        await asyncio.gather(*(self.end(sid, REASON_SHUTDOWN) for sid in list(self._sessions)))
        for relay in list(self._relays.values()):
            self._stop_relay(relay)
        if self._tasks:
            # Ends already under way finish (their audit rows are written); reaps wait for their threads.
            await asyncio.wait(set(self._tasks), timeout=JOIN_TIMEOUT_S + self.config.read_timeout_s)
        for task in list(self._tasks):
            task.cancel()
        for relay in list(self._stopping):
            if not await relay.join(JOIN_TIMEOUT_S):
                log.error(
                    "live: camera %s: relay thread did not stop in %.0f s", relay.source.code, JOIN_TIMEOUT_S
                )
        self._stopping.clear()

    # -- internals ------------------------------------------------------------------------------------------------

    def _check_limits(self, viewer: Viewer, source: CameraSource) -> None:
        config = self.config
        opening = sum(len(offers) for offers in self._opening.values())
        if len(self._sessions) + opening >= config.max_sessions:
            raise LiveLimitError(f"{config.max_sessions} live views are open, the most allowed: try again later")
        mine = sum(1 for s in self._sessions.values() if s.viewer.user_id == viewer.user_id)
        mine += len(self._opening.get(viewer.user_id, ()))
        if mine >= config.max_sessions_per_user:
            raise LiveLimitError(
                f"you have {mine} live views open, the most allowed per user: stop one before starting another"
            )
        relay = self._relays.get((source.camera_id, source.stream))
        if relay is not None and relay.viewers >= config.max_viewers_per_camera:
            raise LiveLimitError(
                f"camera {source.code} has {relay.viewers} live viewers, the most allowed: try again later"
            )

    def _relay_for(self, source: CameraSource) -> Relay:
        key = (source.camera_id, source.stream)
        relay = self._relays.get(key)
        if relay is None or relay.ended is not None:
            relay = Relay(
                source,
                asyncio.get_running_loop(),
                open_timeout_s=self.config.open_timeout_s,
                read_timeout_s=self.config.read_timeout_s,
                on_end=self._relay_ended,
            )
            self._relays[key] = relay
            self.relays_opened += 1
            relay.start()
        return relay

    def _release_if_unused(self, relay: Relay) -> None:
        if relay.viewers == 0:
            self._stop_relay(relay)

    def _stop_relay(self, relay: Relay) -> None:
        key = (relay.source.camera_id, relay.source.stream)
        if self._relays.get(key) is relay:
            del self._relays[key]
        if not relay.ready.done():
            # An offer still waiting for the stream (at shutdown) gets its answer now, not at its timeout.
            relay.ready.set_exception(LiveClosedError("live view stopped the camera's stream"))
            relay.ready.exception()
        if relay not in self._stopping:
            relay.request_stop()
            self._stopping.add(relay)
            self._spawn(self._reap(relay))

    async def _reap(self, relay: Relay) -> None:
        if await relay.join(JOIN_TIMEOUT_S + self.config.read_timeout_s):
            self._stopping.discard(relay)
            log.info("live: camera %s: relay stopped (%d packets)", relay.source.code, relay.packets)

    def _relay_ended(self, relay: Relay, reason: str) -> None:
        # The camera's stream ended or failed: every viewer of it ends with that reason.
        self._stop_relay(relay)
        for session in [s for s in self._sessions.values() if s.relay is relay]:
            self._spawn(self.end(session.id, reason))

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_guard(self) -> None:
        if self._guard is None or self._guard.done():
            self._guard = asyncio.create_task(self._guard_sessions(), name="live-session-guard")

    async def _guard_sessions(self) -> None:
        """Every ``session_check_s``, end the views whose viewer's console session has ended (one query)."""
        while not self._closing:
            await asyncio.sleep(self.config.session_check_s)
            # Only the views open before the query are judged: one opened while it runs may carry a version
            # newer than what the query read.
            watching = list(self._sessions.values())
            if not watching:
                continue
            try:
                valid = await asyncio.to_thread(self._still_valid, {s.viewer for s in watching})
            except Exception as err:  # noqa: BLE001 - whatever failed this round, the next one checks again
                # The check must outlive a bad round (mostly: the database is away), or no view would end with
                # its session any more: views go on meanwhile (they were allowed).
                log.error("live: viewers' sessions not checked: %s %s", type(err).__name__, err)
                continue
            for session in watching:
                if session.viewer not in valid and session.state != "ended":
                    # Spawned, not awaited: close() waits for these, so the end row is written at shutdown too.
                    self._spawn(self.end(session.id, REASON_SESSION_ENDED))

    def _still_valid(self, viewers: set[Viewer]) -> set[Viewer]:
        """The viewers whose console session is still valid: one query for all their login sessions (and
        users), judged by :func:`web.auth.session_valid`."""
        now = utcnow()  # login sessions are on the wall clock, as their cookies (not the app's clock)
        with self._factory() as db:
            logins = load_logins(db, {v.login_session_id for v in viewers})
            valid = set()
            for viewer in viewers:
                login, user = logins.get(viewer.login_session_id, (None, None))
                if session_valid(login, user, user_id=viewer.user_id, version=viewer.session_version, now=now):
                    valid.add(viewer)
            return valid

    async def _watch(self, session: LiveSession) -> None:
        """End the session if the viewer never connects, and when it reaches ``max_session_s``."""
        try:
            try:
                await asyncio.wait_for(session.connected.wait(), self.config.connect_timeout_s)
            except TimeoutError:
                await self.end(session.id, REASON_NEVER_CONNECTED)
                return
            remaining = self.config.max_session_s - (time.monotonic() - session.started_mono)
            await asyncio.sleep(max(remaining, 0))
            if session.state != "ended":
                await self.end(session.id, REASON_TIME_LIMIT)
        except asyncio.CancelledError:
            pass

    async def _audit_start(self, session: LiveSession) -> None:
        detail: dict[str, object] = {
            "phase": "start",
            "session_id": session.id,
            "camera_code": session.source.code,
            "stream": session.source.stream.value,
            "started_at": session.started_at.isoformat(),
        }
        await asyncio.to_thread(self._write_audit, session, detail, session.started_at)

    async def _audit_end(self, session: LiveSession) -> None:
        assert session.ended_at is not None and session.duration_s is not None
        detail: dict[str, object] = {
            "phase": "end",
            "session_id": session.id,
            "camera_code": session.source.code,
            "stream": session.source.stream.value,
            "started_at": session.started_at.isoformat(),
            "ended_at": session.ended_at.isoformat(),
            "duration_s": session.duration_s,
            "reason": session.reason,
            "packets": session.packets_sent,
        }
        await asyncio.to_thread(self._write_audit, session, detail, session.ended_at)

    def _write_audit(self, session: LiveSession, detail: dict[str, object], at: datetime) -> None:
        try:
            with session_scope(self._factory) as db:
                entry = record_audit(
                    db,
                    AuditAction.LIVE_VIEW,
                    actor_name=session.viewer.username,
                    target=f"camera {session.source.code}",
                    ip=session.viewer.ip,
                    detail=detail,
                    at=at,
                )
                entry.actor_id = session.viewer.user_id
        except SQLAlchemyError as err:
            # A lost audit row must not kill the view or the shutdown; the log keeps the fact.
            log.error(
                "live: audit row of session %s (%s, camera %s, %s) not written: %s",
                session.id,
                session.viewer.username,
                session.source.code,
                detail["phase"],
                err,
            )
