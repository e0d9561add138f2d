"""The school calendar (terms, holidays, make-up days, opening hours) and weekly windows.

Shared by analytics (when a rule is active) and patrol (which days a patrol plan runs on).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from config.rules import WEEKDAYS, CalendarConfig, When
from kernel.errors import KernelError


class CalendarError(KernelError):
    """A time the calendar cannot place (no timezone)."""


class SchoolCalendar:
    """Answers "is the campus open?" and "is this rule active?" for aware datetimes."""

    def __init__(self, config: CalendarConfig) -> None:
        self.config = config

    @cached_property
    def zone(self) -> ZoneInfo:
        """The schools' timezone."""
        return ZoneInfo(self.config.timezone)

    def local(self, at: datetime) -> datetime:
        """``at`` in the schools' timezone."""
        if at.tzinfo is None:
            raise CalendarError(f"{at} has no timezone")
        return at.astimezone(self.zone)

    def is_school_day(self, day: date) -> bool:
        """A make-up day, or a usual school day in term that is not a holiday."""
        cfg = self.config
        if day in cfg.make_up_days:
            return True
        if WEEKDAYS[day.weekday()] not in cfg.school_days:
            return False
        if cfg.terms and not any(t.start <= day <= t.end for t in cfg.terms):
            return False
        return not any(h.start <= day <= h.end for h in cfg.holidays)

    def campus_open(self, at: datetime) -> bool:
        """A school day between opening and closing time."""
        local = self.local(at)
        return self.is_school_day(local.date()) and self.config.opens <= local.time() < self.config.closes

    def active(self, when: When, at: datetime) -> bool:
        """Whether a rule with this ``when`` is active at ``at``."""
        if when == "always":
            return True
        if when == "campus_open":
            return self.campus_open(at)
        if when == "campus_closed":
            return not self.campus_open(at)
        local = self.local(at)
        now, today = local.time(), WEEKDAYS[local.weekday()]
        yesterday = WEEKDAYS[(local - timedelta(days=1)).weekday()]
        for window in when:
            if window.start < window.end:
                if today in window.days and window.start <= now < window.end:
                    return True
            elif (today in window.days and now >= window.start) or (yesterday in window.days and now < window.end):
                return True  # a window past midnight belongs to the day it started on
        return False


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day ``day`` in ``zone`` as UTC ``[start, end)`` (23 or 25 hours long where the clocks change)."""
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end
