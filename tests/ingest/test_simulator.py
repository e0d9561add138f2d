"""The camera simulator: schedules, scene clips, and the real RTSP server read with PyAV."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from ingest.errors import ScheduleError, SimulatorError, UnknownCameraError
from ingest.simulator import (
    DEMO_MIX,
    FPS,
    GOP,
    LINE_CROSSING,
    PEOPLE_SCENES,
    CameraSchedule,
    CameraSimulator,
    CameraSpec,
    ClipLibrary,
    CpuMeter,
    Drop,
    DropMode,
    FleetSchedule,
    SceneKind,
    SceneSegment,
    build_camera_specs,
    camera_codes,
    demo_camera_specs,
    fleet_specs,
    load_schedule_file,
    people_at,
)
from ingest.simulator.artwork import WALL_TOP_Y, load_sprites
from ingest.simulator.cli import simulate_command
from ingest.simulator.clips import nal_types
from ingest.simulator.scenes import crossing_fraction

OPEN_OPTIONS = {"rtsp_transport": "tcp", "analyzeduration": "0", "probesize": "32", "timeout": "5000000"}


# -- schedules ------------------------------------------------------------------------------------------------


def test_schedule_lookups() -> None:
    schedule = CameraSchedule(
        default_scene=SceneKind.EMPTY_YARD,
        segments=[
            SceneSegment(at_s=20, scene=SceneKind.BLACK),
            SceneSegment(at_s=10, scene=SceneKind.PERSON_LINGERING),
        ],
        drops=[Drop(at_s=30, duration_s=5, mode=DropMode.STALL), Drop(at_s=50, mode=DropMode.REFUSE)],
    )
    assert [s.at_s for s in schedule.segments] == [10, 20]  # sorted on load
    assert schedule.scene_at(0) is SceneKind.EMPTY_YARD
    assert schedule.scene_at(10) is SceneKind.PERSON_LINGERING
    assert schedule.scene_at(25) is SceneKind.BLACK
    assert schedule.drop_at(29.9) is None
    stall = schedule.drop_at(30)
    assert stall is not None and stall.mode is DropMode.STALL
    assert schedule.drop_at(35) is None
    refuse = schedule.drop_at(1e6)
    assert refuse is not None and refuse.mode is DropMode.REFUSE
    assert schedule.change_points() == [10, 20, 30, 35, 50]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"default_scene": "snow"}, "default_scene"),
        ({"segments": [{"at_s": 1, "scene": "disco"}]}, "segments.0.scene"),
        ({"segments": [{"at_s": -1, "scene": "black"}]}, "greater than or equal to 0"),
        ({"drops": [{"at_s": 5, "duration_s": 0}]}, "greater than 0"),
        ({"drops": [{"at_s": 5, "mode": "explode"}]}, "drops.0.mode"),
        ({"drops": [{"at_s": 5, "duration_s": 3, "mode": "disconnect"}]}, "does not apply to mode=disconnect"),
        ({"colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_schedule_validation_errors(data: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        CameraSchedule.model_validate(data)
    assert fragment in str(info.value)


@pytest.mark.parametrize("code", ["", "a b", "../etc", "cam/1", "-lead", "x" * 65, "caméra", "cam?1"])
def test_camera_code_must_be_url_path_safe(code: str) -> None:
    with pytest.raises(ValidationError) as info:
        CameraSpec(code=code)
    assert "code" in str(info.value)


def test_schedule_file_and_spec_builders(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        "default: {default_scene: people_walking}\n"
        "cameras:\n"
        "  CAM00002:\n"
        "    segments: [{at_s: 10, scene: person_lingering}]\n"
        "    drops: [{at_s: 20, mode: refuse, duration_s: 5}]\n",
        encoding="utf-8",
    )
    fleet = load_schedule_file(path)
    assert fleet.schedule_for("CAM00001").default_scene is SceneKind.PEOPLE_WALKING
    assert fleet.schedule_for("CAM00002").scene_at(12) is SceneKind.PERSON_LINGERING
    path.write_text("cameras: {'bad code': {}}\n", encoding="utf-8")
    with pytest.raises(ScheduleError, match="invalid schedule file"):
        load_schedule_file(path)
    path.write_text("cameras: [\n", encoding="utf-8")
    with pytest.raises(ScheduleError, match="cannot read"):
        load_schedule_file(path)

    codes = camera_codes(3)
    assert codes == ["CAM00001", "CAM00002", "CAM00003"]
    specs = build_camera_specs(codes, {"CAM00002": "black"})
    assert [s.schedule.default_scene for s in specs] == [
        SceneKind.EMPTY_YARD,
        SceneKind.BLACK,
        SceneKind.EMPTY_YARD,
    ]
    with pytest.raises(ScheduleError, match="unknown cameras"):
        build_camera_specs(codes, {"CAM00009": "black"})
    demo = demo_camera_specs(camera_codes(60, "S"))
    assert len(demo) == 60
    special = [s.schedule for s in demo if s.schedule != CameraSchedule()]
    assert sorted(special, key=repr) == sorted(DEMO_MIX, key=repr)
    assert demo == demo_camera_specs(camera_codes(60, "S"))  # seeded: the same every time


# -- clips ----------------------------------------------------------------------------------------------------


def decode(frames: list[bytes] | tuple[bytes, ...], fmt: str = "bgr24") -> list[np.ndarray]:
    """Decode Annex B access units with a fresh FFmpeg decoder; every unit must give one picture."""
    codec = av.CodecContext.create("h264", "r")
    pictures = []
    for unit in frames:
        for frame in codec.decode(av.Packet(unit)):
            pictures.append(frame.to_ndarray(format=fmt))
    for frame in codec.decode(None):
        pictures.append(frame.to_ndarray(format=fmt))
    assert len(pictures) == len(frames)
    return pictures


def test_clips_share_codec_parameters_and_gop(sim_clips: ClipLibrary, tmp_path: Path) -> None:
    frame_count = sim_clips.settings.frame_count
    headers = {clip.parameter_sets for clip in sim_clips}
    assert len(headers) == 1 and headers.pop()
    for clip in sim_clips:
        assert (clip.width, clip.height, clip.fps) == (640, 360, 15)
        assert len(clip.frames) == frame_count and frame_count % GOP == 0
        assert clip.keyframes == tuple(range(0, frame_count, GOP))
        for i, unit in enumerate(clip.frames):
            types = [t for t in nal_types(unit) if t in (1, 5)]
            # One slice per picture, IDR exactly at multiples of the GOP.
            assert types == ([5] if i % GOP == 0 else [1]), (clip.scene, i, nal_types(unit))
        path = tmp_path / f"{clip.scene.value}.h264"
        path.write_bytes(b"".join(clip.frames))
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            assert (stream.codec_context.width, stream.codec_context.height) == (640, 360)
            assert stream.codec_context.profile in ("High", "Main", "Constrained Baseline", "Baseline")
            keys = [i for i, p in enumerate(container.demux(stream)) if p.size and p.is_keyframe]
            assert keys == list(range(0, frame_count, GOP))


def test_switching_clips_at_keyframes_decodes_cleanly(sim_clips: ClipLibrary) -> None:
    units = [
        *sim_clips[SceneKind.EMPTY_YARD].frames[:GOP],
        *sim_clips[SceneKind.BLACK].frames[:GOP],
        *sim_clips[SceneKind.CROWD_FORMING].frames[GOP : 2 * GOP],
        *sim_clips[SceneKind.CROWD_FORMING].frames[:GOP],  # looping back
    ]
    pictures = decode(units, "gray")
    assert pictures[GOP - 1].mean() > 60
    assert pictures[GOP].mean() < 20 and pictures[2 * GOP - 1].mean() < 20
    assert pictures[2 * GOP].mean() > 60


def test_cache_is_reused(sim_clips: ClipLibrary, sim_data_dir: Path) -> None:
    again = ClipLibrary.load_or_generate(sim_data_dir / "sim-clips", sim_clips.settings)
    assert again.from_cache and again.directory == sim_clips.directory
    assert again.generation_s < 2.0
    assert all(again[c.scene].frames == c.frames for c in sim_clips)


def test_people_scenes_contain_the_photo_crops(sim_clips: ClipLibrary) -> None:
    sprites = load_sprites()
    frame_count = sim_clips.settings.frame_count
    index = 40  # crowd assembled, intruder in the yard, walkers spread out
    empty = decode(sim_clips[SceneKind.EMPTY_YARD].frames[: index + 1])[index].astype(np.float32)
    for scene in sorted(PEOPLE_SCENES):
        picture = decode(sim_clips[scene].frames[: index + 1])[index].astype(np.float32)
        people = people_at(scene, index, frame_count, FPS, sprites)
        assert people, scene
        mask = np.zeros(picture.shape[:2], bool)
        matched = 0
        for i, place in enumerate(people):
            x0, y0, x1, y1 = place.box(sprites)
            if x1 - x0 < 20 or y1 - y0 < 40:
                continue
            mask[y0:y1, x0:x1] = True
            # Pixels hidden by people drawn later (nearer the camera) are not this person's.
            visible = np.ones(picture.shape[:2], bool)
            for nearer in people[i + 1 :]:
                nx0, ny0, nx1, ny1 = nearer.box(sprites)
                visible[ny0:ny1, nx0:nx1] = False
            # The inner part of the box must look like the photo crop, scaled (and mirrored) as placed.
            img, _, left, top = place.pixels(sprites)
            mx, my = (x1 - x0) // 5, (y1 - y0) // 5
            inner = np.s_[y0 + my : y1 - my, x0 + mx : x1 - mx]
            keep = visible[inner]
            if keep.sum() < 300:
                continue
            got = picture[inner][keep]
            want = img[y0 + my - top : y1 - my - top, x0 + mx - left : x1 - mx - left][keep]
            assert np.abs(got - want).mean() < 20, (scene, place)
            assert np.abs(got - empty[inner][keep]).mean() > 20, (scene, place)
            matched += 1
        assert matched >= (6 if scene is SceneKind.CROWD_FORMING else 1), scene
        # Outside the people the picture is the empty yard (same noise, flag and clock at the same index).
        assert np.abs(picture - empty)[~mask].mean() < 4, scene


def test_line_crossing_goes_left_to_right_across_the_tripwire() -> None:
    sprites = load_sprites()
    crossing = crossing_fraction()
    assert 0.5 < crossing < 0.8
    frames = 300
    before = people_at(SceneKind.LINE_CROSSING, int((crossing - 0.1) * frames), frames, FPS, sprites)
    after = people_at(SceneKind.LINE_CROSSING, int((crossing + 0.1) * frames), frames, FPS, sprites)
    assert LINE_CROSSING.direction == "left_to_right"
    assert before[0].foot_x < LINE_CROSSING.position < after[0].foot_x
    # Big enough for a detector on both sides of the line.
    assert before[0].height > 150 and after[0].height > 150
    # He came over the wall: early in the clip he stands on it.
    on_wall = people_at(SceneKind.LINE_CROSSING, int(0.25 * frames), frames, FPS, sprites)
    assert on_wall and on_wall[0].foot_y < WALL_TOP_Y


def test_fault_scenes_look_faulty_and_clean_scenes_change(sim_clips: ClipLibrary) -> None:
    def pictures(scene: SceneKind) -> list[np.ndarray]:
        return decode(sim_clips[scene].frames[:8])

    def sharpness(img: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())

    # Clean scenes change every frame (sensor grain, clock, flag); the frozen one repeats its picture, but for
    # a few macroblocks that the encoder touches up after each keyframe.
    def changes(scene: SceneKind) -> list[float]:
        frames = decode(sim_clips[scene].frames)
        return [float(np.abs(a.astype(int) - b).mean()) for a, b in itertools.pairwise(frames)]

    assert min(changes(SceneKind.EMPTY_YARD)) > 0.5
    assert min(changes(SceneKind.PERSON_LINGERING)) > 0.5
    assert max(changes(SceneKind.FROZEN)) < 0.06

    yard = pictures(SceneKind.EMPTY_YARD)
    assert pictures(SceneKind.BLACK)[3].max() < 24
    assert pictures(SceneKind.TOO_DARK)[3].mean() < 35
    cast = pictures(SceneKind.COLOUR_CAST)[3].reshape(-1, 3).mean(axis=0)
    assert cast[1] > 2 * cast[0] and cast[1] > 2 * cast[2]
    assert sharpness(pictures(SceneKind.BLURRED)[3]) < sharpness(yard[3]) / 10
    covered = cv2.cvtColor(pictures(SceneKind.LENS_COVERED)[3], cv2.COLOR_BGR2GRAY)
    assert (covered < 40).mean() > 0.7


# -- the RTSP server ------------------------------------------------------------------------------------------


@dataclass
class StreamSample:
    width: int
    height: int
    packets: int
    keyframes: list[int]
    pts_s: list[float]
    arrivals: list[float]


def read_stream(url: str, seconds: float) -> StreamSample:
    """Demux ``url`` for ``seconds``: sizes, keyframe packet indexes, timestamps and arrival times."""
    with av.open(url, options=OPEN_OPTIONS, timeout=(5, 5)) as container:
        stream = container.streams.video[0]
        keys: list[int] = []
        pts: list[float] = []
        arrivals: list[float] = []
        started = time.monotonic()
        for packet in container.demux(stream):
            if not packet.size:
                continue
            if packet.is_keyframe:
                keys.append(len(arrivals))
            if packet.pts is not None and packet.time_base is not None:
                pts.append(float(packet.pts * packet.time_base))
            arrivals.append(time.monotonic())
            if arrivals[-1] - started > seconds:
                break
        return StreamSample(
            stream.codec_context.width, stream.codec_context.height, len(arrivals), keys, pts, arrivals
        )


def wait_until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def simulator(sim_clips: ClipLibrary, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CameraSimulator]:
    scenes = {"CAM00002": SceneKind.PEOPLE_WALKING, "CAM00003": SceneKind.CROWD_FORMING}
    specs = build_camera_specs(camera_codes(10), scenes)
    sim = CameraSimulator(specs, cache_dir=tmp_path_factory.mktemp("unused"), port=0, clips=sim_clips)
    sim.start()
    yield sim
    sim.stop()


@pytest.mark.rtsp
def test_ten_cameras_serve_640x360_at_15fps_with_2s_gop(simulator: CameraSimulator) -> None:
    assert simulator.port > 0
    meter = CpuMeter(simulator.stats)
    with ThreadPoolExecutor(max_workers=10) as pool:
        samples = list(pool.map(lambda code: read_stream(simulator.url(code), 4.3), simulator.codes))
    for code, sample in zip(simulator.codes, samples, strict=True):
        assert (sample.width, sample.height) == (640, 360), code
        steps = np.diff(sample.pts_s)
        assert np.allclose(steps, 1 / 15, atol=0.002), (code, steps[:10])
        rate = (sample.packets - 1) / (sample.arrivals[-1] - sample.arrivals[0])
        assert 13.0 < rate < 17.0, (code, rate)
        assert len(sample.keyframes) >= 2 and set(np.diff(sample.keyframes)) == {GOP}, (code, sample.keyframes)
    cpu = meter.sample()
    assert cpu.interval_s > 4


@pytest.mark.rtsp
def test_scheduled_scene_switch_is_seen(simulator: CameraSimulator) -> None:
    code = "CAM00002"
    with av.open(simulator.url(code), options=OPEN_OPTIONS, timeout=(5, 5)) as container:
        switch_at = simulator.elapsed_s() + 1.0
        simulator.set_schedule(
            code,
            CameraSchedule(
                default_scene=SceneKind.PEOPLE_WALKING, segments=[SceneSegment(at_s=switch_at, scene="black")]
            ),
        )
        means: list[tuple[float, float]] = []
        for frame in container.decode(video=0):
            means.append((simulator.elapsed_s(), float(frame.to_ndarray(format="gray").mean())))
            if means[-1][0] > switch_at + 3.0:
                break
    before = [m for t, m in means if t < switch_at]
    after = [m for t, m in means if t > switch_at + 2.2]  # a switch waits for the next keyframe (<= 2 s)
    assert before and min(before) > 60
    assert after and max(after) < 20


@pytest.mark.rtsp
def test_stall_times_out_readers_then_recovers(simulator: CameraSimulator) -> None:
    code = "CAM00004"
    options = {**OPEN_OPTIONS, "timeout": "2000000"}
    with av.open(simulator.url(code), options=options, timeout=(5, 2)) as container:
        now = simulator.elapsed_s()
        simulator.set_schedule(code, CameraSchedule(drops=[Drop(at_s=now + 0.5, duration_s=8, mode="stall")]))
        started = time.monotonic()
        with pytest.raises(av.error.FFmpegError):  # TimeoutError or ExitError (PyAV's read timeout)
            for _ in container.demux(video=0):
                assert time.monotonic() - started < 12
        assert time.monotonic() - started < 9
    simulator.set_schedule(code, CameraSchedule())
    assert read_stream(simulator.url(code), 0.5).packets > 3


@pytest.mark.rtsp
def test_refuse_closes_sessions_and_answers_503(simulator: CameraSimulator) -> None:
    code = "CAM00005"
    with av.open(simulator.url(code), options=OPEN_OPTIONS, timeout=(5, 5)) as container:
        now = simulator.elapsed_s()
        simulator.set_schedule(code, CameraSchedule(drops=[Drop(at_s=now + 0.5, duration_s=60, mode="refuse")]))
        started = time.monotonic()
        packets = sum(1 for _ in container.demux(video=0))  # ends: the server closed the connection
        assert packets > 0 and time.monotonic() - started < 4
    with pytest.raises(av.error.HTTPServerError):
        av.open(simulator.url(code), options=OPEN_OPTIONS, timeout=(5, 5))
    simulator.set_schedule(code, CameraSchedule())  # the drop is over
    assert read_stream(simulator.url(code), 0.5).packets > 3


@pytest.mark.rtsp
def test_disconnect_ends_stream_and_reconnect_works(simulator: CameraSimulator) -> None:
    code = "CAM00006"
    with av.open(simulator.url(code), options=OPEN_OPTIONS, timeout=(5, 5)) as container:
        now = simulator.elapsed_s()
        simulator.set_schedule(code, CameraSchedule(drops=[Drop(at_s=now + 0.5, mode="disconnect")]))
        started = time.monotonic()
        packets = sum(1 for _ in container.demux(video=0))
        assert packets > 0 and time.monotonic() - started < 4
    sample = read_stream(simulator.url(code), 1.0)
    assert sample.packets > 8 and sample.width == 640


@pytest.mark.rtsp
def test_port_in_use_is_a_clear_error(simulator: CameraSimulator, sim_clips: ClipLibrary, tmp_path: Path) -> None:
    clash = CameraSimulator([CameraSpec(code="X")], cache_dir=tmp_path, port=simulator.port, clips=sim_clips)
    with pytest.raises(SimulatorError, match="cannot listen"):
        clash.start()
    clash.stop()


@pytest.mark.rtsp
def test_immediate_reconnects_are_served(simulator: CameraSimulator) -> None:
    # Readers reconnect right after an error; the old session may still be tearing down on the server.
    url = simulator.url("CAM00008")
    for _ in range(4):
        with av.open(url, options=OPEN_OPTIONS, timeout=(5, 5)) as container:
            packets = container.demux(video=0)
            first = next(packets)
            assert first.is_keyframe  # a new stream starts at a keyframe
            next(packets)


@pytest.mark.rtsp
def test_unknown_camera_is_404_and_stats_count_streams(simulator: CameraSimulator) -> None:
    with pytest.raises(av.error.HTTPNotFoundError):
        av.open(simulator.url("CAM00001").replace("CAM00001", "NOPE"), options=OPEN_OPTIONS, timeout=(5, 5))
    with pytest.raises(UnknownCameraError):
        simulator.url("NOPE")
    with av.open(simulator.url("CAM00007"), options=OPEN_OPTIONS, timeout=(5, 5)) as container:
        next(container.demux(video=0))
        stats = simulator.stats()
        assert stats.cameras == 10 and stats.streams >= 1 and stats.clients >= 1 and stats.frames_sent > 0
    assert wait_until(lambda: simulator.stats().clients == 0 and simulator.stats().streams == 0, 5.0)


@pytest.mark.rtsp
def test_scripted_schedule_at_construction_and_clean_stop(sim_clips: ClipLibrary, tmp_path: Path) -> None:
    specs = [
        CameraSpec(code="X", schedule=CameraSchedule(segments=[SceneSegment(at_s=1.0, scene="black")])),
        CameraSpec(code="Y", schedule=CameraSchedule(drops=[Drop(at_s=0, mode="refuse")])),
    ]

    def loop_threads() -> int:
        return sum(1 for t in threading.enumerate() if t.name == "camera-sim-loop")

    before = loop_threads()
    with CameraSimulator(specs, cache_dir=tmp_path, port=0, clips=sim_clips) as sim:
        assert loop_threads() == before + 1
        with pytest.raises(av.error.HTTPServerError):
            av.open(sim.url("Y"), options=OPEN_OPTIONS, timeout=(5, 5))
        with av.open(sim.url("X"), options=OPEN_OPTIONS, timeout=(5, 5)) as container:
            for frame in container.decode(video=0):
                if sim.elapsed_s() > 3.5:
                    assert frame.to_ndarray(format="gray").mean() < 20
                    break
        with pytest.raises(SimulatorError):
            sim.start()
    assert not sim.running
    assert loop_threads() == before
    sim.stop()  # twice is fine


def test_fleet_specs_add_cameras_named_in_the_schedule_file() -> None:
    fleet = FleetSchedule(
        default=CameraSchedule.showing("black"),
        cameras={"CAM00002": CameraSchedule.showing("frozen"), "GATE-1": CameraSchedule.showing("crowd_forming")},
    )
    specs = fleet_specs(camera_codes(2), fleet)
    assert [(s.code, s.schedule.default_scene) for s in specs] == [
        ("CAM00001", SceneKind.BLACK),
        ("CAM00002", SceneKind.FROZEN),
        ("GATE-1", SceneKind.CROWD_FORMING),
    ]


@pytest.mark.rtsp
def test_simulate_command_reports_cpu_per_stream(sim_clips: ClipLibrary, sim_data_dir: Path) -> None:
    result = CliRunner().invoke(
        simulate_command,
        [
            "--cameras", "3", "--port", "0", "--data-dir", str(sim_data_dir), "--clip-gops",
            str(sim_clips.settings.gops), "--report-every", "0.5", "--run-for", "1.2",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "loaded from cache" in result.output
    assert "/CAM00001" in result.output and "/CAM00003" in result.output
    assert "no stream watched" in result.output
    assert "simulator stopped" in result.output


@pytest.mark.rtsp
def test_simulate_process_stops_on_sigterm(sim_clips: ClipLibrary, sim_data_dir: Path) -> None:
    code = "from ingest.simulator.cli import simulate_command; simulate_command()"
    args = ["--cameras", "2", "--port", "0", "--data-dir", str(sim_data_dir)]
    args += ["--clip-gops", str(sim_clips.settings.gops), "--report-every", "0.5"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "stream(s) watched" in line:  # serving and reporting
                break
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        rest, _ = proc.communicate(timeout=10)
        assert time.monotonic() - started < 5
        assert proc.returncode == 0, "".join(lines) + rest
        assert "simulator stopped" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
