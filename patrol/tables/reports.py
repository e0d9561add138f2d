"""Stored daily reports (日报告) and zero reports (零报告): figures, the printable PDF and the CSV."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, Integer, LargeBinary, Text
from sqlalchemy.orm import Mapped, mapped_column

from kernel.db import Base, UTCDateTime


class DailyReport(Base):
    """The report of one local day; ``zero`` when the day had nothing to report (无事报平安)."""

    __tablename__ = "daily_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True, nullable=False)
    zero: Mapped[bool] = mapped_column(Boolean, nullable=False)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    pdf: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    csv: Mapped[str] = mapped_column(Text, nullable=False)
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    """When it was announced on the bus (for the notifier)."""
