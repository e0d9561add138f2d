"""The console in a real browser: Debian's Chromium driven by Playwright against the whole system in one process.

Each test gets a fresh stack over the small bureau (:mod:`tests.bureau`, SQLite): the app served by uvicorn in a
thread, the real patrol service ticking the wall (a 1+5 wall touring every camera, 5 s a page), the analytics
event recorder publishing ``event.started`` on the bus the app and the patrol service share, thumbnails (real
JPEGs) in a memory store, and every camera pointed at the RTSP simulator for the live view. Waits are bounded
conditions (Playwright's auto-waiting, ``wait_for_function``), never fixed sleeps.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, ViewportSize, sync_playwright
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from analytics.events import EventRecorder, evidence_jpeg
from analytics.rules import RuleEvent
from analytics.tables import SafetyEvent
from campuswatch.patrol_facts import StoredFleetFacts
from config import Settings, load_settings
from ingest.simulator import CameraSchedule, CameraSimulator, ClipLibrary, SceneKind, build_camera_specs
from ingest.thumbnails import MemoryThumbnailStore, Thumbnail
from kernel.bus import InMemoryBus
from kernel.db import make_engine, session_scope
from patrol.models import Takeover
from patrol.service import PatrolService
from patrol.tables import Tour, VideoWall
from registry.models import Camera
from tests.bureau import CAMERA_KINDS, PASSWORD, Bureau
from tests.servers import free_port
from web.app import create_app

log = logging.getLogger(__name__)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-quic",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
CAMERA_CODES = tuple(f"S{d}{s}-{kind}" for d in (1, 2) for s in (1, 2, 3) for kind, *_ in CAMERA_KINDS)
DWELL_S = 5  # the shortest dwell a tour may have
WALL_LAYOUT = "1+5"
# The README's pictures are refreshed only when asked (CAMPUSWATCH_SCREENSHOTS=docs/screenshots): a test run
# must not change tracked files. Otherwise they go to a scratch folder, still taken (the page must render).
SCREENSHOTS = Path(os.environ.get("CAMPUSWATCH_SCREENSHOTS", "") or tempfile.mkdtemp(prefix="cw-screenshots-"))
VIEWPORT: ViewportSize = {"width": 1600, "height": 900}


@pytest.fixture
def empty_engine(tmp_path: Path) -> Iterator[Engine]:
    """SQLite only: the browser suite tests the console, not the database (the API tests run on both)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'cw.db'}")
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A quick patrol tick (alarms reach the wall within 0.2 s); the scheduler's jobs once at the start."""
    return load_settings(
        None, data_dir=tmp_path / "data", patrol={"tick_s": 0.2, "schedule_every_s": 600, "fleet_refresh_s": 60}
    )


@pytest.fixture(scope="module")
def simulator(sim_clips: ClipLibrary, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CameraSimulator]:
    """Every camera of the bureau as a simulated RTSP camera (a stream runs only while somebody watches)."""
    schedules = {code: CameraSchedule.showing(SceneKind.PEOPLE_WALKING) for code in CAMERA_CODES}
    sim = CameraSimulator(
        build_camera_specs(list(schedules), schedules),
        cache_dir=tmp_path_factory.mktemp("unused"),
        port=0,
        clips=sim_clips,
    )
    sim.start()
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless; each test opens a fresh context (its own cookies and storage)."""
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


def frame(code: str, shade: int) -> np.ndarray:
    """A 320x180 picture of a camera: a colour of its own, its code written on it."""
    picture = np.zeros((180, 320, 3), np.uint8)
    picture[:] = ((37 * shade) % 200 + 30, (91 * shade) % 200 + 30, (53 * shade) % 200 + 30)
    cv2.rectangle(picture, (20, 100), (300, 160), (40, 40, 40), -1)
    cv2.putText(picture, code, (30, 140), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (255, 255, 255), 2, cv2.LINE_AA)
    return picture


def jpeg(image: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return bytes(buffer)


@dataclass
class Console:
    """The running system under test, and what a test does to it."""

    base_url: str
    factory: sessionmaker[Session]
    bus: InMemoryBus
    patrol: PatrolService
    recorder: EventRecorder
    wall_id: int
    tour_id: int
    thumbnails: MemoryThumbnailStore
    page_errors: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def incident(
        self, camera_code: str, *, event_type: str = "line_crossing", severity: str = "major", rule: str = "wall"
    ) -> float:
        """Script an incident as analytics raises one: the recorder stores the event with its evidence picture
        and publishes ``event.started`` on the bus. Returns ``time.time()`` just before (the latency's start)."""
        now = datetime.now(UTC)
        event = RuleEvent(
            "started",
            camera_code,
            f"{rule}-{camera_code}",
            event_type,
            severity,
            "perimeter",
            now - timedelta(seconds=1),
            now,
            (7,),
            0.91,
            ((0.4, 0.3, 0.6, 0.9),),
            "1 crossing perimeter",
            line=((0.1, 0.5), (0.9, 0.5)),
        )
        picture = evidence_jpeg(frame(camera_code, 3), event)
        started = time.time()
        self.recorder.record(event, picture)
        return started

    def stored_events(self) -> int:
        with self.factory() as session:
            return session.scalar(select(func.count(SafetyEvent.id))) or 0

    def wait_stored(self, count: int, timeout_s: float = 5.0) -> None:
        wait_until(lambda: self.stored_events() >= count, timeout_s, f"{count} events stored")

    def login(self, page: Page, username: str) -> None:
        """Log in through the form, as a person does."""
        page.goto(self.url("/login"))
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(lambda url: not url.endswith("/login"))


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"not within {timeout_s} s: {what}")


