"""Convert a darknet YOLO (``.cfg`` + ``.weights``, e.g. the official yolov3-tiny) to an ONNX model.

The graph takes ``images`` (N x 3 x H x W, RGB in [0, 1], any batch size) and returns the raw output of each
``[yolo]`` head (N x anchors*(5+classes) x gh x gw); :mod:`analytics.postprocess` decodes them. Batch norm is
folded into the convolutions. The heads' anchors, masks and the input size go into the model's metadata
(``darknet_heads``), so the file is self-describing. Supported layers: convolutional (leaky / linear), maxpool,
upsample, route, yolo: everything yolov3-tiny uses; anything else is refused with the layer's number and type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from analytics.errors import ModelFileError

OPSET = 13
_BN_EPSILON = 1e-6
"""Darknet normalises with ``(x - mean) / (sqrt(var) + .000001)``."""


@dataclass
class _Section:
    kind: str
    options: dict[str, str] = field(default_factory=dict)
    line: int = 0

    def integer(self, key: str, default: int | None = None) -> int:
        if key not in self.options:
            if default is None:
                raise ModelFileError(f"cfg line {self.line}: [{self.kind}] needs {key}=")
            return default
        return int(self.options[key])

    def ints(self, key: str) -> list[int]:
        return [int(v) for v in self.options.get(key, "").split(",") if v.strip()]


def parse_cfg(text: str) -> list[_Section]:
    """The sections of a darknet ``.cfg`` in order (``[net]`` first)."""
    sections: list[_Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ModelFileError(f"cfg line {number}: malformed section header {line!r}")
            sections.append(_Section(line[1:-1].strip(), line=number))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1].options[key.strip()] = value.strip()
        else:
            raise ModelFileError(f"cfg line {number}: expected [section] or key=value, got {line!r}")
    if not sections or sections[0].kind not in ("net", "network"):
        raise ModelFileError("cfg: the first section must be [net]")
    return sections


class _Weights:
    """Reads the float32 stream of a ``.weights`` file after its header."""

    def __init__(self, data: bytes) -> None:
        if len(data) < 20:
            raise ModelFileError(f"weights file of {len(data)} bytes has no darknet header")
        major, minor, _revision = np.frombuffer(data[:12], dtype=np.int32)
        offset = 12 + (8 if major * 10 + minor >= 2 else 4)  # "seen": int64 since 0.2
        usable = (len(data) - offset) // 4 * 4  # a cut inside a float: what is left is too short anyway
        self._values = np.frombuffer(data[offset : offset + usable], dtype=np.float32)
        self._at = 0

    def take(self, count: int) -> np.ndarray:
        if self._at + count > self._values.size:
            raise ModelFileError("weights file is shorter than its cfg needs (truncated or another model's)")
        chunk = self._values[self._at : self._at + count]
        self._at += count
        return chunk

    def left(self) -> int:
        return self._values.size - self._at


def convert(cfg_text: str, weights: bytes, *, names: list[str]) -> onnx.ModelProto:
    """The ONNX model of a darknet network; raises :class:`ModelFileError` on anything it cannot convert."""
    sections = parse_cfg(cfg_text)
    net, layers = sections[0], sections[1:]
    height, width, channels = net.integer("height"), net.integer("width"), net.integer("channels", 3)
    reader = _Weights(weights)
    nodes: list[onnx.NodeProto] = []
    initializers: list[onnx.TensorProto] = []
    outputs: list[str] = []  # tensor name of each layer's output
    depth: list[int] = []  # channels of each layer's output
    heads: list[dict[str, Any]] = []
    current, current_channels = "images", channels
    for index, layer in enumerate(layers):
        name = f"l{index}"
        if layer.kind == "convolutional":
            filters, size = layer.integer("filters"), layer.integer("size")
            stride, pad = layer.integer("stride", 1), layer.integer("pad", 0)
            padding = size // 2 if pad else 0
            normalized = bool(layer.integer("batch_normalize", 0))
            bias = reader.take(filters)
            if normalized:
                scale, mean, var = reader.take(filters), reader.take(filters), reader.take(filters)
            kernel = reader.take(filters * current_channels * size * size).reshape(
                filters, current_channels, size, size
            )
            if normalized:
                factor = scale / (np.sqrt(var) + _BN_EPSILON)
                kernel = kernel * factor[:, None, None, None]
                bias = bias - mean * factor
            initializers += [
                numpy_helper.from_array(kernel.astype(np.float32), f"{name}.w"),
                numpy_helper.from_array(bias.astype(np.float32), f"{name}.b"),
            ]
            conv_out = f"{name}.conv"
            nodes.append(
                helper.make_node(
                    "Conv",
                    [current, f"{name}.w", f"{name}.b"],
                    [conv_out],
                    kernel_shape=[size, size],
                    strides=[stride, stride],
                    pads=[padding] * 4,
                )
            )
            activation = layer.options.get("activation", "linear")
            if activation == "leaky":
                nodes.append(helper.make_node("LeakyRelu", [conv_out], [name], alpha=0.1))
            elif activation == "linear":
                nodes.append(helper.make_node("Identity", [conv_out], [name]))
            else:
                raise ModelFileError(f"cfg layer {index} ({layer.kind}): activation {activation!r} not supported")
            current, current_channels = name, filters
        elif layer.kind == "maxpool":
            size, stride = layer.integer("size"), layer.integer("stride", 1)
            # Darknet pads (size - 1) at the end: a stride-1 pool keeps the grid (13 -> 13).
            extra = size - 1 if stride == 1 else 0
            nodes.append(
                helper.make_node(
                    "MaxPool",
                    [current],
                    [name],
                    kernel_shape=[size, size],
                    strides=[stride, stride],
                    pads=[0, 0, extra, extra],
                )
            )
            current = name
        elif layer.kind == "upsample":
            stride = layer.integer("stride", 2)
            scales = numpy_helper.from_array(np.array([1, 1, stride, stride], dtype=np.float32), f"{name}.scales")
            initializers.append(scales)
            nodes.append(helper.make_node("Resize", [current, "", f"{name}.scales"], [name], mode="nearest"))
            current = name
        elif layer.kind == "route":
            sources = [i if i >= 0 else index + i for i in layer.ints("layers")]
            if not sources or any(not 0 <= i < index for i in sources):
                raise ModelFileError(f"cfg layer {index} (route): bad layers= {layer.options.get('layers')!r}")
            if len(sources) == 1:
                nodes.append(helper.make_node("Identity", [outputs[sources[0]]], [name]))
            else:
                nodes.append(helper.make_node("Concat", [outputs[i] for i in sources], [name], axis=1))
            current, current_channels = name, sum(depth[i] for i in sources)
        elif layer.kind == "yolo":
            anchors = layer.ints("anchors")
            mask = layer.ints("mask")
            classes = layer.integer("classes")
            pairs = [(anchors[2 * i], anchors[2 * i + 1]) for i in mask]
            if current_channels != len(mask) * (5 + classes):
                raise ModelFileError(
                    f"cfg layer {index} (yolo): {current_channels} channels for {len(mask)} anchors"
                )
            nodes.append(helper.make_node("Identity", [current], [name]))
            heads.append({"output": name, "anchors": pairs, "classes": classes, "channels": current_channels})
            outputs.append(name)
            depth.append(current_channels)
            continue
        else:
            raise ModelFileError(f"cfg layer {index}: [{layer.kind}] is not supported by the converter")
        outputs.append(current)
        depth.append(current_channels)
    if reader.left():
        raise ModelFileError(f"weights file has {reader.left()} values the cfg does not use (another model's?)")
    if not heads:
        raise ModelFileError("cfg has no [yolo] layer")
    if any(h["classes"] != len(names) for h in heads):
        raise ModelFileError(f"the cfg's heads have {heads[0]['classes']} classes, the names file {len(names)}")
    graph = helper.make_graph(
        nodes,
        "darknet",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", channels, height, width])],
        [
            helper.make_tensor_value_info(
                h["output"], TensorProto.FLOAT, ["batch", h["channels"], f"{h['output']}_h", f"{h['output']}_w"]
            )
            for h in heads
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="campuswatch")
    model.ir_version = 8  # onnxruntime reads IR 8 at opset 13 everywhere
    meta = {"input_size": [width, height], "heads": heads, "names": names}
    helper.set_model_props(model, {"darknet_heads": json.dumps(meta), "format": "darknet-yolo"})
    onnx.checker.check_model(model)
    return model


def convert_files(cfg: Path, weights: Path, names: Path, out: Path) -> None:
    """Convert ``cfg`` + ``weights`` (+ class ``names``, one per line) into the ONNX file ``out``."""
    labels = [line.strip() for line in names.read_text(encoding="utf-8").splitlines() if line.strip()]
    model = convert(cfg.read_text(encoding="utf-8"), weights.read_bytes(), names=labels)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_bytes(model.SerializeToString())
    tmp.replace(out)
