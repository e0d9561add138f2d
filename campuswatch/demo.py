"""``campuswatch demo``: a generated bureau whose cameras are served over real RTSP, and the console on top.

Every start restores the demo bureau (districts, schools and cameras from :func:`registry.generate.generate_fleet`
with the configured seed) and points each camera at the simulator; an administrator account is created once and
its password kept in ``<data_dir>/admin-password.txt`` (mode 0600).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

import config
from analytics.errors import AnalyticsError
from campuswatch.analytics_service import build_analytics
from campuswatch.database import upgrade
from campuswatch.demo_duty import saved_passwords, seed_demo_duty
from campuswatch.demo_patrol import seed_demo_patrol
from campuswatch.demo_rules import scripted_camera, with_demo_rules
from campuswatch.demo_script import DemoPhone, ScriptedIntrusion
from campuswatch.patrol_facts import StoredFleetFacts
from campuswatch.serving import run_web
from config import Settings
from ingest.errors import SimulatorError
from ingest.membership import LocalMembership
from ingest.simulator import (
    CameraSimulator,
    CameraSpec,
    ClipSettings,
    demo_camera_specs,
    fleet_specs,
    load_schedule_file,
)
from ingest.thumbnails import MemoryThumbnailStore
from ingest.worker import FrameService, IngestWorker
from kernel.bus import InMemoryBus
from kernel.clock import utcnow
from kernel.db import make_engine, make_session_factory, session_scope
from kernel.errors import KernelError
from kernel.secrets import SecretBox
from patrol.errors import PatrolError
from patrol.service import PatrolService
from registry.errors import RegistryError
from registry.fleet_file import FleetRow
from registry.fleet_io import ImportResult, import_rows
from registry.generate import generate_fleet
from web.app import create_app
from web.auth import create_user, generate_password
from web.models import Role, User

log = logging.getLogger(__name__)

DEMO_CONFIG = Path(config.__file__).with_name("demo.yaml")
ADMIN_USERNAME = "admin"
ADMIN_PASSWORD_FILE = "admin-password.txt"  # noqa: S105 - a file name, not a password


class DemoError(KernelError):
    """The demo could not start."""


@dataclass(frozen=True)
class DemoBureau:
    """What the demo set up: the fleet import's result and the administrator's login."""

    fleet: ImportResult
    cameras: int
    admin_password: str | None
    duty_passwords: dict[str, str]


def demo_rows(settings: Settings, camera_url: Callable[[str], str]) -> list[dict[str, str]]:
    """The demo bureau's fleet rows, each camera's main stream at ``camera_url(code)``, without credentials."""
    demo = settings.demo
    rows = generate_fleet(
        demo.districts, demo.districts * demo.schools_per_district, demo.cameras_per_school, demo.seed
    )
    for row in rows:
        row.update(main_url=camera_url(row["camera_code"]), sub_url="", username="", password="")
    return rows


def seed_demo(session: Session, settings: Settings, camera_url: Callable[[str], str]) -> DemoBureau:
    """Restore the demo bureau and make sure the administrator exists (the caller commits)."""
    rows = demo_rows(settings, camera_url)
    try:
        fleet_rows = [FleetRow(n, row) for n, row in enumerate(rows, start=2)]
        result = import_rows(session, fleet_rows, SecretBox.for_data_dir(settings.data_dir), source="demo bureau")
    except RegistryError as err:
        raise DemoError(f"cannot create the demo bureau: {err}") from err
    seed_demo_patrol(session)
    admin_password = _ensure_admin(session, settings.data_dir)
    try:
        seed_demo_duty(session, settings.data_dir, ZoneInfo(settings.instance.timezone), utcnow())
    except PatrolError as err:
        raise DemoError(f"cannot set up the demo's duty roster: {err}") from err
    return DemoBureau(result, len(rows), admin_password, saved_passwords(settings.data_dir))


def _ensure_admin(session: Session, data_dir: Path) -> str | None:
    """Create ``admin`` with a generated password saved in the data dir; the saved password on later runs."""
    password_file = data_dir / ADMIN_PASSWORD_FILE
    if session.scalar(select(User.id).where(User.username == ADMIN_USERNAME)) is not None:
        return password_file.read_text(encoding="utf-8").strip() if password_file.exists() else None
    password = generate_password()
    create_user(session, ADMIN_USERNAME, password, Role.ADMINISTRATOR, "演示管理员 Demo administrator")
    fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(password + "\n")
    return password


def _camera_specs(settings: Settings, codes: list[str]) -> list[CameraSpec]:
    sim = settings.simulator
    try:
        schedule = load_schedule_file(sim.schedule_file) if sim.schedule_file else None
        return fleet_specs(codes, schedule) if schedule else demo_camera_specs(codes, seed=settings.demo.seed)
    except (SimulatorError, ValueError) as err:
        raise DemoError(f"cannot read the simulator's schedule: {err}") from err


def _simulator(settings: Settings, specs: list[CameraSpec], rtsp_port: int | None) -> CameraSimulator:
    sim = settings.simulator
    try:
        return CameraSimulator(
            specs,
            cache_dir=settings.data_dir / "sim-clips",
            port=sim.port if rtsp_port is None else rtsp_port,
            host=sim.host,
            clip_settings=ClipSettings(gops=sim.clip_gops),
        )
    except (SimulatorError, ValueError) as err:
        raise DemoError(f"cannot set up the camera simulator: {err}") from err


def run_demo(settings: Settings, *, web_port: int | None = None, rtsp_port: int | None = None) -> None:
    """Seed the demo bureau, start the simulator and serve the console until Ctrl-C or SIGTERM."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    codes = [row["camera_code"] for row in demo_rows(settings, lambda code: code)]
    specs = _camera_specs(settings, codes)
    scripted = scripted_camera(specs) if settings.demo.intrusion_every_s > 0 else None
    settings = with_demo_rules(settings, specs, scripted)
    intrusion: ScriptedIntrusion | None = None
    try:
        phone = DemoPhone(settings.demo.webhook_port)
    except OSError as err:
        raise DemoError(
            f"the demo's webhook receiver cannot listen on port {settings.demo.webhook_port}: {err}"
        ) from err
    settings = phone.with_channel(settings)
    simulator: CameraSimulator | None = None
    worker: IngestWorker | None = None
    pipeline: FrameService | None = None
    patrol: PatrolService | None = None
    bus = InMemoryBus()
    thumbnails = MemoryThumbnailStore()
    engine = make_engine(settings.database_url())
    try:
        upgrade(engine)
        if settings.simulator.enabled:
            simulator = _simulator(settings, specs, rtsp_port)
            click.echo("starting the camera simulator (the first start renders the scene clips, ~10 s) …")
            try:
                simulator.start()
            except SimulatorError as err:
                raise DemoError(f"the camera simulator could not start: {err}") from err
            camera_url: Callable[[str], str] = simulator.url
        else:
            port = settings.simulator.port if rtsp_port is None else rtsp_port
            camera_url = f"rtsp://{settings.simulator.host}:{port}/{{}}".format
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            bureau = seed_demo(session, settings, camera_url)
        membership = LocalMembership(
            heartbeat_s=settings.ingest.heartbeat_s, ttl_s=settings.ingest.heartbeat_ttl_s
        )
        try:
            pipeline = build_analytics(settings, factory, bus, "demo")
        except AnalyticsError as err:
            raise DemoError(str(err)) from err
        if pipeline is not None:
            pipeline.start()
        worker = IngestWorker(
            settings,
            factory,
            bus,
            thumbnails,
            membership,
            frames=pipeline,
            analyze_check_s=settings.analytics.analyze_check_s,
        )
        worker.start()
        if simulator is not None and scripted is not None and pipeline is not None:
            intrusion = ScriptedIntrusion(
                simulator,
                scripted,
                bus,
                every_s=settings.demo.intrusion_every_s,
                first_s=settings.demo.intrusion_first_s,
                clip_s=settings.simulator.clip_gops * 2.0,
            )
            intrusion.start()
            phone.intrusion = intrusion
        facts = StoredFleetFacts()
        phone.receiver.start()
        if settings.patrol.enabled:
            patrol = PatrolService(settings, factory, bus, facts, name="demo")
            patrol.start()
        port = settings.web.port if web_port is None else web_port
        _banner(settings, bureau, simulator, port, codes, phone.receiver.url if settings.notify.enabled else "")
        app = create_app(settings, session_factory=factory, thumbnails=thumbnails, bus=bus, facts=facts)
        run_web(app, settings.web.host, port)
    finally:
        # Reverse start order (the web server has returned): patrol, intrusion, worker, analytics, simulator,
        # database.
        if patrol is not None:
            patrol.stop(timeout_s=3.0)
        phone.receiver.stop(timeout_s=3.0)
        if intrusion is not None:
            intrusion.stop(timeout_s=3.0)
        if worker is not None:
            worker.stop(timeout_s=3.0)
        if pipeline is not None:
            pipeline.stop(timeout_s=3.0)
        if simulator is not None:
            simulator.stop(timeout_s=4.0)
        bus.close()
        engine.dispose()
        log.info("demo stopped")


