"""Benchmark: the detection pipeline against the raw backend, the gain of batching, and alarm latency over RTSP.

Run from the repository root (after ``campuswatch models fetch --models-dir .cache/models``)::

    .venv/bin/python benchmarks/detect_pipeline.py [--batch 8] [--seconds 20] [--latency-seconds 60]

Measured one after another in the same run, with the COCO yolov3-tiny (onnx backend, CPU unless ``--device``):

(raw)      onnxruntime ``run`` on ready letterboxed batches of ``--batch`` frames: the backend alone.
(pipeline) frames decoded by PyAV from the simulator's H.264 clips (people walking, a crowd), handed to
           :class:`analytics.pipeline.AnalyticsPipeline` by one feeder per camera (2 x batch cameras, each
           sending its next frame when the previous one is done: the pipeline is never starved nor flooded),
           through batching, letterbox, inference, decoding, NMS, ByteTrack and the rules, with events stored in
           SQLite: frames/s. Goal: pipeline / raw >= 0.9.
(batch 1)  the same pipeline with ``max_batch = 1``: the batch gain is pipeline / batch 1.
(latency)  the RTSP simulator and the embedded ingest worker in analyze mode at 5 fps: 4 cameras switch between
           an empty yard and people walking every 6 s (scene switches take effect at the stream's next
           keyframe); an intrusion rule raises an event for every switch to people. Latency = the event's
           arrival on the bus minus the arrival of the first keyframe of the new scene. Goal: p99 <= 1 s.

The last line is JSON: ``{"bench": "detect_pipeline", "pipeline_over_raw": ..., "batch_gain": ...,
"latency_p50_s": ..., "latency_p99_s": ...}``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import av
import numpy as np

from analytics.detections import Detections, Frame, Image
from analytics.detectors.base import create_detector
from analytics.events import EVENTS_TOPIC, EventRecorder
from analytics.pipeline import AnalyticsPipeline
from analytics.rules import RuleEvent
from analytics.yolo import letterbox
from campuswatch.database import upgrade
from config import Settings, load_settings
from config.analytics import OnnxDetectorConfig
from ingest.membership import LocalMembership
from ingest.simulator import (
    CameraSchedule,
    CameraSimulator,
    ClipLibrary,
    ClipSettings,
    SceneKind,
    SceneSegment,
    build_camera_specs,
)
from ingest.thumbnails import MemoryThumbnailStore
from ingest.worker import IngestWorker
from kernel.bus import InMemoryBus
from kernel.clock import utcnow
from kernel.db import make_engine, make_session_factory, session_scope
from kernel.paths import REPO_ROOT
from kernel.secrets import SecretBox
from registry.fleet_file import FleetRow
from registry.fleet_io import import_rows
from registry.generate import generate_fleet

log = logging.getLogger("benchmarks.detect_pipeline")
YARD = {"name": "yard", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]}
HOLIDAY = {"start": date(2000, 1, 1), "end": date(2099, 12, 31)}
SWITCH_S = 6.0


def bgr(frame: av.VideoFrame) -> Image:
    """A decoded frame as the BGR image readers hand on."""
    return np.asarray(frame.to_ndarray(format="bgr24"), dtype=np.uint8)


def decoded_frames(clips: ClipLibrary, scenes: list[SceneKind]) -> list[list[Image]]:
    """Every frame of each scene's clip, decoded once (the feeders decode again as they send)."""
    out = []
    for scene in scenes:
        codec = av.CodecContext.create("h264", "r")
        out.append([bgr(f) for au in clips[scene].frames for f in codec.decode(av.Packet(au))])
    return out


def bench_raw(settings: Settings, images: list[Image], batch: int, seconds: float) -> float:
    """Frames/s of the backend's own inference call on ready letterboxed batches."""
    detector = create_detector(settings.analytics.detector, settings.models_dir())
    prepared = letterbox(images[:batch], detector.input_size)
    detector.infer(prepared)  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        detector.infer(prepared)
        done += batch
    return done / (time.perf_counter() - start)


