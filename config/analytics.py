"""The ``analytics`` section: model files, detector backends and cross-camera batching.

A detector is chosen by its ``type`` (``onnx``, ``opencv``, ``ultralytics``); each type has its own model with
only the fields it understands. Model files are named as ``campuswatch models fetch`` stores them in the models
directory (``models_dir``, default ``<data_dir>/models``), or given as absolute paths.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from config.rules import CalendarConfig, CameraRulesConfig


class _Model(BaseModel):
    # Not config.schema.Section: schema imports this module, so this one must not import schema.
    model_config = ConfigDict(extra="forbid", frozen=True)


class _DetectorBase(_Model):
    score_threshold: float = Field(0.25, gt=0, lt=1, description="Detections scoring below this are dropped")
    nms_iou: float = Field(0.45, gt=0, lt=1, description="Overlap (IoU) above which a weaker box of a class goes")
    classes: tuple[str, ...] | None = Field(
        None, description="Keep only these class names (e.g. [person, car]); none: every class of the model"
    )
    input_size: int = Field(416, ge=64, le=1536, multiple_of=32, description="Square network input in pixels")
    merge_contained: float = Field(
        0.8, ge=0, le=1, description="A box this much inside a stronger one of its class is a duplicate (0: keep)"
    )


class OnnxDetectorConfig(_DetectorBase):
    """onnxruntime on an ONNX file: the converted yolov3-tiny or a YOLOv8/11-style export."""

    type: Literal["onnx"] = "onnx"
    model: str = Field("yolov3-tiny.onnx", min_length=1, description="ONNX file in the models dir, or a path")
    head: Literal["auto", "darknet", "yolov8"] = Field(
        "auto", description="Output layout: auto reads the file's metadata (darknet heads) and else assumes YOLOv8"
    )
    device: Literal["auto", "cpu", "cuda", "tensorrt"] = Field(
        "auto",
        description="Execution provider: auto takes TensorRT, then CUDA where onnxruntime has them, else CPU",
    )
    threads: int = Field(0, ge=0, le=256, description="Intra-op threads on the CPU (0: onnxruntime's default)")


class OpencvDetectorConfig(_DetectorBase):
    """OpenCV DNN on darknet files."""

    type: Literal["opencv"] = "opencv"
    cfg: str = Field("yolov3-tiny.cfg", min_length=1, description="Darknet .cfg in the models dir, or a path")
    weights: str = Field("yolov3-tiny.weights", min_length=1, description="Darknet .weights file")
    names: str = Field("coco.names", min_length=1, description="Class names, one per line")


class UltralyticsDetectorConfig(_DetectorBase):
    """``ultralytics.YOLO`` on a ``.pt`` model (torch and ultralytics: ``scripts/install-ultralytics.sh``)."""

    type: Literal["ultralytics"] = "ultralytics"
    model: str = Field("fall-yolov8s.pt", min_length=1, description=".pt file in the models directory, or a path")
    input_size: int = Field(640, ge=64, le=1536, multiple_of=32, description="Square network input in pixels")
    device: str = Field("cpu", pattern=r"^(cpu|cuda(:\d+)?|\d+)$", description="torch device: cpu, cuda, cuda:0")


DetectorConfig = Annotated[
    OnnxDetectorConfig | OpencvDetectorConfig | UltralyticsDetectorConfig, Field(discriminator="type")
]


class BatchConfig(_Model):
    """Frames from many cameras gathered into one inference call."""

    max_batch: int = Field(8, ge=1, le=128, description="Most frames in one inference call")
    max_wait_ms: float = Field(
        40.0, ge=0, le=2000, description="Longest a frame waits for others to fill its batch (latency bound)"
    )


class AnalyticsConfig(_Model):
    """Detection on the frames of cameras in analyze mode."""

    enabled: bool = Field(True, description="Run detection (cameras are analysed only while rules need them)")
    models_dir: Path | None = Field(None, description="Where model files are (default: <data_dir>/models)")
    detector: DetectorConfig = Field(
        default_factory=lambda: OnnxDetectorConfig(
            classes=("person", "bicycle", "car", "motorbike", "bus", "truck")
        ),
        description="People and vehicles: COCO yolov3-tiny by default",
    )
    fall_detector: DetectorConfig | None = Field(
        default_factory=lambda: OnnxDetectorConfig(model="fall-yolov8s.onnx", input_size=640, head="yolov8"),
        description="The fall model (classes Normal / Fall); none: no fall rule",
    )
    batch: BatchConfig = Field(default_factory=BatchConfig, description="Cross-camera batching")
    fall_every_s: float = Field(
        1.0,
        ge=0,
        le=60,
        description="The fall model (5x the cost of the main one) runs on a camera at most once per this many "
        "seconds; its result holds in between (a fall lasts)",
    )
    analyze_check_s: float = Field(
        5.0, ge=0.5, le=300, description="How often the cameras whose rules are active are put into analyze mode"
    )
    calendar: CalendarConfig = Field(default_factory=CalendarConfig, description="School calendar and hours")
    cameras: dict[str, CameraRulesConfig] = Field(
        default_factory=dict, description="Zones, lines and rules by camera code"
    )

    @field_validator("models_dir")
    @classmethod
    def _absolute_or_relative(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None