def _prepare(bureau: Bureau, simulator: CameraSimulator) -> tuple[int, int]:
    """Every camera streams from the simulator; one wall tours the whole bureau."""
    with session_scope(bureau.factory) as session:
        for code in CAMERA_CODES:
            session.execute(update(Camera).where(Camera.code == code).values(main_url=simulator.url(code)))
        tour = Tour(name="全市轮巡 Bureau tour", selector={}, dwell_s=DWELL_S, layout=WALL_LAYOUT)
        session.add(tour)
        session.flush()
        wall = VideoWall(
            name="值班大屏 Duty-room wall",
            layout=WALL_LAYOUT,
            screens=1,
            takeover=Takeover.TILE,
            districts=[],
            schools=[],
            pinned={},
            tour_id=tour.id,
        )
        session.add(wall)
        session.flush()
        return wall.id, tour.id


@pytest.fixture
def console(
    settings: Settings, migrated_engine: Engine, bureau: Bureau, simulator: CameraSimulator
) -> Iterator[Console]:
    """The whole system for one test (see the module docstring); stopped in reverse order afterwards."""
    wall_id, tour_id = _prepare(bureau, simulator)
    thumbnails = MemoryThumbnailStore()
    for n, code in enumerate(CAMERA_CODES):
        thumbnails.put(code, Thumbnail(jpeg(frame(code, n)), datetime.now(UTC)))
    with InMemoryBus() as bus:
        facts = StoredFleetFacts()
        app = create_app(settings, engine=migrated_engine, facts=facts, bus=bus, thumbnails=thumbnails)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, name="uvicorn-console")
        thread.start()
        wait_until(lambda: server.started or not thread.is_alive(), 15, "uvicorn up")
        assert server.started, "uvicorn did not start"
        patrol = PatrolService(settings, bureau.factory, bus, facts, name="patrol-browser")
        patrol.start()
        recorder = EventRecorder(bureau.factory, bus, source="analytics-browser", flush_s=0.05)
        recorder.start()
        try:
            yield Console(
                f"http://127.0.0.1:{port}", bureau.factory, bus, patrol, recorder, wall_id, tour_id, thumbnails
            )
        finally:
            recorder.stop()
            patrol.stop()
            server.should_exit = True
            thread.join(20)
            assert not thread.is_alive(), "uvicorn did not stop"


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (cookies, local storage) in Chinese, the console's default language."""
    ctx = browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, console: Console) -> Iterator[Page]:
    """A tab whose script errors are collected in ``console.page_errors`` (a test asserts there are none)."""
    tab = context.new_page()
    tab.on("pageerror", lambda err: console.page_errors.append(str(err)))
    tab.on("console", lambda msg: log.info("browser %s: %s", msg.type, msg.text))
    yield tab
    tab.close()


def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot (``<name>.png`` in :data:`SCREENSHOTS`), for the README when asked."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled")
    return path
