"""The simulated cameras' scenes: what each scene shows, frame by frame.

Every scene is a pure function of (frame index, clip length, seed), so clips are reproducible and the people's
positions double as ground truth for analytics tests (:func:`people_at`). Motion is periodic in the clip length
where that makes sense, so that looping a clip does not make people jump.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np

from ingest.simulator.artwork import (
    HEIGHT,
    WALL_BASE_Y,
    WALL_TOP_Y,
    WIDTH,
    Image,
    PersonSprite,
    Placement,
    add_noise,
    draw_flag,
    draw_osd,
    draw_person,
    noise_bank,
    person_height,
    render_yard,
)


class SceneKind(StrEnum):
    """What a simulated camera shows."""

    EMPTY_YARD = "empty_yard"
    PEOPLE_WALKING = "people_walking"
    PERSON_LINGERING = "person_lingering"
    CROWD_FORMING = "crowd_forming"
    LINE_CROSSING = "line_crossing"
    PERSON_FALLING = "person_falling"
    BLACK = "black"
    FROZEN = "frozen"
    BLURRED = "blurred"
    LENS_COVERED = "lens_covered"
    TOO_DARK = "too_dark"
    COLOUR_CAST = "colour_cast"


PEOPLE_SCENES = frozenset(
    {
        SceneKind.PEOPLE_WALKING,
        SceneKind.PERSON_LINGERING,
        SceneKind.CROWD_FORMING,
        SceneKind.LINE_CROSSING,
        SceneKind.PERSON_FALLING,
    }
)
"""Scenes in which a person detector should find people."""

FAULT_SCENES = frozenset(
    {
        SceneKind.BLACK,
        SceneKind.FROZEN,
        SceneKind.BLURRED,
        SceneKind.LENS_COVERED,
        SceneKind.TOO_DARK,
        SceneKind.COLOUR_CAST,
    }
)
"""Scenes that a video-quality diagnosis should flag."""


@dataclass(frozen=True)
class CrossingLine:
    """The virtual tripwire of the ``line_crossing`` scene: the vertical line ``x = position`` (image pixels).

    The intruder climbs over the perimeter wall on the left, drops into the yard, walks towards the camera and
    then to the right, crossing the line from left to right (increasing x) where a person detector sees him well
    (feet about row 300, some 180 px tall) for seconds before and after.
    """

    position: int = 320
    orientation: str = "vertical"
    direction: str = "left_to_right"


LINE_CROSSING = CrossingLine()


@dataclass(frozen=True)
class _Walker:
    sprite: str
    foot_y: float
    laps: int
    phase: float
    rightwards: bool
    height: int | None = None
    extra_path: float = 0.0


# People are kept at least ~140 px tall: smaller ones are missed by small detectors such as yolov3-tiny.
# Close passers (head-and-shoulders crops) walk a path longer than the frame, so at most one is in view.
_WALKERS = (
    _Walker("beige_coat", 302, 1, 0.0, True),
    _Walker("black_coat", 265, 1, 0.45, False),
    _Walker("beige_coat", 252, 2, 0.7, False),
    _Walker("coach_pointing", HEIGHT + 50, 1, 0.1, False, height=230, extra_path=1100),
    _Walker("coach_shouting", HEIGHT + 50, 1, 0.6, True, height=230, extra_path=1100),
)

# Two rows, the front row in front of the back row's gaps, so that everyone stays mostly visible.
_CROWD_TARGETS = ((200, 258), (290, 258), (380, 258), (470, 258), (245, 305), (335, 305), (425, 305))
_CROWD_STARTS = ((-50, 240), (690, 245), (-60, 270), (700, 266), (40, 395), (700, 330), (-70, 322))
_CROWD_SPRITES = (
    ("black_coat", False),
    ("beige_coat", False),
    ("black_coat", True),
    ("beige_coat", True),
    ("beige_coat", False),
    ("black_coat", False),
    ("beige_coat", True),
)


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def _bob(t: float) -> float:
    """Vertical bounce of a walking person: two steps per second."""
    return -2.0 * abs(math.sin(2 * math.pi * t))


def _walkers(u: float, t: float, sprites: dict[str, PersonSprite]) -> list[Placement]:
    out = []
    for w in _WALKERS:
        height = w.height if w.height is not None else person_height(w.foot_y)
        width = height * sprites[w.sprite].aspect
        path = WIDTH + width + w.extra_path
        s = (w.laps * u + w.phase) % 1.0
        x = -width / 2 + s * path if w.rightwards else WIDTH + width / 2 - s * path
        out.append(Placement(w.sprite, x, w.foot_y + _bob(t + w.phase), height, mirrored=not w.rightwards))
    return out


def _lingerer(u: float) -> list[Placement]:
    foot_y = 292 + 3 * math.sin(4 * math.pi * u)
    return [Placement("beige_coat", 250 + 8 * math.sin(2 * math.pi * u), foot_y, person_height(foot_y))]


def _crowd(u: float) -> list[Placement]:
    out = []
    for i, ((tx, ty), (sx, sy), (sprite, mirrored)) in enumerate(
        zip(_CROWD_TARGETS, _CROWD_STARTS, _CROWD_SPRITES, strict=True)
    ):
        # Staggered arrivals over the first ~55 % of the clip, then the group stays and shuffles a little.
        p = _smoothstep((u - 0.015 * i) / 0.45)
        shuffle = 3.0 * math.sin(2 * math.pi * (2 * u + i / 7)) * p
        x = sx + (tx - sx) * p + shuffle
        y = sy + (ty - sy) * p
        out.append(Placement(sprite, x, y, person_height(y), mirrored=mirrored))
    return out


# The faller walks in from the right, collapses at FALL_AT of the clip and lies on the ground until its end.
FALL_AT = 0.4
_FALL_X, _FALL_FOOT_Y = 330.0, 318.0


def _faller(u: float) -> list[Placement]:
    height = person_height(_FALL_FOOT_Y)
    if u < FALL_AT:
        x = WIDTH + 40 - (WIDTH + 40 - _FALL_X) * u / FALL_AT
        return [Placement("beige_coat", x, _FALL_FOOT_Y + _bob(u * 8), height, mirrored=True)]
    # Lying: the beige coat turned a quarter to the left is what the fall model recognises best (measured).
    return [Placement("beige_coat", _FALL_X, _FALL_FOOT_Y + 4, height, lying=True)]


# The intruder climbs over the wall at x = _CLIMB_X and then walks the yard at feet row _WALK_Y.
_CLIMB_X = 90.0
_WALK_Y = 300.0


def _intruder(u: float) -> list[Placement]:
    wall_h = person_height(WALL_BASE_Y)  # on the wall he is at the wall's depth
    ledge = WALL_TOP_Y - 5
    landing = WALL_BASE_Y + 8
    sprite = "black_coat"
    if u < 0.10:
        return []
    if u < 0.22:  # rising from behind the wall: everything below the coping is hidden
        foot = ledge + 0.75 * wall_h * (1 - (u - 0.10) / 0.12)
        return [Placement(sprite, _CLIMB_X, foot, wall_h, visible_below_y=ledge)]
    if u < 0.28:  # standing on the wall
        return [Placement(sprite, _CLIMB_X, ledge, wall_h)]
    if u < 0.34:  # dropping down into the yard (accelerating)
        f = ((u - 0.28) / 0.06) ** 2
        return [Placement(sprite, _CLIMB_X, ledge + (landing - ledge) * f, wall_h)]
    if u < 0.50:  # walking towards the camera
        f = (u - 0.34) / 0.16
        foot = landing + (_WALK_Y - landing) * f
        return [Placement(sprite, _CLIMB_X + 90 * f, foot, person_height(foot))]
    # walking right along the yard, across the tripwire, and out of the picture
    f = (u - 0.50) / 0.50
    x = _CLIMB_X + 90 + (WIDTH + 60 - _CLIMB_X - 90) * f
    return [Placement(sprite, x, _WALK_Y + _bob(u * 8), person_height(_WALK_Y))]


def people_at(
    kind: SceneKind, index: int, frame_count: int, fps: int, sprites: dict[str, PersonSprite]
) -> list[Placement]:
    """The people drawn in frame ``index`` of a ``kind`` clip of ``frame_count`` frames, far ones first."""
    u = (index % frame_count) / frame_count
    t = index / fps
    if kind is SceneKind.PEOPLE_WALKING:
        people = _walkers(u, t, sprites)
    elif kind is SceneKind.PERSON_LINGERING:
        people = _lingerer(u)
    elif kind is SceneKind.CROWD_FORMING:
        people = _crowd(u)
    elif kind is SceneKind.LINE_CROSSING:
        people = _intruder(u)
    elif kind is SceneKind.PERSON_FALLING:
        people = _faller(u)
    elif kind is SceneKind.FROZEN:
        people = _walkers(0.3, 0.0, sprites)
    else:
        people = []
    return sorted(people, key=lambda p: p.foot_y)


def crossing_fraction(steps: int = 1000) -> float:
    """Fraction of the ``line_crossing`` clip at which the intruder's feet first pass :data:`LINE_CROSSING`."""
    for i in range(steps):
        people = _intruder(i / steps)
        if people and people[0].foot_x > LINE_CROSSING.position:
            return i / steps
    raise AssertionError("the line_crossing script never crosses its line")


