"""Live view over WebRTC against the real RTSP simulator, the real app under uvicorn, an aiortc viewer and
Debian's headless Chromium (fixtures in :mod:`tests.web.live_support`)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from campuswatch.patrol_facts import StoredFleetFacts
from config import Settings
from config.live import LiveConfig
from ingest.simulator import CameraSchedule, CameraSimulator, ClipLibrary, Drop, SceneKind
from ingest.simulator.clips import split_nal_units
from ingest.thumbnails import MemoryThumbnailStore
from kernel.bus import InMemoryBus
from tests.bureau import PASSWORD, Bureau, login
from tests.web.live_support import (
    CAMERA_SECRET,
    CAMERA_USER,
    LIVE,
    LiveServer,
    await_until,
    empty_engine,
    encoder_calls,
    live_client,
    live_config,
    live_rows,
    live_server,
    make_offer,
    nal_units,
    received,
    silent_camera,
    simulator,
    take_frames,
    wait_until,
    watch,
)
from web.app import create_app

pytestmark = pytest.mark.rtsp
__all__ = ["empty_engine", "encoder_calls", "live_config", "live_server", "received", "silent_camera", "simulator"]


# -- the real thing --------------------------------------------------------------------------------------------


def test_live_view_plays_the_cameras_own_h264(
    live_server: LiveServer,
    simulator: CameraSimulator,
    sim_clips: ClipLibrary,
    bureau: Bureau,
    received: list[bytes],
    encoder_calls: dict[str, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    bodies: list[str] = []

    async def scenario() -> None:
        http = await live_client(live_server.base_url, "officer1")
        watcher = await watch(http, "S11-GATE")
        bodies.append(str(watcher.answer))
        assert watcher.answer["codec"].startswith("video/H264")
        assert "packetization-mode=1" in watcher.answer["codec"]
        assert (watcher.answer["width"], watcher.answer["height"]) == (640, 360)
        assert watcher.answer["stream"] == "main"  # S11-GATE has no sub stream
        frames = await take_frames(watcher, 20)
        assert {(f.width, f.height) for f in frames} == {(640, 360)}
        status = await http.get(f"/api/live/sessions/{watcher.session_id}")
        bodies.append(status.text)
        assert status.json()["state"] == "playing"
        assert status.json()["packets_sent"] >= 20
        admin = await live_client(live_server.base_url, "admin")
        listing = await admin.get("/api/live/sessions")
        bodies.append(listing.text)
        assert [s["id"] for s in listing.json()] == [watcher.session_id]
        stop = await http.delete(f"/api/live/sessions/{watcher.session_id}")
        assert stop.status_code == 204
        ended = (await http.get(f"/api/live/sessions/{watcher.session_id}")).json()
        assert ended["state"] == "ended"
        assert ended["reason"] == "the viewer stopped the live view"
        assert ended["duration_s"] > 0
        await watcher.pc.close()
        await http.aclose()
        await admin.aclose()

    asyncio.run(scenario())

    # Not re-encoded: aiortc only packetized packets, and what arrived is byte for byte the camera's own
    # slices (the simulator replays these clips; x264's High profile, where aiortc would send Baseline).
    assert encoder_calls["encode"] == 0
    assert encoder_calls["pack"] >= 20
    clip_units = {u for clip in sim_clips for frame in clip.frames for u in split_nal_units(frame)}
    units = nal_units(received)
    slices = [u for u in units if u[0] & 0x1F in (1, 5)]
    assert len(slices) >= 20
    assert all(u in clip_units for u in slices), "a slice differs from the camera's: the stream was re-encoded"
    sps = [u for u in units if u[0] & 0x1F == 7]
    assert sps and sps[0][1] == 100, "the camera's SPS (High profile) reaches the browser"
    assert units[0][0] & 0x1F in (7, 9), "the viewer starts at a keyframe (SPS first, or an AUD before it)"

    # The relay stops with its last viewer: the simulator sees no connection, no relay thread is left.
    wait_until(lambda: simulator.stats().clients == 0, 8, "the RTSP pull closed")
    wait_until(lambda: live_server.live.relay_count() == 0, 2, "no relay")

    rows = live_rows(bureau)
    assert [r.detail["phase"] for r in rows] == ["start", "end"]
    start, end = rows
    assert start.actor_name == end.actor_name == "officer1"
    assert start.actor_id == end.actor_id == bureau.users["officer1"]
    assert start.target == end.target == "camera S11-GATE"
    assert end.detail["session_id"] == start.detail["session_id"]
    assert end.detail["started_at"] == start.detail["started_at"]
    assert isinstance(end.detail["duration_s"], float) and end.detail["duration_s"] > 0.5
    assert str(end.detail["ended_at"]) > str(end.detail["started_at"])
    assert end.detail["reason"] == "the viewer stopped the live view"
    assert start.ip == "127.0.0.1"

    # No credential anywhere: logs (the app's own messages, before any redacting handler) and responses.
    assert CAMERA_SECRET not in caplog.text
    assert f"{CAMERA_USER}:" not in caplog.text
    assert all(CAMERA_SECRET not in body for body in bodies)
    assert "live: camera S11-GATE" in caplog.text  # the relay did log, with its URL redacted
    assert "rtsp://***:***@127.0.0.1" in caplog.text


def test_two_viewers_share_one_pull_and_it_stops_with_the_last(
    live_server: LiveServer, simulator: CameraSimulator
) -> None:
    async def scenario() -> None:
        first_http = await live_client(live_server.base_url, "officer1")
        second_http = await live_client(live_server.base_url, "leader1")
        first = await watch(first_http, "S12-GATE")
        second = await watch(second_http, "S12-GATE")
        await asyncio.gather(take_frames(first, 10), take_frames(second, 10))
        assert live_server.live.relays_opened == 1
        assert simulator.stats().clients == 1, "two viewers, one RTSP connection"
        # A third viewer is over the camera's limit (2).
        third_http = await live_client(live_server.base_url, "officer2")
        pc = await make_offer()
        over = await third_http.post(
            "/api/live/S12-GATE/offer", json={"type": "offer", "sdp": pc.localDescription.sdp}
        )
        assert over.status_code == 429
        assert "S12-GATE" in over.json()["detail"]
        await pc.close()
        # The first leaves; the second keeps playing from the same pull.
        assert (await first_http.delete(f"/api/live/sessions/{first.session_id}")).status_code == 204
        await take_frames(second, 10)
        assert simulator.stats().clients == 1
        assert (await second_http.delete(f"/api/live/sessions/{second.session_id}")).status_code == 204
        await await_until(lambda: simulator.stats().clients == 0, 8, "the pull closed after the last viewer")
        assert live_server.live.relay_count() == 0
        for watcher in (first, second):
            await watcher.pc.close()
        for http in (first_http, second_http, third_http):
            await http.aclose()

    asyncio.run(scenario())


def test_sub_stream_is_preferred(live_server: LiveServer) -> None:
    async def scenario() -> None:
        http = await live_client(live_server.base_url, "school11")  # the school's own camera
        watcher = await watch(http, "S11-CORR")
        assert watcher.answer["stream"] == "sub"
        await take_frames(watcher, 5)
        await http.delete(f"/api/live/sessions/{watcher.session_id}")
        # Asking for the main stream: this camera's main URL refuses, with a clear reason.
        pc = await make_offer()
        main = await http.post(
            "/api/live/S11-CORR/offer?stream=main", json={"type": "offer", "sdp": pc.localDescription.sdp}
        )
        assert main.status_code == 502
        assert main.json()["detail"] == "the camera's stream cannot be played: the camera refused the connection"
        await pc.close()
        await watcher.pc.close()
        await http.aclose()

    asyncio.run(scenario())


def test_dead_cameras_answer_a_clear_error_quickly(live_server: LiveServer, bureau: Bureau) -> None:
    async def scenario() -> None:
        http = await live_client(live_server.base_url, "officer1")
        pc = await make_offer()
        body = {"type": "offer", "sdp": pc.localDescription.sdp}
        started = time.monotonic()
        refused = await http.post("/api/live/S11-DORM/offer", json=body)
        assert refused.status_code == 502
        assert "refused the connection" in refused.json()["detail"]
        assert time.monotonic() - started < 2
        started = time.monotonic()
        silent = await http.post("/api/live/S11-YARD/offer", json=body)
        assert silent.status_code == 504
        assert (
            silent.json()["detail"] == "the camera's stream cannot be played: the camera did not answer within 2 s"
        )
        assert time.monotonic() - started < LIVE.open_timeout_s + 3
        assert CAMERA_SECRET not in silent.text
        await pc.close()
        await http.aclose()

    asyncio.run(scenario())
    assert live_server.live.relay_count() == 0
    assert live_rows(bureau) == [], "a view that never started is not audited as one"


def test_a_stalled_stream_ends_the_view_with_its_reason(
    live_server: LiveServer, simulator: CameraSimulator, bureau: Bureau
) -> None:
    async def scenario() -> None:
        http = await live_client(live_server.base_url, "officer1")
        watcher = await watch(http, "S12-GATE")
        await take_frames(watcher, 5)
        stall = Drop(at_s=simulator.elapsed_s() + 0.5, duration_s=30, mode="stall")
        simulator.set_schedule("S12-GATE", CameraSchedule(default_scene=SceneKind.PEOPLE_WALKING, drops=(stall,)))
        try:
            deadline = time.monotonic() + LIVE.read_timeout_s * 2 + 5
            state: dict[str, Any] = {}
            while time.monotonic() < deadline:
                state = (await http.get(f"/api/live/sessions/{watcher.session_id}")).json()
                if state["state"] == "ended":
                    break
                await asyncio.sleep(0.2)
            assert state["state"] == "ended"
            assert state["reason"] == "the camera's stream stalled (no video for 2 s)"
        finally:
            simulator.set_schedule("S12-GATE", CameraSchedule.showing(SceneKind.PEOPLE_WALKING))
        await await_until(lambda: live_server.live.relay_count() == 0, 5, "relay gone")
        await watcher.pc.close()
        await http.aclose()

    asyncio.run(scenario())
    end = live_rows(bureau)[-1]
    assert end.detail["phase"] == "end"
    assert end.detail["reason"] == "the camera's stream stalled (no video for 2 s)"


def test_shutdown_ends_views_and_audits_them(
    live_server: LiveServer, simulator: CameraSimulator, bureau: Bureau
) -> None:
    async def scenario() -> None:
        http = await live_client(live_server.base_url, "inspector")
        watcher = await watch(http, "S11-GATE")
        await take_frames(watcher, 5)
        await http.aclose()
        await asyncio.to_thread(live_server.stop)
        await watcher.pc.close()

    asyncio.run(scenario())
    rows = live_rows(bureau)
    assert [r.detail["phase"] for r in rows] == ["start", "end"]
    assert rows[1].detail["reason"] == "the server is shutting down"
    assert rows[1].actor_name == "inspector"
    assert not [t.name for t in threading.enumerate() if t.name.startswith("live-relay-")]
    wait_until(lambda: simulator.stats().clients == 0, 8, "the pull closed at shutdown")


# -- who may watch what (no stream needed: the TestClient app) ----------------------------------------------------


def _sdp(codecs: str = "all") -> str:
    async def make() -> str:
        pc = await make_offer(codecs)
        sdp = pc.localDescription.sdp
        await pc.close()
        return sdp

    return asyncio.run(make())


def test_scope_and_roles(api: TestClient) -> None:
    offer = {"type": "offer", "sdp": "v=0 not an offer"}
    assert api.post("/api/live/S11-GATE/offer", json=offer).status_code == 401
    login(api, "school11")
    outside = api.post("/api/live/S21-GATE/offer", json=offer)
    assert outside.status_code == 404
    assert outside.json()["detail"] == "no camera S21-GATE"
    assert api.post("/api/live/NOPE/offer", json=offer).status_code == 404
    # Inside the scope, the offer is read (and refused) before any stream is opened.
    own = api.post("/api/live/S11-GATE/offer", json=offer)
    assert own.status_code == 422
    login(api, "officer_d1")
    assert api.post("/api/live/S21-GATE/offer", json=offer).status_code == 404
    assert api.post("/api/live/S12-GATE/offer", json=offer).status_code == 422
    login(api, "auditor")
    refused = api.post("/api/live/S11-GATE/offer", json=offer)
    assert refused.status_code == 403
    assert api.get("/api/live/sessions").status_code == 403
    login(api, "admin")
    assert api.get("/api/live/sessions").json() == []
    assert api.delete("/api/live/sessions/nope").status_code == 404
    assert api.get("/api/live/sessions/nope").status_code == 404


def test_offers_without_h264_or_malformed_are_422(api: TestClient) -> None:
    login(api, "officer1")
    vp8 = api.post("/api/live/S11-GATE/offer", json={"type": "offer", "sdp": _sdp("vp8")})
    assert vp8.status_code == 422
    assert "offers no H.264" in vp8.json()["detail"]
    no_video = api.post(
        "/api/live/S11-GATE/offer",
        json={"type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"},
    )
    assert no_video.status_code == 422
    assert "no video" in no_video.json()["detail"]
    wrong_type = api.post("/api/live/S11-GATE/offer", json={"type": "answer", "sdp": "x"})
    assert wrong_type.status_code == 422
    assert api.post("/api/live/S11-GATE/offer", json={"sdp": ""}).status_code == 422


TIGHT = LIVE.model_copy(update={"max_sessions": 2, "max_sessions_per_user": 1})


@pytest.mark.parametrize("live_config", [TIGHT], indirect=True)
def test_limits_per_user_and_in_all(live_server: LiveServer) -> None:
    async def scenario() -> None:
        officer = await live_client(live_server.base_url, "officer1")
        leader = await live_client(live_server.base_url, "leader1")
        other = await live_client(live_server.base_url, "officer2")
        mine = await watch(officer, "S11-GATE")
        pc = await make_offer()
        body = {"type": "offer", "sdp": pc.localDescription.sdp}
        second = await officer.post("/api/live/S12-GATE/offer", json=body)
        assert second.status_code == 429
        assert second.json()["detail"].startswith("you have 1 live views open, the most allowed per user")
        theirs = await watch(leader, "S12-GATE")
        full = await other.post("/api/live/S11-GATE/offer", json=body)
        assert full.status_code == 429
        assert full.json()["detail"] == "2 live views are open, the most allowed: try again later"
        # Stopping one frees a place.
        assert (await officer.delete(f"/api/live/sessions/{mine.session_id}")).status_code == 204
        again = await watch(other, "S11-GATE")
        # Nobody stops another's view, nor sees it (404, as if missing); an administrator may.
        assert (await officer.delete(f"/api/live/sessions/{again.session_id}")).status_code == 404
        assert (await officer.get(f"/api/live/sessions/{again.session_id}")).status_code == 404
        admin = await live_client(live_server.base_url, "admin")
        assert (await admin.delete(f"/api/live/sessions/{again.session_id}")).status_code == 204
        stopped = (await other.get(f"/api/live/sessions/{again.session_id}")).json()
        assert stopped["reason"] == "stopped by administrator admin"
        await pc.close()
        for watcher in (mine, theirs, again):
            await watcher.pc.close()
        for http in (officer, leader, other, admin):
            await http.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize("live_config", [TIGHT], indirect=True)
def test_offers_arriving_together_cannot_pass_the_limits(live_server: LiveServer) -> None:
    async def scenario() -> None:
        officer = await live_client(live_server.base_url, "officer1")
        offers = [await make_offer() for _ in range(2)]
        # Both reach the server while the first still waits for its camera's stream.
        answers = await asyncio.gather(
            *(
                officer.post(f"/api/live/{code}/offer", json={"type": "offer", "sdp": pc.localDescription.sdp})
                for code, pc in zip(("S11-GATE", "S12-GATE"), offers, strict=True)
            )
        )
        assert sorted(a.status_code for a in answers) == [201, 429], [a.text for a in answers]
        (over,) = [a for a in answers if a.status_code == 429]
        assert over.json()["detail"].startswith("you have 1 live views open, the most allowed per user")
        (ok,) = [a for a in answers if a.status_code == 201]
        assert (await officer.delete(f"/api/live/sessions/{ok.json()['session_id']}")).status_code == 204
        for pc in offers:
            await pc.close()
        await officer.aclose()

    asyncio.run(scenario())


def test_live_view_turned_off_is_404(settings: Settings, migrated_engine: Engine, bureau: Bureau) -> None:
    off = settings.model_copy(update={"live": LiveConfig(enabled=False)})
    with InMemoryBus() as bus:
        app = create_app(
            off, engine=migrated_engine, facts=StoredFleetFacts(), bus=bus, thumbnails=MemoryThumbnailStore()
        )
        with TestClient(app) as client:
            login(client, "officer1")
            response = client.post("/api/live/S11-GATE/offer", json={"type": "offer", "sdp": _sdp()})
            assert response.status_code == 404
            assert response.json()["detail"] == "live view is turned off (live.enabled)"


# -- Debian's Chromium, headless ---------------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def test_chromium_plays_the_live_view(live_server: LiveServer, bureau: Bureau) -> None:
    """live.js in Debian's headless Chromium: the camera's H.264 (High profile) plays, time advances."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(base_url=live_server.base_url)
            login_response = context.request.post(
                "/login", form={"username": "officer1", "password": PASSWORD}, max_redirects=0
            )
            assert login_response.status == 303
            page = context.new_page()
            page.goto("/login")
            started = page.evaluate(
                """async (code) => {
                    const { startLive } = await import("/static/live.js");
                    const video = document.createElement("video");
                    document.body.append(video);
                    window.liveStates = [];
                    window.liveVideo = video;
                    window.live = await startLive(video, code, {
                        onState: (name, detail) => window.liveStates.push([name, detail]),
                    });
                    return { codec: window.live.codec, session: window.live.sessionId };
                }""",
                "S11-GATE",
            )
            assert started["codec"].startswith("video/H264")
            page.wait_for_function("() => window.liveVideo.currentTime > 1.5", timeout=15_000)
            size = page.evaluate("() => [window.liveVideo.videoWidth, window.liveVideo.videoHeight]")
            assert size == [640, 360]
            states = page.evaluate("() => window.liveStates.map((s) => s[0])")
            assert states[:2] == ["connecting", "playing"]
            page.evaluate("() => window.live.stop()")
            page.wait_for_function("() => window.liveStates.some((s) => s[0] === 'stopped')", timeout=5_000)
            session = live_server.live.get(started["session"])
            assert session is not None and session.state == "ended"
            assert session.reason == "the viewer stopped the live view"
        finally:
            browser.close()
    rows = live_rows(bureau)
    assert [r.detail["phase"] for r in rows] == ["start", "end"]