def bench_pipeline(settings: Settings, clips: ClipLibrary, cameras: int, seconds: float) -> dict[str, float]:
    """Frames/s through decode -> batch -> infer -> track -> rules, closed loop: one frame in flight per camera."""
    with tempfile.TemporaryDirectory(prefix="cw-bench-detect-") as tmp:
        engine = make_engine(f"sqlite:///{tmp}/db.sqlite")
        upgrade(engine)
        factory = make_session_factory(engine)
        codes = seed(factory, cameras, lambda code: f"rtsp://127.0.0.1:1/{code}", Path(tmp))
        rules = {code: {"zones": [YARD], "rules": [intrusion_rule()]} for code in codes}
        cfg = settings.model_copy(update={"analytics": analytics_with(settings, rules)})
        ready = {code: threading.Event() for code in codes}

        def done(frame: Frame, _d: Detections, _e: list[RuleEvent]) -> None:
            ready[frame.camera_code].set()

        pipeline = AnalyticsPipeline(cfg, EventRecorder(factory, InMemoryBus(), source="bench"), on_result=done)
        stop = threading.Event()
        scenes = [SceneKind.PEOPLE_WALKING, SceneKind.CROWD_FORMING]

        def feed(code: str, scene: SceneKind) -> None:
            aus = clips[scene].frames
            codec = av.CodecContext.create("h264", "r")
            codec.thread_count = 1
            i = 0
            while not stop.is_set():
                for frame in codec.decode(av.Packet(aus[i % len(aus)])):
                    ready[code].clear()
                    pipeline.on_frame(code, utcnow(), bgr(frame))
                    ready[code].wait(5)
                i += 1

        pipeline.start()
        feeders = [
            threading.Thread(target=feed, args=(code, scenes[n % 2]), name=f"feed-{n}")
            for n, code in enumerate(codes)
        ]
        for feeder in feeders:
            feeder.start()
        try:
            time.sleep(3)  # warm-up
            before, start = pipeline.batcher.stats.frames_done, time.perf_counter()
            time.sleep(seconds)
            frames = pipeline.batcher.stats.frames_done - before
            elapsed = time.perf_counter() - start
        finally:
            stop.set()
            for code in codes:
                ready[code].set()
            for feeder in feeders:
                feeder.join(10)
            pipeline.stop()
            engine.dispose()
        stats = pipeline.batcher.stats
        return {"fps": frames / elapsed, "mean_batch": stats.mean_batch(), "failures": stats.failures}


def intrusion_rule() -> dict[str, Any]:
    return {
        "type": "intrusion",
        "name": "intrusion",
        "zone": "yard",
        "min_seconds": 0,
        "end_after_s": 1.0,
        "cooldown_s": 0,
    }


def analytics_with(settings: Settings, cameras: dict[str, Any]) -> Any:
    data = settings.analytics.model_dump()
    data["cameras"] = cameras
    data["calendar"]["holidays"] = [HOLIDAY]
    return type(settings.analytics).model_validate(data)


def seed(factory: Any, count: int, url: Any, data_dir: Path) -> list[str]:
    rows = generate_fleet(1, 1, count, seed=3)
    for row in rows:
        row.update(main_url=url(row["camera_code"]), sub_url="", username="", password="", enabled="true")
    with session_scope(factory) as session:
        fleet = [FleetRow(i + 2, row) for i, row in enumerate(rows)]
        import_rows(session, fleet, SecretBox.for_data_dir(data_dir), source="benchmark")
    return [row["camera_code"] for row in rows]