class SceneRenderer:
    """Renders the frames of every scene; holds the yard, the sprites and the sensor-noise bank."""

    def __init__(self, sprites: dict[str, PersonSprite], seed: int) -> None:
        self._sprites = sprites
        self._yard = render_yard(seed)
        self._noise = noise_bank(seed)
        # The lens cover: a dark blob over most of the picture with a soft edge, leaving one corner visible.
        cover = np.zeros((HEIGHT, WIDTH), np.float32)
        cv2.ellipse(cover, (250, 150), (470, 300), -12, 0, 360, 1.0, -1)
        self._cover = cv2.GaussianBlur(cover, (0, 0), 18)[..., None]

    def frame(self, kind: SceneKind, index: int, frame_count: int, fps: int) -> Image:
        """Frame ``index`` (0-based) of a clip of ``frame_count`` frames of ``kind`` at ``fps``."""
        if kind is SceneKind.BLACK:
            return np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        if kind is SceneKind.FROZEN:
            index = 0  # every frame identical, clock included: the picture is stuck
        t = index / fps
        # The flag completes whole waves per clip so the loop point is seamless.
        waves = max(1, round(frame_count / fps / 1.5))
        picture = self._yard.copy()
        draw_flag(picture, waves * index / frame_count)
        for place in people_at(kind, index, frame_count, fps, self._sprites):
            draw_person(picture, self._sprites, place)
        noise = self._noise[index % len(self._noise)]
        if kind is SceneKind.BLURRED:
            # Out of focus: the optics blur the scene and the OSD is blurred with it (simplest for a detector);
            # the sensor noise comes after the optics, so it stays sharp.
            draw_osd(picture, t)
            return add_noise(np.asarray(cv2.GaussianBlur(picture, (0, 0), 7), dtype=np.uint8), noise)
        if kind is SceneKind.LENS_COVERED:
            dark = np.array([24, 26, 28], np.float32)
            covered = picture.astype(np.float32) * (1 - self._cover) + dark * self._cover
            picture = add_noise(covered.astype(np.uint8), noise)
        elif kind is SceneKind.TOO_DARK:
            picture = add_noise((picture.astype(np.float32) * 0.12).astype(np.uint8), noise // 2)
        elif kind is SceneKind.COLOUR_CAST:
            cast = picture.astype(np.float32) * np.array([0.35, 0.95, 0.35], np.float32)
            cast[..., 1] += 45
            picture = add_noise(np.clip(cast, 0, 255).astype(np.uint8), noise)
        else:
            picture = add_noise(picture, noise)
        draw_osd(picture, t)
        return picture
