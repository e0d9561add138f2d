"""The FastAPI app factory."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware

from config.schema import Settings
from ingest.thumbnails import ThumbnailStore, create_thumbnail_store
from kernel.bus import EventBus, create_bus
from kernel.clock import utcnow
from kernel.db import make_engine, make_session_factory
from kernel.secrets import read_or_create_key_file
from patrol.errors import PatrolConflictError, PatrolError, PatrolNotFoundError, PatrolTooLargeError
from patrol.facts import FleetFacts
from web.auth import LoginRequired
from web.csrf import CSRFMiddleware
from web.docs import install_docs
from web.feed import FeedBroadcaster
from web.live import LiveManager
from web.routers import audit as audit_api
from web.routers import (
    console_ops,
    console_pages,
    events,
    hazards,
    health,
    incidents,
    inspections,
    pages,
    patrol_plans,
    registry,
    reports,
    roster,
    spot_checks,
    tours,
    walls,
)
from web.routers import feed as feed_api
from web.routers import live as live_api
from web.routers import notifications as notifications_api
from web.routers import rules as rules_api
from web.routers import users as users_api

log = logging.getLogger(__name__)
SESSION_KEY_FILE = "session.key"
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # No inline script or style anywhere (the pages' boot data is a JSON block, not a script); the feed's
    # WebSocket is same-origin (connect-src 'self').
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_HSTS = "max-age=31536000; includeSubDomains"
"""Sent with ``web.secure_cookies`` (the console is served over HTTPS)."""


def security_headers_for(settings: Settings) -> dict[str, str]:
    """The headers every response carries (API, pages, errors)."""
    headers = dict(_SECURITY_HEADERS)
    if settings.web.secure_cookies:
        headers["Strict-Transport-Security"] = _HSTS
    return headers


def session_secret(settings: Settings) -> str:
    """The cookie-signing key: configured, or a 0600 key file in the data directory."""
    if settings.web.session_secret is not None:
        return settings.web.session_secret.get_secret_value()
    path = settings.data_dir / SESSION_KEY_FILE
    return read_or_create_key_file(path, lambda: secrets.token_urlsafe(48).encode()).decode()


def create_app(
    settings: Settings,
    *,
    facts: FleetFacts,
    engine: Engine | None = None,
    session_factory: sessionmaker[Session] | None = None,
    thumbnails: ThumbnailStore | None = None,
    bus: EventBus | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> FastAPI:
    """Build the web app. An engine, thumbnail store or bus passed in is the caller's to close; ones made here
    are closed on shutdown. Without a store, thumbnails are read from Redis when the bus is Redis (distributed).
    ``facts`` tells the patrol endpoints about camera health and events; ``clock`` is for tests."""
    owns_engine = engine is None and session_factory is None
    owns_thumbnails = thumbnails is None
    owns_bus = bus is None
    app_bus = bus or create_bus(settings.bus.url.get_secret_value())
    thumbnail_store = thumbnails or create_thumbnail_store(
        settings.bus.url.get_secret_value(), settings.ingest.thumbnail_ttl_s
    )
    if session_factory is None:
        engine = engine or make_engine(settings.database_url(), echo=settings.storage.echo_sql)
        session_factory = make_session_factory(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broadcaster.start()
        yield
        await broadcaster.aclose()  # the feed's sockets close and its threads stop before the bus closes
        await live_manager.close()  # live views end (audited) while the database is still there
        if owns_bus:
            app_bus.close()
        if owns_thumbnails:
            thumbnail_store.close()
        if owns_engine and engine is not None:
            engine.dispose()

    app = FastAPI(
        title="campuswatch",
        summary="Campus video-patrol platform: fleet registry, patrol, events and duty console API",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # web.docs serves /docs without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.thumbnails = thumbnail_store
    app.state.bus = app_bus
    app.state.facts = facts
    app.state.clock = clock
    app.state.feed = broadcaster = FeedBroadcaster(app_bus, session_factory)
    app.state.live = live_manager = LiveManager(settings.live, session_factory, clock=clock)
    # CSRF first: the middleware added last runs first, and CSRF needs the session already decoded.
    app.add_middleware(CSRFMiddleware, secure_cookie=settings.web.secure_cookies)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie="cw_session",
        same_site="lax",
        https_only=settings.web.secure_cookies,
        max_age=settings.web.session_max_age_s,
    )

    headers = security_headers_for(settings)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        # Runs outside every middleware (Starlette's last resort): the headers are added here, and the
        # exception's text stays in the log (redacted by the logging setup), never in the answer.
        log.error("%s %s: unhandled %s", request.method, request.url.path, type(exc).__name__)
        return JSONResponse({"detail": "internal server error"}, status_code=500, headers=headers)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def out_of_range(request: Request, exc: Exception) -> Response:
        # A number past the database's integer range (an id of 40 digits) or a value the database cannot
        # store (PostgreSQL: a NUL character in text): bad input, not a server fault; no statement echoed.
        log.info("%s %s: value refused by the database: %s", request.method, request.url.path, type(exc).__name__)
        return JSONResponse(
            {"detail": "a value of the request is out of range or cannot be stored (ids are 1..2147483647)"},
            status_code=422,
        )

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(PatrolError)
    async def patrol_error(request: Request, exc: PatrolError) -> Response:
        code = 422
        if isinstance(exc, PatrolNotFoundError):
            code = 404
        elif isinstance(exc, PatrolConflictError):
            code = 409
        elif isinstance(exc, PatrolTooLargeError):
            code = 413
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        # FastAPI's 422 echoes each rejected value ("input": the whole body for a missing field), and with it a
        # camera or user password: the answer names the field and the problem only.
        errors = [{k: v for k, v in e.items() if k not in ("input", "ctx", "url")} for e in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)

    @app.exception_handler(IntegrityError)
    async def integrity_error(request: Request, exc: IntegrityError) -> Response:
        # A unique key taken between the check and the insert (two requests at once): the request's
        # transaction is rolled back; the statement and its parameters stay out of the answer.
        log.warning("%s %s: integrity error: %s", request.method, request.url.path, exc.orig)
        detail = "the change conflicts with a record stored at the same moment (a name or key in use): try again"
        return JSONResponse({"detail": detail}, status_code=409)

    @app.get("/healthz", tags=["health"], summary="Liveness and database check")
    def healthz() -> dict[str, str]:
        with session_factory() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok"}

    app.include_router(registry.router)
    app.include_router(rules_api.router)
    app.include_router(users_api.router)
    app.include_router(health.router)
    app.include_router(events.router)
    app.include_router(feed_api.router)
    app.include_router(live_api.router)
    app.include_router(audit_api.router)
    app.include_router(notifications_api.router)
    for patrol_router in (
        walls,
        tours,
        patrol_plans,
        spot_checks,
        inspections,
        hazards,
        roster,
        incidents,
        reports,
    ):
        app.include_router(patrol_router.router)
    app.include_router(console_ops.router)
    app.include_router(console_pages.router)
    app.include_router(pages.router)
    install_docs(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).resolve().parent / "static"), name="static")
    return app
