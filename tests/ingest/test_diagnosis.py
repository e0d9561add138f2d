"""Video-quality diagnosis: scored on the simulator's real H.264 fault scenes, plus hysteresis and configuration.

Keyframes are decoded from the session's scene clips the way a reader in watch mode gets them: only the
keyframes' access units go to the decoder, and each picture is scaled once to 320x180 BGR. The simulator loops a
clip; the tests loop it too (the clips have 2 keyframes each, so the looped stream alternates between them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import av
import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from config.diagnosis import DiagnosisConfig, QualityThresholds, ThresholdOverrides
from ingest.diagnosis import FAULT_ORDER, SUPPRESSES, CameraDiagnosis, DiagnosisError
from ingest.errors import IngestError
from ingest.models import THUMBNAIL_HEIGHT, THUMBNAIL_WIDTH, FaultChange, Image, Keyframe, QualityFault
from ingest.quality_metrics import QualityMeasures, measure, reduce
from ingest.simulator import ClipLibrary, EncodedClip, SceneKind
from registry.models import SceneType

CODE = "37020200010013200001"
T0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
KEYFRAMES = 10
"""Keyframes fed per scene (20 s of a camera)."""

EXPECTED = {
    SceneKind.BLACK: QualityFault.BLACK,
    SceneKind.FROZEN: QualityFault.FROZEN,
    SceneKind.BLURRED: QualityFault.BLUR,
    SceneKind.LENS_COVERED: QualityFault.OCCLUSION,
    SceneKind.TOO_DARK: QualityFault.TOO_DARK,
    SceneKind.COLOUR_CAST: QualityFault.COLOUR_CAST,
}
CLEAN_SCENES = (
    SceneKind.EMPTY_YARD,
    SceneKind.PEOPLE_WALKING,
    SceneKind.PERSON_LINGERING,
    SceneKind.CROWD_FORMING,
    SceneKind.LINE_CROSSING,
)


def decode_keyframes(clip: EncodedClip, count: int) -> list[Image]:
    """``count`` keyframes of ``clip`` looped, decoded from their access units alone, scaled like the reader."""
    codec = av.CodecContext.create("h264", "r")
    pictures: list[Image] = []

    def scaled(frames: Iterable[av.VideoFrame]) -> None:
        for frame in frames:
            bgr = frame.reformat(width=THUMBNAIL_WIDTH, height=THUMBNAIL_HEIGHT, format="bgr24").to_ndarray()
            pictures.append(np.asarray(bgr, dtype=np.uint8))

    for i in range(count):
        # Every keyframe is an IDR with SPS/PPS in front, so each one decodes on its own, as after a seek.
        scaled(codec.decode(av.Packet(clip.frames[clip.keyframes[i % len(clip.keyframes)]])))
    scaled(codec.decode(None))
    assert len(pictures) == count
    return pictures


@pytest.fixture(scope="module")
def scenes(sim_clips: ClipLibrary) -> dict[SceneKind, list[Image]]:
    """:data:`KEYFRAMES` decoded keyframes of every scene."""
    return {kind: decode_keyframes(sim_clips[kind], KEYFRAMES) for kind in SceneKind}


def keyframe(image: Image, index: int, code: str = CODE) -> Keyframe:
    """The ``index``-th keyframe of a camera (one every 2 s)."""
    return Keyframe(code, T0 + timedelta(seconds=2 * index), image, 640, 360)


def feed(diagnosis: CameraDiagnosis, images: list[Image]) -> list[tuple[int, FaultChange]]:
    """Feed ``images`` as consecutive keyframes; returns (1-based keyframe number, change) pairs."""
    changes: list[tuple[int, FaultChange]] = []
    for i, image in enumerate(images):
        changes.extend((i + 1, change) for change in diagnosis.update(keyframe(image, i)))
    return changes


def clean_measures(
    *,
    luma: float = 130.0,
    sharpness: float = 40.0,
    flat_share: float = 0.15,
    colour_cast: float = 3.0,
    change: float | None = 2.0,
) -> QualityMeasures:
    """Measures of an unremarkable picture, with some values replaced."""
    return QualityMeasures(
        luma=luma,
        contrast=40.0,
        sharpness=sharpness,
        flat_share=flat_share,
        colour_cast=colour_cast,
        change=change,
    )


def gain(image: Image, alpha: float, beta: float = 0.0) -> Image:
    """``image`` x ``alpha`` + ``beta``, clipped: a camera's exposure turned up or down."""
    return np.asarray(cv2.convertScaleAbs(image, alpha=alpha, beta=beta), dtype=np.uint8)


