"""The daily report as CSV: UTF-8 with a byte-order mark (Excel in China opens it), the figures as
``metric, label, value`` rows, then each list as a section of its own."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel

from patrol.report_figures import (
    DailyFigures,
    DistrictCoverage,
    DrawListed,
    HazardListed,
    IncidentListed,
    InspectionSigned,
    SchoolCount,
    SchoolOffline,
    TaskNotDone,
)

CSV_BOM = "\ufeff"


def _cell(figures: DailyFigures, value: object) -> object:
    if isinstance(value, datetime):
        return figures.local(value)
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return value.value if isinstance(value, StrEnum) else value


def _section(
    figures: DailyFigures, key: str, label: str, model: type[BaseModel], items: Sequence[BaseModel]
) -> list[list[object]]:
    # A list of the figures, column by column as its model's fields (nested lists of models left out).
    fields = [name for name in model.model_fields if name != "clocks"]
    rows = [[_cell(figures, getattr(item, name)) for name in fields] for item in items]
    return [[], [f"[{key}]", label], [*fields], *rows]


def _rows(key: str, label: str, header: list[str], rows: Iterable[Sequence[object]]) -> list[list[object]]:
    return [[], [f"[{key}]", label], list(header), *(list(row) for row in rows)]


def render_csv(figures: DailyFigures, names: Mapping[int, str] | None = None) -> str:
    """The report as CSV (UTF-8 with a BOM, so that Excel opens it): the headline metrics as rows of (metric,
    label, value), then each list as a section: a ``[name]`` row, a header row, its rows (local times)."""
    f, names = figures, names or {}
    out = io.StringIO()
    out.write(CSV_BOM)
    w = csv.writer(out, lineterminator="\r\n")
    w.writerows([["day", "日期", f.day.isoformat()], ["timezone", "时区", f.timezone]])
    w.writerows([["reasons", "有事报情况", " ".join(f.reasons)], ["metric", "指标", "value"], *f.metric_rows()])
    clocks = [
        [i.id, c.kind.value, f.local(c.deadline), f.local(c.done_at) if c.done_at else "", c.state]
        for i in f.incidents.majors
        for c in i.clocks
    ]
    duty = [
        [
            s.shift_id,
            s.label,
            f.local(s.starts_at),
            f.local(s.ends_at),
            names.get(s.leader_id, s.leader_id),
            officers,
        ]
        for s in f.duty
        for officers in [" ".join(names.get(u, str(u)) for u in s.officer_ids)]
    ]
    for section in (
        _section(f, "coverage_by_district", "分区轮巡覆盖", DistrictCoverage, f.coverage.by_district),
        _section(f, "tasks_not_done", "未完成巡查任务", TaskNotDone, f.tasks.not_done),
        _rows("events_by_type", "事件类型", ["type", "count"], f.events.by_type.items()),
        _rows("events_by_severity", "事件等级", ["severity", "count"], f.events.by_severity.items()),
        _section(f, "events_by_school", "事件较多的学校", SchoolCount, f.events.top_schools),
        _section(f, "hazards_overdue", "逾期隐患", HazardListed, f.hazards.overdue_list),
        _section(f, "offline_cameras", "离线摄像机", SchoolOffline, f.offline.by_school),
        _section(f, "inspections_signed", "抽查", InspectionSigned, f.spot_checks.signed_list),
        _section(f, "draws", "抽取", DrawListed, f.spot_checks.draws),
        _section(f, "incidents_major", "较大以上突发事件", IncidentListed, f.incidents.majors),
        _rows("incident_clocks", "报告时限", ["incident_id", "kind", "deadline", "done_at", "state"], clocks),
        _rows("duty", "值班", ["shift_id", "label", "starts_at", "ends_at", "leader", "officers"], duty),
    ):
        w.writerows(section)
    return out.getvalue()
