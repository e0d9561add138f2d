"""Campus rules: zones and lines per camera, when each rule is active, and the rules' parameters.

Coordinates are normalised to the picture (0..1 from the top-left corner), so they survive a resolution change.
A rule is active inside its ``when``: ``always``; ``campus_closed`` (nights, weekends, holidays and outside term:
everything outside the calendar's opening hours on school days); ``campus_open``; or a list of weekly windows.
Rules are what put a camera into analyze mode, and only while one of its rules is active.
"""

from __future__ import annotations

from datetime import date, time
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w\- .\u4e00-\u9fff]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeeklyWindow(_Model):
    """A window on some weekdays; ``end`` before ``start`` runs past midnight into the next day."""

    days: tuple[Weekday, ...] = Field(WEEKDAYS, min_length=1, description="Weekdays the window starts on")
    start: time = Field(description="Local start time, e.g. 22:00")
    end: time = Field(description="Local end time, e.g. 06:00 (next day when before start)")

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("start and end are equal: an empty window (use when: always for all day)")
        return self


class DateRange(_Model):
    """Dates from ``start`` to ``end``, both included."""

    start: date = Field(description="First day")
    end: date = Field(description="Last day (included)")
    name: str = Field("", max_length=64, description="What it is, e.g. 国庆节 or autumn term")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class CalendarConfig(_Model):
    """The school calendar: terms, holidays, make-up school days and opening hours."""

    timezone: str = Field("Asia/Shanghai", description="IANA timezone of the schools")
    school_days: tuple[Weekday, ...] = Field(("mon", "tue", "wed", "thu", "fri"), description="Usual school days")
    opens: time = Field(time(6, 30), description="Campus opens on school days")
    closes: time = Field(time(22, 0), description="Campus closes on school days (after it: closed)")
    terms: tuple[DateRange, ...] = Field((), description="Term dates; none: every week is term time")
    holidays: tuple[DateRange, ...] = Field((), description="Closed days inside terms (public holidays)")
    make_up_days: tuple[date, ...] = Field((), description="Weekend days that are school days (调休)")

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown timezone {value!r}") from err
        return value

    @model_validator(mode="after")
    def _hours(self) -> Self:
        if self.closes <= self.opens:
            raise ValueError(f"closes {self.closes} must be after opens {self.opens}")
        return self


When = Literal["always", "campus_closed", "campus_open"] | tuple[WeeklyWindow, ...]


class ZoneConfig(_Model):
    """A named polygon on a camera's picture."""

    name: Name = Field(description="Zone name, unique on its camera")
    polygon: tuple[Point, ...] = Field(min_length=3, max_length=64, description="Corners, normalised (x, y)")


class LineConfig(_Model):
    """A named tripwire from point ``a`` to point ``b``."""

    name: Name = Field(description="Line name, unique on its camera")
    a: Point = Field(description="One end, normalised (x, y)")
    b: Point = Field(description="The other end")
    entering_side: Point | None = Field(
        None, description="A point on the protected side: only crossings towards it count (none: both ways)"
    )

    @model_validator(mode="after")
    def _length(self) -> Self:
        if abs(self.a[0] - self.b[0]) + abs(self.a[1] - self.b[1]) < 1e-3:
            raise ValueError("a and b are the same point")
        return self


class _RuleBase(_Model):
    name: Name = Field(description="Rule name, unique on its camera")
    when: When = Field("always", description="always, campus_closed, campus_open, or weekly windows")
    severity: Literal["general", "major"] = Field("general", description="Event severity")
    cooldown_s: float = Field(
        120.0, ge=0, le=86_400, description="After an event ends, its rule and zone wait this long to fire again"
    )
    end_after_s: float = Field(
        3.0, ge=0.5, le=600, description="An event ends once its condition has been false this long"
    )
    min_score: float = Field(0.35, gt=0, lt=1, description="Detections scoring below this are ignored by the rule")


