"""The ``diagnosis`` section: video-quality diagnosis (VQD) thresholds and hysteresis.

Thresholds apply to the measures of :mod:`ingest.quality_metrics`, taken on every camera's keyframes (one every
~2 s, scaled to 320x180 and measured on a 160x90 grey copy). ``defaults`` hold for every camera; ``by_scene``
overrides some of them for a scene type (a playground's artificial turf is green, a corridor has bare walls) and
``by_camera`` for one camera code; :meth:`DiagnosisConfig.thresholds_for` merges defaults <- scene <- camera.

The defaults were calibrated on the simulator's fault scenes (``ingest/simulator/scenes.py``) and keep a wide gap
to its clean scenes; the figures are in each field's description.
"""

from __future__ import annotations

from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from registry.models import SceneType

_SCENE_TYPES = tuple(s.value for s in SceneType)


class _Model(BaseModel):
    # Not config.schema.Section: schema imports this module, so this one must not import schema.
    model_config = ConfigDict(extra="forbid", frozen=True)


class QualityThresholds(_Model):
    """Every threshold of the quality rules. Grey levels are 0..255; shares are 0..1 of the picture."""

    black_luma_max: float = Field(
        12.0,
        ge=0,
        le=128,
        description="black: mean grey level at or below this (a dead or capped feed decodes at ~0; too_dark ~16)",
    )
    black_flat_share_min: float = Field(
        0.85,
        ge=0.5,
        le=1.0,
        description="black: and at least this share of the picture flat (room for an OSD clock over black)",
    )
    too_dark_luma_max: float = Field(
        35.0,
        ge=0,
        le=128,
        description="too_dark: mean grey level at or below this (simulator: too_dark 16, clean scenes 125-140)",
    )
    too_bright_luma_min: float = Field(
        215.0,
        ge=128,
        le=255,
        description="too_bright: mean grey level at or above this (overexposed, washed out)",
    )
    blur_sharpness_max: float = Field(
        12.0,
        ge=0,
        le=255,
        description=(
            "blur: sharpness (edge strength of the sharpest fifth of the picture, scaled to mid-grey exposure) "
            "at or below this (simulator: blurred 6, colour_cast 30, clean 38-54)"
        ),
    )
    flat_block_std_max: float = Field(
        3.0,
        ge=0,
        le=64,
        description=(
            "A 10x10 block of the 160x90 grey picture is flat (blocked) when its standard deviation is at or "
            "below this; raise it for noisy cameras (simulator: lens cover 1-2.3, textured scene 4-50)"
        ),
    )
    occlusion_share_min: float = Field(
        0.6,
        ge=0.05,
        le=1.0,
        description=(
            "occlusion: share of flat blocks at or above this (simulator: lens_covered 0.88, too_dark 0.5, "
            "clean 0.06-0.22); raise it for scenes of bare walls"
        ),
    )
    frozen_change_max: float = Field(
        0.5,
        ge=0,
        le=64,
        description=(
            "frozen: change to the previous keyframe (75th percentile over 10x10 blocks of the mean absolute "
            "grey difference) at or below this counts as the same picture (simulator: frozen 0, still yard 2)"
        ),
    )
    colour_cast_min: float = Field(
        20.0,
        ge=1,
        le=180,
        description=(
            "colour_cast: distance of the picture's mean colour from grey (CbCr, 8-bit units) at or above this "
            "(simulator: colour_cast 68, clean 0.6-3.3)"
        ),
    )


class ThresholdOverrides(_Model):
    """Some thresholds of :class:`QualityThresholds` for a scene type or a camera; unset ones are inherited."""

    black_luma_max: float | None = Field(None, ge=0, le=128, description="See QualityThresholds.black_luma_max")
    black_flat_share_min: float | None = Field(
        None, ge=0.5, le=1.0, description="See QualityThresholds.black_flat_share_min"
    )
    too_dark_luma_max: float | None = Field(
        None, ge=0, le=128, description="See QualityThresholds.too_dark_luma_max"
    )
    too_bright_luma_min: float | None = Field(
        None, ge=128, le=255, description="See QualityThresholds.too_bright_luma_min"
    )
    blur_sharpness_max: float | None = Field(
        None, ge=0, le=255, description="See QualityThresholds.blur_sharpness_max"
    )
    flat_block_std_max: float | None = Field(
        None, ge=0, le=64, description="See QualityThresholds.flat_block_std_max"
    )
    occlusion_share_min: float | None = Field(
        None, ge=0.05, le=1.0, description="See QualityThresholds.occlusion_share_min"
    )
    frozen_change_max: float | None = Field(
        None, ge=0, le=64, description="See QualityThresholds.frozen_change_max"
    )
    colour_cast_min: float | None = Field(None, ge=1, le=180, description="See QualityThresholds.colour_cast_min")

    def set_values(self) -> dict[str, float]:
        """The thresholds this override sets (the unset ones left out)."""
        return {name: value for name, value in self.model_dump().items() if value is not None}


