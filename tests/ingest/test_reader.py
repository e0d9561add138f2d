"""Stream readers against real servers and real faults: each case bounded in time, none may hang a reader."""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from ingest.models import HealthReason, HealthState, Image, Keyframe, ReadMode
from ingest.reader import OpenGate, ReaderSettings, StreamReader, StreamSink, backoff_delay
from ingest.simulator import CameraSchedule, CameraSimulator, ClipLibrary, Drop, SceneKind, build_camera_specs
from tests.servers import free_port

ReaderFactory = Callable[..., tuple[StreamReader, "RecordingSink"]]
FAST = ReaderSettings(
    open_timeout_s=2.0, read_timeout_s=1.5, backoff_initial_s=0.3, backoff_max_s=1.0, stable_after_s=5.0
)


class RecordingSink(StreamSink):
    """Keeps everything a reader reports."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.states: list[tuple[HealthState, HealthReason, str]] = []
        self.keyframes: list[Keyframe] = []
        self.frames: list[datetime] = []

    def on_state(self, code: str, state: HealthState, reason: HealthReason, detail: str) -> None:
        with self.lock:
            self.states.append((state, reason, detail))

    def on_keyframe(self, keyframe: Keyframe) -> None:
        with self.lock:
            self.keyframes.append(keyframe)

    def on_frame(self, code: str, at: datetime, image: Image) -> None:
        with self.lock:
            self.frames.append(at)

    def last(self) -> tuple[HealthState, HealthReason] | None:
        with self.lock:
            return self.states[-1][:2] if self.states else None


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"not within {timeout_s} s: {what}")


@pytest.fixture
def run_reader() -> Iterator[ReaderFactory]:
    readers: list[StreamReader] = []

    def start(url: str, settings: ReaderSettings = FAST) -> tuple[StreamReader, RecordingSink]:
        sink = RecordingSink()
        reader = StreamReader("CAM", url, sink, settings, OpenGate(4))
        reader.start()
        readers.append(reader)
        return reader, sink

    yield start
    for reader in readers:
        reader.request_stop()
    for reader in readers:
        # No reader may hang: every one ends within a read timeout of being asked.
        assert reader.join(FAST.read_timeout_s * 2 + 2), f"reader {reader.code} did not stop"


@pytest.fixture(scope="module")
def simulator(sim_clips: ClipLibrary, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CameraSimulator]:
    schedules = {
        "PLAIN": CameraSchedule.showing(SceneKind.PEOPLE_WALKING),
    }
    sim = CameraSimulator(
        build_camera_specs(list(schedules), schedules),
        cache_dir=tmp_path_factory.mktemp("unused"),
        port=0,
        clips=sim_clips,
    )
    sim.start()
    yield sim
    sim.stop()


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, 1.0, 8.0, rng) for n in range(1, 8)]
    assert 0.5 <= delays[0] <= 1.0
    assert 1.0 <= delays[1] <= 2.0
    assert all(4.0 <= d <= 8.0 for d in delays[3:])
    assert len({round(d, 6) for d in delays[3:]}) > 1, "jitter: capped delays must differ"


def test_watch_mode_reads_keyframes_and_figures(simulator: CameraSimulator, run_reader: ReaderFactory) -> None:
    reader, sink = run_reader(simulator.url("PLAIN"))
    wait_until(lambda: len(sink.keyframes) >= 3, 12, "three keyframes")
    assert sink.states[0][:2] == (HealthState.ONLINE, HealthReason.OK)
    keyframe = sink.keyframes[-1]
    assert keyframe.image.shape == (180, 320, 3)
    assert (keyframe.source_width, keyframe.source_height) == (640, 360)
    figures = reader.figures()
    assert 13 <= figures.fps <= 17
    assert 1.7 <= figures.keyframe_interval_s <= 2.3
    assert figures.bitrate_kbps > 10
    assert figures.reconnects == 0
    assert sink.frames == []  # watch mode hands on keyframes only


def test_watch_mode_samples_keyframes(simulator: CameraSimulator, run_reader: ReaderFactory) -> None:
    # Keyframes arrive every 2 s; decoding one per 4 s halves the decoding, not the health of the stream.
    reader, sink = run_reader(simulator.url("PLAIN"), dataclasses.replace(FAST, watch_keyframe_every_s=4.0))
    wait_until(lambda: len(sink.keyframes) >= 1, 5, "the first keyframe (always decoded)")
    ages: list[float] = []
    deadline = time.monotonic() + 9.0
    while time.monotonic() < deadline:
        age = reader.since_keyframe_s()
        assert age is not None, "connected all along"
        ages.append(age)
        time.sleep(0.1)
    with sink.lock:
        taken = [k.captured_at for k in sink.keyframes]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(taken)]
    assert 3 <= len(taken) <= 4, taken  # about 0, 4, 8 (and 12) s: every other keyframe
    assert all(3.5 <= gap <= 4.5 for gap in gaps), gaps
    # Every keyframe that arrives counts as a sign of life, decoded or not.
    assert max(ages) < 2.6, max(ages)
    assert reader.figures().keyframe_interval_s == pytest.approx(2.0, abs=0.3)


def test_mode_switch_without_reconnect(simulator: CameraSimulator, run_reader: ReaderFactory) -> None:
    reader, sink = run_reader(simulator.url("PLAIN"))
    wait_until(lambda: len(sink.keyframes) >= 1, 10, "first keyframe")
    reader.set_mode(ReadMode.ANALYZE)
    wait_until(lambda: len(sink.frames) >= 10, 10, "analyze-mode frames")
    with sink.lock:
        frames = list(sink.frames)
    rate = (len(frames) - 1) / max((frames[-1] - frames[0]).total_seconds(), 1e-3)
    assert 3.0 <= rate <= 6.0  # analyze_fps is 5
    reader.set_mode(ReadMode.WATCH)
    time.sleep(0.5)
    with sink.lock:
        count = len(sink.frames)
    time.sleep(1.0)
    assert len(sink.frames) == count
    assert reader.figures().reconnects == 0


@pytest.mark.parametrize(("camera", "reason"), [("STALL", HealthReason.TIMEOUT), ("REFUSE", HealthReason.REFUSED)])
def test_scripted_drop_goes_offline_and_recovers(
    sim_clips: ClipLibrary, tmp_path: Path, run_reader: ReaderFactory, camera: str, reason: HealthReason
) -> None:
    schedules = {
        "STALL": CameraSchedule(drops=(Drop(at_s=3, duration_s=5, mode="stall"),)),
        "REFUSE": CameraSchedule(drops=(Drop(at_s=3, duration_s=5, mode="refuse"),)),
    }
    sim = CameraSimulator(
        build_camera_specs(list(schedules), schedules), cache_dir=tmp_path, port=0, clips=sim_clips
    )
    sim.start()
    try:
        _, sink = run_reader(sim.url(camera))
        wait_until(lambda: sink.last() == (HealthState.ONLINE, HealthReason.OK), 3, "online before the drop")
        # The drop starts 3 s after the simulator; the reader must notice within its read timeout (x2) and a bit.
        wait_until(lambda: sink.last() == (HealthState.OFFLINE, reason), 8, f"offline ({reason.value})")
        wait_until(lambda: sink.last() == (HealthState.ONLINE, HealthReason.OK), 12, "recovered")
    finally:
        sim.stop()


def test_unknown_path_is_not_found(simulator: CameraSimulator, run_reader: ReaderFactory) -> None:
    url = simulator.url("PLAIN").replace("/PLAIN", "/NO_SUCH_CAMERA")
    reader, sink = run_reader(url)
    wait_until(lambda: sink.last() is not None, 5, "a state")
    assert sink.last() == (HealthState.OFFLINE, HealthReason.NOT_FOUND)
    wait_until(lambda: reader.figures().reconnects >= 2, 5, "retries with back-off")
    assert len(sink.states) == 1  # the same failure is reported once, not on every retry


def _serve_tcp(behaviour: Callable[[socket.socket], None]) -> tuple[int, Callable[[], None]]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()
    connections: list[socket.socket] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            connections.append(conn)
            behaviour(conn)

    thread = threading.Thread(target=loop, name="fake-camera")
    thread.start()

    def close() -> None:
        stop.set()
        thread.join(5)
        for conn in connections:
            conn.close()
        server.close()

    return server.getsockname()[1], close


def test_garbage_server_is_a_bad_stream(run_reader: ReaderFactory) -> None:
    def garbage(conn: socket.socket) -> None:
        conn.sendall(os.urandom(4096) + b"\r\n\r\n")

    port, close = _serve_tcp(garbage)
    try:
        reader, sink = run_reader(f"rtsp://admin:Secret99@127.0.0.1:{port}/cam")
        wait_until(lambda: sink.last() is not None, 8, "a state")
        state, reason = sink.last() or (None, None)
        assert state is HealthState.OFFLINE
        assert reason in (HealthReason.BAD_STREAM, HealthReason.TIMEOUT)
        assert all("Secret99" not in detail for _, _, detail in sink.states)
        wait_until(lambda: reader.figures().reconnects >= 2, 10, "retries")
    finally:
        close()


def test_silent_server_times_out(run_reader: ReaderFactory) -> None:
    port, close = _serve_tcp(lambda conn: None)
    try:
        started = time.monotonic()
        _, sink = run_reader(f"rtsp://127.0.0.1:{port}/cam")
        wait_until(lambda: sink.last() is not None, 10, "a state")
        assert sink.last() == (HealthState.OFFLINE, HealthReason.TIMEOUT)
        assert time.monotonic() - started < FAST.open_timeout_s * 3 + 1
    finally:
        close()


def test_corrupt_h264_is_degraded(sim_clips: ClipLibrary, tmp_path: Path, run_reader: ReaderFactory) -> None:
    rng = random.Random(7)
    clean = sim_clips[SceneKind.PEOPLE_WALKING]
    # Keyframes intact, the bytes of every third frame after them scrambled (a camera with a failing encoder).
    frames = tuple(
        f if i in clean.keyframes or i % 3 else f[:5] + bytes(rng.randrange(256) for _ in range(len(f) - 5))
        for i, f in enumerate(clean.frames)
    )
    clips = {scene: sim_clips[scene] for scene in SceneKind}
    clips[SceneKind.PEOPLE_WALKING] = dataclasses.replace(clean, frames=frames)
    library = ClipLibrary(clips, sim_clips.settings, generation_s=0, from_cache=False)
    schedules = {"BAD": CameraSchedule.showing(SceneKind.PEOPLE_WALKING)}
    sim = CameraSimulator(build_camera_specs(["BAD"], schedules), cache_dir=tmp_path, port=0, clips=library)
    sim.start()
    try:
        reader, sink = run_reader(sim.url("BAD"))
        wait_until(lambda: len(sink.keyframes) >= 1, 10, "a keyframe")
        reader.set_mode(ReadMode.ANALYZE)  # decode every frame: the scrambled ones fail
        wait_until(
            lambda: sink.last() == (HealthState.DEGRADED, HealthReason.DECODE_ERRORS),
            12,
            "degraded: decode errors",
        )
        assert reader.figures().decode_errors >= 3
    finally:
        sim.stop()


@dataclasses.dataclass
class SimulatorProcess:
    """``campuswatch simulate`` in a real process that a test can kill, freeze and restart on the same port."""

    port: int
    start: Callable[[], int]


_SIMULATE = "import sys; from ingest.simulator.cli import simulate_command; simulate_command(sys.argv[1:])"


def _simulate_args(port: int, data_dir: Path, gops: int) -> list[str]:
    return ["--cameras", "2", "--port", str(port), "--data-dir", str(data_dir), "--clip-gops", str(gops)]


@pytest.fixture
def simulator_process(sim_data_dir: Path, sim_clips: ClipLibrary) -> Iterator[SimulatorProcess]:
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> int:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SIMULATE, *_simulate_args(port, sim_data_dir, sim_clips.settings.gops)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode()
            if "serving" in line:
                return proc.pid
            if not line and proc.poll() is not None:
                break
        pytest.fail("the simulator process did not start")

    yield SimulatorProcess(port, start)
    for proc in procs:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGCONT)
            proc.kill()
        proc.wait(10)


def test_server_killed_then_restarted(simulator_process: SimulatorProcess, run_reader: ReaderFactory) -> None:
    pid = simulator_process.start()
    port = simulator_process.port
    reader, sink = run_reader(f"rtsp://127.0.0.1:{port}/CAM00001")
    wait_until(lambda: sink.last() == (HealthState.ONLINE, HealthReason.OK), 10, "online")
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: (sink.last() or (None,))[0] is HealthState.OFFLINE, 6, "offline after the kill")
    simulator_process.start()
    wait_until(lambda: sink.last() == (HealthState.ONLINE, HealthReason.OK), 15, "online after the restart")
    assert reader.figures().reconnects >= 1


def test_server_frozen_then_resumed(simulator_process: SimulatorProcess, run_reader: ReaderFactory) -> None:
    pid = simulator_process.start()
    port = simulator_process.port
    _, sink = run_reader(f"rtsp://127.0.0.1:{port}/CAM00002")
    wait_until(lambda: sink.last() == (HealthState.ONLINE, HealthReason.OK), 10, "online")
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: sink.last() == (HealthState.OFFLINE, HealthReason.TIMEOUT), 8, "timeout while frozen")
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: sink.last() == (HealthState.ONLINE, HealthReason.OK), 15, "online after resuming")
