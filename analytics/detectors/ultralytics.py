"""The ``ultralytics`` backend: ``ultralytics.YOLO`` on a ``.pt`` model.

torch and ultralytics are installed by ``scripts/install-ultralytics.sh`` (``scripts/bootstrap.sh`` runs it):
ultralytics without its declared ``opencv-python``, which would replace our ``opencv-python-headless``.

Runs offline: ``YOLO_OFFLINE=1`` and ``YOLO_CONFIG_DIR`` (set before the import) keep ultralytics from looking
anything up on the network or writing into the home directory. The batch reaches the model as the same letterboxed
tensor the other backends get, so boxes come back in network pixels and are undone the same way.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from analytics.detectors.base import Decoded, Detector, resolve_model
from analytics.errors import DetectorError
from analytics.yolo import Letterboxed
from config.analytics import UltralyticsDetectorConfig

log = logging.getLogger(__name__)


def _import_ultralytics(config_dir: Path) -> Any:
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(config_dir))
    config_dir.mkdir(parents=True, exist_ok=True)
    try:
        return importlib.import_module("ultralytics")
    except ImportError as err:
        raise DetectorError(
            f"the ultralytics backend needs ultralytics ({err}): run scripts/install-ultralytics.sh"
        ) from err


class UltralyticsDetector(Detector):
    """A YOLO ``.pt`` model through ultralytics (torch)."""

    def __init__(self, config: UltralyticsDetectorConfig, models_dir: Path) -> None:
        path = resolve_model(models_dir, config.model)
        ultralytics = _import_ultralytics(models_dir / "ultralytics-config")
        self._torch = importlib.import_module("torch")
        try:
            self._model = ultralytics.YOLO(str(path), task="detect")
        except Exception as err:
            raise DetectorError(f"ultralytics cannot load {path}: {err}") from err
        names_map = self._model.names
        names = tuple(str(names_map[i]) for i in range(len(names_map)))
        self._device = config.device
        super().__init__(names, config.input_size, config)
        log.info(
            "detector %s: ultralytics, %d classes, input %d, %s",
            path.name,
            len(names),
            config.input_size,
            config.device,
        )

    def infer(self, prepared: Letterboxed) -> Decoded:
        tensor = self._torch.from_numpy(prepared.batch)
        results = self._model.predict(
            tensor,
            imgsz=self.input_size,
            conf=self.config.score_threshold,
            iou=self.config.nms_iou,
            device=self._device,
            verbose=False,
        )
        n = len(prepared.batch)
        most = max((len(r.boxes) for r in results), default=0)
        boxes = np.zeros((n, most, 4), np.float32)
        scores = np.zeros((n, most), np.float32)  # padding scores 0: below any threshold
        classes = np.zeros((n, most), np.int64)
        for i, result in enumerate(results):
            k = len(result.boxes)
            if k:
                boxes[i, :k] = result.boxes.xyxy.cpu().numpy()
                scores[i, :k] = result.boxes.conf.cpu().numpy()
                classes[i, :k] = result.boxes.cls.cpu().numpy().astype(np.int64)
        return boxes, scores, classes