# -- scoring on the simulator's scenes ------------------------------------------------------------------------


@pytest.mark.parametrize("scene", sorted(EXPECTED), ids=str)
def test_fault_scene_found_within_three_keyframes(scenes: dict[SceneKind, list[Image]], scene: SceneKind) -> None:
    expected = EXPECTED[scene]
    diagnosis = CameraDiagnosis(CODE)
    changes = feed(diagnosis, scenes[scene])
    # Exactly one change: the expected root cause, raised by the 3rd keyframe and never flapping afterwards.
    assert [(c.fault, c.active) for _, c in changes] == [(expected, True)]
    found_at, change = changes[0]
    assert found_at <= 3
    assert diagnosis.active == {expected}
    assert change.camera_code == CODE
    assert change.at == T0 + timedelta(seconds=2 * (found_at - 1))
    # The event carries the measured values (the lead attaches the thumbnail JPEG).
    assert {"luma", "contrast", "sharpness", "flat_share", "colour_cast"} <= set(change.details)
    if expected in (QualityFault.OCCLUSION, QualityFault.COLOUR_CAST):  # faults of a value at least a threshold
        assert change.value >= change.threshold
    else:
        assert change.value <= change.threshold


@pytest.mark.parametrize("scene", CLEAN_SCENES, ids=str)
def test_clean_scene_raises_nothing(scenes: dict[SceneKind, list[Image]], scene: SceneKind) -> None:
    diagnosis = CameraDiagnosis(CODE)
    assert feed(diagnosis, scenes[scene]) == []
    assert diagnosis.active == frozenset()
    measures = diagnosis.measures
    assert measures is not None and measures.change is not None


def test_still_yard_is_not_frozen_but_a_stuck_one_is(scenes: dict[SceneKind, list[Image]]) -> None:
    """The empty yard is as still as a scene gets; its keyframes differ only by sensor noise, clock and flag."""
    yard, frozen = scenes[SceneKind.EMPTY_YARD], scenes[SceneKind.FROZEN]
    threshold = QualityThresholds().frozen_change_max
    # The simulator's clean scenes carry what real cameras have: a running OSD clock (top-left) and sensor
    # noise all over the picture. The frozen scene has neither: its keyframes decode identically.
    osd = (slice(0, 16), slice(0, 100))
    assert cv2.absdiff(yard[0][osd], yard[1][osd]).max() > 50
    below_osd = cv2.absdiff(yard[0][40:], yard[1][40:])
    assert float(np.mean(below_osd)) > 1.0
    assert cv2.absdiff(frozen[0], frozen[1]).max() <= 2
    yard_change = measure(yard[1], yard[0]).change
    frozen_change = measure(frozen[1], frozen[0]).change
    assert yard_change is not None and frozen_change is not None
    assert yard_change > 3 * threshold
    assert frozen_change <= threshold / 10

    # A camera stuck on its still-yard picture (the same keyframe over and over) is frozen on the 3rd.
    stuck = CameraDiagnosis(CODE)
    changes = feed(stuck, [yard[0]] * 4)
    assert [(n, c.fault, c.active) for n, c in changes] == [(3, QualityFault.FROZEN, True)]


def test_frozen_picture_under_a_running_osd_clock_is_still_frozen(scenes: dict[SceneKind, list[Image]]) -> None:
    # Many cameras keep drawing their clock over a stuck picture; the clock covers far less than a quarter of
    # the blocks, which is what the change measure needs to see moving.
    frozen, yard = scenes[SceneKind.FROZEN], scenes[SceneKind.EMPTY_YARD]
    pictures = []
    for i in range(5):
        picture = frozen[i].copy()
        picture[:16] = yard[i % 2][:16]
        pictures.append(picture)
    assert cv2.absdiff(pictures[0][:16], pictures[1][:16]).max() > 50
    diagnosis = CameraDiagnosis(CODE)
    changes = feed(diagnosis, pictures)
    assert [(n, c.fault, c.active) for n, c in changes] == [(3, QualityFault.FROZEN, True)]


