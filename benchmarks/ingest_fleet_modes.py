"""The modes of ``benchmarks/ingest_fleet.py``: each one reads the simulated fleet and measures its own CPU.

``ingest_fleet.py`` runs every mode in a fresh child process of itself (``--child <mode>``), which calls
:func:`run_child` here and prints its result as one JSON line. See that script's docstring for what the modes are.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import logging
import math
import os
import resource
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import av
import av.error
from av.container import InputContainer

REPO = Path(__file__).resolve().parent.parent
log = logging.getLogger("benchmarks.ingest_fleet")
FFMPEG = "/usr/bin/ffmpeg"
PYAV_OPTIONS = {"rtsp_transport": "tcp", "analyzeduration": "0", "probesize": "32", "timeout": "5000000"}
OPENCV_OPTIONS = "rtsp_transport;tcp|analyzeduration;0|probesize;32|timeout;5000000"
FRIGATE_FPS = 5
OPENS_AT_ONCE = 16
"""Streams being opened at the same time, as the worker's ``ingest.max_concurrent_opens`` default: the
simulator's RTSP server (GStreamer) drops connections when 60 arrive at once."""
FFMPEG_SILENT_S = 10.0
"""Before the window, an ffmpeg that has delivered no frame this long after it started is restarted."""


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


def bench_watch(count: int, args: argparse.Namespace, *, every_keyframe: bool = False) -> dict[str, Any]:
    """(b) The real ingest worker, embedded mode, on a temporary SQLite database seeded with the cameras.

    ``every_keyframe``: (b') decode every keyframe instead of the configured sample.
    """
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
        overrides = {"ingest": {"watch_keyframe_every_s": 0.0}} if every_keyframe else {}
        settings = load_settings(None, data_dir=Path(tmp), **overrides)
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
                keyframe_every_s=settings.ingest.watch_keyframe_every_s,
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
    if args.child == "watch_all":
        return bench_watch(args.cameras, args, every_keyframe=True)
    if args.child == "decode":
        return run_threaded(urls, decode_reader, args, "frames")
    if args.child == "opencv":
        return bench_opencv(urls, args)
    if args.child == "frigate":
        return bench_frigate(urls, args)
    raise BenchError(f"unknown mode {args.child!r}")