class DiagnosisConfig(_Model):
    """Video-quality diagnosis on keyframes: thresholds, per-scene and per-camera overrides, hysteresis."""

    enabled: bool = Field(True, description="Diagnose the quality of every camera's keyframes")
    defaults: QualityThresholds = Field(
        default_factory=QualityThresholds, description="Thresholds for every camera unless overridden"
    )
    by_scene: dict[str, ThresholdOverrides] = Field(
        default_factory=dict,
        description=f"Overrides by camera scene type ({', '.join(_SCENE_TYPES)})",
    )
    by_camera: dict[str, ThresholdOverrides] = Field(
        default_factory=dict, description="Overrides by camera code; these win over by_scene"
    )
    raise_after: int = Field(
        2,
        ge=1,
        le=30,
        description="Consecutive faulty keyframes before a fault is raised (2: found on the 2nd keyframe, ~4 s)",
    )
    clear_after: int = Field(
        3, ge=1, le=100, description="Consecutive clean keyframes before an active fault clears"
    )
    hysteresis_margin: float = Field(
        0.1,
        ge=0,
        le=0.5,
        description=(
            "An active fault counts a keyframe as clean only when its value is beyond the threshold by this "
            "share of the threshold, so a value hovering at a threshold does not flood changes"
        ),
    )
    frozen_keyframes: int = Field(
        3,
        ge=2,
        le=1000,
        description="frozen: this many consecutive keyframes showing the same picture (3: ~6 s)",
    )
    signal_loss_after_s: float = Field(
        10.0,
        ge=1,
        le=3600,
        description="signal_loss: a connected camera sent no keyframe for longer than this many seconds",
    )

    @field_validator("by_scene", mode="before")
    @classmethod
    def _known_scenes(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = sorted(str(key) for key in value if key not in _SCENE_TYPES)
            if unknown:
                raise ValueError(
                    f"unknown scene type(s) {', '.join(repr(k) for k in unknown)}; "
                    f"use one of: {', '.join(_SCENE_TYPES)}"
                )
        return value

    @field_validator("by_camera")
    @classmethod
    def _camera_codes(cls, value: dict[str, ThresholdOverrides]) -> dict[str, ThresholdOverrides]:
        blank = [key for key in value if not key.strip()]
        if blank:
            raise ValueError("a camera code in by_camera is empty")
        return value

    @model_validator(mode="after")
    def _overrides_consistent(self) -> Self:
        # Catch contradictions once at load time rather than as a camera that is always (or never) faulty.
        for where, overrides in (
            ("defaults", {}),
            *((f"by_scene.{k}", v.set_values()) for k, v in self.by_scene.items()),
            *((f"by_camera.{k}", v.set_values()) for k, v in self.by_camera.items()),
        ):
            merged = QualityThresholds.model_validate({**self.defaults.model_dump(), **overrides})
            if merged.too_dark_luma_max >= merged.too_bright_luma_min:
                raise ValueError(f"{where}: too_dark_luma_max must be below too_bright_luma_min")
            if merged.black_luma_max > merged.too_dark_luma_max:
                raise ValueError(f"{where}: black_luma_max must not exceed too_dark_luma_max")
        return self

    def thresholds_for(self, camera_code: str, scene_type: str | None = None) -> QualityThresholds:
        """The thresholds of one camera: ``defaults`` <- ``by_scene[scene_type]`` <- ``by_camera[camera_code]``.

        ``scene_type`` is a :class:`registry.models.SceneType` value (or None when unknown); a scene or camera
        without overrides gets the defaults.
        """
        values = self.defaults.model_dump()
        if scene_type is not None and str(scene_type) in self.by_scene:
            values.update(self.by_scene[str(scene_type)].set_values())
        if camera_code in self.by_camera:
            values.update(self.by_camera[camera_code].set_values())
        return QualityThresholds.model_validate(values)