def test_too_bright_picture(scenes: dict[SceneKind, list[Image]]) -> None:
    # An overexposed yard: gain 1.6 clips the sky and the walls to white.
    bright = [gain(image, 1.6, 20) for image in scenes[SceneKind.EMPTY_YARD]]
    assert float(np.mean(bright[0])) > 200
    diagnosis = CameraDiagnosis(CODE)
    changes = feed(diagnosis, bright[:5])
    assert [(n, c.fault, c.active) for n, c in changes] == [(2, QualityFault.TOO_BRIGHT, True)]
    assert changes[0][1].value >= QualityThresholds().too_bright_luma_min


def test_dim_but_sharp_picture_is_only_too_dark_not_blurred(scenes: dict[SceneKind, list[Image]]) -> None:
    # Sharpness is scaled to the exposure: a yard at a third of its light is still sharp.
    dim = [gain(image, 0.33) for image in scenes[SceneKind.EMPTY_YARD]]
    measures = measure(dim[1], dim[0])
    assert measures.sharpness > 2 * QualityThresholds().blur_sharpness_max
    diagnosis = CameraDiagnosis(CODE)
    assert feed(diagnosis, dim[:6]) == []


def test_fault_clears_after_clean_keyframes(scenes: dict[SceneKind, list[Image]]) -> None:
    diagnosis = CameraDiagnosis(CODE, clear_after=3)
    changes = feed(diagnosis, scenes[SceneKind.LENS_COVERED][:3] + scenes[SceneKind.EMPTY_YARD][:5])
    assert [(n, c.fault, c.active) for n, c in changes] == [
        (2, QualityFault.OCCLUSION, True),
        (6, QualityFault.OCCLUSION, False),  # the 3rd clean keyframe
    ]
    cleared = changes[1][1]
    assert cleared.value < cleared.threshold
    assert diagnosis.active == frozenset()


def test_black_hides_too_dark_and_never_both(scenes: dict[SceneKind, list[Image]]) -> None:
    diagnosis = CameraDiagnosis(CODE)
    sequence = scenes[SceneKind.TOO_DARK][:3] + scenes[SceneKind.BLACK][:4] + scenes[SceneKind.TOO_DARK][:6]
    history = []
    for i, image in enumerate(sequence):
        changes = diagnosis.update(keyframe(image, i))
        # Clears come before raises, so applying them in order never shows two root causes.
        assert [c.active for c in changes] == sorted(c.active for c in changes)
        history.append((i + 1, [(c.fault, c.active) for c in changes]))
        assert not {QualityFault.BLACK, QualityFault.TOO_DARK} <= diagnosis.active
    changed = [(n, c) for n, c in history if c]
    assert changed == [
        (2, [(QualityFault.TOO_DARK, True)]),
        # Black is raised on its 2nd keyframe and too_dark, hidden by it, clears at once.
        (5, [(QualityFault.TOO_DARK, False), (QualityFault.BLACK, True)]),
        (10, [(QualityFault.BLACK, False)]),  # 3 keyframes not black
        # too_dark counts from the keyframe black cleared on (10), so its 2 keyframes end at 11.
        (11, [(QualityFault.TOO_DARK, True)]),
    ]


def test_occlusion_hides_blur(scenes: dict[SceneKind, list[Image]]) -> None:
    diagnosis = CameraDiagnosis(CODE)
    changes = feed(diagnosis, scenes[SceneKind.BLURRED][:3] + scenes[SceneKind.LENS_COVERED][:3])
    assert [(n, c.fault, c.active) for n, c in changes] == [
        (2, QualityFault.BLUR, True),
        (5, QualityFault.BLUR, False),
        (5, QualityFault.OCCLUSION, True),
    ]


