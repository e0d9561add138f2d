"""The RTSP camera simulator: a fleet of school cameras replaying pre-encoded scene clips, for the demo and tests.

Start one with :class:`CameraSimulator` (or ``campuswatch simulate``); script what each camera shows and when it
drops off the network with :class:`CameraSchedule`.
"""

from ingest.simulator.artwork import load_sprites
from ingest.simulator.cli import fleet_specs, simulate_command
from ingest.simulator.clips import FPS, GOP, ClipLibrary, ClipSettings, EncodedClip
from ingest.simulator.scenes import (
    FAULT_SCENES,
    LINE_CROSSING,
    PEOPLE_SCENES,
    CrossingLine,
    SceneKind,
    crossing_fraction,
    people_at,
)
from ingest.simulator.schedule import (
    DEMO_MIX,
    CameraSchedule,
    CameraSpec,
    Drop,
    DropMode,
    FleetSchedule,
    SceneSegment,
    build_camera_specs,
    camera_codes,
    demo_camera_specs,
    load_schedule_file,
)
from ingest.simulator.server import CameraSimulator
from ingest.simulator.stats import CpuMeter, CpuSample, SimulatorStats

__all__ = [
    "DEMO_MIX",
    "FAULT_SCENES",
    "FPS",
    "GOP",
    "LINE_CROSSING",
    "PEOPLE_SCENES",
    "CameraSchedule",
    "CameraSimulator",
    "CameraSpec",
    "ClipLibrary",
    "ClipSettings",
    "CpuMeter",
    "CpuSample",
    "CrossingLine",
    "Drop",
    "DropMode",
    "EncodedClip",
    "FleetSchedule",
    "SceneKind",
    "SceneSegment",
    "SimulatorStats",
    "build_camera_specs",
    "camera_codes",
    "crossing_fraction",
    "demo_camera_specs",
    "fleet_specs",
    "load_schedule_file",
    "load_sprites",
    "people_at",
    "simulate_command",
]
