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
from patrol.tables.notify import (
    DeliveryAttempt,
    EscalationWatch,
    MessageKind,
    MessageStatus,
    NotifyStep,
    OutboxItem,
    OutboxMessage,
)
from patrol.tables.plans import PatrolPlan, PatrolTask, PatrolTaskItem
from patrol.tables.reports import DailyReport
from patrol.tables.spot_checks import Inspection, InspectionFinding, SpotCheckDraw, SpotCheckQuota
from patrol.tables.walls import Tour, TourCoverage, VideoWall, WallAlarm, WallState

__all__ = [
    "DailyReport",
    "DeliveryAttempt",
    "DutyShift",
    "DutyShiftOfficer",
    "EscalationWatch",
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
    "MessageKind",
    "MessageStatus",
    "NotifyStep",
    "OutboxItem",
    "OutboxMessage",
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
