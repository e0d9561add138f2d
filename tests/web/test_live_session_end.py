"""A live view ends with its viewer's console session (password, role or scope changed, account disabled),
against the real RTSP simulator, the app under uvicorn and aiortc viewers (fixtures in
:mod:`tests.web.live_support`)."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import update

from kernel.db import session_scope
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
from web.live import REASON_SESSION_ENDED, Viewer
from web.models import User

pytestmark = pytest.mark.rtsp
__all__ = ["empty_engine", "live_config", "live_server", "silent_camera", "simulator"]

CHECKED = LIVE.model_copy(update={"session_check_s": 0.5})


@pytest.mark.parametrize("live_config", [CHECKED], indirect=True)
@pytest.mark.parametrize("change", ["session_version", "active"])
def test_a_live_view_ends_when_its_viewers_session_ends(
    live_server: LiveServer, bureau: Bureau, change: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    queried: list[set[int]] = []
    still_valid = live_server.live._still_valid

    def counting(viewers: set[Viewer]) -> set[Viewer]:
        queried.append({v.user_id for v in viewers})
        return still_valid(viewers)

    monkeypatch.setattr(live_server.live, "_still_valid", counting)

    def end_officers_session() -> None:
        values = (
            {"session_version": User.session_version + 1} if change == "session_version" else {"active": False}
        )
        with session_scope(bureau.factory) as session:
            session.execute(update(User).where(User.username == "officer1").values(**values))

    async def scenario() -> None:
        officer = await live_client(live_server.base_url, "officer1")
        leader = await live_client(live_server.base_url, "leader1")
        started = time.monotonic()
        mine = await watch(officer, "S11-GATE")
        theirs = await watch(leader, "S12-GATE")
        await asyncio.gather(take_frames(mine, 5), take_frames(theirs, 5))
        # One query a round for every viewer, not one per view; a round that asked about both is over once
        # the next one asks (a round sleeps the interval, then asks), and neither view ended while valid.
        both = {bureau.users["officer1"], bureau.users["leader1"]}
        await await_until(lambda: len(queried) >= 2 and queried[-2] == both, 10, "a round checked both")
        assert len(queried) <= (time.monotonic() - started) / CHECKED.session_check_s
        ended = live_server.live.get(mine.session_id)
        assert ended is not None and ended.state == "playing"

        await asyncio.to_thread(end_officers_session)
        # Within the check interval, plus the end's own work (closing the peer, the audit row).
        await await_until(lambda: ended.state == "ended", CHECKED.session_check_s + 3, "the officer's view ended")
        assert ended.reason == REASON_SESSION_ENDED
        # The officer's console session is over too; the leader's view plays on from its own pull.
        assert (await officer.get(f"/api/live/sessions/{mine.session_id}")).status_code == 401
        await take_frames(theirs, 10)
        still = (await leader.get(f"/api/live/sessions/{theirs.session_id}")).json()
        assert still["state"] == "playing"
        assert [s.id for s in live_server.live.sessions()] == [theirs.session_id]
        assert (await leader.delete(f"/api/live/sessions/{theirs.session_id}")).status_code == 204
        for watcher in (mine, theirs):
            await watcher.pc.close()
        for http in (officer, leader):
            await http.aclose()

    asyncio.run(scenario())
    ends = {r.actor_name: r.detail for r in live_rows(bureau) if r.detail["phase"] == "end"}
    assert ends["officer1"]["reason"] == REASON_SESSION_ENDED
    duration_s = ends["officer1"]["duration_s"]
    assert isinstance(duration_s, float) and duration_s > 0
    assert ends["leader1"]["reason"] == "the viewer stopped the live view"
