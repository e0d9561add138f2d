"""Pre-encoded H.264 scene clips: rendered and encoded once with PyAV's libx264, cached on disk, shared by mounts.

Every clip has the same codec parameters (640x360, 15 fps, a keyframe every 30 frames, no B-frames, one slice per
picture, SPS/PPS repeated before every keyframe), so a mount can switch from one clip to another at any keyframe
and the stream stays decodable. A clip is a whole number of GOPs, so looping it also lands on a keyframe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import cv2
import numpy as np
from av.video.frame import PictureType
from pydantic import BaseModel, ConfigDict, Field

from ingest.errors import ClipGenerationError
from ingest.simulator.artwork import HEIGHT, WIDTH, load_sprites, photos_digest
from ingest.simulator.scenes import SceneKind, SceneRenderer

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2
"""Bump when the rendering or encoding changes, so that cached clips are regenerated."""

FPS = 15
GOP = 30
"""Frames per group of pictures: one keyframe every 2 s."""

_START_CODE = b"\x00\x00\x01"
_NAL_SPS = 7
_NAL_PPS = 8
_NAL_IDR = 5


class ClipSettings(BaseModel):
    """How the scene clips are rendered and encoded (the picture format itself is fixed: 640x360, 15 fps)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gops: int = Field(6, ge=1, le=60, description="Clip length in GOPs of 2 s (6 = 12 s)")
    crf: int = Field(26, ge=10, le=45, description="x264 constant rate factor: higher is smaller and blurrier")
    max_kbps: int = Field(1200, ge=100, le=20_000, description="x264 VBV maximum bit rate, kbit/s")
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium"] = Field(
        "veryfast", description="x264 speed preset used to encode the clips"
    )
    seed: int = Field(2026, ge=0, le=2**31 - 1, description="Seed of the procedural yard and sensor noise")

    @property
    def frame_count(self) -> int:
        """Frames in every clip."""
        return self.gops * GOP

    @property
    def duration_s(self) -> float:
        """Seconds in every clip."""
        return self.frame_count / FPS


def split_nal_units(data: bytes) -> list[bytes]:
    """Split an Annex B byte stream into NAL units (start codes removed)."""
    units = []
    starts = []
    i = data.find(_START_CODE)
    while i >= 0:
        starts.append(i + 3)
        i = data.find(_START_CODE, i + 3)
    for n, start in enumerate(starts):
        end = starts[n + 1] - 3 if n + 1 < len(starts) else len(data)
        # A 4-byte start code leaves one zero byte at the end of the previous unit.
        unit = data[start:end]
        if n + 1 < len(starts) and unit.endswith(b"\x00"):
            unit = unit[:-1]
        units.append(unit)
    return units


def nal_types(data: bytes) -> list[int]:
    """The NAL unit types of an Annex B access unit, in order."""
    return [unit[0] & 0x1F for unit in split_nal_units(data) if unit]


@dataclass(frozen=True)
class EncodedClip:
    """One scene clip: a tuple of Annex B access units, one per frame, in presentation order."""

    scene: SceneKind
    frames: tuple[bytes, ...]
    keyframes: tuple[int, ...]
    fps: int = FPS
    gop: int = GOP
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def duration_s(self) -> float:
        """Length of the clip in seconds."""
        return len(self.frames) / self.fps

    @property
    def size_bytes(self) -> int:
        """Total encoded size."""
        return sum(len(f) for f in self.frames)

    @property
    def bitrate_kbps(self) -> float:
        """Average bit rate of the clip."""
        return self.size_bytes * 8 / self.duration_s / 1000

    @property
    def parameter_sets(self) -> bytes:
        """The SPS and PPS of the first keyframe, joined: equal across clips that may be switched between."""
        units = split_nal_units(self.frames[0])
        return b"".join(_START_CODE + u for u in units if u and u[0] & 0x1F in (_NAL_SPS, _NAL_PPS))