def _banner(
    settings: Settings,
    bureau: DemoBureau,
    simulator: CameraSimulator | None,
    port: int,
    codes: list[str],
    phone_url: str,
) -> None:
    demo = settings.demo
    lines = [
        "",
        f"campuswatch demo — {settings.instance.name}",
        f"  bureau:   {demo.districts} districts, {demo.districts * demo.schools_per_district} schools, "
        f"{bureau.cameras} cameras",
        f"  registry: cameras {bureau.fleet.cameras}",
    ]
    if simulator is not None:
        lines.append(f"  cameras:  {simulator.url(codes[0])} … (real RTSP, H.264)")
    lines.append(f"  console:  http://{settings.web.host}:{port}/")
    if phone_url:
        lines.append(f"  phone:    {phone_url} (webhook receiver: every duty-phone message is logged)")
    if bureau.admin_password is not None:
        lines.append(f"  login:    {ADMIN_USERNAME} / {bureau.admin_password}")
    else:
        lines.append(
            f"  login:    {ADMIN_USERNAME} (password file gone: campuswatch user set-password {ADMIN_USERNAME} "
            f"--data-dir {settings.data_dir})"
        )
    for username, password in bureau.duty_passwords.items():
        lines.append(f"  duty:     {username} / {password}")
    lines += [f"  data:     {settings.data_dir.resolve()}", "  stop:     Ctrl-C", ""]
    click.echo("\n".join(lines))
