"""The campus rules, evaluated per camera on tracked detections: conditions, durations, event start and end.

Every rule turns a frame into a :class:`Condition` (holds or not, with the tracks and boxes behind it). A shared
lifecycle turns conditions into events: a condition that holds for the rule's minimum time starts an event (its
start time is when the condition began); one that stays false for ``end_after_s`` ends it; after an end, the same
rule waits ``cooldown_s`` before it fires again. A rule that becomes inactive (the campus opens in the morning)
ends its open event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

from analytics.detections import Detections
from analytics.geometry import crossed, in_polygon, side
from config.rules import (
    CameraRulesConfig,
    CrowdingRule,
    FallRule,
    GuardPostEmptyRule,
    IntrusionRule,
    LineConfig,
    LineCrossingRule,
    LoiteringRule,
    Point,
    RuleConfig,
    WaterAreaRule,
)
from kernel.calendar import SchoolCalendar

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Condition:
    """What a rule saw in one frame."""

    holds: bool
    track_ids: tuple[int, ...] = ()
    boxes: tuple[Box, ...] = ()
    confidence: float = 0.0
    detail: str = ""


@dataclass(frozen=True)
class RuleEvent:
    """An event starting or ending, as the engine drafts it (the pipeline adds evidence and stores it)."""

    kind: Literal["started", "ended"]
    camera_code: str
    rule: str
    type: str
    severity: str
    zone: str
    started_at: datetime
    at: datetime
    """When it started (``started``: the frame that confirmed it) or ended (the last frame it held)."""
    track_ids: tuple[int, ...]
    confidence: float
    boxes: tuple[Box, ...]
    detail: str
    polygon: tuple[Point, ...] = ()
    line: tuple[Point, Point] | None = None


@dataclass
class _Lifecycle:
    min_seconds: float
    end_after: timedelta
    cooldown: timedelta
    streak_since: datetime | None = None
    last_true: datetime | None = None
    open_since: datetime | None = None
    cooldown_until: datetime | None = None
    event_started: datetime | None = None
    """Start of the latest event (kept after it ends, for the ``ended`` record)."""
    best: Condition = field(default_factory=lambda: Condition(False))

    def step(self, condition: Condition, at: datetime) -> Literal["started", "ended"] | None:
        if condition.holds:
            if self.streak_since is None or (self.last_true is not None and at - self.last_true > self.end_after):
                self.streak_since = at
            self.last_true = at
            if self.open_since is None or condition.confidence >= self.best.confidence:
                self.best = condition
            if (
                self.open_since is None
                and (at - self.streak_since).total_seconds() >= self.min_seconds
                and (self.cooldown_until is None or at >= self.cooldown_until)
            ):
                self.open_since = self.event_started = self.streak_since
                return "started"
            return None
        if self.last_true is not None and at - self.last_true > self.end_after:
            self.streak_since = None
            if self.open_since is not None:
                return self.close()
        return None

    def close(self) -> Literal["ended"] | None:
        if self.open_since is None or self.last_true is None:
            self.streak_since = None
            return None
        self.cooldown_until = self.last_true + self.cooldown
        self.open_since = None
        self.streak_since = None
        return "ended"


@dataclass(frozen=True)
class _Seen:
    track_id: int
    name: str
    score: float
    box: Box
    foot: tuple[float, float]


def _sightings(detections: Detections | None, min_score: float) -> list[_Seen]:
    if detections is None:
        return []
    ids = detections.tracker_ids if detections.tracker_ids is not None else np.full(len(detections), -1)
    out = []
    for box, score, class_id, track_id in zip(
        detections.boxes, detections.scores, detections.class_ids, ids, strict=True
    ):
        if score >= min_score:
            x1, y1, x2, y2 = (float(v) for v in box)
            out.append(
                _Seen(
                    int(track_id),
                    detections.names[int(class_id)],
                    float(score),
                    (x1, y1, x2, y2),
                    ((x1 + x2) / 2, y2),
                )
            )
    return out


class CameraRules:
    """One camera's rules and their state. Frames must arrive in time order (one caller per camera)."""

    def __init__(self, camera_code: str, config: CameraRulesConfig, calendar: SchoolCalendar) -> None:
        self.camera_code = camera_code
        self.config = config
        self.calendar = calendar
        self._zones = {z.name: z.polygon for z in config.zones}
        self._lines = {x.name: x for x in config.lines}
        self._life = {
            r.name: _Lifecycle(_min_seconds(r), timedelta(seconds=r.end_after_s), timedelta(seconds=r.cooldown_s))
            for r in config.rules
        }
        self._entered: dict[str, dict[int, datetime]] = {r.name: {} for r in config.rules}
        self._feet: dict[str, dict[int, tuple[datetime, tuple[float, float]]]] = {r.name: {} for r in config.rules}
        self._in_zone_at: dict[str, dict[int, datetime]] = {r.name: {} for r in config.rules}

    def active(self, at: datetime) -> list[RuleConfig]:
        """The rules active at ``at``."""
        return [r for r in self.config.rules if self.calendar.active(r.when, at)]

    def wants_fall_model(self, at: datetime) -> bool:
        """Whether an active rule needs the fall model's detections."""
        return any(isinstance(r, FallRule) for r in self.active(at))

    def evaluate(self, at: datetime, detections: Detections, falls: Detections | None = None) -> list[RuleEvent]:
        """Advance every rule by one frame; returns the events that start or end with it."""
        events = []
        for rule in self.config.rules:
            life = self._life[rule.name]
            if not self.calendar.active(rule.when, at):
                events += self._end(rule, at)
                self._entered[rule.name].clear()
                self._feet[rule.name].clear()
                self._in_zone_at[rule.name].clear()
                continue
            condition = self._condition(rule, at, detections, falls)
            kind = life.step(condition, at)
            if kind is not None:
                events.append(self._event(kind, rule, life.best if kind == "ended" else condition, life, at))
        return events

    def close(self, at: datetime) -> list[RuleEvent]:
        """End every open event (the pipeline is stopping): each ends at the last frame its condition held."""
        return [event for rule in self.config.rules for event in self._end(rule, at)]

    def _end(self, rule: RuleConfig, at: datetime) -> list[RuleEvent]:
        """The rule's open event, ended (none if it has none)."""
        life = self._life[rule.name]
        best = life.best
        return [self._event("ended", rule, best, life, at)] if life.close() == "ended" else []

    def _event(
        self,
        kind: Literal["started", "ended"],
        rule: RuleConfig,
        condition: Condition,
        life: _Lifecycle,
        at: datetime,
    ) -> RuleEvent:
        zone = getattr(rule, "zone", None) or getattr(rule, "line", None) or ""
        line = self._lines.get(getattr(rule, "line", "") or "")
        return RuleEvent(
            kind,
            self.camera_code,
            rule.name,
            rule.type,
            rule.severity,
            zone,
            life.event_started or at,
            at if kind == "started" else (life.last_true or at),
            condition.track_ids,
            condition.confidence,
            condition.boxes,
            condition.detail,
            polygon=self._zones.get(getattr(rule, "zone", "") or "", ()),
            line=(line.a, line.b) if line is not None else None,
        )

    def _in_zone(self, seen: list[_Seen], zone: str | None) -> list[_Seen]:
        if zone is None or not seen:
            return seen
        inside = in_polygon(np.array([s.foot for s in seen]), self._zones[zone])
        return [s for s, ok in zip(seen, inside, strict=True) if ok]

    def _condition(
        self, rule: RuleConfig, at: datetime, detections: Detections, falls: Detections | None
    ) -> Condition:
        seen = _sightings(detections, rule.min_score)
        if isinstance(rule, IntrusionRule | WaterAreaRule):
            classes = rule.classes if isinstance(rule, IntrusionRule) else ("person",)
            hits = self._in_zone([s for s in seen if s.name in classes], rule.zone)
            return _holding(hits, f"{len(hits)} in {rule.zone}")
        people = [s for s in seen if s.name == "person"]
        if isinstance(rule, CrowdingRule):
            hits = self._in_zone(people, rule.zone)
            return _holding(hits, f"{len(hits)} people", holds=len(hits) >= rule.min_people)
        if isinstance(rule, LoiteringRule):
            return self._loitering(rule, at, self._in_zone(people, rule.zone))
        if isinstance(rule, LineCrossingRule):
            return self._crossing(rule, at, [s for s in seen if s.name in rule.classes], self._lines[rule.line])
        if isinstance(rule, GuardPostEmptyRule):
            present = self._in_zone(people, rule.zone)
            return Condition(
                not present, confidence=1.0 if not present else 0.0, detail=f"{len(present)} at the post"
            )
        assert isinstance(rule, FallRule)
        fallen = [
            s for s in self._in_zone(_sightings(falls, rule.min_score), rule.zone) if s.name.lower() == "fall"
        ]
        return _holding(fallen, f"{len(fallen)} fallen")

    def _loitering(self, rule: LoiteringRule, at: datetime, inside: list[_Seen]) -> Condition:
        entered = self._entered[rule.name]
        seen = self._in_zone_at[rule.name]
        for s in inside:
            if s.track_id >= 0:
                entered.setdefault(s.track_id, at)
                seen[s.track_id] = at
        # A track out of the zone (or missed by the detector) for longer than end_after_s starts again; a frame or
        # two below the score threshold must not reset a loiterer's clock.
        for track_id in [t for t in entered if (at - seen[t]).total_seconds() > rule.end_after_s]:
            del entered[track_id]
            del seen[track_id]
        long_stay = [
            s
            for s in inside
            if s.track_id in entered and (at - entered[s.track_id]).total_seconds() >= rule.dwell_s
        ]
        longest = max(((at - entered[s.track_id]).total_seconds() for s in long_stay), default=0.0)
        return _holding(long_stay, f"stayed {longest:.0f} s")

    def _crossing(self, rule: LineCrossingRule, at: datetime, seen: list[_Seen], line: LineConfig) -> Condition:
        feet = self._feet[rule.name]
        hits = []
        for s in seen:
            if s.track_id < 0:
                continue
            before = feet.get(s.track_id)
            if before is not None and crossed(line, before[1], s.foot):
                hits.append(s)
            if side(line, *s.foot) != 0:  # a foot exactly on the line has not crossed yet: keep the last side
                feet[s.track_id] = (at, s.foot)
        horizon = at - timedelta(seconds=10)
        for track_id in [t for t, (when, _) in feet.items() if when < horizon]:
            del feet[track_id]
        return _holding(hits, f"{len(hits)} crossed {rule.line}")


def _holding(hits: list[_Seen], detail: str, *, holds: bool | None = None) -> Condition:
    return Condition(
        bool(hits) if holds is None else holds,
        tuple(s.track_id for s in hits if s.track_id >= 0),
        tuple(s.box for s in hits),
        max((s.score for s in hits), default=0.0),
        detail,
    )


def _min_seconds(rule: RuleConfig) -> float:
    if isinstance(rule, GuardPostEmptyRule):
        return rule.absent_s
    return float(getattr(rule, "min_seconds", 0.0))
