"""The detector plugin interface and its factory.

A backend implements :meth:`Detector.infer` on a letterboxed batch; :meth:`Detector.detect` does the rest the
same way for all of them (letterbox, decode, NMS, frame coordinates, our :class:`Detections`).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from analytics.detections import Detections, FloatArray, Frame
from analytics.errors import DetectorError
from analytics.model_files import model_path
from analytics.yolo import Letterboxed, letterbox, to_detections
from config.analytics import DetectorConfig, OnnxDetectorConfig, OpencvDetectorConfig, UltralyticsDetectorConfig

log = logging.getLogger(__name__)

Decoded = tuple[FloatArray, FloatArray, npt.NDArray[np.int64]]
"""N x K x 4 boxes (xyxy, network pixels), N x K scores, N x K class indices."""


def resolve_model(models_dir: Path, name: str) -> Path:
    """A model file by name in the models directory (checked against its checksum), or an explicit path."""
    path = Path(name).expanduser()
    if path.is_absolute() or len(path.parts) > 1:
        if not path.is_file():
            raise DetectorError(f"model file {path} does not exist")
        return path
    return model_path(models_dir, name)


class Detector(ABC):
    """One loaded model. ``detect`` is thread-safe (calls are serialised; batching happens before it)."""

    def __init__(self, names: tuple[str, ...], input_size: int, config: DetectorConfig) -> None:
        if not names:
            raise DetectorError("a detector needs class names")
        self.names = names
        self.input_size = input_size
        self.config = config
        self._lock = threading.Lock()
        self._canvas: npt.NDArray[np.uint8] | None = None
        keep = config.classes
        if keep is not None:
            unknown = sorted(set(keep) - set(names))
            if unknown:
                raise DetectorError(f"classes {unknown} are not in the model's classes ({', '.join(names)})")
        self._keep = None if keep is None else np.array([names.index(c) for c in keep], np.int64)

    @property
    def name(self) -> str:
        """What to call it in logs and benchmarks."""
        return f"{self.config.type}:{getattr(self.config, 'model', '') or getattr(self.config, 'weights', '')}"

    @abstractmethod
    def infer(self, prepared: Letterboxed) -> Decoded:
        """Run the network on a letterboxed batch and decode its output (no thresholds, no NMS)."""

    def detect(self, frames: Sequence[Frame]) -> list[Detections]:
        """Detections for every frame, in order (one inference call for the batch where the model allows)."""
        if not frames:
            return []
        with self._lock:
            if self._canvas is None or self._canvas.shape[0] < len(frames):
                self._canvas = np.empty((len(frames), self.input_size, self.input_size, 3), np.uint8)
            prepared = letterbox([f.image for f in frames], self.input_size, out=self._canvas)
            try:
                decoded = self.infer(prepared)
            except DetectorError:
                raise
            except Exception as err:  # backends raise anything: it becomes ours, with the cause
                raise DetectorError(f"{self.name} failed on a batch of {len(frames)}: {err}") from err
        return to_detections(
            frames,
            prepared,
            decoded,
            self.names,
            score_threshold=self.config.score_threshold,
            nms_iou=self.config.nms_iou,
            keep_classes=self._keep,
            contained=self.config.merge_contained,
        )

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what the backend holds."""


def create_detector(config: DetectorConfig, models_dir: Path) -> Detector:
    """The backend that ``config.type`` names, loaded."""
    if isinstance(config, OnnxDetectorConfig):
        from analytics.detectors.onnx import OnnxDetector

        return OnnxDetector(config, models_dir)
    if isinstance(config, OpencvDetectorConfig):
        from analytics.detectors.opencv import OpencvDetector

        return OpencvDetector(config, models_dir)
    if isinstance(config, UltralyticsDetectorConfig):
        from analytics.detectors.ultralytics import UltralyticsDetector

        return UltralyticsDetector(config, models_dir)
    raise DetectorError(f"unknown detector type {type(config).__name__}")
