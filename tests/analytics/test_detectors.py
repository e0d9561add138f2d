"""Detector backends on real photos with the real models: same answers from onnx and OpenCV, batching changes
nothing, the fall model runs, and configuration mistakes are named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from analytics.detections import Detections, Frame
from analytics.detectors.base import create_detector
from analytics.detectors.onnx import providers_for
from analytics.errors import DetectorError, ModelFileError
from config.analytics import OnnxDetectorConfig, OpencvDetectorConfig, UltralyticsDetectorConfig
from tests.analytics import read_photo

AT = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def frames(photos: dict[str, Path]) -> list[Frame]:
    return [Frame(f"CAM-{name}", AT, read_photo(path)) for name, path in sorted(photos.items())]


def people(d: Detections) -> list[float]:
    return sorted((round(float(s), 2) for s in d.only("person").scores), reverse=True)


def test_onnx_yolov3_tiny_finds_the_people(models_dir: Path, frames: list[Frame]) -> None:
    detector = create_detector(OnnxDetectorConfig(), models_dir)
    bus, zidane = detector.detect(frames)
    assert bus.camera_code == "CAM-bus" and bus.captured_at == AT
    # The official darknet weights on bus.jpg at 416 (FACTS.md): people at 0.97, 0.66, 0.58, 0.37 and the bus;
    # the 0.58 box lies inside the 0.66 one (the man cut off at the right edge, twice): a duplicate, dropped.
    assert people(bus) == pytest.approx([0.97, 0.66, 0.37], abs=0.02)
    raw = create_detector(OnnxDetectorConfig(merge_contained=0), models_dir).detect(frames[:1])[0]
    assert people(raw) == pytest.approx([0.97, 0.66, 0.58, 0.37], abs=0.02)
    assert "bus" in bus.labels()
    assert people(zidane)[:2] == pytest.approx([0.93, 0.65], abs=0.02)
    # The strongest person on bus.jpg stands at the left edge, full height.
    best = bus.boxes[int(np.argmax(np.where(bus.class_ids == 0, bus.scores, 0)))]
    assert best[0] < 0.1 and best[3] > 0.8


def test_opencv_backend_agrees_with_onnx(models_dir: Path, frames: list[Frame]) -> None:
    onnx_result = create_detector(OnnxDetectorConfig(), models_dir).detect(frames)
    opencv_result = create_detector(OpencvDetectorConfig(), models_dir).detect(frames)
    for a, b in zip(onnx_result, opencv_result, strict=True):
        assert a.labels() == b.labels()
        np.testing.assert_allclose(a.boxes, b.boxes, atol=2e-3)
        np.testing.assert_allclose(a.scores, b.scores, atol=2e-3)


def test_batch_gives_the_same_as_one_by_one(models_dir: Path, frames: list[Frame]) -> None:
    detector = create_detector(OnnxDetectorConfig(), models_dir)
    together = detector.detect(frames * 3)
    alone = [detector.detect([f])[0] for f in frames]
    for i, d in enumerate(together):
        np.testing.assert_allclose(d.boxes, alone[i % 2].boxes, atol=1e-4)


def test_letterbox_is_undone(models_dir: Path, frames: list[Frame]) -> None:
    # The bus photo pasted into the right half of a wider black frame: same boxes, shifted and scaled in x.
    detector = create_detector(OnnxDetectorConfig(classes=("person",)), models_dir)
    bus = frames[0].image
    height, width = bus.shape[:2]
    wide = np.zeros((height, width * 2, 3), np.uint8)
    wide[:, width:] = bus
    alone = detector.detect([frames[0]])[0]
    shifted = detector.detect([Frame("CAM-wide", AT, wide)])[0]
    strongest = lambda d: d.boxes[int(np.argmax(d.scores))]  # noqa: E731
    a, b = strongest(alone), strongest(shifted)
    # Half the resolution moves a box edge by a few hundredths; a letterbox not undone would move it by 0.25.
    np.testing.assert_allclose([0.5 + a[0] / 2, a[1], 0.5 + a[2] / 2, a[3]], b, atol=0.04)


def test_fall_model_runs_frame_by_frame_in_a_batch(models_dir: Path, frames: list[Frame]) -> None:
    detector = create_detector(OnnxDetectorConfig(model="fall-yolov8s.onnx", input_size=640), models_dir)
    assert detector.names == ("Normal", "Fall")
    bus, zidane = detector.detect(frames)
    assert len(bus.only("Normal")) >= 3 and len(zidane.only("Normal")) >= 2
    assert len(bus.only("Fall")) == 0  # people standing


def test_ultralytics_backend_agrees_with_onnx_on_the_fall_model(models_dir: Path, frames: list[Frame]) -> None:
    # best.pt through ultralytics (torch on the CPU) and best_fp16.onnx (an fp32 export of it) through onnxruntime.
    ultra = create_detector(UltralyticsDetectorConfig(), models_dir)
    onnx = create_detector(OnnxDetectorConfig(model="fall-yolov8s.onnx", input_size=640), models_dir)
    assert ultra.names == onnx.names == ("Normal", "Fall")
    for a, b in zip(ultra.detect(frames), onnx.detect(frames), strict=True):
        assert a.labels() == b.labels() and len(a) >= 2
        np.testing.assert_allclose(a.boxes, b.boxes, atol=5e-3)
        np.testing.assert_allclose(a.scores, b.scores, atol=5e-3)


def test_configuration_mistakes_are_named(models_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="takes 640x640 input: set input_size to 640, not 416"):
        create_detector(OnnxDetectorConfig(model="fall-yolov8s.onnx", input_size=416), models_dir)
    with pytest.raises(DetectorError, match=r"classes \['persn'\] are not in the model's classes"):
        create_detector(OnnxDetectorConfig(classes=("persn",)), models_dir)
    with pytest.raises(ModelFileError, match="is missing: run `campuswatch models fetch"):
        create_detector(OnnxDetectorConfig(), tmp_path)
    with pytest.raises(DetectorError, match=r"does not exist"):
        create_detector(OnnxDetectorConfig(model=str(tmp_path / "nope.onnx")), models_dir)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(DetectorError, match="onnxruntime cannot load"):
        create_detector(OnnxDetectorConfig(model=str(garbage)), models_dir)


def test_execution_providers() -> None:
    cpu_only = ["CPUExecutionProvider"]
    assert providers_for("auto", cpu_only) == cpu_only
    assert providers_for("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"])[0] == "CUDAExecutionProvider"
    with pytest.raises(DetectorError, match="needs onnxruntime's CUDAExecutionProvider"):
        providers_for("cuda", cpu_only)
