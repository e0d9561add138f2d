"""Fixtures and helpers of the live-view tests (:mod:`tests.web.test_live`): the RTSP simulator, the app served
by uvicorn in a thread (aiortc needs one event loop across requests), and aiortc viewers, which run in each
test's own loop (``asyncio.run``). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription, rtcrtpreceiver
from aiortc.codecs.h264 import H264Encoder
from aiortc.mediastreams import MediaStreamTrack
from fastapi import FastAPI
from sqlalchemy import Engine, select, update

from campuswatch.patrol_facts import StoredFleetFacts
from config import Settings
from config.live import LiveConfig
from ingest.simulator import CameraSchedule, CameraSimulator, ClipLibrary, SceneKind, build_camera_specs
from ingest.simulator.clips import split_nal_units
from ingest.thumbnails import MemoryThumbnailStore
from kernel.bus import InMemoryBus
from kernel.db import make_engine, session_scope
from kernel.secrets import SecretBox
from registry.models import Camera
from tests.bureau import PASSWORD, Bureau
from tests.servers import free_port
from web.app import create_app
from web.audit import AuditAction, AuditEntry
from web.csrf import CSRF_COOKIE, CSRF_HEADER
from web.live import LiveManager

CAMERA_USER = "admin"
CAMERA_SECRET = "Cam3ra-S3cret!"
LIVE = LiveConfig(
    open_timeout_s=2.0, read_timeout_s=2.0, connect_timeout_s=10.0, max_viewers_per_camera=2, max_session_s=600
)
SIM_CODES = ("S11-GATE", "S11-CORR", "S12-GATE")


@pytest.fixture
def empty_engine(tmp_path: Path) -> Iterator[Engine]:
    """SQLite only: live view's database work is two audit inserts, which the audit tests run on both."""
    engine = make_engine(f"sqlite:///{tmp_path / 'cw.db'}")
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def simulator(sim_clips: ClipLibrary, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CameraSimulator]:
    schedules = {code: CameraSchedule.showing(SceneKind.PEOPLE_WALKING) for code in SIM_CODES}
    sim = CameraSimulator(
        build_camera_specs(list(schedules), schedules),
        cache_dir=tmp_path_factory.mktemp("unused"),
        port=0,
        clips=sim_clips,
    )
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture
def silent_camera() -> Iterator[int]:
    """A port that accepts TCP connections and never says anything (a frozen camera)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, name="silent-camera")
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def point_cameras(bureau: Bureau, settings: Settings, sim: CameraSimulator, silent_port: int) -> None:
    """S11-GATE, S11-CORR (sub stream only), S12-GATE play from the simulator with credentials; S11-DORM
    refuses connections; S11-YARD is a silent server."""
    box = SecretBox.for_data_dir(settings.data_dir)
    secret = box.encrypt(CAMERA_SECRET)
    with session_scope(bureau.factory) as session:
        for code in ("S11-GATE", "S12-GATE"):
            session.execute(
                update(Camera)
                .where(Camera.code == code)
                .values(main_url=sim.url(code), username=CAMERA_USER, password_encrypted=secret)
            )
        session.execute(
            update(Camera)
            .where(Camera.code == "S11-CORR")
            .values(main_url=f"rtsp://127.0.0.1:{free_port()}/main", sub_url=sim.url("S11-CORR"))
        )
        session.execute(
            update(Camera).where(Camera.code == "S11-DORM").values(main_url=f"rtsp://127.0.0.1:{free_port()}/x")
        )
        session.execute(
            update(Camera)
            .where(Camera.code == "S11-YARD")
            .values(main_url=f"rtsp://127.0.0.1:{silent_port}/x", username=CAMERA_USER, password_encrypted=secret)
        )


@dataclass
class LiveServer:
    """The app served by uvicorn in a thread."""

    app: FastAPI
    base_url: str
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def live(self) -> LiveManager:
        manager: LiveManager = self.app.state.live
        return manager

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.should_exit = True
            self.thread.join(20)
        assert not self.thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def live_config(request: pytest.FixtureRequest) -> LiveConfig:
    """The live section of the served app: :data:`LIVE`, or a test's own (``indirect`` parametrization)."""
    config: LiveConfig = getattr(request, "param", LIVE)
    return config


