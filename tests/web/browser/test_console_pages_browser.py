"""The console's work pages in Chromium: every page loads its data without a script error, and a major
incident's four reporting clocks count down live, turn amber then red, and take a "reported" click."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import FilePayload, Page, expect
from sqlalchemy import update

from kernel.db import session_scope
from patrol.models import ClockKind
from patrol.tables import IncidentClock
from tests.web.browser.conftest import Console, frame, jpeg

pytestmark = pytest.mark.rtsp

PAGES = {
    "/incidents": "[data-testid=incident-table]",
    "/tasks": "[data-testid=task-table]",
    "/spot-checks": "[data-testid=draw-table]",
    "/hazards": "[data-testid=hazard-table]",
    "/health": "[data-testid=count-online]",
    "/reports": "[data-testid=report-table]",
    "/admin/schools": "[data-testid=school-table]",
    "/admin/cameras": "[data-testid=camera-table]",
    "/admin/users": "[data-testid=user-table]",
    "/admin/roster": "[data-testid=shift-table]",
    "/admin/rules#S11-GATE": "[data-testid=rules-text]",
    "/notifications": "[data-testid=notif-table]",
    "/audit": "[data-testid=audit-table]",
}
"""Each page and what it shows once its API data has arrived."""

FILE_MAJOR = """async () => {
    const csrf = decodeURIComponent(document.cookie.match(/(?:^|; )cw_csrf=([^;]*)/)[1]);
    const response = await fetch('/api/incidents', {
        method: 'POST',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
        body: JSON.stringify({school_code: 'S11', occurred_at: new Date().toISOString(),
                              title: '校门外斗殴 fight at the gate', severity: 'major'}),
    });
    return [response.status, (await response.json()).id];
}"""


def test_every_work_page_loads_without_a_script_error(page: Page, console: Console) -> None:
    console.login(page, "admin")
    for path, ready in PAGES.items():
        page.goto(console.url(path))
        expect(page.locator(ready).first).to_be_visible()
        if path.startswith("/admin/rules"):
            # The rules tab loads the camera named in the address into the editor, as JSON.
            expect(page.locator(ready)).to_have_value(re.compile(r'"rules": \['))
        expect(page.locator("main .error, .toast.error")).to_have_count(0)
    assert console.page_errors == []


def test_major_incident_clocks_count_down_and_change_colour(page: Page, console: Console) -> None:
    console.login(page, "leader1")
    page.goto(console.url("/incidents"))
    status, incident_id = page.evaluate(FILE_MAJOR)
    assert status == 201
    page.goto(console.url(f"/incidents#{incident_id}"))
    clocks = page.locator("[data-testid=clocks] .clock")
    expect(clocks).to_have_count(4)
    phone = page.locator("[data-testid=clocks] [data-testid=clock-school_phone]")
    expect(phone).to_have_attribute("data-state", "ok")
    before = phone.locator(".remaining").inner_text()
    page.wait_for_function(
        "was => document.querySelector('[data-testid=clocks] [data-testid=clock-school_phone] .remaining')"
        ".textContent !== was",
        arg=before,
        timeout=3000,
    )
    # Move two deadlines close: one into its last third (amber), one past (red).
    now = datetime.now(UTC)
    with session_scope(console.factory) as session:
        for kind, deadline in (
            (ClockKind.BUREAU_PHONE, now + timedelta(minutes=2)),
            (ClockKind.BUREAU_WRITTEN, now),
        ):
            session.execute(
                update(IncidentClock)
                .where(IncidentClock.incident_id == incident_id, IncidentClock.kind == kind)
                .values(deadline=deadline, started_at=now - timedelta(minutes=18))
            )
    page.reload()
    clocks_box = page.locator("[data-testid=clocks]")
    expect(clocks_box.locator("[data-testid=clock-bureau_phone]")).to_have_attribute("data-state", "warn")
    expect(clocks_box.locator("[data-testid=clock-bureau_written]")).to_have_attribute("data-state", "overdue")
    expect(clocks_box.locator("[data-testid=clock-bureau_written] .remaining")).to_contain_text("已超时")
    # Report the school's phone call: that clock stops.
    done = page.locator("[data-testid=done-school_phone]")
    done.locator("input[name=note]").fill("电话报告教育局值班室")
    done.locator("button[type=submit]").click()
    expect(clocks_box.locator("[data-testid=clock-school_phone]")).to_have_attribute("data-state", "done")
    assert console.page_errors == []


def test_a_hazard_is_filed_rectified_with_an_after_picture_and_closed(page: Page, console: Console) -> None:
    console.login(page, "leader1")
    page.goto(console.url("/hazards"))
    page.click("[data-testid=new-hazard-toggle]")
    new = page.locator("[data-testid=new-hazard]")
    new.locator("input[name=school_code]").fill("S11")
    new.locator("input[name=title]").fill("围墙破损 broken fence")
    new.locator("button[type=submit]").click()
    detail = page.locator("[data-testid=hazard-detail]")
    expect(detail.locator("h2")).to_contain_text("围墙破损")
    detail.locator("[data-testid=step-start] button[type=submit]").click()
    expect(detail).to_contain_text("整改中")
    upload = detail.locator("[data-testid=upload-form]")
    detail.locator("details.panel summary").click()
    expect(upload).to_be_visible()
    # A refresh (the button here; a feed message likewise) re-renders the hazard but keeps the opened panel open.
    page.click("[data-testid=hazard-refresh]")
    expect(page.locator("[data-testid=hazard-refresh]")).to_be_enabled()
    expect(upload).to_be_visible()
    upload.locator("select[name=stage]").select_option("after")
    picture: FilePayload = {"name": "after.jpg", "mimeType": "image/jpeg", "buffer": jpeg(frame("S11-GATE", 2))}
    upload.locator("input[type=file]").set_input_files(files=[picture])
    upload.locator("button[type=submit]").click()
    expect(detail.locator(".before-after section").nth(1).locator("img")).to_have_count(1)
    detail.locator("[data-testid=step-submit] button[type=submit]").click()
    expect(detail.locator("[data-testid=step-verify]")).to_be_visible()
    detail.locator("[data-testid=step-verify] button[type=submit]").click()
    expect(detail.locator("dl.facts")).to_contain_text("已销号")
    expect(detail.locator("[data-testid=step-reopen]")).to_be_visible()
    assert console.page_errors == []


def test_rules_editor_shows_the_apis_validation_errors(page: Page, console: Console) -> None:
    console.login(page, "admin")
    page.goto(console.url("/admin/rules#S11-GATE"))
    editor = page.locator("[data-testid=rules-text]")
    expect(editor).to_have_value(re.compile(r'"zones"'))
    editor.fill("{not json")
    page.click("[data-testid=rules-save]")
    expect(page.locator("[data-testid=rules-errors]")).to_contain_text("JSON")
    editor.fill('{"zones": [], "lines": [], "rules": [{"type": "no_such_rule", "name": "x"}]}')
    page.click("[data-testid=rules-save]")
    errors = page.locator("[data-testid=rules-errors] li")
    expect(errors.first).to_contain_text("rules.0")
    assert console.page_errors == []


def test_admin_adds_a_user_and_sees_the_password_once(page: Page, console: Console) -> None:
    console.login(page, "admin")
    page.goto(console.url("/admin/users"))
    page.click("[data-testid=new-user]")
    user_form = page.locator("[data-testid=user-form]")
    user_form.locator("input[name=username]").fill("officer9")
    user_form.locator("input[name=display_name]").fill("王九")
    user_form.locator("select[name=scope]").select_option("school")
    user_form.locator("input[name=school_code]").fill("S12")
    user_form.locator("input[name=phone]").fill("13800000009")
    user_form.locator("button[type=submit]").click()
    shown = page.locator("[data-testid=new-password] .password")
    expect(shown).to_have_text(re.compile(r"^\S{12}$"))
    expect(page.locator("[data-testid=user-table]")).to_contain_text("officer9")
    expect(page.locator("[data-testid=user-table]")).to_contain_text("S12")
    assert console.page_errors == []


def test_spot_check_draw_inspection_finding_sign_and_verify(page: Page, console: Console) -> None:
    console.login(page, "admin")
    page.goto(console.url("/spot-checks"))
    page.click("[data-testid=spot-tabs] [data-value=quotas]")
    quota = page.locator("[data-testid=quota-form]")
    quota.locator("input[name=name]").fill("每日抽查2所")
    quota.locator("input[name=min_count]").fill("2")
    quota.locator("input[name=max_count]").fill("2")
    quota.locator("button[type=submit]").click()
    page.locator("[data-testid=quota-table] button", has_text="立即抽取").click()
    schools = page.locator("[data-testid=drawn-schools] tbody tr")
    expect(schools).to_have_count(2)
    page.locator("[data-testid=drawn-schools] button", has_text="开始督查").first.click()
    cameras = page.locator("[data-testid=inspection-cameras] .camera-card")
    expect(cameras).to_have_count(4)
    first = cameras.first
    expect(first.locator("img.thumb")).to_have_js_property("complete", True)
    finding = first.locator("form.verdict-form")
    finding.locator("input[value=abnormal]").check()
    finding.locator("textarea[name=note]").fill("监控画面被遮挡")
    finding.locator("button[type=submit]").click()
    expect(page.locator("[data-testid=inspection-cameras] .camera-card").first.locator(".finding")).to_have_count(
        1
    )
    sign = page.locator("[data-testid=sign-form]")
    sign.locator("input[name=signed_name]").fill("督查员 张三")
    sign.locator("button[type=submit]").click()
    expect(page.locator("main")).to_contain_text("已签字")
    page.click("[data-testid=verify-inspection]")
    expect(page.locator("[data-testid=verification]")).to_contain_text("校验通过")
    assert console.page_errors == []