def test_precedence_table_is_consistent() -> None:
    # Hiding is transitive by construction: whatever a fault hides, its own hiders hide too.
    for hider, hidden in SUPPRESSES.items():
        for fault in hidden:
            assert FAULT_ORDER.index(hider) < FAULT_ORDER.index(fault)
            assert SUPPRESSES.get(fault, frozenset()) <= hidden
    assert SUPPRESSES[QualityFault.BLACK] == set(FAULT_ORDER) - {QualityFault.BLACK}


# -- hysteresis ---------------------------------------------------------------------------------------------


def hovering(threshold: float, count: int) -> list[float]:
    """Values alternating just either side of ``threshold`` (within 3 %)."""
    return [threshold * (0.97 if i % 2 else 1.03) for i in range(count)]


def test_value_alternating_at_a_threshold_does_not_flood() -> None:
    threshold = QualityThresholds().too_dark_luma_max
    diagnosis = CameraDiagnosis(CODE)
    changes = [
        c for i, v in enumerate(hovering(threshold, 40)) for c in diagnosis.observe(clean_measures(luma=v), T0)
    ]
    assert changes == []  # never two faulty keyframes in a row

    # Once raised, a value hovering at the threshold stays inside the margin and the fault stays up.
    raised = diagnosis.observe(clean_measures(luma=threshold - 5), T0)
    raised += diagnosis.observe(clean_measures(luma=threshold - 5), T0)
    assert [(c.fault, c.active) for c in raised] == [(QualityFault.TOO_DARK, True)]
    hovered = [c for v in hovering(threshold, 40) for c in diagnosis.observe(clean_measures(luma=v), T0)]
    assert hovered == []
    assert diagnosis.active == {QualityFault.TOO_DARK}
    cleared = [c for _ in range(3) for c in diagnosis.observe(clean_measures(luma=threshold * 1.2), T0)]
    assert [(c.fault, c.active) for c in cleared] == [(QualityFault.TOO_DARK, False)]


def test_without_hysteresis_the_same_values_would_flood() -> None:
    # The control for the test above: no margin and no confirmation turns the hovering into a change each time.
    threshold = QualityThresholds().colour_cast_min
    diagnosis = CameraDiagnosis(CODE, raise_after=1, clear_after=1, hysteresis_margin=0.0)
    changes = [c for v in hovering(threshold, 20) for c in diagnosis.observe(clean_measures(colour_cast=v), T0)]
    assert len(changes) == 20
    damped = CameraDiagnosis(CODE)
    assert [c for v in hovering(threshold, 20) for c in damped.observe(clean_measures(colour_cast=v), T0)] == []


def test_margin_applies_on_the_lower_bound_side_too() -> None:
    threshold = QualityThresholds().occlusion_share_min
    diagnosis = CameraDiagnosis(CODE, raise_after=1, clear_after=1, hysteresis_margin=0.1)
    assert [c.active for c in diagnosis.observe(clean_measures(flat_share=threshold), T0)] == [True]
    # 95 % of the threshold is inside the 10 % margin: still occluded; 85 % is clearly clean.
    assert diagnosis.observe(clean_measures(flat_share=threshold * 0.95), T0) == []
    assert [c.active for c in diagnosis.observe(clean_measures(flat_share=threshold * 0.85), T0)] == [False]


def test_frozen_clears_once_the_picture_moves() -> None:
    diagnosis = CameraDiagnosis(CODE, frozen_keyframes=4, clear_after=2)
    still = [diagnosis.observe(clean_measures(change=None if i == 0 else 0.0), T0) for i in range(4)]
    assert [len(c) for c in still] == [0, 0, 0, 1]  # the 4th same picture
    assert diagnosis.active == {QualityFault.FROZEN}
    assert diagnosis.observe(clean_measures(change=5.0), T0) == []
    moved = diagnosis.observe(clean_measures(change=5.0), T0)
    assert [(c.fault, c.active, c.value) for c in moved] == [(QualityFault.FROZEN, False, 5.0)]


# -- signal loss ---------------------------------------------------------------------------------------------


