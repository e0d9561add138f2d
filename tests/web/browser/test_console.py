"""The duty console in Chromium: login, the wall's tiles, thumbnails and rotation, an incident's alarm taking a
tile within 2 s and its acknowledgement resuming the rotation, the live view playing, the events feed worked
through acknowledge → dispatch → resolve, a school account's narrow view, and the English switch."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from analytics.tables import SafetyEvent
from patrol.models import Takeover
from patrol.tables import VideoWall
from patrol.tables.event_handling import EventDisposition, EventStatus
from tests.web.browser.conftest import CAMERA_CODES, DWELL_S, Console, screenshot, wait_until
from web.audit import AuditAction, AuditEntry

pytestmark = pytest.mark.rtsp
log = logging.getLogger(__name__)

ALARM_BUDGET_S = 2.0
PAGE_CHANGED = (
    "was => [...document.querySelectorAll('[data-testid=tile]')].map(t => t.dataset.camera).join() !== was"
)
"""A page function: true once the tiles show other cameras than ``was`` (their codes, comma-joined)."""


def tile_codes(page: Page) -> list[str]:
    codes: list[str] = page.eval_on_selector_all("[data-testid=tile]", "tiles => tiles.map(t => t.dataset.camera)")
    return codes


def wait_for_tiles(page: Page) -> list[str]:
    """Until all six tiles show a camera with its thumbnail loaded."""
    page.wait_for_function(
        """() => {
            const tiles = [...document.querySelectorAll('[data-testid=tile]')];
            return tiles.length === 6 && tiles.every(t => t.dataset.camera &&
                t.querySelector('img.thumb').complete && t.querySelector('img.thumb').naturalWidth > 0);
        }"""
    )
    return tile_codes(page)


def watch_alarm(page: Page) -> None:
    """Note (in the page, by a MutationObserver) when the alarm bar and the alarm tile first appear."""
    page.evaluate(
        """() => {
            window.alarmSeen = {bar: null, tile: null};
            const check = () => {
                const now = Date.now();
                const bar = document.getElementById('alarm-bar');
                if (window.alarmSeen.bar === null && bar && !bar.hidden) window.alarmSeen.bar = now;
                const tile = document.querySelector('.tile.alarm');
                if (window.alarmSeen.tile === null && tile) window.alarmSeen.tile = now;
            };
            new MutationObserver(check).observe(document.body, {subtree: true, childList: true, attributes: true});
        }"""
    )


def live_views(console: Console) -> list[AuditEntry]:
    with console.factory() as session:
        return list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.action == AuditAction.LIVE_VIEW.value).order_by(AuditEntry.id)
            )
        )


def test_login_through_the_form_lands_on_the_wall(console: Console, page: Page) -> None:
    page.goto(console.url("/wall"))
    page.wait_for_url("**/login")  # no session yet: the wall sends the browser to the login form
    page.fill("input[name=username]", "officer1")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    expect(page.locator("p.error[role=alert]")).to_contain_text("用户名或密码错误")
    console.login(page, "officer1")
    assert page.url.split("?")[0].endswith("/wall")
    expect(page.get_by_test_id("who")).to_contain_text("Officer1")
    expect(page.locator("nav.main a.active")).to_have_text("视频墙")
    expect(page.get_by_test_id("wall-name")).to_have_text("值班大屏 Duty-room wall")
    expect(page.get_by_test_id("wall-select")).to_be_hidden()  # one wall: nothing to choose
    # A second wall (4 tiles, one pinned): the page offers the choice and draws the chosen wall's layout.
    with console.factory() as session:
        second = VideoWall(
            name="二号屏 Second wall",
            layout="4",
            screens=1,
            takeover=Takeover.WALL,
            districts=["D2"],
            schools=[],
            pinned={"3": "S21-GATE"},
            tour_id=console.tour_id,
        )
        session.add(second)
        session.commit()
        second_id = second.id
    page.reload()
    page.get_by_test_id("wall-select").select_option(str(second_id))
    page.wait_for_url(f"**/wall?wall={second_id}")
    expect(page.get_by_test_id("wall-name")).to_have_text("二号屏 Second wall")
    expect(page.get_by_test_id("tile")).to_have_count(4)
    expect(page.locator("[data-testid=tile][data-tile='3']")).to_have_attribute("data-camera", "S21-GATE")
    expect(page.locator("[data-testid=tile][data-tile='3']")).to_have_class("tile pinned")
    assert console.page_errors == []


def test_wall_renders_tiles_with_thumbnails_and_rotates(console: Console, page: Page) -> None:
    console.login(page, "officer1")
    expect(page.get_by_test_id("wall-name")).to_have_text("值班大屏 Duty-room wall")
    first = wait_for_tiles(page)
    assert len(set(first)) == 6
    # The 1+5 layout: tile 0 is the big one, spanning two rows and two columns of a three-column grid.
    big = page.locator("[data-testid=tile][data-tile='0']")
    expect(big).to_have_class("tile big")
    box, small = big.bounding_box(), page.locator("[data-testid=tile][data-tile='1']").bounding_box()
    assert box is not None and small is not None and box["width"] > 1.8 * small["width"]
    expect(page.get_by_test_id("wall-status")).to_have_attribute("data-state", "rotating")
    # Thumbnails are fetched again every few seconds while a camera is up (a cache-busting query each time).
    page.wait_for_function(
        """() => {
            const seen = {};
            for (const entry of performance.getEntriesByType('resource')) {
                const url = new URL(entry.name);
                if (!url.pathname.endsWith('/thumbnail.jpg')) continue;
                (seen[url.pathname] ||= new Set()).add(url.searchParams.get('t'));
            }
            return Object.values(seen).some(stamps => stamps.size >= 2);
        }""",
        timeout=10_000,
    )
    # After the dwell the tour shows its next page.
    started = time.monotonic()
    page.wait_for_function(
        PAGE_CHANGED,
        arg=",".join(first),
        timeout=(DWELL_S + 5) * 1000,
    )
    second = wait_for_tiles(page)
    log.info("the wall rotated %.1f s after its first page was seen", time.monotonic() - started)
    assert set(second).isdisjoint(first), "24 cameras on 6 tiles: the next page shows other cameras"
    assert console.page_errors == []


def test_an_incident_takes_a_tile_within_two_seconds_and_acknowledging_resumes_the_rotation(
    console: Console, page: Page
) -> None:
    console.login(page, "officer1")
    wait_for_tiles(page)
    # The feed is up (the incident must come over the WebSocket, not the fallback poll).
    expect(page.locator("#feed-status")).to_have_attribute("data-state", "up")
    page.get_by_test_id("sound").click()
    expect(page.get_by_test_id("sound")).to_have_attribute("data-state", "on")
    watch_alarm(page)
    started = console.incident("S21-GATE", event_type="line_crossing", severity="major")
    page.wait_for_function("() => window.alarmSeen.tile !== null && window.alarmSeen.bar !== null", timeout=5_000)
    seen: dict[str, Any] = page.evaluate("() => window.alarmSeen")
    bar_s, tile_s = seen["bar"] / 1000 - started, seen["tile"] / 1000 - started
    print(f"\nalarm latency (event published -> on screen): alarm bar {bar_s:.3f} s, tile takeover {tile_s:.3f} s")
    assert max(bar_s, tile_s) < ALARM_BUDGET_S

    # The big tile shows the camera, in a red frame with the event type, school, time and evidence.
    alarm_tile = page.locator(".tile.alarm")
    expect(alarm_tile).to_have_count(1)
    expect(alarm_tile).to_have_attribute("data-tile", "0")
    expect(alarm_tile).to_have_attribute("data-camera", "S21-GATE")
    expect(alarm_tile.get_by_test_id("alarm-type")).to_contain_text("越界")
    expect(alarm_tile.get_by_test_id("alarm-school")).to_have_text("第21中学")
    evidence = alarm_tile.get_by_test_id("alarm-evidence")
    expect(evidence).to_have_js_property("complete", True)
    assert evidence.evaluate("img => img.naturalWidth") > 0  # the event's evidence picture
    bar = page.get_by_test_id("alarm")
    expect(bar).to_contain_text("第21中学")
    expect(page.get_by_test_id("wall-status")).to_have_attribute("data-state", "paused")
    screenshot(page, "wall")

    # The alarm sounded (enabled by the click above: a user gesture).
    assert page.evaluate("() => Number(document.body.dataset.beeps)") >= 2

    paused = tile_codes(page)
    with console.factory() as session:
        event_id = session.scalar(select(SafetyEvent.id).where(SafetyEvent.rule == "wall-S21-GATE"))
    bar.get_by_test_id("ack").click()
    expect(bar).to_be_hidden()
    expect(page.locator(".tile.alarm")).to_have_count(0)
    expect(page.get_by_test_id("wall-status")).to_have_attribute("data-state", "rotating")
    page.wait_for_function(
        PAGE_CHANGED,
        arg=",".join(paused),
        timeout=5_000,
    )
    # The wall's acknowledgement acknowledged the event too.
    with console.factory() as session:
        disposition = session.get(EventDisposition, event_id)
        assert disposition is not None and disposition.status is EventStatus.ACKNOWLEDGED
    assert console.page_errors == []


def test_clicking_a_tile_plays_its_camera_live(console: Console, page: Page) -> None:
    console.login(page, "officer1")
    wait_for_tiles(page)
    page.locator("[data-testid=tile][data-tile='1']").click()
    dialog = page.get_by_test_id("live-dialog")
    expect(dialog).to_be_visible()
    assert dialog.get_attribute("data-camera") in CAMERA_CODES
    video = dialog.get_by_test_id("live-video")
    assert video.evaluate("v => v.muted && v.autoplay && v.playsInline")
    page.wait_for_function("v => v.currentTime > 0", arg=video.element_handle(), timeout=20_000)
    at = video.evaluate("v => v.currentTime")
    page.wait_for_function(
        "([v, at]) => v.currentTime > at + 1.0", arg=[video.element_handle(), at], timeout=10_000
    )
    expect(dialog.get_by_test_id("live-state")).to_have_attribute("data-state", "playing")
    assert video.evaluate("v => v.videoWidth") > 0
    code = dialog.get_attribute("data-camera")
    page.get_by_role("button", name="关闭").click()
    expect(dialog).to_be_hidden()
    # Closing the dialog ended the view on the server: the audit log has its start and its end.
    wait_until(lambda: len(live_views(console)) == 2, 5, "the live view's start and end audited")
    start, end = live_views(console)
    assert (start.actor_name, start.detail["phase"], start.detail["camera_code"]) == ("officer1", "start", code)
    assert end.detail["phase"] == "end" and float(str(end.detail["duration_s"])) > 1.0
    assert console.page_errors == []


def test_events_feed_acknowledge_dispatch_resolve(console: Console, page: Page) -> None:
    for code, kind in (("S12-YARD", "crowding"), ("S13-DORM", "loitering"), ("S22-CORR", "fall")):
        console.incident(code, event_type=kind, severity="general", rule=kind)
    console.wait_stored(3)
    console.login(page, "officer1")
    page.goto(console.url("/events"))
    rows = page.get_by_test_id("event-row")
    expect(rows).to_have_count(3)
    expect(page.locator("#feed-status")).to_have_attribute("data-state", "up")
    # A new event arrives over the WebSocket at the top, highlighted.
    console.incident("S11-GATE", event_type="intrusion", severity="major", rule="intrusion")
    expect(rows).to_have_count(4)
    expect(rows.first).to_have_attribute("data-camera", "S11-GATE")
    expect(rows.first).to_have_class("event fresh")
    rows.first.click()
    detail = page.get_by_test_id("event-detail")
    expect(detail.get_by_test_id("detail-evidence")).to_be_visible()
    detail.get_by_test_id("acknowledge").click()
    expect(rows.first.get_by_test_id("event-status")).to_have_text("已确认")
    detail.get_by_test_id("dispatch-to").fill("学校保安 S11 / 110")
    detail.get_by_test_id("dispatch").click()
    expect(detail.get_by_test_id("event-status")).to_have_text("已派遣")
    page.evaluate("() => document.getElementById('toasts')?.replaceChildren()")
    screenshot(page, "events")
    detail.get_by_test_id("resolve-note").fill("保安到场，劝离翻墙人员")
    detail.get_by_test_id("resolve").click()
    expect(detail.get_by_test_id("event-status")).to_have_text("已处置")
    history = detail.get_by_test_id("history").locator("li")
    expect(history).to_have_count(3)
    expect(history.nth(1)).to_contain_text("学校保安 S11 / 110")
    expect(history.nth(2)).to_contain_text("劝离翻墙人员")
    # The filter by handling state: only the three still new.
    page.get_by_test_id("filter-status").select_option("new")
    expect(rows).to_have_count(3)
    assert console.page_errors == []


def test_a_school_account_sees_only_its_own_school(console: Console, page: Page) -> None:
    console.incident("S11-CORR", event_type="loitering", severity="general", rule="a")
    console.incident("S21-YARD", event_type="crowding", severity="general", rule="b")
    console.wait_stored(2)
    console.login(page, "school11")
    page.goto(console.url("/events"))
    rows = page.get_by_test_id("event-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-school", "S11")
    expect(page.locator("#feed-status")).to_have_attribute("data-state", "up")
    # Over the feed too: the other school's new event never arrives, its own does.
    console.incident("S22-GATE", event_type="intrusion", severity="major", rule="c")
    console.wait_stored(3)
    console.incident("S11-GATE", event_type="intrusion", severity="major", rule="d")
    expect(rows).to_have_count(2)
    assert page.eval_on_selector_all("[data-testid=event-row]", "rows => rows.map(r => r.dataset.school)") == [
        "S11",
        "S11",
    ]
    # The school filter offers its own school only.
    assert page.eval_on_selector_all("#filter-school option", "o => o.map(x => x.value)") == ["", "S11"]
    # Read-only for the duty steps; a note is what a school adds.
    rows.first.click()
    expect(page.get_by_test_id("event-detail").get_by_test_id("add-note")).to_be_visible()
    expect(page.get_by_test_id("acknowledge")).to_have_count(0)
    # Another school's camera cannot be opened; its own can.
    response = page.goto(console.url("/live/S21-GATE"))
    assert response is not None and response.status == 404
    expect(page.get_by_test_id("not-found")).to_be_visible()
    response = page.goto(console.url("/live/S11-GATE"))
    assert response is not None and response.status == 200
    expect(page.get_by_test_id("live-video")).to_be_attached()
    response = page.goto(console.url("/wall"))
    assert response is not None and response.status == 403
    assert console.page_errors == []


def test_language_switch_to_english(console: Console, page: Page) -> None:
    console.login(page, "officer1")
    wait_for_tiles(page)
    expect(page.get_by_test_id("sound")).to_have_text("启用声音")
    page.get_by_test_id("lang-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert page.url.startswith(console.url("/wall?")), f"the switch went back to another page: {page.url}"
    # The switch is remembered (a cookie): the wall is in English from now on.
    page.goto(console.url("/wall"))
    expect(page.locator("nav.main a.active")).to_have_text("Video wall")
    expect(page.get_by_test_id("sound")).to_have_text("Enable sound")
    expect(page.get_by_test_id("wall-status")).to_contain_text("Touring")
    wait_for_tiles(page)
    console.incident("S13-YARD", event_type="crowding", severity="general")
    expect(page.get_by_test_id("alarm")).to_contain_text("Alarm · crowding")
    expect(page.locator(".tile.alarm [data-testid=ack]")).to_have_text("Acknowledge")
    page.get_by_test_id("lang-switch").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert console.page_errors == []
