"""The darknet -> ONNX converter: same numbers as OpenCV's darknet reader, clear errors on what it cannot take."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from analytics.darknet_onnx import convert
from analytics.errors import ModelFileError
from tests.analytics import read_photo


def _load(models_dir: Path) -> tuple[str, bytes, list[str]]:
    cfg = (models_dir / "yolov3-tiny.cfg").read_text(encoding="utf-8")
    names = (models_dir / "coco.names").read_text(encoding="utf-8").splitlines()
    return cfg, (models_dir / "yolov3-tiny.weights").read_bytes(), names


def test_converted_model_matches_opencv_darknet(models_dir: Path, photos: dict[str, Path]) -> None:
    images = [read_photo(photos["bus"]), read_photo(photos["zidane"])]
    blob = cv2.dnn.blobFromImages(images, 1 / 255, (416, 416), swapRB=True, crop=False)
    net = cv2.dnn.readNetFromDarknet(str(models_dir / "yolov3-tiny.cfg"), str(models_dir / "yolov3-tiny.weights"))
    net.setInput(blob)
    reference = net.forward(net.getUnconnectedOutLayersNames())
    session = ort.InferenceSession(str(models_dir / "yolov3-tiny.onnx"), providers=["CPUExecutionProvider"])
    heads = session.run(None, {"images": blob})  # a batch of two: the batch axis is free
    assert [h.shape for h in heads] == [(2, 255, 13, 13), (2, 255, 26, 26)]
    for raw, ref in zip(heads, reference, strict=True):
        n, _, gh, gw = raw.shape
        # OpenCV's rows are (y, x, anchor) ordered with the objectness already squashed.
        objectness = 1 / (1 + np.exp(-raw.reshape(n, 3, 85, gh, gw)[:, :, 4]))
        ours = objectness.transpose(0, 2, 3, 1).reshape(n, -1)
        np.testing.assert_allclose(ours, ref[..., 4].reshape(n, -1), atol=1e-4)


def test_unsupported_layer_is_named(models_dir: Path) -> None:
    cfg, weights, names = _load(models_dir)
    broken = cfg.replace("[upsample]", "[shortcut]\nfrom=-3\n[upsample]", 1)
    with pytest.raises(ModelFileError, match=r"cfg layer 19: \[shortcut\] is not supported"):
        convert(broken, weights, names=names)


def test_truncated_weights_are_refused(models_dir: Path) -> None:
    cfg, weights, names = _load(models_dir)
    with pytest.raises(ModelFileError, match="shorter than its cfg needs"):
        convert(cfg, weights[: len(weights) // 2], names=names)


def test_names_must_match_the_heads(models_dir: Path) -> None:
    cfg, weights, names = _load(models_dir)
    with pytest.raises(ModelFileError, match="80 classes, the names file 79"):
        convert(cfg, weights, names=names[:-1])


def test_malformed_cfg_names_the_line() -> None:
    with pytest.raises(ModelFileError, match="cfg line 3: expected"):
        convert("[net]\nwidth=416\nthis is not an option\n", b"\0" * 20, names=["a"])
