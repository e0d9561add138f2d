"""``campuswatch simulate``: run the RTSP camera simulator in the foreground and report its CPU cost per stream."""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

import click

from ingest.errors import SimulatorError
from ingest.simulator.clips import ClipSettings
from ingest.simulator.schedule import (
    CODE_PATTERN,
    CameraSpec,
    FleetSchedule,
    build_camera_specs,
    camera_codes,
    load_schedule_file,
)
from ingest.simulator.server import CameraSimulator
from ingest.simulator.stats import CpuMeter, CpuSample
from kernel import paths

log = logging.getLogger(__name__)

URLS_SHOWN = 5


def fleet_specs(codes: Sequence[str], fleet: FleetSchedule | None = None) -> list[CameraSpec]:
    """Specs for ``codes`` plus any extra cameras named in ``fleet``, each with its schedule from ``fleet``."""
    fleet = fleet or FleetSchedule()
    all_codes = list(dict.fromkeys([*codes, *fleet.cameras]))
    return build_camera_specs(all_codes, {code: fleet.schedule_for(code) for code in all_codes})


def format_sample(sample: CpuSample) -> str:
    """One report line: watched streams, connections and CPU per stream."""
    per_stream = sample.cores_per_stream
    per = f"{per_stream:.4f} core/stream" if per_stream is not None else "no stream watched"
    return (
        f"{sample.streams} stream(s) watched, {sample.clients} connection(s), "
        f"CPU {sample.cpu_cores:.3f} core(s) over {sample.interval_s:.0f} s: {per}"
    )


def serve_until_stopped(
    simulator: CameraSimulator,
    stop: threading.Event,
    *,
    report_every_s: float,
    run_for_s: float | None = None,
    report: Callable[[str], None] = click.echo,
) -> None:
    """Report CPU per stream every ``report_every_s`` until ``stop`` is set or ``run_for_s`` has passed."""
    meter = CpuMeter(simulator.stats)
    waited = 0.0
    while True:
        step = report_every_s if run_for_s is None else min(report_every_s, max(0.0, run_for_s - waited))
        if stop.wait(step):
            return
        waited += step
        report(format_sample(meter.sample()))
        if run_for_s is not None and waited >= run_for_s:
            return


def _validate_prefix(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not re.fullmatch(CODE_PATTERN, value + "00001"):
        raise click.BadParameter("letters, digits, '_', '.' or '-', starting with a letter or digit")
    return value


@click.command("simulate")
@click.option(
    "--cameras",
    "camera_count",
    type=click.IntRange(0, 100_000),
    default=10,
    show_default=True,
    help="Number of generated cameras (codes PREFIX00001 …)",
)
@click.option("--port", type=click.IntRange(0, 65535), default=8554, show_default=True, help="RTSP port (0: any)")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on")
@click.option(
    "--schedule",
    "schedule_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML file of per-camera schedules (default + cameras: {CODE: schedule})",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory; scene clips are cached in DATA_DIR/sim-clips",
)
@click.option("--prefix", default="CAM", show_default=True, callback=_validate_prefix, help="Code prefix")
@click.option(
    "--report-every",
    "report_every_s",
    type=click.FloatRange(0.5, 3600),
    default=10.0,
    show_default=True,
    help="Seconds between CPU-per-stream reports",
)
@click.option(
    "--clip-gops",
    type=click.IntRange(1, 60),
    default=6,
    show_default=True,
    help="Scene clip length in 2-s GOPs (clips are rendered once and cached)",
)
@click.option(
    "--run-for",
    "run_for_s",
    type=click.FloatRange(0, None),
    default=None,
    help="Stop after this many seconds (default: until Ctrl-C or SIGTERM)",
)
def simulate_command(
    camera_count: int,
    port: int,
    host: str,
    schedule_file: Path | None,
    data_dir: Path | None,
    prefix: str,
    report_every_s: float,
    clip_gops: int,
    run_for_s: float | None,
) -> None:
    """Serve simulated school cameras over RTSP until interrupted."""
    try:
        fleet = load_schedule_file(schedule_file) if schedule_file else None
        specs = fleet_specs(camera_codes(camera_count, prefix), fleet)
    except (SimulatorError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    if not specs:
        raise click.ClickException("no cameras: give --cameras N or a --schedule file that lists cameras")
    cache = paths.data_dir(data_dir) / "sim-clips"
    simulator = CameraSimulator(
        specs, cache_dir=cache, port=port, host=host, clip_settings=ClipSettings(gops=clip_gops)
    )
    stop = threading.Event()
    restore = _install_signal_handlers(stop)
    try:
        try:
            simulator.start()
        except SimulatorError as err:
            raise click.ClickException(str(err)) from err
        clips = simulator.clips
        click.echo(
            f"scene clips {'loaded from cache' if clips.from_cache else 'generated'} in {clips.generation_s:.1f} s"
        )
        click.echo(f"serving {len(specs)} camera(s) on rtsp://{host}:{simulator.port}/<code>, e.g.:")
        for spec in specs[:URLS_SHOWN]:
            click.echo(f"  {simulator.url(spec.code)}  ({spec.schedule.default_scene})")
        if len(specs) > URLS_SHOWN:
            click.echo(f"  … and {len(specs) - URLS_SHOWN} more")
        serve_until_stopped(simulator, stop, report_every_s=report_every_s, run_for_s=run_for_s)
    except KeyboardInterrupt:
        pass
    finally:
        restore()
        simulator.stop(timeout_s=4.0)
        click.echo("simulator stopped")


def _install_signal_handlers(stop: threading.Event) -> Callable[[], None]:
    """Make SIGINT/SIGTERM set ``stop``; returns a function restoring the old handlers (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore
