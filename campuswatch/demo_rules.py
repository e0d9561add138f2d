"""The demo bureau's analytics: rules on the simulated cameras that show scripted incidents.

The demo bureau is on holiday (its calendar closes the campus all year), so the intruder who climbs the perimeter
wall is always "after hours". Rules follow what each camera shows (see :data:`ingest.simulator.DEMO_MIX`): the
wall camera gets a tripwire and an intrusion zone, the crowd camera a crowding rule, the lingerer's a loitering
rule. A configuration that sets ``analytics.cameras`` itself is left alone.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from config import Settings
from config.analytics import AnalyticsConfig
from ingest.simulator import CameraSpec, SceneKind

YARD = {"name": "操场 yard", "polygon": [[0, 0.58], [1, 0.58], [1, 1], [0, 1]]}
TRIPWIRE = {"name": "围墙 wall", "a": [0.5, 0.3], "b": [0.5, 1.0], "entering_side": [0.9, 0.8]}
RULES_BY_SCENE: dict[SceneKind, list[dict[str, Any]]] = {
    SceneKind.LINE_CROSSING: [
        {"type": "line_crossing", "name": "翻越围墙 climbing the wall", "line": TRIPWIRE["name"]},
        {"type": "intrusion", "name": "闭校入侵 after-hours intrusion", "zone": YARD["name"], "min_seconds": 1},
    ],
    SceneKind.CROWD_FORMING: [
        {"type": "crowding", "name": "人员聚集 crowding", "zone": YARD["name"], "min_people": 6, "min_seconds": 2},
        {"type": "intrusion", "name": "闭校入侵 after-hours intrusion", "zone": YARD["name"], "min_seconds": 1},
    ],
    SceneKind.PERSON_LINGERING: [
        {"type": "loitering", "name": "徘徊 loitering", "zone": YARD["name"], "dwell_s": 15},
    ],
}
"""Rules of the cameras whose scene loops all the time. Their events are ``general``: they fill the events feed
but do not take the wall (the demo's walls take ``major`` alarms only), which the scripted intrusion does."""
SCRIPTED_RULES: list[dict[str, Any]] = [
    {
        "type": "intrusion",
        "name": "闭校入侵 after-hours intrusion",
        "zone": YARD["name"],
        "min_seconds": 1,
        "severity": "major",
        "cooldown_s": 10,
    },
    {
        "type": "line_crossing",
        "name": "翻越围墙 climbing the wall",
        "line": TRIPWIRE["name"],
        "severity": "major",
        "cooldown_s": 10,
    },
]
"""Rules of the scripted intrusion's camera: ``major``, so each intrusion takes a tile and reaches the phone; a
short cool-down, so that every scripted intrusion raises its own event."""
HOLIDAY = {"start": date(2000, 1, 1), "end": date(2099, 12, 31), "name": "演示假期 demo holiday"}


def scripted_camera(specs: list[CameraSpec]) -> str | None:
    """The camera of the scripted intrusion: the first that shows an empty yard all the time."""
    for spec in specs:
        schedule = spec.schedule
        if schedule.default_scene is SceneKind.EMPTY_YARD and not schedule.segments and not schedule.drops:
            return spec.code
    return None


def with_demo_rules(settings: Settings, specs: list[CameraSpec], scripted: str | None = None) -> Settings:
    """``settings`` with rules on the demo's incident cameras and on the ``scripted`` intrusion's camera
    (unless it configures cameras itself)."""
    if settings.analytics.cameras:
        return settings
    cameras = {}
    for spec in specs:
        rules = [{**rule, "severity": "general"} for rule in RULES_BY_SCENE.get(spec.schedule.default_scene, [])]
        if spec.code == scripted:
            rules = SCRIPTED_RULES
        if rules and (not spec.schedule.segments or spec.code == scripted):
            cameras[spec.code] = {"zones": [YARD], "lines": [TRIPWIRE], "rules": rules}
    data = settings.analytics.model_dump()
    data["cameras"] = cameras
    data["calendar"]["holidays"] = [*data["calendar"]["holidays"], HOLIDAY]
    return settings.model_copy(update={"analytics": AnalyticsConfig.model_validate(data)})
