"""``campuswatch ingest``: read this host's share of the camera fleet in one or more worker processes.

Each process is one worker with its own database engine (created after the process starts), bus client and
heartbeat; in distributed mode (a ``redis://`` bus) workers on every host share the fleet by rendezvous hashing.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from campuswatch.cli_support import cli_settings, config_option, data_dir_option
from config import Settings, load_settings
from ingest.errors import IngestError
from ingest.membership import LocalMembership, Membership, RedisMembership, new_worker_id
from ingest.thumbnails import create_thumbnail_store
from ingest.worker import FrameService, FrameServiceFactory, IngestWorker
from kernel.bus import create_bus
from kernel.db import make_engine, make_session_factory
from kernel.errors import KernelError
from kernel.logs import configure_logging

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 15.0


def is_distributed(settings: Settings) -> bool:
    """Whether workers coordinate through Redis (the bus URL is a Redis URL)."""
    return settings.bus.url.get_secret_value().startswith(("redis://", "rediss://", "unix://"))


def make_membership(settings: Settings, worker_id: str) -> Membership:
    """Redis membership for a Redis bus, else this worker alone."""
    if is_distributed(settings):
        return RedisMembership(
            settings.bus.url.get_secret_value(),
            worker_id,
            heartbeat_s=settings.ingest.heartbeat_s,
            ttl_s=settings.ingest.heartbeat_ttl_s,
        )
    return LocalMembership(
        worker_id, heartbeat_s=settings.ingest.heartbeat_s, ttl_s=settings.ingest.heartbeat_ttl_s
    )


def run_worker(
    settings: Settings,
    stop: threading.Event,
    worker_id: str | None = None,
    frames_factory: FrameServiceFactory | None = None,
) -> None:
    """Run one worker (and its frame service, e.g. analytics) in this process until ``stop`` is set."""
    worker_id = worker_id or new_worker_id()
    engine = make_engine(settings.database_url())
    bus = create_bus(settings.bus.url.get_secret_value())
    thumbnails = create_thumbnail_store(settings.bus.url.get_secret_value(), settings.ingest.thumbnail_ttl_s)
    membership = make_membership(settings, worker_id)
    frames: FrameService | None = None
    try:
        factory = make_session_factory(engine)
        frames = frames_factory(settings, factory, bus, worker_id) if frames_factory is not None else None
        if frames is not None:
            frames.start()
        worker = IngestWorker(
            settings,
            factory,
            bus,
            thumbnails,
            membership,
            frames=frames,
            analyze_check_s=settings.analytics.analyze_check_s,
        )
        worker.start()
        log.info("ingest worker %s started%s", worker_id, " with analytics" if frames is not None else "")
        try:
            stop.wait()
        finally:
            worker.stop(timeout_s=STOP_TIMEOUT_S)
    finally:
        if frames is not None:
            frames.stop(timeout_s=STOP_TIMEOUT_S)
        membership.close()
        thumbnails.close()
        bus.close()
        engine.dispose()


def _child(
    config_file: Path | None, data_dir: Path | None, index: int, frames_factory: FrameServiceFactory | None
) -> None:
    """Entry point of a worker process (spawned: nothing inherited but the arguments)."""
    overrides = {} if data_dir is None else {"data_dir": data_dir}
    settings = load_settings(config_file, **overrides)
    configure_logging(settings.logging.level, json_lines=settings.logging.json_lines)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda _s, _f: stop.set())
    run_worker(settings, stop, f"{new_worker_id()}-{index}", frames_factory)


def make_ingest_command(frames_factory: FrameServiceFactory | None = None) -> click.Command:
    """The ``campuswatch ingest`` command; ``frames_factory`` adds a frame service (analytics) to every worker."""

    @click.command("ingest")
    @config_option
    @data_dir_option
    @click.option(
        "--processes",
        type=click.IntRange(1, 64),
        default=1,
        show_default=True,
        help="Worker processes on this host (more than one needs a redis:// bus).",
    )
    def ingest_command(config_file: Path | None, data_dir: Path | None, processes: int) -> None:
        """Read, diagnose and thumbnail this host's share of the camera fleet until Ctrl-C or SIGTERM."""
        settings = cli_settings(config_file, data_dir)
        if processes > 1 and not is_distributed(settings):
            raise click.ClickException(
                "several worker processes share the fleet through Redis: set bus.url to redis://"
            )
        stop = threading.Event()

        def handler(_signum: int, _frame: FrameType | None) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if processes == 1:
                run_worker(settings, stop, frames_factory=frames_factory)
            else:
                _run_processes(config_file, data_dir, processes, stop, frames_factory)
        except (IngestError, KernelError) as err:
            raise click.ClickException(str(err)) from err
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    return ingest_command


def _run_processes(
    config_file: Path | None,
    data_dir: Path | None,
    processes: int,
    stop: threading.Event,
    frames_factory: FrameServiceFactory | None,
) -> None:
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_child, args=(config_file, data_dir, i, frames_factory), name=f"ingest-{i}")
        for i in range(processes)
    ]
    for child in children:
        child.start()
    click.echo(f"{processes} ingest worker processes started (pids {', '.join(str(c.pid) for c in children)})")
    while not stop.wait(1.0):
        dead = [c for c in children if not c.is_alive()]
        for child in dead:
            # A worker that died is restarted; the others have taken its cameras meanwhile.
            log.error("ingest worker %s exited with %s; restarting it", child.name, child.exitcode)
            index = children.index(child)
            children[index] = context.Process(
                target=_child, args=(config_file, data_dir, index, frames_factory), name=child.name
            )
            children[index].start()
    for child in reversed(children):
        child.terminate()  # SIGTERM: the child stops its worker cleanly
    for child in reversed(children):
        child.join(STOP_TIMEOUT_S + 5)
        if child.is_alive():
            log.error("ingest worker %s did not stop; killing it", child.name)
            child.kill()
            child.join(5)
