"""``/docs``: the OpenAPI documentation page, served from the package with a strict CSP."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from web.docs import DOCS_CSP


def test_docs_page_uses_local_swagger_files_and_no_inline_script(api: TestClient) -> None:
    page = api.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == DOCS_CSP and "script-src" not in DOCS_CSP
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/static/") for s in sources), sources
    assert re.search(r"<script>[^<]", page.text) is None, "an inline script would need 'unsafe-inline'"
    for source in sources:
        assert api.get(source).status_code == 200, source
    assert api.get("/openapi.json").json()["info"]["title"] == "campuswatch"
    assert api.get("/redoc").status_code == 404