def bench_latency(settings: Settings, clips: ClipLibrary, seconds: float) -> dict[str, Any]:
    """Scene switch in the RTSP stream -> event on the bus, for 4 cameras in analyze mode at 5 fps."""
    codes = [row["camera_code"] for row in generate_fleet(1, 1, 4, seed=3)]
    switches = [SWITCH_S * k for k in range(1, int(seconds / SWITCH_S) + 2)]
    schedules = {
        code: CameraSchedule(
            segments=tuple(
                SceneSegment(
                    at_s=at + n * 1.5, scene=SceneKind.PEOPLE_WALKING if k % 2 == 0 else SceneKind.EMPTY_YARD
                )
                for k, at in enumerate(switches)
            )
        )
        for n, code in enumerate(codes)
    }
    with tempfile.TemporaryDirectory(prefix="cw-bench-latency-") as tmp:
        simulator = CameraSimulator(build_camera_specs(codes, schedules), cache_dir=Path(tmp), port=0, clips=clips)
        simulator.start()
        sim_t0 = time.monotonic() - simulator.elapsed_s()
        engine = make_engine(f"sqlite:///{tmp}/db.sqlite")
        upgrade(engine)
        factory = make_session_factory(engine)
        seed(factory, 4, simulator.url, Path(tmp))
        rules = {code: {"zones": [YARD], "rules": [intrusion_rule()]} for code in codes}
        cfg = settings.model_copy(
            update={
                "analytics": analytics_with(settings, rules),
                "ingest": settings.ingest.model_copy(update={"analyze_fps": 5.0}),
            }
        )
        bus = InMemoryBus()
        consumer = bus.consumer(EVENTS_TOPIC, "bench", "b")
        pipeline = AnalyticsPipeline(cfg, EventRecorder(factory, bus, source="bench", flush_s=0.05))
        membership = LocalMembership(heartbeat_s=cfg.ingest.heartbeat_s, ttl_s=cfg.ingest.heartbeat_ttl_s)
        worker = IngestWorker(
            cfg, factory, bus, MemoryThumbnailStore(), membership, frames=pipeline, analyze_check_s=1.0
        )
        keyframes: dict[str, set[float]] = {code: set() for code in codes}
        arrivals: list[tuple[str, float]] = []
        pipeline.start()
        worker.start()
        try:
            end = time.monotonic() + seconds + 8
            while time.monotonic() < end:
                for code, age in worker.since_keyframe().items():
                    keyframes[code].add(round(time.monotonic() - age, 4))
                for delivery in consumer.fetch(max_count=50, block_s=0.02):
                    if delivery.event.type == "event.started":
                        arrivals.append((str(delivery.event.payload["camera_code"]), time.monotonic()))
                    consumer.ack(delivery)
        finally:
            worker.stop()
            pipeline.stop()
            simulator.stop()
            engine.dispose()
    latencies, missed = [], 0
    for n, code in enumerate(codes):
        people_at = [sim_t0 + at + n * 1.5 for k, at in enumerate(switches) if k % 2 == 0]
        grid = sorted(keyframes[code])
        mine = sorted(t for c, t in arrivals if c == code)
        for at in people_at:
            first_key = next((k for k in grid if k >= at), None)
            event = next((t for t in mine if first_key is not None and t >= first_key), None)
            if first_key is None or first_key > time.monotonic() - 8:
                continue  # the switch came too late in the run to count
            if event is None or event - first_key > SWITCH_S:
                missed += 1
                continue
            latencies.append(event - first_key)
    return {"latencies": latencies, "missed": missed}


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=8, help="batch size of raw and pipeline (default 8)")
    parser.add_argument("--seconds", type=float, default=20.0, help="throughput window per mode (default 20)")
    parser.add_argument("--latency-seconds", type=float, default=60.0, help="latency run length (default 60)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "tensorrt", "auto"])
    parser.add_argument("--models-dir", type=Path, default=REPO_ROOT / ".cache" / "models")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    detector = OnnxDetectorConfig(device=args.device, classes=("person",))
    base = load_settings(
        None,
        data_dir=Path(tempfile.gettempdir()) / "cw-bench-detect",
        analytics={
            "models_dir": str(args.models_dir),
            "fall_detector": None,
            "detector": detector.model_dump(),
            "batch": {"max_batch": args.batch, "max_wait_ms": 20},
        },
    )
    clips = ClipLibrary.load_or_generate(REPO_ROOT / ".cache" / "test-clips", ClipSettings())
    images = decoded_frames(clips, [SceneKind.PEOPLE_WALKING])[0]
    raw = bench_raw(base, images, args.batch, args.seconds)
    print(f"raw backend, batch {args.batch}: {raw:.1f} frames/s")
    piped = bench_pipeline(base, clips, 2 * args.batch, args.seconds)
    print(f"pipeline, batch {args.batch}: {piped['fps']:.1f} frames/s (mean batch {piped['mean_batch']:.1f})")
    single_cfg = base.model_copy(
        update={
            "analytics": base.analytics.model_copy(
                update={"batch": base.analytics.batch.model_copy(update={"max_batch": 1})}
            )
        }
    )
    single = bench_pipeline(single_cfg, clips, 2 * args.batch, args.seconds)
    print(f"pipeline, batch 1: {single['fps']:.1f} frames/s")
    latency = bench_latency(base, clips, args.latency_seconds)
    lat = latency["latencies"]
    p50, p99 = percentile(lat, 50), percentile(lat, 99)
    print(
        f"latency scene switch -> bus over {len(lat)} events: p50 {p50:.3f} s, p99 {p99:.3f} s, "
        f"max {max(lat, default=float('nan')):.3f} s; missed {latency['missed']}"
    )
    ratio, gain = piped["fps"] / raw, piped["fps"] / single["fps"]
    print(
        f"pipeline_over_raw {ratio:.3f} (goal >= 0.9: {'met' if ratio >= 0.9 else 'NOT MET'}); "
        f"batch_gain {gain:.3f}; latency p99 {p99:.3f} s (goal <= 1 s: {'met' if p99 <= 1.0 else 'NOT MET'})"
    )
    result = {
        "bench": "detect_pipeline",
        "pipeline_over_raw": round(ratio, 3),
        "batch_gain": round(gain, 3),
        "latency_p50_s": round(p50, 3),
        "latency_p99_s": round(p99, 3),
        "raw_fps": round(raw, 1),
        "pipeline_fps": round(piped["fps"], 1),
        "pipeline_batch1_fps": round(single["fps"], 1),
        "batch": args.batch,
        "latency_events": len(lat),
        "latency_missed": latency["missed"],
        "device": args.device,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
