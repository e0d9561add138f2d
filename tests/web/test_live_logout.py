"""Logging out ends that session's live views at the guard's next round, and only those: the same user's view
from another session plays on. Against the real RTSP simulator, the app under uvicorn and aiortc viewers
(fixtures in :mod:`tests.web.live_support`, SQLite only; the guard's query runs on both backends in
:mod:`tests.web.test_login_sessions`)."""

from __future__ import annotations

import asyncio

import pytest

from tests.bureau import Bureau
from tests.web.live_support import (
    LIVE,
    LiveServer,
    await_until,
    empty_engine,
    live_client,
    live_config,
    live_rows,
    live_server,
    silent_camera,
    simulator,
    take_frames,
    watch,
)
from web.live import REASON_SESSION_ENDED

pytestmark = pytest.mark.rtsp
__all__ = ["empty_engine", "live_config", "live_server", "silent_camera", "simulator"]

CHECKED = LIVE.model_copy(update={"session_check_s": 0.5})


@pytest.mark.parametrize("live_config", [CHECKED], indirect=True)
def test_logging_out_ends_that_sessions_live_view_only(live_server: LiveServer, bureau: Bureau) -> None:
    async def scenario() -> None:
        laptop = await live_client(live_server.base_url, "officer1")
        wall_pc = await live_client(live_server.base_url, "officer1")
        mine = await watch(laptop, "S11-GATE")
        wall = await watch(wall_pc, "S12-GATE")
        await asyncio.gather(take_frames(mine, 5), take_frames(wall, 5))
        ended, other = live_server.live.get(mine.session_id), live_server.live.get(wall.session_id)
        assert ended is not None and other is not None and ended.state == "playing"
        assert ended.viewer.login_session_id != other.viewer.login_session_id, "two logins, two sessions"

        assert (await laptop.post("/logout")).status_code == 303
        # Within the check interval, plus the end's own work (closing the peer, the audit row).
        await await_until(lambda: ended.state == "ended", CHECKED.session_check_s + 3, "the laptop's view ended")
        assert ended.reason == REASON_SESSION_ENDED
        # The wall PC's view of the same user plays on, through rounds after the logout.
        await asyncio.sleep(CHECKED.session_check_s * 3)
        await take_frames(wall, 10)
        still = (await wall_pc.get(f"/api/live/sessions/{wall.session_id}")).json()
        assert still["state"] == "playing"
        assert [s.id for s in live_server.live.sessions()] == [wall.session_id]
        assert (await wall_pc.delete(f"/api/live/sessions/{wall.session_id}")).status_code == 204
        for watcher in (mine, wall):
            await watcher.pc.close()
        for http in (laptop, wall_pc):
            await http.aclose()

    asyncio.run(scenario())
    ends = sorted(str(r.detail["reason"]) for r in live_rows(bureau) if r.detail["phase"] == "end")
    assert ends == sorted([REASON_SESSION_ENDED, "the viewer stopped the live view"])
