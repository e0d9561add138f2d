"""Video-quality diagnosis (VQD) of one camera's keyframes: fault rules, root-cause precedence and hysteresis.

Every keyframe (one every ~2 s, scaled once to 320x180) is measured by :func:`ingest.quality_metrics.measure`
and judged against the camera's :class:`config.diagnosis.QualityThresholds`:

==============  ====================================================================================
fault           faulty keyframe when
==============  ====================================================================================
black           mean grey <= ``black_luma_max`` and flat share >= ``black_flat_share_min``
occlusion       flat share (10x10 blocks, grey std <= ``flat_block_std_max``, not white) >= ``occlusion_share_min``
too_dark        mean grey <= ``too_dark_luma_max``
too_bright      mean grey >= ``too_bright_luma_min``
frozen          the last ``frozen_keyframes`` keyframes show the same picture (change <= ``frozen_change_max``)
blur            sharpness <= ``blur_sharpness_max``
colour_cast     colour cast >= ``colour_cast_min``
signal_loss     no keyframe for longer than ``signal_loss_after_s`` (see :meth:`CameraDiagnosis.silence`)
==============  ====================================================================================

Precedence (only the most specific root cause is reported): a black picture is also dark, flat, unchanging and
unsharp, so **black** hides every other picture fault; a covered lens darkens, flattens and stills the picture,
so **occlusion** hides too_dark, too_bright, frozen, blur and colour_cast; a **too_dark** or **too_bright**
picture has too little detail and colour left to judge sharpness, change or colour, so it hides frozen, blur and
colour_cast. Frozen, blur and colour_cast are independent of each other. A hidden fault that is active clears at
once when the fault hiding it is raised, and cannot be raised while that fault is active or faulty on the current
keyframe. Signal loss is about the stream, not the picture, and hides nothing.

Hysteresis: a fault is raised after ``raise_after`` consecutive faulty keyframes (frozen: as soon as
``frozen_keyframes`` keyframes showed the same picture) and cleared after ``clear_after`` consecutive clean ones;
while a fault is active, a keyframe counts as clean only when its value is beyond the threshold by
``hysteresis_margin`` times the threshold, so a value hovering at a threshold does not flood the duty room.

Known limits: a dark cover and a dark, featureless night scene look alike on one picture (both read as
occlusion); a perfectly still scene from a camera without sensor noise or a running clock reads as frozen.
Per-scene and per-camera overrides (``diagnosis.by_scene`` / ``by_camera``) are the remedy.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from config.diagnosis import DiagnosisConfig, QualityThresholds
from ingest.models import FaultChange, Keyframe, QualityFault
from ingest.quality_metrics import DiagnosisError, QualityMeasures, ReducedFrame, measure, reduce

__all__ = [
    "FAULT_ORDER",
    "SUPPRESSES",
    "CameraDiagnosis",
    "DiagnosisError",
]

log = logging.getLogger(__name__)

_F = QualityFault

FAULT_ORDER: tuple[QualityFault, ...] = (
    _F.BLACK,
    _F.OCCLUSION,
    _F.TOO_DARK,
    _F.TOO_BRIGHT,
    _F.FROZEN,
    _F.BLUR,
    _F.COLOUR_CAST,
)
"""The picture faults, most specific root cause first (signal loss is handled apart)."""

SUPPRESSES: Mapping[QualityFault, frozenset[QualityFault]] = {
    _F.BLACK: frozenset({_F.OCCLUSION, _F.TOO_DARK, _F.TOO_BRIGHT, _F.FROZEN, _F.BLUR, _F.COLOUR_CAST}),
    _F.OCCLUSION: frozenset({_F.TOO_DARK, _F.TOO_BRIGHT, _F.FROZEN, _F.BLUR, _F.COLOUR_CAST}),
    _F.TOO_DARK: frozenset({_F.FROZEN, _F.BLUR, _F.COLOUR_CAST}),
    _F.TOO_BRIGHT: frozenset({_F.FROZEN, _F.BLUR, _F.COLOUR_CAST}),
}
"""Which faults each fault hides while it is active or faulty on the current keyframe."""

_SUPPRESSED_BY: dict[QualityFault, tuple[QualityFault, ...]] = {
    fault: tuple(s for s in FAULT_ORDER if fault in SUPPRESSES.get(s, frozenset())) for fault in FAULT_ORDER
}


@dataclass(frozen=True)
class _Reading:
    """One fault's verdict on one keyframe: ``faulty`` None when it cannot be judged (no previous keyframe)."""

    faulty: bool | None
    value: float
    threshold: float


