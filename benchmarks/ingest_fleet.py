"""Benchmark: CPU cores per camera stream of the ingest worker's watch mode, against a floor and the alternatives.

Run from the repository root (needs Debian's ``ffmpeg`` for mode e; ``scripts/bootstrap.sh`` installs it)::

    .venv/bin/python benchmarks/ingest_fleet.py --cameras 60 [--seconds 20] [--warmup 5] [--repeat 1]

It starts the RTSP camera simulator in a process of its own (``campuswatch simulate``; its CPU is not counted but
reported), then measures, one after another in the same run, the CPU that reading ``--cameras`` streams costs:

(a) ``demux``   the floor: PyAV opens each stream (TCP, tiny probing) and drops every packet; a thread per stream.
(b) ``watch``   our watch mode: the real :class:`ingest.worker.IngestWorker` in embedded mode (temporary SQLite
                database seeded with the cameras, in-process bus, in-memory thumbnails, local membership):
                keyframes decoded (one per ``ingest.watch_keyframe_every_s``, the configured default), health
                recorded from every packet, quality diagnosed, thumbnails encoded.
(b') ``watch_all`` the same worker decoding every keyframe (``watch_keyframe_every_s = 0``), for comparison.
(c) ``decode``  PyAV decoding every frame (``thread_count = 1``, frames dropped); a thread per stream.
(d) ``opencv``  ``cv2.VideoCapture(url, cv2.CAP_FFMPEG)`` and ``read()`` of every frame; a thread per stream.
                OpenCV opens streams one at a time within a process, so every stream is opened (and its thread
                started) before the warm-up; ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` gives it the same TCP transport and
                probing as the PyAV modes, its decoder keeps OpenCV's default threads.
(e) ``frigate`` the way Frigate captures: one Debian ``ffmpeg`` per camera writing 5 fps raw yuv420p to a pipe,
                read (and dropped) by a thread per camera; the ffmpeg processes' CPU (``/proc/<pid>/stat``) is
                added to the reading process's.

Each mode runs in a fresh child process of this script, against the same simulator: nothing of one mode
(reader threads finishing a blocked read, the worker's recorder, FFmpeg built into both PyAV and OpenCV, sockets
closing, garbage) can bill its CPU to the next, a mode that crashes or hangs does not take the others with it,
and the window of every mode is clean of another mode's start-up. A child connects every stream, waits until
each one has delivered data, lets it settle for ``--warmup`` seconds, then measures its own CPU time (all its
threads; plus the ffmpeg children in mode e) over ``--seconds``. Cores per stream = CPU s / window s / cameras.
Streams are opened at most 16 at a time (the worker's ``max_concurrent_opens``; the simulator drops connections
that arrive all at once), and a stream that fails before the window is read again (an ffmpeg that delivers
nothing for 10 s is restarted, as Frigate's watchdog does); each mode reports those reconnects. Every stream must
deliver data inside the window, or the mode fails. ``--repeat`` runs the whole sequence again and reports
medians; any failed run makes the exit status 1 and is listed under ``"failed"`` in the JSON line. The
machines are noisy: the ratios to the floor and to watch mode, measured minutes apart in one run, are the
figures that count; absolute cores per stream drift from run to run.

The last line of output is one JSON object: ``{"bench": "ingest_fleet", "cameras": N, "watch_over_floor": b/a,
"full_over_watch": c/b, "opencv_over_watch": d/b, "frigate_over_watch": e/b, "cores_per_stream_watch": b, ...}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

# A sibling module: this file runs as a script, so its folder is first on sys.path (mypy finds it the same way).
from ingest_fleet_modes import FFMPEG, FRIGATE_FPS, BenchError, run_child

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger("benchmarks.ingest_fleet")
FLEET_CAMERAS = 15_000
SOURCE_FPS = 15.0
"""The simulator's clips: 640x360 at 15 fps, one packet per picture, a keyframe every 2 s (README)."""


