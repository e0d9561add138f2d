"""The patrol domain's vocabulary: the states and kinds its records take (stored as VARCHAR + CHECK)."""

from __future__ import annotations

from enum import StrEnum


class Takeover(StrEnum):
    """What an alarm takes on a wall."""

    TILE = "tile"
    WALL = "wall"


class Severity(StrEnum):
    """General incidents are handled by the duty officer; major (较大以上) ones start the reporting clocks."""

    GENERAL = "general"
    MAJOR = "major"


class Verdict(StrEnum):
    """A duty officer's or inspector's finding on one camera."""

    NORMAL = "normal"
    ABNORMAL = "abnormal"


class DayRule(StrEnum):
    """Which days a patrol plan runs on."""

    SCHOOL_DAYS = "school_days"
    EVERY_DAY = "every_day"
    WEEKDAYS = "weekdays"
    """The plan's own list of weekdays."""


class TaskStatus(StrEnum):
    """A patrol task: pending until every camera has a verdict (done) or its window ends first (missed)."""

    PENDING = "pending"
    DONE = "done"
    MISSED = "missed"


class QuotaPeriod(StrEnum):
    """How often a spot-check quota draws."""

    DAY = "day"
    WEEK = "week"


class InspectionMethod(StrEnum):
    """How a school is inspected (the bureau's methods of checking)."""

    RANDOM = "random"
    DIRECTED = "directed"
    FIXED_POINT = "fixed_point"
    LEAD = "lead"
    COVERT = "covert"
    VIDEO = "video"


class InspectionStatus(StrEnum):
    """An inspection collects findings while open; signing seals it."""

    OPEN = "open"
    SIGNED = "signed"


class HazardSource(StrEnum):
    """Where a hazard was found."""

    PATROL = "patrol"
    SPOT_CHECK = "spot_check"
    EVENT = "event"
    MANUAL = "manual"


class HazardStatus(StrEnum):
    """open → rectifying → submitted → closed (verified), or back to rectifying (reopened)."""

    OPEN = "open"
    RECTIFYING = "rectifying"
    SUBMITTED = "submitted"
    CLOSED = "closed"


class EvidenceStage(StrEnum):
    """Evidence of the hazard as found, or of its rectification."""

    BEFORE = "before"
    AFTER = "after"


class IncidentStatus(StrEnum):
    """An incident is open until the duty officer closes it."""

    OPEN = "open"
    CLOSED = "closed"


class ClockKind(StrEnum):
    """The reporting deadlines of a major incident."""

    SCHOOL_PHONE = "school_phone"
    SCHOOL_WRITTEN = "school_written"
    BUREAU_PHONE = "bureau_phone"
    BUREAU_WRITTEN = "bureau_written"