def test_signal_loss_raised_on_silence_and_cleared_by_the_next_keyframe(
    scenes: dict[SceneKind, list[Image]],
) -> None:
    black = scenes[SceneKind.BLACK]
    diagnosis = CameraDiagnosis(CODE, signal_loss_after_s=10.0)
    assert [c.fault for _, c in feed(diagnosis, black[:2])] == [QualityFault.BLACK]
    silent_at = T0 + timedelta(seconds=14)
    assert diagnosis.silence(silent_at, 4.0) == []
    assert diagnosis.silence(silent_at, 10.0) == []  # "longer than" the limit
    lost = diagnosis.silence(silent_at, 12.5)
    assert [(c.fault, c.active, c.value, c.threshold) for c in lost] == [
        (QualityFault.SIGNAL_LOSS, True, 12.5, 10.0)
    ]
    assert diagnosis.silence(silent_at, 30.0) == []  # raised once
    assert diagnosis.active == {QualityFault.SIGNAL_LOSS, QualityFault.BLACK}

    # The camera comes back (after a reconnect) still black: signal loss clears, black stays without a new event.
    back = diagnosis.update(Keyframe(CODE, T0 + timedelta(seconds=40), black[2], 640, 360))
    assert [(c.fault, c.active) for c in back] == [(QualityFault.SIGNAL_LOSS, False)]
    assert back[0].details["since_last_keyframe_s"] == 38.0  # since the keyframe at T0 + 2 s
    assert diagnosis.active == {QualityFault.BLACK}


def test_forget_clears_everything(scenes: dict[SceneKind, list[Image]]) -> None:
    diagnosis = CameraDiagnosis(CODE)
    assert [(n, c.fault) for n, c in feed(diagnosis, scenes[SceneKind.COLOUR_CAST][:2])] == [
        (2, QualityFault.COLOUR_CAST)
    ]
    assert len(diagnosis.silence(T0, 60.0)) == 1
    cleared = diagnosis.forget(T0 + timedelta(minutes=1))
    assert {(c.fault, c.active) for c in cleared} == {
        (QualityFault.COLOUR_CAST, False),
        (QualityFault.SIGNAL_LOSS, False),
    }
    assert diagnosis.active == frozenset()
    assert diagnosis.measures is None
    # Nothing remembered: the fault needs its full confirmation again.
    assert feed(diagnosis, scenes[SceneKind.COLOUR_CAST][:1]) == []


# -- errors ------------------------------------------------------------------------------------------------------


def test_bad_input_raises_diagnosis_errors(scenes: dict[SceneKind, list[Image]]) -> None:
    assert issubclass(DiagnosisError, IngestError)
    with pytest.raises(DiagnosisError, match="uint8 BGR"):
        reduce(np.zeros((180, 320), np.uint8))
    with pytest.raises(DiagnosisError, match="uint8 BGR"):
        reduce(np.zeros((180, 320, 3), np.float32))
    with pytest.raises(DiagnosisError, match="too small"):
        reduce(np.zeros((1, 320, 3), np.uint8))
    diagnosis = CameraDiagnosis(CODE)
    with pytest.raises(DiagnosisError, match="other-camera"):
        diagnosis.update(keyframe(scenes[SceneKind.EMPTY_YARD][0], 0, code="other-camera"))
    with pytest.raises(DiagnosisError, match="since_last_keyframe_s"):
        diagnosis.silence(T0, -1.0)
    with pytest.raises(DiagnosisError, match="raise_after"):
        CameraDiagnosis(CODE, raise_after=0)
    with pytest.raises(DiagnosisError, match="frozen_keyframes"):
        CameraDiagnosis(CODE, frozen_keyframes=1)


# -- configuration ------------------------------------------------------------------------------------------------


def test_thresholds_merge_defaults_scene_then_camera() -> None:
    config = DiagnosisConfig.model_validate(
        {
            "defaults": {"colour_cast_min": 22},
            "by_scene": {"playground": {"colour_cast_min": 40, "blur_sharpness_max": 8}},
            "by_camera": {"CAM-1": {"colour_cast_min": 60}},
        }
    )
    defaults = QualityThresholds()
    both = config.thresholds_for("CAM-1", "playground")
    assert (both.colour_cast_min, both.blur_sharpness_max) == (60, 8)  # camera over scene; scene over defaults
    assert both.too_dark_luma_max == defaults.too_dark_luma_max
    scene_only = config.thresholds_for("CAM-2", SceneType.PLAYGROUND)
    assert (scene_only.colour_cast_min, scene_only.blur_sharpness_max) == (40, 8)
    camera_only = config.thresholds_for("CAM-1", "gate")
    assert (camera_only.colour_cast_min, camera_only.blur_sharpness_max) == (60, defaults.blur_sharpness_max)
    plain = config.thresholds_for("CAM-3", None)
    assert plain == defaults.model_copy(update={"colour_cast_min": 22})