@dataclass(frozen=True)
class Mode:
    """One way of reading the fleet."""

    key: str
    letter: str
    title: str
    unit: str
    expected_rate: float
    """What each stream delivers per second in ``check`` when the machine keeps up (else it is saturated)."""
    check: str = "rate"
    """The result's key that shows whether the mode kept up with the cameras."""


MODES = (
    Mode("demux", "a", "demux only (floor)", "packets/s", SOURCE_FPS),
    # Keyframes counted over a window are quantized (a 20 s window holds 9 to 11): check the packet rate.
    Mode("watch", "b", "watch: worker, health, VQD, thumbs", "keyframes/s", SOURCE_FPS, "packets_per_s"),
    # The same worker decoding every keyframe (watch_keyframe_every_s = 0): what the sampling saves.
    Mode("watch_all", "b'", "watch, every keyframe decoded", "keyframes/s", SOURCE_FPS, "packets_per_s"),
    Mode("decode", "c", "PyAV decode every frame", "frames/s", SOURCE_FPS),
    Mode("opencv", "d", "OpenCV read() every frame", "frames/s", SOURCE_FPS),
    Mode("frigate", "e", "Frigate: ffmpeg per camera, 5 fps", "frames/s", FRIGATE_FPS),
)
MODE_BY_KEY = {m.key: m for m in MODES}

GOALS = (
    # (JSON key, numerator, denominator, goal, whether the ratio must be at most (True) or at least the goal)
    ("watch_over_floor", "watch", "demux", 1.3, True),
    ("full_over_watch", "decode", "watch", 4.0, False),
    ("opencv_over_watch", "opencv", "watch", 5.0, False),
    ("frigate_over_watch", "frigate", "watch", 4.0, False),
)


# -- orchestration (parent process) ---------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def simulator_command(cameras: int, port: int, data_dir: Path) -> tuple[list[str], str]:
    """The simulator's command line: the ``campuswatch`` CLI, or its command module when the CLI won't import."""
    flags = ["--cameras", str(cameras), "--port", str(port), "--data-dir", str(data_dir), "--report-every", "3600"]
    cli = Path(sys.executable).parent / "campuswatch"
    probe = subprocess.run(
        [sys.executable, "-c", "import campuswatch.cli"], capture_output=True, text=True, cwd=REPO, check=False
    )
    if cli.exists() and probe.returncode == 0:
        return [str(cli), "simulate", *flags], "campuswatch simulate"
    reason = (probe.stderr.strip().splitlines() or ["?"])[-1]
    code = "import sys; from ingest.simulator.cli import simulate_command; simulate_command(sys.argv[1:])"
    return [sys.executable, "-c", code, *flags], f"ingest.simulator.cli (campuswatch CLI: {reason})"