@dataclass(frozen=True)
class _Rule:
    """One fault's measure and threshold: faulty when the measure is at most (or at least) the threshold."""

    measure: str
    """A :class:`QualityMeasures` attribute."""
    limit: str
    """A :class:`QualityThresholds` attribute."""
    at_most: bool

    def value(self, measures: QualityMeasures) -> float:
        value = getattr(measures, self.measure)
        return float(value) if value is not None else 0.0

    def threshold(self, thresholds: QualityThresholds) -> float:
        return float(getattr(thresholds, self.limit))


_RULES: dict[QualityFault, _Rule] = {
    _F.BLACK: _Rule("luma", "black_luma_max", at_most=True),
    _F.OCCLUSION: _Rule("flat_share", "occlusion_share_min", at_most=False),
    _F.TOO_DARK: _Rule("luma", "too_dark_luma_max", at_most=True),
    _F.TOO_BRIGHT: _Rule("luma", "too_bright_luma_min", at_most=False),
    _F.FROZEN: _Rule("change", "frozen_change_max", at_most=True),
    _F.BLUR: _Rule("sharpness", "blur_sharpness_max", at_most=True),
    _F.COLOUR_CAST: _Rule("colour_cast", "colour_cast_min", at_most=False),
}


@dataclass
class _Track:
    """Hysteresis state of one fault."""

    active: bool = False
    faulty_run: int = 0
    clean_run: int = 0