class ClipLibrary:
    """All scene clips, in memory; build with :meth:`load_or_generate`."""

    def __init__(
        self,
        clips: Mapping[SceneKind, EncodedClip],
        settings: ClipSettings,
        *,
        generation_s: float,
        from_cache: bool,
        directory: Path | None = None,
    ) -> None:
        missing = set(SceneKind) - set(clips)
        if missing:
            raise ClipGenerationError(f"clip library lacks scenes: {sorted(missing)}")
        self._clips = dict(clips)
        self.settings = settings
        self.generation_s = generation_s
        """Seconds it took to render and encode the clips, or to load them from the cache."""
        self.from_cache = from_cache
        self.directory = directory
        """Cache folder the clips were read from or written to (None: not cached)."""

    def __getitem__(self, scene: SceneKind) -> EncodedClip:
        return self._clips[scene]

    def __iter__(self) -> Iterator[EncodedClip]:
        return iter(self._clips.values())

    @property
    def size_bytes(self) -> int:
        """Bytes held by all clips."""
        return sum(c.size_bytes for c in self._clips.values())

    @classmethod
    def generate(
        cls, settings: ClipSettings | None = None, *, assets: Path | None = None, workers: int | None = None
    ) -> ClipLibrary:
        """Render and encode every scene (no cache). ``workers``: scenes encoded at once (default: CPU count)."""
        settings = settings or ClipSettings()
        started = time.perf_counter()
        renderer = SceneRenderer(load_sprites(assets), settings.seed)
        workers = workers or min(4, os.cpu_count() or 1)
        # Rendering (numpy/OpenCV) and x264 release the GIL, so a few scenes at once use the cores.
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clip-encode") as pool:
            encoded = list(pool.map(lambda k: encode_scene(renderer, k, settings), list(SceneKind)))
        elapsed = time.perf_counter() - started
        return cls({c.scene: c for c in encoded}, settings, generation_s=elapsed, from_cache=False)

    @classmethod
    def load_or_generate(
        cls, cache_dir: Path, settings: ClipSettings | None = None, *, assets: Path | None = None
    ) -> ClipLibrary:
        """Load the clips from ``cache_dir`` (keyed by generator version, settings and photos) or make them."""
        settings = settings or ClipSettings()
        started = time.perf_counter()
        key = _cache_key(settings, photos_digest(assets))
        folder = Path(cache_dir) / f"v{GENERATOR_VERSION}-{key[:16]}"
        cached = _load(folder, settings)
        if cached is not None:
            elapsed = time.perf_counter() - started
            log.info("loaded %d scene clips from %s in %.2f s", len(cached), folder, elapsed)
            return cls(cached, settings, generation_s=elapsed, from_cache=True, directory=folder)
        library = cls.generate(settings, assets=assets)
        try:
            _save(folder, library, key)
        except OSError as err:
            raise ClipGenerationError(f"cannot write scene clips to {folder}: {err}") from err
        library.directory = folder
        log.info(
            "generated %d scene clips (%.1f s each, %.0f KiB in all) in %.1f s into %s",
            len(SceneKind),
            settings.duration_s,
            library.size_bytes / 1024,
            library.generation_s,
            folder,
        )
        return library


def _x264_params(settings: ClipSettings) -> str:
    return ":".join(
        (
            f"keyint={GOP}",
            f"min-keyint={GOP}",
            "scenecut=0",  # else x264 adds keyframes at scene changes and breaks the fixed GOP
            "bframes=0",
            "slices=1",  # several slices per picture + repeated headers decode as broken pictures in FFmpeg
            "sliced-threads=0",
            "repeat-headers=1",  # SPS/PPS before every keyframe, so each GOP is self-contained
            "open-gop=0",
            "level=3.0",  # pinned so that the SPS does not depend on a clip's content
            f"vbv-maxrate={settings.max_kbps}",
            f"vbv-bufsize={settings.max_kbps * 2}",
        )
    )


