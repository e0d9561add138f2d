"""The ``campuswatch`` command line."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from analytics.cli import models_group
from campuswatch.analytics_service import analytics_for_worker
from campuswatch.cli_support import cli_settings, config_option, data_dir_option
from config import ConfigError, Settings, load_settings
from ingest.cli import make_ingest_command
from ingest.simulator.cli import simulate_command
from kernel.errors import KernelError
from patrol.notify.cli import notify_group
from registry.cli import fleet_group
from web.cli import user_group

log = logging.getLogger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="campuswatch")
def main() -> None:
    """campuswatch: campus video patrol for an education bureau's duty room."""


@main.command("check-config")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
def check_config(file: Path) -> None:
    """Validate a configuration FILE; exit non-zero and name each error's line and field."""
    try:
        settings = load_settings(file)
    except ConfigError as err:
        click.echo(str(err), err=True)
        sys.exit(1)
    click.echo(f"{file}: OK (data_dir={settings.data_dir}, bus={_scheme(settings)})")


def _scheme(settings: Settings) -> str:
    return settings.bus.url.get_secret_value().split(":", 1)[0]


@main.command("migrate")
@config_option
@data_dir_option
def migrate(config_file: Path | None, data_dir: Path | None) -> None:
    """Create or upgrade the database schema to the newest migration."""
    from campuswatch.database import upgrade
    from kernel.db import make_engine

    settings = cli_settings(config_file, data_dir)
    engine = make_engine(settings.database_url())
    try:
        upgrade(engine)
    except KernelError as err:
        raise click.ClickException(str(err)) from err
    finally:
        engine.dispose()


@main.command("serve")
@config_option
@data_dir_option
@click.option("--host", default=None, help="Address to listen on (default from config).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default from config).")
def serve(config_file: Path | None, data_dir: Path | None, host: str | None, port: int | None) -> None:
    """Serve the web console and API."""
    from campuswatch.database import upgrade
    from campuswatch.patrol_facts import StoredFleetFacts
    from campuswatch.serving import run_web
    from kernel.db import make_engine
    from web.app import create_app

    settings = cli_settings(config_file, data_dir)
    engine = make_engine(settings.database_url())
    with _sigterm_interrupts():
        try:
            upgrade(engine)
            app = create_app(settings, engine=engine, facts=StoredFleetFacts())
            run_web(app, host or settings.web.host, port or settings.web.port)
        except KernelError as err:
            raise click.ClickException(str(err)) from err
        except KeyboardInterrupt:
            click.echo("interrupted during start-up", err=True)
        finally:
            engine.dispose()


@main.command("demo")
@config_option
@data_dir_option
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Web port (default 8000).")
@click.option(
    "--rtsp-port", type=click.IntRange(0, 65535), default=None, help="Simulator RTSP port (default 8554)."
)
def demo(config_file: Path | None, data_dir: Path | None, port: int | None, rtsp_port: int | None) -> None:
    """Run the embedded demo: a simulated bureau over real RTSP, and the console on http://127.0.0.1:8000."""
    from campuswatch.demo import DEMO_CONFIG, run_demo

    settings = cli_settings(config_file or DEMO_CONFIG, data_dir)
    with _sigterm_interrupts():
        try:
            run_demo(settings, web_port=port, rtsp_port=rtsp_port)
        except KernelError as err:
            raise click.ClickException(str(err)) from err
        except KeyboardInterrupt:
            click.echo("interrupted during start-up", err=True)


@main.command("patrol")
@config_option
@data_dir_option
def patrol(config_file: Path | None, data_dir: Path | None) -> None:
    """Run the patrol service: walls and tours, alarms on the walls, plan tasks, clocks, daily reports.

    Run one per deployment (it is the only writer of the walls' state); the demo runs it in-process.
    """
    from campuswatch.database import upgrade
    from campuswatch.patrol_facts import StoredFleetFacts
    from kernel.bus import create_bus
    from kernel.db import make_engine, make_session_factory
    from patrol.service import PatrolService

    settings = cli_settings(config_file, data_dir)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda _s, _f: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    engine = make_engine(settings.database_url())
    bus = create_bus(settings.bus.url.get_secret_value())
    try:
        upgrade(engine)
        service = PatrolService(settings, make_session_factory(engine), bus, StoredFleetFacts())
        service.start()
        try:
            stop.wait()
        finally:
            service.stop()
    except KernelError as err:
        raise click.ClickException(str(err)) from err
    finally:
        bus.close()
        engine.dispose()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Make SIGTERM raise KeyboardInterrupt like Ctrl-C, so start-up work is unwound by ``finally`` blocks."""
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


main.add_command(fleet_group, "fleet")
main.add_command(simulate_command, "simulate")
main.add_command(user_group, "user")
main.add_command(make_ingest_command(analytics_for_worker), "ingest")
main.add_command(models_group, "models")
main.add_command(notify_group, "notify")


if __name__ == "__main__":
    main()
