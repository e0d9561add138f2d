"""Rules on synthetic tracked detections: conditions, durations, cooldown, schedules, calendar, config errors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from analytics.detections import Detections
from analytics.geometry import crossed, in_polygon
from analytics.rules import CameraRules, RuleEvent
from config.rules import CalendarConfig, CameraRulesConfig, LineConfig, WeeklyWindow
from kernel.calendar import SchoolCalendar

NAMES = ("person", "car", "Fall")
# Monday 2026-11-23, 23:00 in Shanghai (15:00 UTC): a school day, campus closed for the night.
NIGHT = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
ZONES = [
    {"name": "yard", "polygon": [[0, 0.5], [1, 0.5], [1, 1], [0, 1]]},
    {"name": "pond", "polygon": [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9], [0.6, 0.9]]},
]
LINES = [{"name": "wall", "a": [0.5, 0.0], "b": [0.5, 1.0], "entering_side": [0.9, 0.5]}]


def people(
    at: datetime, *feet: tuple[int, float, float], names: tuple[str, ...] = NAMES, cls: int = 0
) -> Detections:
    """Tracked boxes 0.1 wide, 0.3 tall, standing on each (track id, x, y) foot point."""
    boxes = np.array([[x - 0.05, y - 0.3, x + 0.05, y] for _, x, y in feet], np.float32).reshape(-1, 4)
    d = Detections(
        "CAM",
        at,
        np.clip(boxes, 0, 1),
        np.full(len(feet), 0.8, np.float32),
        np.full(len(feet), cls, np.int32),
        names,
    )
    return d.with_tracker_ids(np.array([t for t, _, _ in feet], np.int32))


def engine(*rules: dict[str, Any], calendar: CalendarConfig | None = None) -> CameraRules:
    config = CameraRulesConfig.model_validate({"zones": ZONES, "lines": LINES, "rules": list(rules)})
    return CameraRules("CAM", config, SchoolCalendar(calendar or CalendarConfig()))


def run(rules: CameraRules, frames: Sequence[tuple[float, Detections]], falls: bool = False) -> list[RuleEvent]:
    events = []
    for _, d in frames:
        events += rules.evaluate(d.captured_at, d if not falls else people(d.captured_at), d if falls else None)
    return events


def seconds(start: datetime, n: int, step: float = 0.5) -> list[datetime]:
    return [start + timedelta(seconds=i * step) for i in range(n)]


def test_intrusion_needs_min_seconds_then_ends_and_cools_down() -> None:
    rules = engine({"type": "intrusion", "name": "night", "zone": "yard", "min_seconds": 1.0, "cooldown_s": 30})
    times = seconds(NIGHT, 40)
    frames = [
        (0.0, people(t, (1, 0.3, 0.8)) if i < 10 or 20 <= i < 30 else people(t)) for i, t in enumerate(times)
    ]
    events = run(rules, frames)
    assert [(e.kind, e.type) for e in events] == [("started", "intrusion"), ("ended", "intrusion")]
    started, ended = events
    assert started.started_at == NIGHT and started.at == NIGHT + timedelta(seconds=1.0)
    assert started.severity == "major" and started.track_ids == (1,) and started.zone == "yard"
    assert ended.at == NIGHT + timedelta(seconds=4.5)  # the last frame it held
    # The second visit (frames 20-29) falls inside the 30-s cooldown: no second event.


def test_intrusion_is_inactive_while_the_campus_is_open() -> None:
    rules = engine({"type": "intrusion", "name": "night", "zone": "yard"})
    morning = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # Tuesday 09:00 in Shanghai
    assert run(rules, [(0, people(t, (1, 0.3, 0.8))) for t in seconds(morning, 10)]) == []
    assert rules.active(morning) == []


def test_person_outside_the_zone_is_no_intrusion() -> None:
    rules = engine({"type": "intrusion", "name": "night", "zone": "yard", "min_seconds": 0})
    assert run(rules, [(0, people(t, (1, 0.3, 0.3))) for t in seconds(NIGHT, 10)]) == []


def test_loitering_after_dwell_and_walkers_do_not_loiter() -> None:
    rules = engine({"type": "loitering", "name": "stay", "zone": "yard", "dwell_s": 5})
    frames = [(0, people(t, (1, 0.3, 0.8), (2, 0.05 + 0.2 * i, 0.7))) for i, t in enumerate(seconds(NIGHT, 12))]
    events = run(rules, frames)
    assert [(e.kind, e.track_ids) for e in events] == [("started", (1,))]
    assert events[0].at == NIGHT + timedelta(seconds=5)


def test_crowding_counts_people_in_the_zone_for_long_enough() -> None:
    rules = engine({"type": "crowding", "name": "crowd", "zone": "yard", "min_people": 4, "min_seconds": 2})
    three = [(i, 0.1 + 0.2 * i, 0.8) for i in range(3)]
    four = [(i, 0.1 + 0.2 * i, 0.8) for i in range(4)]
    frames = [(0, people(t, *three)) for t in seconds(NIGHT, 6)]
    frames += [(0, people(t, *four)) for t in seconds(NIGHT + timedelta(seconds=3), 6)]
    events = run(rules, frames)
    assert [e.kind for e in events] == ["started"]
    assert events[0].at == NIGHT + timedelta(seconds=5) and events[0].detail == "4 people"


def test_line_crossing_counts_only_towards_the_entering_side() -> None:
    rules = engine({"type": "line_crossing", "name": "wall", "line": "wall", "cooldown_s": 0, "end_after_s": 0.5})
    inwards = [(0, people(t, (1, 0.3 + 0.1 * i, 0.8))) for i, t in enumerate(seconds(NIGHT, 5))]
    outwards = [
        (0, people(t, (2, 0.7 - 0.1 * i, 0.8))) for i, t in enumerate(seconds(NIGHT + timedelta(seconds=10), 5))
    ]
    events = run(rules, inwards + outwards)
    assert [(e.kind, e.track_ids) for e in events if e.kind == "started"] == [("started", (1,))]
    line = LineConfig.model_validate(LINES[0])
    assert crossed(line, (0.4, 0.5), (0.6, 0.5)) and not crossed(line, (0.6, 0.5), (0.4, 0.5))
    assert not crossed(line.model_copy(update={"b": (0.5, 0.4)}), (0.4, 0.5), (0.6, 0.5))  # past the line's end


def test_guard_post_empty_during_duty_hours() -> None:
    window = {"days": ["mon"], "start": "22:00", "end": "06:00"}
    rules = engine({"type": "guard_post_empty", "name": "guard", "zone": "pond", "absent_s": 5, "when": [window]})
    manned = [(0, people(t, (1, 0.75, 0.8))) for t in seconds(NIGHT, 8)]
    empty = [(0, people(t)) for t in seconds(NIGHT + timedelta(seconds=4), 14)]
    events = run(rules, manned + empty)
    assert [e.kind for e in events] == ["started"]
    assert events[0].started_at == NIGHT + timedelta(seconds=4)  # absent since the first empty frame


def test_water_area_and_fall() -> None:
    water = engine({"type": "water_area", "name": "pond", "zone": "pond", "min_seconds": 0})
    events = run(water, [(0, people(t, (1, 0.75, 0.8))) for t in seconds(NIGHT, 3)])
    assert [(e.type, e.severity) for e in events] == [("water_area", "major")]
    fall = engine({"type": "fall", "name": "fall", "min_seconds": 1})
    assert fall.wants_fall_model(NIGHT)
    falls = [(0, people(t, (5, 0.5, 0.9), cls=2)) for t in seconds(NIGHT, 4)]
    assert [e.type for e in run(fall, falls, falls=True)] == ["fall"]
    standing = [(0, people(t, (5, 0.5, 0.9), cls=0)) for t in seconds(NIGHT, 4)]
    assert run(engine({"type": "fall", "name": "fall"}), standing, falls=True) == []


def test_rule_ending_when_it_becomes_inactive() -> None:
    window = {"start": "22:00", "end": "23:00:02"}
    rules = engine({"type": "intrusion", "name": "late", "zone": "yard", "min_seconds": 0, "when": [window]})
    events = run(rules, [(0, people(t, (1, 0.3, 0.8))) for t in seconds(NIGHT, 8)])
    assert [e.kind for e in events] == ["started", "ended"]


def test_close_ends_open_events_at_their_last_frame() -> None:
    rules = engine({"type": "intrusion", "name": "night", "zone": "yard", "min_seconds": 0})
    started = run(rules, [(0, people(t, (1, 0.3, 0.8))) for t in seconds(NIGHT, 4)])
    assert [e.kind for e in started] == ["started"]
    ended = rules.close(NIGHT + timedelta(minutes=5))
    assert [(e.kind, e.at) for e in ended] == [("ended", NIGHT + timedelta(seconds=1.5))]
    assert rules.close(NIGHT + timedelta(minutes=6)) == []


def test_calendar_terms_holidays_make_up_days_and_windows() -> None:
    cal = SchoolCalendar(
        CalendarConfig(
            terms=({"start": date(2026, 9, 1), "end": date(2027, 1, 20)},),
            holidays=({"start": date(2026, 10, 1), "end": date(2026, 10, 7), "name": "国庆节"},),
            make_up_days=(date(2026, 10, 10),),
        )
    )
    assert cal.is_school_day(date(2026, 11, 23))  # a Monday in term
    assert not cal.is_school_day(date(2026, 10, 2))  # National Day holiday
    assert cal.is_school_day(date(2026, 10, 10))  # a Saturday made a school day
    assert not cal.is_school_day(date(2027, 2, 1))  # winter break, outside the term
    assert cal.campus_open(datetime(2026, 11, 24, 1, 0, tzinfo=UTC))  # 09:00 local
    assert not cal.campus_open(NIGHT)
    overnight = (WeeklyWindow(days=("sun",), start=time(22), end=time(6)),)
    sunday_night = datetime(2026, 11, 22, 15, 0, tzinfo=UTC)  # Sunday 23:00 local
    monday_early = datetime(2026, 11, 22, 21, 0, tzinfo=UTC)  # Monday 05:00 local: still Sunday's window
    monday_night = NIGHT
    assert cal.active(overnight, sunday_night) and cal.active(overnight, monday_early)
    assert not cal.active(overnight, monday_night)


def test_polygon_containment() -> None:
    square = ((0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8))
    inside = in_polygon(np.array([[0.5, 0.5], [0.1, 0.5], [0.79, 0.79], [0.9, 0.9]]), square)
    assert inside.tolist() == [True, False, True, False]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            [{"type": "intrusion", "name": "x", "zone": "roof"}],
            "names zone 'roof', which this camera does not have",
        ),
        ([{"type": "line_crossing", "name": "x", "line": "gate"}], "names line 'gate'"),
        ([{"type": "crowding", "name": "x", "zone": "yard", "min_people": 1}], "greater than or equal to 2"),
        ([{"type": "teleport", "name": "x"}], "does not match any of the expected tags"),
        (
            [{"type": "intrusion", "name": "x", "zone": "yard", "when": [{"start": "08:00", "end": "08:00"}]}],
            "empty",
        ),
    ],
)
def test_rule_config_errors_are_specific(rules: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        CameraRulesConfig.model_validate({"zones": ZONES, "lines": LINES, "rules": rules})


def test_zone_coordinates_must_be_normalised() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 1"):
        CameraRulesConfig.model_validate({"zones": [{"name": "z", "polygon": [[0, 0], [640, 0], [0, 360]]}]})
