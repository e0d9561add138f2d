"""Pictures for the simulated cameras: a procedural school yard and person cut-outs from real photos.

The yard is drawn with seeded numpy/OpenCV so every run produces the same pixels. The people are rectangular
crops of the two photos shipped in the ultralytics wheel (``bus.jpg``, ``zidane.jpg``, fetched into
``kernel.paths.assets_dir()`` by ``scripts/fetch-assets.sh``): real photos, so that a real person detector fires
on the simulated video, which drawn stick figures would not achieve.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from ingest.errors import SimulatorAssetError
from kernel.paths import assets_dir

Image = npt.NDArray[np.uint8]
FloatImage = npt.NDArray[np.float32]

WIDTH = 640
HEIGHT = 360

SKY_BOTTOM_Y = 95
WALL_TOP_Y = 170
WALL_BASE_Y = 215
"""The foot of the perimeter wall."""

FLAG_POLE_X = 560
FLAG_TOP_Y = 40
FLAG_W = 46
FLAG_H = 28


def person_height(foot_y: float) -> int:
    """Height in pixels of a standing adult whose feet are at image row ``foot_y`` (a simple ground plane)."""
    return max(8, round(0.9 * (foot_y - SKY_BOTTOM_Y)))


@dataclass(frozen=True)
class PhotoCrop:
    """Where one person stands in one of the known photos (pixel box ``x0, y0, x1, y1``)."""

    name: str
    photo: str
    box: tuple[int, int, int, int]
    full_body: bool
    """False for head-and-shoulders crops, which are placed cut off by the bottom of the frame."""


# Boxes measured by eye on a gridded copy of each photo; both photos are fixed files from the ultralytics wheel.
PHOTO_CROPS: tuple[PhotoCrop, ...] = (
    PhotoCrop("beige_coat", "bus.jpg", (48, 393, 246, 906), full_body=True),
    PhotoCrop("black_coat", "bus.jpg", (221, 402, 346, 862), full_body=True),
    PhotoCrop("coach_shouting", "zidane.jpg", (118, 198, 690, 720), full_body=False),
    PhotoCrop("coach_pointing", "zidane.jpg", (745, 40, 1148, 720), full_body=False),
)
PHOTO_FILES = ("bus.jpg", "zidane.jpg")


def photo_paths(directory: Path | None = None) -> dict[str, Path]:
    """The photo files the scenes need, checked to exist; raises :class:`SimulatorAssetError` if one is missing."""
    base = directory if directory is not None else assets_dir()
    paths = {name: base / name for name in PHOTO_FILES}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise SimulatorAssetError(
            f"simulator photos missing: {', '.join(missing)}; run scripts/fetch-assets.sh "
            "(or point CAMPUSWATCH_ASSETS_DIR at a folder holding bus.jpg and zidane.jpg)"
        )
    return paths


def photos_digest(directory: Path | None = None) -> str:
    """SHA-256 over the photo files, so cached clips are regenerated when the photos change."""
    digest = hashlib.sha256()
    for name, path in sorted(photo_paths(directory).items()):
        digest.update(name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class PersonSprite:
    """One person cut-out, with a cache of scaled (and mirrored) copies ready for alpha blending."""

    crop: PhotoCrop
    image: Image
    _scaled: dict[tuple[int, bool], tuple[FloatImage, FloatImage]] = field(default_factory=dict, repr=False)

    @property
    def aspect(self) -> float:
        """Width divided by height of the crop."""
        return self.image.shape[1] / self.image.shape[0]

    def scaled(self, height: int, mirrored: bool = False) -> tuple[FloatImage, FloatImage]:
        """The crop resized to ``height`` rows: (BGR float32, alpha float32 HxWx1 with feathered edges)."""
        key = (height, mirrored)
        cached = self._scaled.get(key)
        if cached is not None:
            return cached
        width = max(2, round(height * self.aspect))
        img = cv2.resize(self.image, (width, height), interpolation=cv2.INTER_AREA)
        if mirrored:
            img = img[:, ::-1]
        # Feather the rectangle's border so the cut-out does not show a hard seam; bottom edge of a
        # head-and-shoulders crop stays hard because it is hidden below the frame.
        feather = max(1.0, min(width, height) * 0.06)
        ys = np.arange(height, dtype=np.float32)[:, None]
        xs = np.arange(width, dtype=np.float32)[None, :]
        bottom = height - 1 - ys if self.crop.full_body else np.full_like(ys, feather)
        dist = np.minimum(np.minimum(xs, width - 1 - xs), np.minimum(ys, bottom))
        alpha = np.clip((dist + 1.0) / feather, 0.0, 1.0)[..., None].astype(np.float32)
        result = (img.astype(np.float32), alpha)
        self._scaled[key] = result
        return result


def load_sprites(directory: Path | None = None) -> dict[str, PersonSprite]:
    """Cut the person crops out of the photos, keyed by :attr:`PhotoCrop.name`."""
    paths = photo_paths(directory)
    photos: dict[str, Image] = {}
    for name, path in paths.items():
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise SimulatorAssetError(f"cannot decode simulator photo {path}")
        photos[name] = np.asarray(img, dtype=np.uint8)
    sprites: dict[str, PersonSprite] = {}
    for crop in PHOTO_CROPS:
        photo = photos[crop.photo]
        x0, y0, x1, y1 = crop.box
        if x1 > photo.shape[1] or y1 > photo.shape[0]:
            raise SimulatorAssetError(f"{crop.photo} is smaller than expected ({photo.shape[1]}x{photo.shape[0]})")
        sprites[crop.name] = PersonSprite(crop, np.ascontiguousarray(photo[y0:y1, x0:x1]))
    return sprites


@dataclass(frozen=True)
class Placement:
    """A person drawn in one frame: sprite, feet position, height, mirroring and optional occlusion."""

    sprite: str
    foot_x: float
    foot_y: float
    height: int
    mirrored: bool = False
    visible_below_y: int | None = None
    """Rows at or below this are hidden (a person still behind the wall); None: fully visible."""
    lying: bool = False
    """On the ground (fallen): the upright sprite turned a quarter to the left, centred on ``foot_x``, resting on
    ``foot_y``; ``height`` is still the person's length."""

    def pixels(self, sprites: dict[str, PersonSprite]) -> tuple[FloatImage, FloatImage, int, int]:
        """The sprite as drawn (BGR, alpha) and its unclipped top-left corner in the frame."""
        img, alpha = sprites[self.sprite].scaled(self.height, self.mirrored)
        if self.lying:
            img = np.ascontiguousarray(np.rot90(img))
            alpha = np.ascontiguousarray(np.rot90(alpha))
        height, width = img.shape[:2]
        return img, alpha, round(self.foot_x - width / 2), round(self.foot_y) - height

    def box(self, sprites: dict[str, PersonSprite]) -> tuple[int, int, int, int]:
        """The drawn box ``x0, y0, x1, y1`` clipped to the frame (may be empty: x0 >= x1 or y0 >= y1)."""
        long_side, short_side = self.height, max(2, round(self.height * sprites[self.sprite].aspect))
        width, height = (long_side, short_side) if self.lying else (short_side, long_side)
        x0 = round(self.foot_x - width / 2)
        y0 = round(self.foot_y) - height
        y1 = round(self.foot_y) if self.visible_below_y is None else min(round(self.foot_y), self.visible_below_y)
        return max(0, x0), max(0, y0), min(WIDTH, x0 + width), min(HEIGHT, y1)


