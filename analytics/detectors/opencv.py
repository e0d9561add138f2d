"""The ``opencv`` backend: OpenCV DNN on darknet files (``.cfg`` + ``.weights``)."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from analytics.darknet_onnx import parse_cfg
from analytics.detectors.base import Decoded, Detector, resolve_model
from analytics.errors import DetectorError
from analytics.yolo import Letterboxed
from config.analytics import OpencvDetectorConfig

log = logging.getLogger(__name__)


class OpencvDetector(Detector):
    """A darknet YOLO in OpenCV's DNN module (CPU)."""

    def __init__(self, config: OpencvDetectorConfig, models_dir: Path) -> None:
        cfg = resolve_model(models_dir, config.cfg)
        weights = resolve_model(models_dir, config.weights)
        names_file = resolve_model(models_dir, config.names)
        names = tuple(n.strip() for n in names_file.read_text(encoding="utf-8").splitlines() if n.strip())
        try:
            self._net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
        except cv2.error as err:
            raise DetectorError(f"OpenCV cannot load {cfg.name} + {weights.name}: {err}") from err
        self._net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        self._outputs = self._net.getUnconnectedOutLayersNames()
        net = parse_cfg(cfg.read_text(encoding="utf-8"))[0]
        native = net.integer("width")
        if config.input_size != native:
            log.info("darknet %s: input %d instead of the cfg's %d", cfg.name, config.input_size, native)
        super().__init__(names, config.input_size, config)

    def infer(self, prepared: Letterboxed) -> Decoded:
        # OpenCV's region layer decodes (cx, cy, w, h normalised, objectness, class scores) for us.
        self._net.setInput(prepared.batch)
        outputs = self._net.forward(self._outputs)
        n, size = len(prepared.batch), self.input_size
        rows = np.concatenate([o.reshape(n, -1, o.shape[-1]) for o in outputs], axis=1)
        cx, cy, w, h = (rows[..., k] * size for k in range(4))
        classes = rows[..., 5:].argmax(-1)
        scores = np.take_along_axis(rows[..., 5:], classes[..., None], -1)[..., 0]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1).astype(np.float32)
        return boxes, scores.astype(np.float32), classes
