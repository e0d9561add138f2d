"""Benchmark: CPU cores per camera stream of the ingest worker's watch mode, against a floor and the alternatives.

Run from the repository root (needs Debian's ``ffmpeg`` for mode e; ``scripts/bootstrap.sh`` installs it)::

    .venv/bin/python benchmarks/ingest_fleet.py --cameras 60 [--seconds 20] [--warmup 5] [--repeat 1]

It starts the RTSP camera simulator in a process of its own (``campuswatch simulate``; its CPU is not counted but
reported), then measures, one after another in the same run, the CPU that reading ``--cameras`` streams costs:

(a) ``demux``   the floor: PyAV opens each stream (TCP, tiny probing) and drops every packet; a thread per stream.
(b) ``watch``   our watch mode: the real :class:`ingest.worker.IngestWorker` in embedded mode (temporary SQLite
                database seeded with the cameras, in-process bus, in-memory thumbnails, local membership):
                keyframes decoded, health recorded, quality diagnosed, thumbnails encoded.
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
import contextlib
import functools
import io
import json
import logging
import math
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import av
import av.error
from av.container import InputContainer

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger("benchmarks.ingest_fleet")
FFMPEG = "/usr/bin/ffmpeg"
FLEET_CAMERAS = 15_000
PYAV_OPTIONS = {"rtsp_transport": "tcp", "analyzeduration": "0", "probesize": "32", "timeout": "5000000"}
OPENCV_OPTIONS = "rtsp_transport;tcp|analyzeduration;0|probesize;32|timeout;5000000"
FRIGATE_FPS = 5
OPENS_AT_ONCE = 16
"""Streams being opened at the same time, as the worker's ``ingest.max_concurrent_opens`` default: the
simulator's RTSP server (GStreamer) drops connections when 60 arrive at once."""
FFMPEG_SILENT_S = 10.0
"""Before the window, an ffmpeg that has delivered no frame this long after it started is restarted."""

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


class BenchError(Exception):
    """A mode could not be measured (no data, a crash, a timeout)."""


# -- measuring (child processes) ------------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads), from ``/proc/<pid>/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces; fields start at "state"
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


