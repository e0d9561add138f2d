"""The patrol package's tables, one module per part of the duty room's work."""

from patrol.tables.duty import (
    DutyShift,
    DutyShiftOfficer,
    HandoverNote,
    Incident,
    IncidentClock,
    IncidentFollowUp,
)
from patrol.tables.event_handling import EventAction, EventActionKind, EventDisposition, EventStatus
from patrol.tables.hazards import Hazard, HazardAction, HazardEvidence
from patrol.tables.plans import PatrolPlan, PatrolTask, PatrolTaskItem
from patrol.tables.reports import DailyReport
from patrol.tables.spot_checks import Inspection, InspectionFinding, SpotCheckDraw, SpotCheckQuota
from patrol.tables.walls import Tour, TourCoverage, VideoWall, WallAlarm, WallState

__all__ = [
    "DailyReport",
    "DutyShift",
    "DutyShiftOfficer",
    "EventAction",
    "EventActionKind",
    "EventDisposition",
    "EventStatus",
    "HandoverNote",
    "Hazard",
    "HazardAction",
    "HazardEvidence",
    "Incident",
    "IncidentClock",
    "IncidentFollowUp",
    "Inspection",
    "InspectionFinding",
    "PatrolPlan",
    "PatrolTask",
    "PatrolTaskItem",
    "SpotCheckDraw",
    "SpotCheckQuota",
    "Tour",
    "TourCoverage",
    "VideoWall",
    "WallAlarm",
    "WallState",
]
