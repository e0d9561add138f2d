"""The ``patrol`` section: wall rotation, patrol-plan tasks, hazards, incident clocks and the daily report.

Times of day are local to ``instance.timezone``; school days come from ``analytics.calendar``.
"""

from __future__ import annotations

from datetime import time

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # Not config.schema.Section: schema imports this module, so this one must not import schema.
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClockConfig(_Model):
    """Reporting deadlines of a major incident, in minutes from its classification as major."""

    school_phone_min: int = Field(15, ge=1, le=1440, description="School reports to the bureau by phone")
    school_written_min: int = Field(30, ge=1, le=1440, description="School reports to the bureau in writing")
    bureau_phone_min: int = Field(20, ge=1, le=1440, description="Bureau duty room reports to the city by phone")
    bureau_written_min: int = Field(
        40, ge=1, le=1440, description="Bureau duty room reports to the city in writing"
    )


class HazardConfig(_Model):
    """Hazard rectification (隐患整改): deadlines, reminders and escalation."""

    default_deadline_days: int = Field(
        7, ge=1, le=365, description="Rectification deadline of a new hazard when none is given"
    )
    major_deadline_days: int = Field(
        2, ge=1, le=365, description="Rectification deadline of a new major hazard when none is given"
    )
    remind_every_h: float = Field(
        24.0, ge=0.25, le=720, description="An overdue hazard is reminded again after this many hours"
    )
    escalate_after_h: float = Field(
        72.0, ge=0, le=8760, description="Overdue this long: escalated to the leader on duty (each period again)"
    )


class ReportConfig(_Model):
    """The daily report and zero report (日报告、零报告)."""

    enabled: bool = Field(True, description="Generate the previous day's report every day")
    at: time = Field(time(8, 0), description="Local time the previous day's report is generated")


class SpotCheckConfig(_Model):
    """Random spot checks (随机抽查)."""

    auto_draw: bool = Field(True, description="Draw each enabled quota's schools when its day or week begins")
    recent_event_days: int = Field(
        30, ge=1, le=365, description="Events this many days back count as a school's recent events (risk)"
    )


class PatrolConfig(_Model):
    """The duty room's patrol service."""

    enabled: bool = Field(True, description="Run the patrol service (wall rotation, tasks, clocks, reports)")
    tick_s: float = Field(
        1.0, ge=0.05, le=10, description="How often walls are checked for rotation and new alarms"
    )
    schedule_every_s: float = Field(
        30.0, ge=0.1, le=600, description="How often tasks, missed tasks, overdue hazards and clocks are checked"
    )
    tasks_ahead_h: float = Field(
        36.0, ge=1, le=24 * 14, description="Patrol-plan tasks are created this far ahead of their window"
    )
    fleet_refresh_s: float = Field(
        30.0, ge=1, le=3600, description="How often walls re-read their camera sets and camera health"
    )
    alarm_severities: tuple[str, ...] = Field(
        ("general", "major"), min_length=1, description="Event severities that take a tile on the walls"
    )
    alarm_max_age_s: float = Field(
        600.0, ge=1, le=86_400, description="Events older than this when the service sees them raise no alarm"
    )
    clocks: ClockConfig = Field(default_factory=ClockConfig, description="Incident reporting deadlines")
    hazards: HazardConfig = Field(default_factory=HazardConfig, description="Hazard deadlines and escalation")
    report: ReportConfig = Field(default_factory=ReportConfig, description="Daily and zero reports")
    spot_checks: SpotCheckConfig = Field(default_factory=SpotCheckConfig, description="Random spot checks")
