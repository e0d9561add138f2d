"""The ``onnx`` backend: onnxruntime on the converted yolov3-tiny or a YOLOv8/11-style export.

Execution providers: ``device: auto`` takes TensorRT, then CUDA where this onnxruntime build has them, else
the CPU.
A model exported with a fixed batch of 1 (like the fall model's) is run frame by frame within a batch; the
converted yolov3-tiny has a free batch axis and runs the whole batch in one call.
"""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from analytics.detectors.base import Decoded, Detector, resolve_model
from analytics.errors import DetectorError
from analytics.yolo import Letterboxed, decode_darknet, decode_yolov8
from config.analytics import OnnxDetectorConfig

log = logging.getLogger(__name__)

_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def providers_for(device: str, available: list[str]) -> list[str]:
    """The execution providers to ask onnxruntime for; raises when an explicit device is not available."""
    if device == "auto":
        return [p for p in _PROVIDERS["tensorrt"] if p in available] or ["CPUExecutionProvider"]
    wanted = _PROVIDERS[device]
    if wanted[0] not in available:
        raise DetectorError(
            f"device {device!r} needs onnxruntime's {wanted[0]}, but this build has only {', '.join(available)}"
        )
    return [p for p in wanted if p in available]


class OnnxDetector(Detector):
    """A YOLO model in onnxruntime."""

    def __init__(self, config: OnnxDetectorConfig, models_dir: Path) -> None:
        path = resolve_model(models_dir, config.model)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if config.threads:
            options.intra_op_num_threads = config.threads
        # Batches come with gaps between them: idle threads that spin would burn the cores the readers need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = providers_for(config.device, ort.get_available_providers())
        try:
            self._session: ort.InferenceSession | None = ort.InferenceSession(
                str(path), options, providers=providers
            )
        except Exception as err:  # onnxruntime raises its own unexported exception types
            raise DetectorError(f"onnxruntime cannot load {path}: {err}") from err
        session = self._session
        self.providers = session.get_providers()
        meta = session.get_modelmeta().custom_metadata_map
        head = config.head
        if head == "auto":
            head = "darknet" if "darknet_heads" in meta else "yolov8"
        self._head = head
        model_input = session.get_inputs()[0]
        self._input_name = model_input.name
        batch, _channels, height, width = model_input.shape
        if isinstance(height, int) and (height, width) != (config.input_size, config.input_size):
            raise DetectorError(
                f"{path.name} takes {width}x{height} input: set input_size to {height}, not {config.input_size}"
            )
        self._fixed_batch = batch if isinstance(batch, int) else None
        self._heads: list[dict[str, Any]] = []
        if head == "darknet":
            try:
                darknet = json.loads(meta["darknet_heads"])
                self._heads, names = darknet["heads"], tuple(darknet["names"])
            except (KeyError, ValueError, TypeError) as err:
                raise DetectorError(
                    f"{path.name} has no readable darknet_heads metadata; use head: yolov8?"
                ) from err
        else:
            names = _yolov8_names(meta, path)
        super().__init__(names, config.input_size, config)
        log.info(
            "detector %s: %s head, %d classes, input %d, providers %s%s",
            path.name,
            head,
            len(names),
            config.input_size,
            ",".join(self.providers),
            f", fixed batch {self._fixed_batch}" if self._fixed_batch else "",
        )

    def close(self) -> None:
        """Drop the session now (not at interpreter exit, where onnxruntime's teardown can stall)."""
        with self._lock:
            self._session = None

    def infer(self, prepared: Letterboxed) -> Decoded:
        session = self._session
        if session is None:
            raise DetectorError(f"{self.name} is closed")
        batch = prepared.batch
        if self._fixed_batch is None or self._fixed_batch == len(batch):
            outputs = session.run(None, {self._input_name: batch})
        else:  # a model exported for one image at a time: run the frames one by one
            runs = [session.run(None, {self._input_name: batch[i : i + 1]}) for i in range(len(batch))]
            outputs = [np.concatenate([run[k] for run in runs]) for k in range(len(runs[0]))]
        if self._head == "darknet":
            return decode_darknet(outputs, self._heads, self.input_size)
        return decode_yolov8(outputs[0])


def _yolov8_names(meta: dict[str, str], path: Path) -> tuple[str, ...]:
    """Class names from an ultralytics export's metadata (``{0: 'person', ...}``)."""
    try:
        table = ast.literal_eval(meta["names"])
        return tuple(str(table[i]) for i in range(len(table)))
    except (KeyError, ValueError, SyntaxError, TypeError) as err:
        raise DetectorError(f"{path.name} has no class names in its metadata (an ultralytics export?)") from err