class CameraDiagnosis:
    """Quality faults of one camera, from its keyframes: feed every keyframe to :meth:`update`.

    Thread-safe: a reader thread may call :meth:`update` while a watchdog calls :meth:`silence`. State survives a
    reconnect on purpose: faults that are still there need no clear-and-raise, and a picture that is the same
    after a reconnect is still frozen.
    """

    def __init__(
        self,
        camera_code: str,
        thresholds: QualityThresholds | None = None,
        *,
        raise_after: int = 2,
        clear_after: int = 3,
        frozen_keyframes: int = 3,
        hysteresis_margin: float = 0.1,
        signal_loss_after_s: float = 10.0,
    ) -> None:
        if not camera_code:
            raise DiagnosisError("camera_code must not be empty")
        if raise_after < 1 or clear_after < 1:
            raise DiagnosisError(f"raise_after and clear_after must be >= 1, got {raise_after}, {clear_after}")
        if frozen_keyframes < 2:
            raise DiagnosisError(
                f"frozen_keyframes must be >= 2 (a picture and its repeat), got {frozen_keyframes}"
            )
        if not 0.0 <= hysteresis_margin < 1.0:
            raise DiagnosisError(f"hysteresis_margin must be in [0, 1), got {hysteresis_margin}")
        if not signal_loss_after_s > 0:
            raise DiagnosisError(f"signal_loss_after_s must be > 0, got {signal_loss_after_s}")
        self.camera_code = camera_code
        self.thresholds = thresholds if thresholds is not None else QualityThresholds()
        self.raise_after = raise_after
        self.clear_after = clear_after
        self.frozen_keyframes = frozen_keyframes
        self.hysteresis_margin = hysteresis_margin
        self.signal_loss_after_s = signal_loss_after_s
        self._tracks = {fault: _Track() for fault in FAULT_ORDER}
        self._signal_lost = False
        self._previous: ReducedFrame | None = None
        self._last_at: datetime | None = None
        self._same_pictures = 0
        self._measures: QualityMeasures | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, camera_code: str, scene_type: str | None, config: DiagnosisConfig) -> CameraDiagnosis:
        """A camera's diagnosis with its merged thresholds (defaults <- scene type <- camera) and hysteresis."""
        return cls(
            camera_code,
            config.thresholds_for(camera_code, scene_type),
            raise_after=config.raise_after,
            clear_after=config.clear_after,
            frozen_keyframes=config.frozen_keyframes,
            hysteresis_margin=config.hysteresis_margin,
            signal_loss_after_s=config.signal_loss_after_s,
        )

    @property
    def active(self) -> frozenset[QualityFault]:
        """The faults active now."""
        with self._lock:
            faults = {fault for fault, track in self._tracks.items() if track.active}
            if self._signal_lost:
                faults.add(QualityFault.SIGNAL_LOSS)
        return frozenset(faults)

    @property
    def measures(self) -> QualityMeasures | None:
        """The measures of the latest keyframe (None before the first)."""
        return self._measures

    def update(self, keyframe: Keyframe) -> list[FaultChange]:
        """Diagnose the camera's next keyframe; returns the faults that started or cleared (clears first)."""
        if keyframe.camera_code != self.camera_code:
            raise DiagnosisError(
                f"keyframe of camera {keyframe.camera_code!r} given to the diagnosis of {self.camera_code!r}"
            )
        reduced = reduce(keyframe.image)
        with self._lock:
            measures = measure(reduced, self._previous, flat_block_std=self.thresholds.flat_block_std_max)
            self._previous = reduced
            return self._observe(measures, keyframe.captured_at)

    def observe(self, measures: QualityMeasures, at: datetime) -> list[FaultChange]:
        """Judge one keyframe's measures (what :meth:`update` does after measuring); returns the changes."""
        with self._lock:
            return self._observe(measures, at)

    def silence(self, at: datetime, since_last_keyframe_s: float) -> list[FaultChange]:
        """Raise signal loss when a connected camera sent no keyframe for over ``signal_loss_after_s``.

        Call it periodically for cameras that are connected; ``since_last_keyframe_s`` counts from the last
        keyframe (or from the connection when there was none). The next keyframe clears the fault.
        """
        if math.isnan(since_last_keyframe_s) or since_last_keyframe_s < 0:
            raise DiagnosisError(f"since_last_keyframe_s must be a number >= 0, got {since_last_keyframe_s}")
        with self._lock:
            if self._signal_lost or since_last_keyframe_s <= self.signal_loss_after_s:
                return []
            self._signal_lost = True
        details = {"since_last_keyframe_s": round(since_last_keyframe_s, 3)}
        return [
            self._change(
                QualityFault.SIGNAL_LOSS, True, at, since_last_keyframe_s, self.signal_loss_after_s, details
            )
        ]

    def forget(self, at: datetime) -> list[FaultChange]:
        """Clear every active fault and forget all state: for a camera replaced, re-pointed, disabled or removed.

        A mere reconnect does not need this (see the class docstring).
        """
        with self._lock:
            changes = []
            for fault in FAULT_ORDER:
                if self._tracks[fault].active:
                    rule = _RULES[fault]
                    value = rule.value(self._measures) if self._measures is not None else 0.0
                    changes.append(self._change(fault, False, at, value, rule.threshold(self.thresholds), {}))
            if self._signal_lost:
                changes.append(
                    self._change(QualityFault.SIGNAL_LOSS, False, at, 0.0, self.signal_loss_after_s, {})
                )
            self._tracks = {fault: _Track() for fault in FAULT_ORDER}
            self._signal_lost = False
            self._previous = None
            self._last_at = None
            self._same_pictures = 0
            self._measures = None
        return changes

    # -- rules ----------------------------------------------------------------------------------------------

    def _observe(self, measures: QualityMeasures, at: datetime) -> list[FaultChange]:
        changes: list[FaultChange] = []
        if self._signal_lost:
            gap = (at - self._last_at).total_seconds() if self._last_at is not None else 0.0
            self._signal_lost = False
            gap_details = {"since_last_keyframe_s": round(gap, 3)}
            changes.append(
                self._change(QualityFault.SIGNAL_LOSS, False, at, gap, self.signal_loss_after_s, gap_details)
            )
        self._last_at = at
        self._measures = measures
        readings = self._readings(measures)
        for fault in FAULT_ORDER:
            change = self._step(fault, readings, at, measures)
            if change is not None:
                changes.append(change)
        # Clears before raises: a consumer applying them in order never sees two root causes at once.
        changes.sort(key=lambda c: c.active)
        return changes

    def _faulty(self, fault: QualityFault, value: float, threshold: float, at_most: bool) -> bool:
        # While the fault is active the limit moves out by the margin: the value must be clearly clean.
        if self._tracks[fault].active:
            threshold *= 1.0 + self.hysteresis_margin if at_most else 1.0 - self.hysteresis_margin
        return value <= threshold if at_most else value >= threshold

    def _readings(self, m: QualityMeasures) -> dict[QualityFault, _Reading]:
        readings = {}
        for fault, rule in _RULES.items():
            value = rule.value(m)
            threshold = rule.threshold(self.thresholds)
            readings[fault] = _Reading(self._faulty(fault, value, threshold, rule.at_most), value, threshold)
        # Black is dark *and* flat: a dark picture with detail is too_dark, not black.
        flat_enough = self._faulty(_F.BLACK, m.flat_share, self.thresholds.black_flat_share_min, at_most=False)
        black = readings[_F.BLACK]
        readings[_F.BLACK] = _Reading(bool(black.faulty) and flat_enough, black.value, black.threshold)
        frozen = readings[_F.FROZEN]
        if m.change is None:
            # No previous keyframe: neither still nor moving. The run restarts with this picture.
            self._same_pictures = 1
            readings[_F.FROZEN] = _Reading(None, frozen.value, frozen.threshold)
        else:
            self._same_pictures = self._same_pictures + 1 if frozen.faulty else 1
            if not self._tracks[_F.FROZEN].active:
                # Raising needs the full run of same pictures; once raised, a clearly moving keyframe is clean.
                still = self._same_pictures >= self.frozen_keyframes
                readings[_F.FROZEN] = _Reading(still, frozen.value, frozen.threshold)
        return readings

    def _step(
        self,
        fault: QualityFault,
        readings: Mapping[QualityFault, _Reading],
        at: datetime,
        measures: QualityMeasures,
    ) -> FaultChange | None:
        track = self._tracks[fault]
        reading = readings[fault]
        suppressors = _SUPPRESSED_BY[fault]
        raise_now = clear_now = False
        # Suppressors come earlier in FAULT_ORDER, so their tracks already reflect this keyframe.
        if any(self._tracks[s].active for s in suppressors):
            clear_now = track.active
            track.faulty_run = track.clean_run = 0
        elif any(readings[s].faulty for s in suppressors):
            # A more specific cause is starting: hold this fault as it is until that one is raised or goes.
            track.faulty_run = 0
        elif reading.faulty is None:
            pass
        elif not track.active:
            track.faulty_run = track.faulty_run + 1 if reading.faulty else 0
            # Frozen's reading already spans frozen_keyframes keyframes: no further confirmation.
            raise_now = track.faulty_run >= (1 if fault is _F.FROZEN else self.raise_after)
        else:
            track.clean_run = 0 if reading.faulty else track.clean_run + 1
            clear_now = track.clean_run >= self.clear_after
        if not (raise_now or clear_now):
            return None
        track.active = raise_now
        track.faulty_run = track.clean_run = 0
        # The measured values go with the event; built only here, as changes are rare.
        return self._change(fault, raise_now, at, reading.value, reading.threshold, measures.as_details())

    def _change(
        self,
        fault: QualityFault,
        active: bool,
        at: datetime,
        value: float,
        threshold: float,
        details: dict[str, float],
    ) -> FaultChange:
        log.debug(
            "camera %s: %s %s (value %.3f, threshold %.3f)",
            self.camera_code,
            fault.value,
            "raised" if active else "cleared",
            value,
            threshold,
        )
        return FaultChange(self.camera_code, fault, active, at, round(value, 3), threshold, details)
