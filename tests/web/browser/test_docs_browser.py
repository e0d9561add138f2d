"""The API documentation in Chromium: Swagger UI from the package renders under the strict CSP."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.web.browser.conftest import Console

pytestmark = pytest.mark.rtsp


def test_swagger_ui_renders_the_api_without_a_cdn(console: Console, page: Page) -> None:
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(console.url("/")) else None)
    page.goto(console.url("/docs"))
    expect(page.locator(".opblock-tag-section").first).to_be_visible(timeout=20_000)
    expect(page.get_by_text("/api/events/{event_id}/acknowledge").first).to_be_attached()
    assert outside == [], f"the page asked other hosts: {outside}"
    assert console.page_errors == []
