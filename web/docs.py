"""The API's documentation page at ``/docs``: Swagger UI served from the package, not from a CDN.

FastAPI's own ``/docs`` loads Swagger UI from a CDN and starts it with an inline script, which the console's
Content-Security-Policy refuses. Here the files come from the ``fastapi-offline`` wheel (Swagger UI 5, which
reads OpenAPI 3.1) and the page starts
Swagger UI from ``/static/docs.js``; only inline styles (which Swagger UI sets on its elements) are allowed on
this page.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"
_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title} · API</title>
  <link rel="stylesheet" href="/static/swagger/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
  <script src="/static/swagger/swagger-ui-bundle.js"></script>
  <script src="/static/docs.js"></script>
</body>
</html>
"""


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI's files under ``/static/swagger`` and the page at ``/docs`` (call before the app
    mounts ``/static``, so that the more specific mount wins)."""
    swagger_dir = Path(importlib.import_module("fastapi_offline").__file__ or "").parent / "static"
    app.mount("/static/swagger", StaticFiles(directory=swagger_dir), name="swagger")
    page = _PAGE.format(title=app.title, openapi_url=app.openapi_url or "/openapi.json")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})