def encode_scene(renderer: SceneRenderer, scene: SceneKind, settings: ClipSettings) -> EncodedClip:
    """Render and encode one scene clip; checks the keyframe pattern before returning."""
    try:
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        codec.time_base = Fraction(1, FPS)
        codec.framerate = Fraction(FPS, 1)
        # A frozen picture must decode (nearly) identically frame after frame, keyframes included; under CRF
        # x264 re-encodes each keyframe at a different quality and refines the picture over the next P-frames.
        # Constant QP 26 makes every keyframe the same, and keeps the PPS equal to the CRF clips' (init QP 26).
        rate = {"qp": "26"} if scene is SceneKind.FROZEN else {"crf": str(settings.crf)}
        codec.options = {"preset": settings.preset, **rate, "x264-params": _x264_params(settings)}
        packets: list[tuple[bytes, bool]] = []
        for index in range(settings.frame_count):
            bgr = renderer.frame(scene, index, settings.frame_count, FPS)
            yuv = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = index
            # Frames may arrive flagged as I pictures; x264 would honour that and make every frame a keyframe.
            frame.pict_type = PictureType.NONE
            packets.extend((bytes(p), p.is_keyframe) for p in codec.encode(frame))
        packets.extend((bytes(p), p.is_keyframe) for p in codec.encode(None))
    except av.FFmpegError as err:
        raise ClipGenerationError(f"encoding scene {scene} failed: {err}") from err
    keyframes = tuple(i for i, (_, key) in enumerate(packets) if key)
    expected = tuple(range(0, settings.frame_count, GOP))
    if len(packets) != settings.frame_count or keyframes != expected:
        raise ClipGenerationError(
            f"scene {scene}: got {len(packets)} frames with keyframes at {keyframes[:8]}, "
            f"expected {settings.frame_count} with keyframes every {GOP}"
        )
    for i in keyframes:
        if _NAL_SPS not in nal_types(packets[i][0]) or _NAL_IDR not in nal_types(packets[i][0]):
            raise ClipGenerationError(f"scene {scene}: keyframe {i} lacks SPS or IDR slice")
    return EncodedClip(scene, tuple(data for data, _ in packets), keyframes)


def _cache_key(settings: ClipSettings, photos: str) -> str:
    material = json.dumps(
        {"generator": GENERATOR_VERSION, "settings": settings.model_dump(mode="json"), "photos": photos},
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()


def _load(folder: Path, settings: ClipSettings) -> dict[SceneKind, EncodedClip] | None:
    index_path = folder / "index.json"
    if not index_path.is_file():
        return None
    try:
        index = json.loads(index_path.read_text(encoding="utf-8"))
        clips = {}
        for scene in SceneKind:
            entry = index["clips"][scene.value]
            data = (folder / f"{scene.value}.h264").read_bytes()
            sizes: list[int] = entry["sizes"]
            if sum(sizes) != len(data) or len(sizes) != settings.frame_count:
                raise ValueError(f"{scene.value}.h264 does not match the index")
            frames, offset = [], 0
            for size in sizes:
                frames.append(data[offset : offset + size])
                offset += size
            clips[scene] = EncodedClip(scene, tuple(frames), tuple(entry["keyframes"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        # A damaged cache is not fatal: regenerate over it.
        log.warning("ignoring damaged clip cache %s: %s", folder, err)
        return None
    return clips


def _save(folder: Path, library: ClipLibrary, key: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    suffix = f".tmp-{os.getpid()}"
    index: dict[str, object] = {
        "key": key,
        "settings": library.settings.model_dump(mode="json"),
        "generation_s": round(library.generation_s, 3),
        "clips": {},
    }
    clips_index: dict[str, object] = {}
    for scene in SceneKind:
        clip = library[scene]
        target = folder / f"{scene.value}.h264"
        tmp = target.with_name(target.name + suffix)
        tmp.write_bytes(b"".join(clip.frames))
        os.replace(tmp, target)
        clips_index[scene.value] = {"sizes": [len(f) for f in clip.frames], "keyframes": list(clip.keyframes)}
    index["clips"] = clips_index
    # The index goes last: its presence means every clip file is complete.
    tmp_index = folder / f"index.json{suffix}"
    tmp_index.write_text(json.dumps(index), encoding="utf-8")
    os.replace(tmp_index, folder / "index.json")