def test_camera_and_scene_overrides_change_the_verdict(scenes: dict[SceneKind, list[Image]]) -> None:
    config = DiagnosisConfig(
        by_scene={"water": ThresholdOverrides(colour_cast_min=80)},
        by_camera={
            "tolerant": ThresholdOverrides(colour_cast_min=90),
            "touchy": ThresholdOverrides(colour_cast_min=5),
        },
    )
    cast = scenes[SceneKind.COLOUR_CAST][:4]
    verdicts = {}
    for code, scene_type in (("tolerant", "gate"), ("other", "water"), ("other", "gate"), ("touchy", "water")):
        diagnosis = CameraDiagnosis.from_config(code, scene_type, config)
        images = [Keyframe(code, T0 + timedelta(seconds=2 * i), image, 640, 360) for i, image in enumerate(cast)]
        verdicts[code, scene_type] = {c.fault for image in images for c in diagnosis.update(image)}
    assert verdicts == {
        ("tolerant", "gate"): set(),  # camera override
        ("other", "water"): set(),  # scene override
        ("other", "gate"): {QualityFault.COLOUR_CAST},  # defaults
        ("touchy", "water"): {QualityFault.COLOUR_CAST},  # camera over scene
    }
    hysteresis = CameraDiagnosis.from_config("x", None, DiagnosisConfig(raise_after=3, frozen_keyframes=5))
    assert (hysteresis.raise_after, hysteresis.frozen_keyframes, hysteresis.clear_after) == (3, 5, 3)


@pytest.mark.parametrize(
    ("data", "loc", "needle"),
    [
        ({"by_scene": {"playgrnd": {"colour_cast_min": 40}}}, ("by_scene",), "unknown scene type(s) 'playgrnd'"),
        ({"defaults": {"too_dark_luma_max": 300}}, ("defaults", "too_dark_luma_max"), "less than or equal to 128"),
        (
            {"by_camera": {"C1": {"occlusion_share_min": 2}}},
            ("by_camera", "C1", "occlusion_share_min"),
            "less than or equal to 1",
        ),
        ({"defaults": {"colour": 1}}, ("defaults", "colour"), "Extra inputs are not permitted"),
        ({"raise_after": 0}, ("raise_after",), "greater than or equal to 1"),
        (
            {"by_scene": {"corridor": {"too_dark_luma_max": 128, "too_bright_luma_min": 128}}},
            (),
            "by_scene.corridor: too_dark_luma_max must be below too_bright_luma_min",
        ),
    ],
)
def test_bad_configuration_is_rejected_clearly(data: dict[str, object], loc: tuple[str, ...], needle: str) -> None:
    with pytest.raises(ValidationError) as caught:
        DiagnosisConfig.model_validate(data)
    errors = caught.value.errors()
    assert len(errors) == 1
    assert errors[0]["loc"] == loc
    assert needle in errors[0]["msg"]


def test_bad_scene_key_lists_the_valid_ones() -> None:
    with pytest.raises(ValidationError) as caught:
        DiagnosisConfig.model_validate({"by_scene": {"Gate": {}}})
    message = caught.value.errors()[0]["msg"]
    assert all(scene.value in message for scene in SceneType)


def test_every_threshold_is_described_and_bounded() -> None:
    for model in (QualityThresholds, ThresholdOverrides, DiagnosisConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
            bounded = name in {"enabled", "defaults", "by_scene", "by_camera"}
            metadata = {type(m).__name__ for m in field.metadata}
            assert bounded or {"Ge", "Le"} <= metadata, f"{model.__name__}.{name} lacks ge/le bounds"
    # The overrides mirror the thresholds exactly.
    assert set(ThresholdOverrides.model_fields) == set(QualityThresholds.model_fields)
    assert DiagnosisConfig().by_scene == {}