def draw_person(frame: Image, sprites: dict[str, PersonSprite], place: Placement) -> None:
    """Alpha-blend one person into ``frame`` in place, with a soft ground shadow under full-body people."""
    sprite = sprites[place.sprite]
    img, alpha, left, top = place.pixels(sprites)
    height, width = img.shape[:2]
    if sprite.crop.full_body and place.visible_below_y is None and not place.lying:
        shadow_w = max(4, int(width * 0.6))
        cv2.ellipse(
            frame,
            (round(place.foot_x), round(place.foot_y)),
            (shadow_w, max(2, height // 28)),
            0,
            0,
            360,
            (60, 62, 60),
            -1,
            cv2.LINE_AA,
        )
    x0, y0 = max(0, left), max(0, top)
    x1 = min(WIDTH, left + width)
    y1 = min(HEIGHT, top + height)
    if place.visible_below_y is not None:
        y1 = min(y1, place.visible_below_y)
    if x0 >= x1 or y0 >= y1:
        return
    src = img[y0 - top : y1 - top, x0 - left : x1 - left]
    a = alpha[y0 - top : y1 - top, x0 - left : x1 - left]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    frame[y0:y1, x0:x1] = (src * a + region * (1.0 - a) + 0.5).astype(np.uint8)


def render_yard(seed: int) -> Image:
    """The empty school yard without the flag: sky, school buildings, perimeter wall and playground."""
    rng = np.random.default_rng(seed)
    frame = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    _draw_sky(frame, rng)
    _draw_buildings(frame, rng)
    _draw_wall(frame, rng)
    _draw_ground(frame, rng)
    # The flag pole stands in the yard; the flag itself is drawn per frame (it sways).
    cv2.line(
        frame, (FLAG_POLE_X, FLAG_TOP_Y - 6), (FLAG_POLE_X, WALL_BASE_Y + 40), (185, 185, 190), 3, cv2.LINE_AA
    )
    cv2.circle(frame, (FLAG_POLE_X, FLAG_TOP_Y - 7), 3, (90, 200, 230), -1, cv2.LINE_AA)
    return frame


def _draw_sky(frame: Image, rng: np.random.Generator) -> None:
    top = np.array([232, 196, 140], np.float32)
    bottom = np.array([242, 228, 208], np.float32)
    ramp = np.linspace(0.0, 1.0, WALL_TOP_Y, dtype=np.float32)[:, None, None]
    frame[:WALL_TOP_Y] = (top * (1 - ramp) + bottom * ramp).astype(np.uint8)
    clouds = np.zeros((WALL_TOP_Y, WIDTH), np.float32)
    for _ in range(5):
        cx, cy = int(rng.integers(0, WIDTH)), int(rng.integers(8, 60))
        cv2.ellipse(clouds, (cx, cy), (int(rng.integers(30, 80)), int(rng.integers(6, 14))), 0, 0, 360, 1.0, -1)
    soft = np.asarray(cv2.GaussianBlur(clouds, (0, 0), 6), dtype=np.float32)[..., None]
    frame[:WALL_TOP_Y] = (frame[:WALL_TOP_Y] * (1 - 0.6 * soft) + 250 * 0.6 * soft).astype(np.uint8)


def _draw_buildings(frame: Image, rng: np.random.Generator) -> None:
    # Main teaching block, a lower annex and a few trees, all standing behind the wall.
    blocks = (((40, 48, 420, WALL_TOP_Y), (168, 196, 222)), ((430, 80, 640, WALL_TOP_Y), (150, 160, 190)))
    for (x0, y0, x1, y1), colour in blocks:
        cv2.rectangle(frame, (x0, y0), (x1, y1), colour, -1)
        cv2.rectangle(frame, (x0 - 4, y0 - 6), (x1 + 4, y0), (110, 110, 120), -1)
        rows = range(y0 + 12, y1 - 18, 28)
        for wy in rows:
            for wx in range(x0 + 14, x1 - 24, 34):
                shade = int(rng.integers(70, 110))
                cv2.rectangle(frame, (wx, wy), (wx + 20, wy + 16), (shade + 40, shade + 20, shade), -1)
                cv2.rectangle(frame, (wx, wy), (wx + 20, wy + 16), (235, 235, 235), 1)
    cv2.rectangle(frame, (205, 118), (255, WALL_TOP_Y), (70, 80, 95), -1)
    for tx in (10, 395, 610):
        for _ in range(6):
            cx = tx + int(rng.integers(-18, 18))
            cy = 120 + int(rng.integers(-30, 20))
            green = (int(rng.integers(40, 70)), int(rng.integers(110, 150)), int(rng.integers(50, 80)))
            cv2.circle(frame, (cx, cy), int(rng.integers(14, 24)), green, -1, cv2.LINE_AA)


def _draw_wall(frame: Image, rng: np.random.Generator) -> None:
    wall = frame[WALL_TOP_Y:WALL_BASE_Y]
    wall[:] = (62, 84, 150)
    for row, y in enumerate(range(0, WALL_BASE_Y - WALL_TOP_Y, 7)):
        cv2.line(wall, (0, y), (WIDTH, y), (160, 170, 180), 1)
        offset = 0 if row % 2 == 0 else 11
        for x in range(offset, WIDTH, 22):
            cv2.line(wall, (x, y), (x, min(y + 7, wall.shape[0] - 1)), (160, 170, 180), 1)
    jitter = rng.integers(-10, 10, size=wall.shape[:2], dtype=np.int16)[..., None]
    frame[WALL_TOP_Y:WALL_BASE_Y] = np.clip(wall.astype(np.int16) + jitter, 0, 255).astype(np.uint8)
    cv2.rectangle(frame, (0, WALL_TOP_Y - 5), (WIDTH, WALL_TOP_Y), (196, 200, 204), -1)


def _draw_ground(frame: Image, rng: np.random.Generator) -> None:
    rows = HEIGHT - WALL_BASE_Y
    texture = rng.normal(0.0, 9.0, size=(rows, WIDTH)).astype(np.float32)
    texture = np.asarray(cv2.GaussianBlur(texture, (0, 0), 1.2), dtype=np.float32)
    depth = np.linspace(0.85, 1.05, rows, dtype=np.float32)[:, None]
    base = np.array([112, 124, 118], np.float32)
    ground = base[None, None, :] * depth[..., None] + texture[..., None]
    frame[WALL_BASE_Y:] = np.clip(ground, 0, 255).astype(np.uint8)
    # Painted court lines, drawn in perspective towards a vanishing point above the picture.
    line = (225, 230, 230)
    cv2.line(frame, (60, 235), (580, 235), line, 2, cv2.LINE_AA)
    cv2.line(frame, (60, 235), (-40, HEIGHT), line, 2, cv2.LINE_AA)
    cv2.line(frame, (580, 235), (680, HEIGHT), line, 2, cv2.LINE_AA)
    cv2.line(frame, (320, 235), (320, HEIGHT), line, 2, cv2.LINE_AA)
    cv2.ellipse(frame, (320, 300), (70, 22), 0, 0, 360, line, 2, cv2.LINE_AA)
    cv2.rectangle(frame, (0, WALL_BASE_Y), (WIDTH, WALL_BASE_Y + 2), (80, 88, 84), -1)


def draw_flag(frame: Image, phase: float) -> None:
    """Draw the school flag waving; ``phase`` in turns (1.0 = one full wave cycle).

    The badge is drawn at a fixed place, so the flag's cloth moves under it: enough frame-to-frame change
    for a frozen-picture check, small enough to cost few bits.
    """
    for i in range(FLAG_W):
        # The free end of the flag flaps more than the edge tied to the pole.
        amplitude = 5.0 * (i / FLAG_W)
        dy = amplitude * math.sin(2 * math.pi * (phase - i / 24.0))
        top = FLAG_TOP_Y + round(dy)
        shade = 0.82 + 0.18 * math.cos(2 * math.pi * (phase - i / 24.0))
        colour = (int(190 * shade), int(110 * shade), int(30 * shade))
        x = FLAG_POLE_X + 2 + i
        cv2.line(frame, (x, top), (x, top + FLAG_H), colour, 1)
    # A plain school flag (blue with a white badge), deliberately not any real country's flag.
    cv2.circle(frame, (FLAG_POLE_X + 14, FLAG_TOP_Y + 14), 6, (245, 245, 245), -1, cv2.LINE_AA)


def draw_osd(frame: Image, seconds: float, label: str = "CAMPUSWATCH SIM") -> None:
    """Camera on-screen display: a clock with milliseconds (changes every frame) and a label."""
    total_ms = round(seconds * 1000)
    clock = f"2026-09-01 08:{(total_ms // 60000) % 60:02d}:{(total_ms // 1000) % 60:02d}.{total_ms % 1000:03d}"
    for text, org in ((clock, (8, 20)), (label, (WIDTH - 150, 20))):
        cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(frame, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)


def noise_bank(seed: int, count: int = 8, sigma: float = 3.0, grain: int = 4) -> npt.NDArray[np.int16]:
    """``count`` planes of luma sensor noise; cycling through them is far cheaper than drawing noise per frame.

    The noise is drawn at 1/``grain`` resolution and upscaled: per-pixel noise is almost all quantised away by
    x264, leaving clean scenes nearly as still as a frozen one, whereas grain this coarse survives encoding
    (consecutive decoded frames differ by about 1 grey level on average) at a modest bit-rate cost.
    """
    rng = np.random.default_rng(seed + 7919)
    small = rng.normal(0.0, sigma, size=(count, HEIGHT // grain, WIDTH // grain)).astype(np.float32)
    planes = [cv2.resize(plane, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC) for plane in small]
    return np.rint(np.stack(planes)).astype(np.int16)[..., None]


def add_noise(frame: Image, noise: npt.NDArray[np.int16]) -> Image:
    """``frame`` plus one noise plane, clipped to 0..255."""
    return np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