@dataclass
class Streams:
    """One thread per stream: data counters, an open gate, and reconnects.

    A stream whose reader fails or ends is read again a second later, as the worker in mode b does by itself;
    every mode reports its reconnects, and those inside the window separately (they suggest a starved machine).
    A stream that delivers nothing inside the window fails the mode.
    """

    count: int
    counts: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """The last failure of each stream, for error messages."""
    stop: threading.Event = field(default_factory=threading.Event)
    measuring: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    gate: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(OPENS_AT_ONCE))
    reconnects: int = 0
    window_reconnects: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.counts = [0] * self.count
        self.problems = [""] * self.count

    def enter_gate(self) -> bool:
        """Wait for an opening slot; False once stopping."""
        while not self.stop.is_set():
            if self.gate.acquire(timeout=0.25):
                return True
        return False

    def open_av(self, url: str) -> InputContainer:
        """Open ``url`` with PyAV, at most ``OPENS_AT_ONCE`` at a time (as the worker's open gate)."""
        if not self.enter_gate():
            raise BenchError("stopped")
        try:
            return av.open(url, options=PYAV_OPTIONS)
        finally:
            self.gate.release()

    def spawn(self, index: int, target: Callable[[int], None]) -> None:
        """Run ``target(index)`` in a daemon thread until stopped, again a second after it fails or ends."""

        def run() -> None:
            while True:
                try:
                    target(index)
                    problem = "stream ended"
                except Exception as err:  # noqa: BLE001 - any failure of a stream is reported, not raised
                    problem = f"{type(err).__name__}: {err}"[:300]
                if self.stop.is_set():
                    return
                self.problems[index] = problem
                with self.lock:
                    self.reconnects += 1
                    if self.measuring.is_set():
                        self.window_reconnects += 1
                log.info("stream %d: %s; reading it again", index + 1, problem)
                if self.stop.wait(1.0):
                    return

        thread = threading.Thread(target=run, name=f"stream-{index}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def snapshot(self) -> list[int]:
        """The counters now."""
        return list(self.counts)

    def check(self) -> None:
        """Nothing to check while streams are read: failed ones are read again, silent ones fail the window."""

    def explain(self, err: BenchError) -> BenchError:
        """``err`` with the last failures of the streams that delivered nothing."""
        told = "; ".join(f"stream {i + 1}: {p}" for i, p in enumerate(self.problems) if p and not self.counts[i])
        return BenchError(f"{err} — {told[:400]}") if told else err

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask every thread to stop and wait for them (they notice at their next packet or frame)."""
        self.stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def wait_for_data(
    snapshot: Callable[[], list[int]], check: Callable[[], None], timeout_s: float, what: str
) -> float:
    """Wait until every stream has delivered something; seconds waited. Raises :class:`BenchError` on timeout."""
    start = time.monotonic()
    while True:
        check()
        counts = snapshot()
        silent = [i + 1 for i, c in enumerate(counts) if c == 0]
        if not silent:
            log.info("every stream delivers %s after %.1f s", what, time.monotonic() - start)
            return time.monotonic() - start
        if time.monotonic() - start > timeout_s:
            raise BenchError(
                f"{len(silent)} of {len(counts)} stream(s) delivered no {what} within {timeout_s:.0f} s "
                f"(streams {', '.join(map(str, silent[:10]))})"
            )
        time.sleep(0.1)


def measure(
    snapshot: Callable[[], list[int]],
    check: Callable[[], None],
    *,
    seconds: float,
    sim_pid: int,
    extra_cpu: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """CPU of this process (plus ``extra_cpu()``) and data per stream over a window of ``seconds``."""
    log.info("measuring for %.0f s", seconds)
    sim0 = proc_cpu_s(sim_pid)
    extra0 = extra_cpu() if extra_cpu else 0.0
    counts0 = snapshot()
    cpu0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    cpu1, t1 = time.process_time(), time.perf_counter()
    counts1 = snapshot()
    extra1 = extra_cpu() if extra_cpu else 0.0
    sim1 = proc_cpu_s(sim_pid)
    check()
    window = t1 - t0
    deltas = [b - a for a, b in zip(counts0, counts1, strict=True)]
    n = len(deltas)
    silent = sum(1 for d in deltas if d <= 0)
    if silent:
        raise BenchError(f"{silent} of {n} stream(s) delivered nothing in the {window:.1f} s window")
    cpu = (cpu1 - cpu0) + (extra1 - extra0)
    return {
        "window_s": window,
        "cpu_s": cpu,
        "own_cpu_s": cpu1 - cpu0,
        "extra_cpu_s": extra1 - extra0,
        "cores": cpu / window,
        "cores_per_stream": cpu / window / n,
        "rate": sum(deltas) / window / n,
        "rate_min": min(deltas) / window,
        "rate_max": max(deltas) / window,
        "sim_cores_per_stream": (sim1 - sim0) / window / n,
        "loadavg_1m": os.getloadavg()[0],
    }


def settle_and_measure(
    streams: Streams, args: argparse.Namespace, what: str, extra_cpu: Callable[[], float] | None = None
) -> dict[str, Any]:
    """Wait for data on every stream, warm up, measure."""
    try:
        connect_s = wait_for_data(streams.snapshot, streams.check, args.connect_timeout, what)
        time.sleep(args.warmup)
        reconnects_before = streams.reconnects
        streams.measuring.set()
        result = measure(
            streams.snapshot, streams.check, seconds=args.seconds, sim_pid=args.sim_pid, extra_cpu=extra_cpu
        )
    except BenchError as err:
        raise streams.explain(err) from err
    result.update(connect_s=connect_s, reconnects=reconnects_before, window_reconnects=streams.window_reconnects)
    return result


def run_threaded(
    urls: Sequence[str], reader: Callable[[str, Streams, int], None], args: argparse.Namespace, what: str
) -> dict[str, Any]:
    """Start ``reader(url, streams, index)`` in a thread per stream, wait for data, settle, measure."""
    streams = Streams(len(urls))
    try:
        for i, url in enumerate(urls):
            streams.spawn(i, functools.partial(reader, url, streams))
        return settle_and_measure(streams, args, what)
    finally:
        streams.close()


def demux_reader(url: str, streams: Streams, index: int) -> None:
    """(a) Demux and drop every packet."""
    with streams.open_av(url) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if streams.stop.is_set():
                return
            if packet.size:
                streams.counts[index] += 1


def decode_reader(url: str, streams: Streams, index: int) -> None:
    """(c) Decode every packet on one thread, drop the frames."""
    with streams.open_av(url) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context
        codec.thread_count = 1
        for packet in container.demux(stream):
            if streams.stop.is_set():
                return
            for _frame in codec.decode(packet):
                streams.counts[index] += 1


def bench_opencv(urls: Sequence[str], args: argparse.Namespace) -> dict[str, Any]:
    """(d) OpenCV: open every stream (one at a time), a thread per stream calling ``read()``."""
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = OPENCV_OPTIONS  # read by OpenCV at each open
    import cv2

    streams = Streams(len(urls))
    captures: list[cv2.VideoCapture | None] = [None] * len(urls)

    def read(index: int) -> None:
        capture = captures[index]
        if capture is None:  # reading it again after a failure
            capture = cv2.VideoCapture(urls[index], cv2.CAP_FFMPEG)
            captures[index] = capture
        try:
            if not capture.isOpened():
                raise BenchError("VideoCapture did not open")
            while not streams.stop.is_set():
                ok, _image = capture.read()
                if not ok:
                    raise BenchError("read() returned False")
                streams.counts[index] += 1
        except BenchError:
            capture.release()
            captures[index] = None
            raise

    start = time.monotonic()
    try:
        for i, url in enumerate(urls):
            captures[i] = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
            streams.spawn(i, read)  # read at once: a stream opened but not read would pile up a backlog
        open_s = time.monotonic() - start
        log.info("opened %d streams in %.1f s", len(urls), open_s)
        result = settle_and_measure(streams, args, "frames")
        result.update(connect_s=result["connect_s"] + open_s, open_all_s=open_s)
        return result
    finally:
        streams.close()
        for capture in captures:
            if capture is not None:
                capture.release()


def frame_size(url: str) -> tuple[int, int]:
    """Width and height of a stream's pictures (decoded with PyAV before the ffmpeg processes start)."""
    with av.open(url, options=PYAV_OPTIONS) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            for frame in stream.codec_context.decode(packet):
                return frame.width, frame.height
    raise BenchError(f"no picture from {url}")


def bench_frigate(urls: Sequence[str], args: argparse.Namespace) -> dict[str, Any]:
    """(e) One ffmpeg process per camera (Frigate's capture), raw yuv420p frames read off each pipe and dropped.

    A watchdog kills an ffmpeg that has delivered no frame for ``FFMPEG_SILENT_S`` (the command has no network
    timeout, so a stalled session would hang it for good), and its reader starts a new one, as Frigate's camera
    watchdog restarts a silent ffmpeg; that counts as a reconnect. ffmpeg CPU over the window = what the live
    processes used (``/proc``) plus what the ones that ended used (``RUSAGE_CHILDREN``, once reaped).
    """
    if not Path(FFMPEG).exists():
        raise BenchError(f"{FFMPEG} is missing: apt-get install -y --no-install-recommends ffmpeg")
    width, height = frame_size(urls[0])
    size = width * height * 3 // 2
    streams = Streams(len(urls))
    processes: list[subprocess.Popen[bytes] | None] = [None] * len(urls)
    last_frame_at = [0.0] * len(urls)
    with tempfile.TemporaryDirectory(prefix="cw-bench-ffmpeg-") as logdir:

        def read(index: int) -> None:
            if not streams.enter_gate():  # no more than OPENS_AT_ONCE ffmpeg connecting at once
                return
            gated = True
            command = [FFMPEG, "-hide_banner", "-loglevel", "error", "-rtsp_transport", "tcp", "-i", urls[index]]
            command += ["-r", str(FRIGATE_FPS), "-vf", f"fps={FRIGATE_FPS}"]
            command += ["-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:"]
            errlog_path = Path(logdir) / f"{index}.log"
            try:
                with open(errlog_path, "wb") as errlog:
                    process = subprocess.Popen(
                        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errlog
                    )
                last_frame_at[index] = time.monotonic()
                processes[index] = process
                pipe = cast(io.BufferedReader, process.stdout)
                buffer = bytearray(size)
                base, received = streams.counts[index], 0
                while not streams.stop.is_set():
                    n = pipe.readinto(buffer)
                    if not n:
                        break
                    received += n
                    frames = base + received // size
                    if frames != streams.counts[index]:
                        streams.counts[index] = frames
                        last_frame_at[index] = time.monotonic()
                        if gated:
                            streams.gate.release()
                            gated = False
            finally:
                if gated:
                    streams.gate.release()
            pipe.close()
            if not streams.stop.is_set():
                status = process.wait()
                tail = errlog_path.read_text(errors="replace").strip()[-200:]
                raise BenchError(f"ffmpeg exited with {status}: {tail!r}")

        def watchdog() -> None:
            while not streams.stop.wait(1.0):
                now = time.monotonic()
                for index, process in enumerate(processes):
                    if (
                        process is not None
                        and process.poll() is None
                        and now - last_frame_at[index] > FFMPEG_SILENT_S
                    ):
                        log.info(
                            "stream %d: no frame from ffmpeg for %.0f s, killing it", index + 1, FFMPEG_SILENT_S
                        )
                        process.kill()

        def children_cpu() -> float:
            alive = [p for p in processes if p is not None and p.poll() is None]
            live = 0.0
            for process in alive:
                with contextlib.suppress(FileNotFoundError):  # it ended meanwhile: counted as reaped below
                    live += proc_cpu_s(process.pid)
            reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
            return live + reaped.ru_utime + reaped.ru_stime

        watcher = threading.Thread(target=watchdog, name="ffmpeg-watchdog", daemon=True)
        try:
            for i in range(len(urls)):
                streams.spawn(i, read)
            watcher.start()
            result = settle_and_measure(streams, args, "frames", extra_cpu=children_cpu)
            result["frame"] = f"{width}x{height}"
            return result
        finally:
            streams.stop.set()
            for process in processes:
                if process is not None and process.poll() is None:
                    process.terminate()
            deadline = time.monotonic() + 10.0
            for process in processes:
                if process is None:
                    continue
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            streams.close()


def fleet_rows(count: int, url_base: str) -> list[dict[str, str]]:
    """``count`` generated fleet rows, camera ``i`` at ``<url_base>CAM0000i``, without sub stream or login."""
    from registry.generate import generate_fleet

    per_school = 5
    schools = max(1, math.ceil(count / per_school))
    rows = generate_fleet(min(3, schools), schools, per_school)[:count]
    for i, row in enumerate(rows, start=1):
        # Every camera enabled: the generator disables a few, as in a real fleet, but every mode reads all N.
        row.update(main_url=f"{url_base}CAM{i:05d}", sub_url="", username="", password="", enabled="true")
    return rows


def bench_watch(count: int, args: argparse.Namespace) -> dict[str, Any]:
    """(b) The real ingest worker, embedded mode, on a temporary SQLite database seeded with the cameras."""
    from sqlalchemy import func, select

    from campuswatch.database import upgrade
    from config import load_settings
    from ingest.membership import LocalMembership
    from ingest.models import HealthState
    from ingest.tables import CameraHealth, CameraHealthTransition, CameraQualityFault
    from ingest.thumbnails import MemoryThumbnailStore, Thumbnail
    from ingest.worker import IngestWorker
    from kernel.bus import InMemoryBus
    from kernel.clock import utcnow
    from kernel.db import make_engine, make_session_factory, session_scope
    from kernel.secrets import SecretBox
    from registry.fleet_file import FleetRow
    from registry.fleet_io import import_rows
    from registry.models import Camera

    class CountingThumbnails(MemoryThumbnailStore):
        """In-memory thumbnails that also count them: one per decoded keyframe."""

        def __init__(self) -> None:
            super().__init__()
            self.counts: dict[str, int] = {}
            self.counts_lock = threading.Lock()

        def put(self, code: str, thumbnail: Thumbnail) -> None:
            super().put(code, thumbnail)
            with self.counts_lock:
                self.counts[code] = self.counts.get(code, 0) + 1

        def snapshot(self, codes: Sequence[str]) -> list[int]:
            with self.counts_lock:
                return [self.counts.get(code, 0) for code in codes]

    with tempfile.TemporaryDirectory(prefix="cw-bench-watch-") as tmp:
        settings = load_settings(None, data_dir=Path(tmp))
        engine = make_engine(settings.database_url())
        bus = InMemoryBus()
        thumbnails = CountingThumbnails()
        membership = LocalMembership(
            heartbeat_s=settings.ingest.heartbeat_s, ttl_s=settings.ingest.heartbeat_ttl_s
        )
        try:
            upgrade(engine)
            factory = make_session_factory(engine)
            rows = fleet_rows(count, args.url_base)
            codes = [row["camera_code"] for row in rows]
            with session_scope(factory) as session:
                fleet = [FleetRow(n, row) for n, row in enumerate(rows, start=2)]
                import_rows(session, fleet, SecretBox.for_data_dir(settings.data_dir), source="benchmark")
            worker = IngestWorker(settings, factory, bus, thumbnails, membership)
            worker.start()
            try:

                def snapshot() -> list[int]:
                    return thumbnails.snapshot(codes)

                def check() -> None:
                    pass  # the worker reconnects by itself; a stream that stays down shows as no keyframes

                try:
                    connect_s = wait_for_data(snapshot, check, args.connect_timeout, "keyframes")
                except BenchError as err:
                    silent = [code for code, n in zip(codes, snapshot(), strict=True) if n == 0]
                    with session_scope(factory) as session:
                        states = session.execute(
                            select(Camera.code, CameraHealth.state, CameraHealth.reason, CameraHealth.detail)
                            .join(CameraHealth, CameraHealth.camera_id == Camera.id)
                            .where(Camera.code.in_(silent[:5]))
                        ).all()
                    told = "; ".join(f"{c}: {st.value} {r.value} {d}" for c, st, r, d in states) or "no health yet"
                    raise BenchError(f"{err} — worker's health of those cameras: {told}") from err
                time.sleep(args.warmup)
                window_start = utcnow()
                result = measure(snapshot, check, seconds=args.seconds, sim_pid=args.sim_pid)
                window_end = utcnow()
                result["connect_s"] = connect_s
                result["reading"] = len(worker.reading())
                time.sleep(1.5)  # the recorder writes every second: let it store the window's last transitions
                # What the worker itself stored (figures every ingest.figures_every_s), read before it stops.
                with session_scope(factory) as session:
                    offline = select(CameraHealthTransition.at).where(
                        CameraHealthTransition.state == HealthState.OFFLINE
                    )
                    went_offline = list(session.scalars(offline))
                    health = session.execute(
                        select(
                            CameraHealth.state,
                            CameraHealth.fps,
                            CameraHealth.reconnects,
                            CameraHealth.decode_errors,
                        )
                    ).all()
                    faults = session.scalar(select(func.count()).select_from(CameraQualityFault)) or 0
            finally:
                worker.stop()
            online = [h for h in health if h.state is not HealthState.OFFLINE]
            result.update(
                health_rows=len(health),
                # None until the worker has stored its first figures (a window shorter than figures_every_s).
                packets_per_s=statistics.fmean(h.fps for h in health) if any(h.fps for h in health) else None,
                reconnects=sum(1 for at in went_offline if at < window_start),
                window_reconnects=sum(1 for at in went_offline if window_start <= at <= window_end),
                decode_errors=sum(h.decode_errors for h in health),
                quality_faults=faults,
                online=len(online),
            )
            return result
        finally:
            membership.close()
            thumbnails.close()
            bus.close()
            engine.dispose()


def run_child(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one mode in this process."""
    urls = [f"{args.url_base}CAM{i:05d}" for i in range(1, args.cameras + 1)]
    if args.child == "demux":
        return run_threaded(urls, demux_reader, args, "packets")
    if args.child == "watch":
        return bench_watch(args.cameras, args)
    if args.child == "decode":
        return run_threaded(urls, decode_reader, args, "frames")
    if args.child == "opencv":
        return bench_opencv(urls, args)
    if args.child == "frigate":
        return bench_frigate(urls, args)
    raise BenchError(f"unknown mode {args.child!r}")


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
    if mode.key == "watch":
        text += (
            f"  [{r['packets_per_s'] or 0:.1f} packets/s, {r['online']} online, "
            f"{r['decode_errors']} decode errors, {r['quality_faults']} quality faults]"
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