@contextmanager
def simulator(cameras: int, port: int, data_dir: Path, timeout_s: float = 180.0) -> Iterator[tuple[int, str]]:
    """Run the camera simulator in its own process until the block ends; yields (pid, how it was started)."""
    command, how = simulator_command(cameras, port, data_dir)
    process = subprocess.Popen(
        command, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ready = threading.Event()
    lines: list[str] = []

    def drain(pipe: IO[str]) -> None:
        for line in pipe:
            lines.append(line.rstrip())
            del lines[:-40]
            if "serving" in line:
                ready.set()

    assert process.stdout is not None
    threading.Thread(target=drain, args=(process.stdout,), daemon=True).start()
    try:
        deadline = time.monotonic() + timeout_s
        while not ready.wait(0.2):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "\n  ".join(lines[-15:])
                raise BenchError(f"the simulator did not start ({how}):\n  {tail}")
        yield process.pid, how
        if process.poll() is not None:
            raise BenchError(f"the simulator exited during the run with {process.returncode}")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def run_mode(mode: Mode, args: argparse.Namespace, url_base: str, sim_pid: int) -> dict[str, Any]:
    """Measure ``mode`` in a fresh child process; its result, or ``{"error": ...}``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode.key, "--url-base", url_base]
    command += ["--cameras", str(args.cameras), "--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    command += ["--connect-timeout", str(args.connect_timeout), "--sim-pid", str(sim_pid)]
    limit = args.connect_timeout + args.warmup + args.seconds + 2.0 * args.cameras + 60
    # A session of its own, so that a child that hangs is killed with the ffmpeg processes it started.
    child = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = child.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        out, err = child.communicate()
        tail = " | ".join(err.strip().splitlines()[-5:])
        return {"error": f"timed out after {limit:.0f} s: {tail}"[:800]}
    except BaseException:  # Ctrl-C: its own session does not get the signal, so end it here
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        raise
    last = (out.strip().splitlines() or [""])[-1]
    try:
        result: dict[str, Any] = json.loads(last)
    except json.JSONDecodeError:
        tail = " | ".join(err.strip().splitlines()[-5:])
        return {"error": f"exit {child.returncode}, no result: {tail}"[:800]}
    return result


def describe(mode: Mode, r: dict[str, Any]) -> str:
    """One line of a mode's own measurement."""
    if "error" in r:
        return f"  ({mode.letter}) {mode.key:<8} FAILED: {r['error']}"
    text = (
        f"  ({mode.letter}) {mode.key:<8} {r['cores_per_stream']:.5f} cores/stream  "
        f"{r['rate']:6.2f} {mode.unit} (min {r['rate_min']:.2f})  window {r['window_s']:.1f} s  "
        f"cpu {r['cpu_s']:.2f} s = {r['cores']:.2f} cores  connect {r['connect_s']:.1f} s  "
        f"reconnects {r['reconnects']} + {r['window_reconnects']} in window  "
        f"sim {r['sim_cores_per_stream']:.4f}/stream  load {r['loadavg_1m']:.1f}"
    )
    if mode.key in ("watch", "watch_all"):
        text += (
            f"  [{r['packets_per_s'] or 0:.1f} packets/s, {r['online']} online, "
            f"{r['decode_errors']} decode errors, {r['quality_faults']} quality faults, "
            f"a keyframe decoded per {r['keyframe_every_s']:g} s]"
        )
    if mode.key == "frigate":
        text += f"  [ffmpeg {r['extra_cpu_s']:.2f} s + reader {r['own_cpu_s']:.2f} s, {r['frame']}]"
    if mode.key == "opencv":
        text += f"  [opening all {r['open_all_s']:.1f} s]"
    return text


def summarize(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]], sim_how: str) -> int:
    """Print the table, the ratios and the goals, then the JSON line; the exit status."""
    median: dict[str, dict[str, float]] = {}
    errors = {key: [r["error"] for r in rs if "error" in r] for key, rs in runs.items()}
    for key, rs in runs.items():
        good = [r for r in rs if "error" not in r]  # a failed run is reported below and fails the benchmark
        if good:
            median[key] = {
                name: statistics.median(r[name] for r in good)
                for name in ("cores_per_stream", "rate", "rate_min", "cores", "sim_cores_per_stream")
            }
            checks = [r[MODE_BY_KEY[key].check] for r in good if r[MODE_BY_KEY[key].check] is not None]
            if checks:
                median[key]["check"] = statistics.median(checks)
    print()
    print(
        f"{args.cameras} cameras, window {args.seconds:g} s after {args.warmup:g} s warm-up, "
        f"{'median of ' + str(args.repeat) + ' runs' if args.repeat > 1 else '1 run'}; "
        f"{os.cpu_count()} CPU(s); simulator: {sim_how}"
    )
    header = (
        f"{'mode':<40} {'cores/stream':>12} {'x floor':>8} {'rate/stream':>12}  {'unit':<12} {'15,000 cams':>12}"
    )
    print(header)
    print("-" * len(header))
    floor = median.get("demux", {}).get("cores_per_stream")
    slow: list[str] = []
    for mode in MODES:
        if mode.key not in runs:
            continue
        label = f"({mode.letter}) {mode.title}"
        m = median.get(mode.key)
        if m is None:
            print(f"{label:<40} {'FAILED':>12}")
            continue
        over_floor = f"{m['cores_per_stream'] / floor:7.2f}x" if floor else f"{'-':>8}"
        projected = m["cores_per_stream"] * FLEET_CAMERAS
        print(
            f"{label:<40} {m['cores_per_stream']:12.5f} {over_floor} {m['rate']:12.2f}  {mode.unit:<12} "
            f"{projected:12.0f}"
        )
        if "check" in m and m["check"] < 0.9 * mode.expected_rate:
            slow.append(f"({mode.letter}) {mode.check} {m['check']:.2f} < {mode.expected_rate:g}")
    if slow:
        print(f"WARNING: below the cameras' rate (machine saturated? CPU then under-counted): {'; '.join(slow)}")
    restarted = [
        f"({mode.letter}) {sum(r['window_reconnects'] for r in runs[mode.key] if 'error' not in r)}"
        for mode in MODES
        if any(r.get("window_reconnects") for r in runs.get(mode.key, []))
    ]
    if restarted:
        print(f"WARNING: streams reconnected inside the window (machine starved?): {', '.join(restarted)}")
    for mode in MODES:
        if errors.get(mode.key):
            print(
                f"FAILED: ({mode.letter}) {mode.key} in {len(errors[mode.key])} of {len(runs[mode.key])} run(s): "
                f"{errors[mode.key][0]}"
            )
    sims = [m["sim_cores_per_stream"] for m in median.values()]
    if sims:
        print(f"simulator (not counted): {min(sims):.4f}-{max(sims):.4f} cores/stream")

    result: dict[str, Any] = {"bench": "ingest_fleet", "cameras": args.cameras}
    print()
    for name, num, den, goal, at_most in GOALS:
        a, b = median.get(num), median.get(den)
        if a is None or b is None:
            result[name] = None
            print(f"{name:<20} {MODE_BY_KEY[num].letter}/{MODE_BY_KEY[den].letter}    n/a (a mode failed)")
            continue
        ratio = a["cores_per_stream"] / b["cores_per_stream"]
        met = ratio <= goal if at_most else ratio >= goal
        result[name] = round(ratio, 3)
        print(
            f"{name:<20} {MODE_BY_KEY[num].letter}/{MODE_BY_KEY[den].letter} = {ratio:6.2f}   "
            f"goal {'<=' if at_most else '>='} {goal:g}: {'met' if met else 'NOT MET'}"
        )
    if median.get("watch_all") and median.get("demux"):
        ratio = median["watch_all"]["cores_per_stream"] / median["demux"]["cores_per_stream"]
        result["watch_all_over_floor"] = round(ratio, 3)
        print(f"{'watch_all_over_floor':<20} b'/a = {ratio:5.2f}   (every keyframe decoded; no goal)")
    every = [r["keyframe_every_s"] for r in runs.get("watch", []) if "error" not in r]
    result["watch_keyframe_every_s"] = every[0] if every else None
    watch = median.get("watch")
    result["cores_per_stream_watch"] = round(watch["cores_per_stream"], 6) if watch else None
    for mode in MODES:
        m = median.get(mode.key)
        if mode.key in runs and mode.key != "watch":
            result[f"cores_per_stream_{mode.key}"] = round(m["cores_per_stream"], 6) if m else None
    for mode in MODES:
        m = median.get(mode.key)
        if mode.key in runs:
            result[f"rate_{mode.key}"] = round(m["rate"], 3) if m else None
    if "check" in median.get("watch", {}):
        result["packets_per_s_watch"] = round(median["watch"]["check"], 2)
    for mode in MODES:
        m = median.get(mode.key)
        if mode.key in runs:
            result[f"projected_cores_{mode.key}"] = round(m["cores_per_stream"] * FLEET_CAMERAS, 1) if m else None
    result["goals_met"] = {
        name: (result[name] <= goal if at_most else result[name] >= goal) if result[name] is not None else None
        for name, _, _, goal, at_most in GOALS
    }
    result.update(seconds=args.seconds, warmup=args.warmup, repeat=args.repeat, cpus=os.cpu_count())
    done = [r for rs in runs.values() for r in rs if "error" not in r]
    result["window_reconnects"] = {
        key: sum(r["window_reconnects"] for r in rs if "error" not in r) for key, rs in runs.items()
    }
    if done:
        result["max_loadavg_1m"] = round(max(r["loadavg_1m"] for r in done), 2)
    if sims:
        result["sim_cores_per_stream"] = round(statistics.median(sims), 6)
    failed = [key for key, errs in errors.items() if errs]
    if failed:
        result["failed"] = {key: errors[key] for key in failed}
    print(json.dumps(result))
    return 1 if failed else 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=60, help="streams read by every mode (default 60)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring window per mode (default 20)")
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="settling after every stream delivers (default 5)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="run every mode N times, report medians")
    parser.add_argument(
        "--modes", default=",".join(m.key for m in MODES), help="comma-separated subset of: %(default)s"
    )
    parser.add_argument("--port", type=int, default=0, help="simulator RTSP port (default: a free one)")
    parser.add_argument(
        "--sim-data-dir",
        type=Path,
        default=REPO / ".cache" / "bench-ingest-fleet",
        help="simulator data directory, keeps its rendered scene clips (default: .cache/bench-ingest-fleet)",
    )
    parser.add_argument("--connect-timeout", type=float, default=60.0, help=argparse.SUPPRESS)
    parser.add_argument("--child", choices=[m.key for m in MODES], help=argparse.SUPPRESS)
    parser.add_argument("--url-base", default="", help=argparse.SUPPRESS)
    parser.add_argument("--sim-pid", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cameras < 1 or args.seconds <= 0 or args.warmup < 0 or args.repeat < 1:
        parser.error("--cameras and --repeat must be at least 1, --seconds positive, --warmup not negative")
    unknown = set(args.modes.split(",")) - set(MODE_BY_KEY)
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--child``, one mode of it); print a report and one final JSON line."""
    args = parse_args(argv)
    if args.child:
        logging.basicConfig(
            level=logging.WARNING, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )
        log.setLevel(logging.INFO)
        log.info("mode %s: %d streams at %s…", args.child, args.cameras, args.url_base)
        try:
            result = run_child(args)
        except Exception as err:  # noqa: BLE001 - the parent reports whatever stopped this mode
            print(json.dumps({"error": f"{type(err).__name__}: {err}"[:600]}), flush=True)
            return 1
        print(json.dumps(result), flush=True)
        return 0

    modes = [MODE_BY_KEY[key] for key in args.modes.split(",")]
    if any(m.key == "frigate" for m in modes) and not shutil.which(FFMPEG):
        print(f"{FFMPEG} is missing: apt-get install -y --no-install-recommends ffmpeg", file=sys.stderr)
        return 2
    port = args.port or free_port()
    args.sim_data_dir.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[dict[str, Any]]] = {m.key: [] for m in modes}
    started = time.monotonic()
    with simulator(args.cameras, port, args.sim_data_dir) as (sim_pid, how):
        print(f"simulator: {args.cameras} cameras on rtsp://127.0.0.1:{port}/CAM00001 … (pid {sim_pid}; {how})")
        for attempt in range(args.repeat):
            for mode in modes:
                result = run_mode(mode, args, f"rtsp://127.0.0.1:{port}/", sim_pid)
                runs[mode.key].append(result)
                prefix = f"run {attempt + 1}" if args.repeat > 1 else ""
                print(f"{prefix}{describe(mode, result)}", flush=True)
    print(f"total {time.monotonic() - started:.0f} s")
    return summarize(args, runs, how)


if __name__ == "__main__":
    sys.exit(main())