@pytest.fixture
def live_server(
    settings: Settings,
    live_config: LiveConfig,
    migrated_engine: Engine,
    bureau: Bureau,
    simulator: CameraSimulator,
    silent_camera: int,
) -> Iterator[LiveServer]:
    settings = settings.model_copy(update={"live": live_config})
    point_cameras(bureau, settings, simulator, silent_camera)
    with InMemoryBus() as bus:
        app = create_app(
            settings, engine=migrated_engine, facts=StoredFleetFacts(), bus=bus, thumbnails=MemoryThumbnailStore()
        )
        port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="uvicorn-live")
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start"
        running = LiveServer(app, f"http://127.0.0.1:{port}", server, thread)
        try:
            yield running
        finally:
            running.stop()
    # Every relay thread was joined in the lifespan.
    assert not [t.name for t in threading.enumerate() if t.name.startswith("live-relay-")]


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The H.264 access units the test's viewers receive, before their decoder (client side)."""
    units: list[bytes] = []
    lock = threading.Lock()
    original = rtcrtpreceiver.get_decoder

    def recording_decoder(codec: Any) -> Any:
        decoder = original(codec)

        class Recording:
            def decode(self, frame: Any) -> Any:
                with lock:
                    units.append(bytes(frame.data))
                return decoder.decode(frame)

        return Recording()

    monkeypatch.setattr(rtcrtpreceiver, "get_decoder", recording_decoder)
    return units


@pytest.fixture
def encoder_calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often aiortc's H.264 encoder packetized a packet (pass-through) or encoded a frame (re-encoding)."""
    calls = {"pack": 0, "encode": 0}
    pack, encode = H264Encoder.pack, H264Encoder.encode

    def counting_pack(self: H264Encoder, packet: Any) -> Any:
        calls["pack"] += 1
        return pack(self, packet)

    def counting_encode(self: H264Encoder, frame: Any, force_keyframe: bool = False) -> Any:
        calls["encode"] += 1
        return encode(self, frame, force_keyframe)

    monkeypatch.setattr(H264Encoder, "pack", counting_pack)
    monkeypatch.setattr(H264Encoder, "encode", counting_encode)
    return calls


async def live_client(base_url: str, username: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=base_url, timeout=30)
    response = await http.post("/login", data={"username": username, "password": PASSWORD})
    assert response.status_code == 303, response.text
    http.headers[CSRF_HEADER] = http.cookies[CSRF_COOKIE]
    return http


@dataclass
class Watcher:
    """One aiortc viewer of one camera."""

    pc: RTCPeerConnection
    answer: dict[str, Any]
    track: MediaStreamTrack

    @property
    def session_id(self) -> str:
        return str(self.answer["session_id"])


async def make_offer(codecs: str = "all") -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("video", direction="recvonly")
    if codecs == "vp8":
        capabilities = RTCRtpReceiver.getCapabilities("video")
        assert capabilities is not None
        vp8 = [c for c in capabilities.codecs if c.mimeType == "video/VP8"]
        transceiver.setCodecPreferences(vp8)
    await pc.setLocalDescription(await pc.createOffer())
    return pc


async def watch(http: httpx.AsyncClient, code: str, query: str = "") -> Watcher:
    pc = await make_offer()
    tracks: asyncio.Queue[MediaStreamTrack] = asyncio.Queue()
    pc.on("track", tracks.put_nowait)
    response = await http.post(
        f"/api/live/{code}/offer{query}", json={"type": "offer", "sdp": pc.localDescription.sdp}
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    track = await asyncio.wait_for(tracks.get(), 5)
    return Watcher(pc, answer, track)


async def take_frames(watcher: Watcher, count: int, timeout_s: float = 12) -> list[Any]:
    async def take() -> list[Any]:
        return [await watcher.track.recv() for _ in range(count)]

    return await asyncio.wait_for(take(), timeout_s)


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"not within {timeout_s} s: {what}")


async def await_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"not within {timeout_s} s: {what}")


def live_rows(bureau: Bureau) -> list[AuditEntry]:
    with bureau.factory() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == AuditAction.LIVE_VIEW.value).order_by(AuditEntry.id)
        )
        return list(rows)


def nal_units(access_units: list[bytes]) -> list[bytes]:
    return [u for au in access_units for u in split_nal_units(au) if u]