class IntrusionRule(_RuleBase):
    """A person or vehicle inside a zone while the campus is closed."""

    type: Literal["intrusion"] = "intrusion"
    zone: Name = Field(description="Zone watched")
    classes: tuple[str, ...] = Field(("person", "car", "motorbike", "bicycle", "truck", "bus"), min_length=1)
    min_seconds: float = Field(1.0, ge=0, le=600, description="Seen in the zone at least this long")
    when: When = Field("campus_closed", description="Nights, weekends and holidays by default")
    severity: Literal["general", "major"] = "major"


class LoiteringRule(_RuleBase):
    """One person staying in a zone longer than ``dwell_s``."""

    type: Literal["loitering"] = "loitering"
    zone: Name
    dwell_s: float = Field(30.0, ge=1, le=86_400, description="Longest stay before it is loitering")


class CrowdingRule(_RuleBase):
    """At least ``min_people`` people in a zone for ``min_seconds``."""

    type: Literal["crowding"] = "crowding"
    zone: Name
    min_people: int = Field(5, ge=2, le=500, description="People at once")
    min_seconds: float = Field(3.0, ge=0, le=3600, description="For at least this long")


class LineCrossingRule(_RuleBase):
    """A person crossing a line (towards its entering side when it has one): the perimeter wall."""

    type: Literal["line_crossing"] = "line_crossing"
    line: Name
    classes: tuple[str, ...] = Field(("person",), min_length=1)
    severity: Literal["general", "major"] = "major"


class GuardPostEmptyRule(_RuleBase):
    """No person in the guard-post zone for over ``absent_s`` during duty hours (脱岗)."""

    type: Literal["guard_post_empty"] = "guard_post_empty"
    zone: Name
    absent_s: float = Field(300.0, ge=5, le=86_400, description="Longest absence from the post")


class WaterAreaRule(_RuleBase):
    """Anyone in a water-area zone (防溺水)."""

    type: Literal["water_area"] = "water_area"
    zone: Name
    min_seconds: float = Field(1.0, ge=0, le=600)
    severity: Literal["general", "major"] = "major"


class FallRule(_RuleBase):
    """The fall model sees a fallen person (in ``zone``, or anywhere) for ``min_seconds``."""

    type: Literal["fall"] = "fall"
    zone: Name | None = None
    min_seconds: float = Field(1.0, ge=0, le=600)
    severity: Literal["general", "major"] = "major"


RuleConfig = Annotated[
    IntrusionRule
    | LoiteringRule
    | CrowdingRule
    | LineCrossingRule
    | GuardPostEmptyRule
    | WaterAreaRule
    | FallRule,
    Field(discriminator="type"),
]


class CameraRulesConfig(_Model):
    """One camera's zones, lines and rules."""

    zones: tuple[ZoneConfig, ...] = Field((), description="Named polygons")
    lines: tuple[LineConfig, ...] = Field((), description="Named tripwires")
    rules: tuple[RuleConfig, ...] = Field((), description="Rules on those zones and lines")

    @model_validator(mode="after")
    def _references(self) -> Self:
        for kind, names in (("zone", [z.name for z in self.zones]), ("line", [x.name for x in self.lines])):
            if len(set(names)) != len(names):
                raise ValueError(f"{kind} names must be unique on a camera")
        if len({r.name for r in self.rules}) != len(self.rules):
            raise ValueError("rule names must be unique on a camera")
        zones, lines = {z.name for z in self.zones}, {x.name for x in self.lines}
        for rule in self.rules:
            zone = getattr(rule, "zone", None)
            if zone is not None and zone not in zones:
                raise ValueError(f"rule {rule.name!r} names zone {zone!r}, which this camera does not have")
            line = getattr(rule, "line", None)
            if line is not None and line not in lines:
                raise ValueError(f"rule {rule.name!r} names line {line!r}, which this camera does not have")
        return self
