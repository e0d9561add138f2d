"""The daily report as a printable A4 PDF with charts (reportlab), in Chinese.

The font is WenQuanYi Micro Hei (Debian package ``fonts-wqy-microhei``), embedded (subset) so that the PDF
prints its Chinese anywhere. Without the font the renderer fails with :class:`ReportFontError`: a font without
Chinese glyphs would print empty boxes, which is worse than no report.

The output depends only on the figures, the bureau name, the names and ``generated_at`` (reportlab's
``invariant`` mode fixes the creation date and document id), so the same inputs give the same bytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.piecharts import Pie
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from patrol.errors import PatrolError

if TYPE_CHECKING:
    from datetime import datetime

    from patrol.report_figures import DailyFigures

FONT_PATH = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
FONT_NAME = "WenQuanYiMicroHei"
FONT_PACKAGE = "fonts-wqy-microhei"
PDF_LIST_LIMIT = 300
"""Rows of a list printed; the CSV has them all."""
WEEKDAYS_ZH = ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日")
EVENT_TYPES_ZH = {
    "intrusion": "入侵",
    "loitering": "徘徊",
    "crowding": "聚集",
    "line_crossing": "越线",
    "guard_post_empty": "岗位空岗",
    "water_area": "涉水",
    "fall": "跌倒",
}
TASK_STATUS_ZH = {"missed": "漏巡", "pending": "未完成", "done": "已完成"}
CLOCK_KINDS_ZH = {
    "school_phone": "学校电话报告（15分钟）",
    "school_written": "学校书面报告（30分钟）",
    "bureau_phone": "向市政府电话报告（20分钟）",
    "bureau_written": "向市政府书面报告（40分钟）",
}
CLOCK_STATES_ZH = {"met": "按时", "late": "超时", "not_done": "未报告"}
SEVERITY_ZH = {"general": "一般", "major": "重大"}
PERIOD_ZH = {"day": "日", "week": "周"}
METHODS_ZH = {
    "random": "随机抽查",
    "directed": "定向检查",
    "fixed_point": "定点检查",
    "lead": "线索核查",
    "covert": "暗访",
    "video": "视频巡查",
}
GREEN = colors.HexColor("#2e7d32")
AMBER = colors.HexColor("#b26a00")
GREY = colors.HexColor("#eeeeee")
SERIES = (colors.HexColor("#1565c0"), colors.HexColor("#c62828"), colors.HexColor("#f9a825"))
PAGE_WIDTH = A4[0] - 36 * mm


class ReportFontError(PatrolError):
    """The Chinese font of the report cannot be loaded (a PatrolError, so the patrol service logs it and goes on;
    the API answers 503)."""


_registered: dict[str, Path] = {}


def register_font(path: Path = FONT_PATH) -> str:
    """Register the report's font (once) and return its name; :class:`ReportFontError` if it is missing."""
    if _registered.get(FONT_NAME) == path:
        return FONT_NAME
    if not path.is_file():
        raise ReportFontError(
            f"the daily report's Chinese font {path} is missing: install the Debian package {FONT_PACKAGE} "
            f"(apt-get install {FONT_PACKAGE}; scripts/bootstrap.sh does it)"
        )
    try:
        pdfmetrics.registerFont(TTFont(FONT_NAME, str(path), subfontIndex=0))
    except (TTFError, OSError) as err:
        raise ReportFontError(f"cannot load the report font {path} (package {FONT_PACKAGE}): {err}") from err
    _registered[FONT_NAME] = path
    return FONT_NAME


def _styles(font: str) -> dict[str, ParagraphStyle]:
    def style(name: str, size: float, **kw: Any) -> ParagraphStyle:
        return ParagraphStyle(name, fontName=font, fontSize=size, leading=size * 1.35, wordWrap="CJK", **kw)

    return {
        "title": style("title", 18, alignment=1, spaceAfter=2 * mm),
        "subtitle": style("subtitle", 12, alignment=1, spaceAfter=4 * mm),
        "h2": style("h2", 12, spaceBefore=4 * mm, spaceAfter=2 * mm, textColor=colors.HexColor("#0d47a1")),
        "body": style("body", 9),
        "cell": style("cell", 8),
        "banner": style("banner", 20, alignment=1, textColor=colors.white),
        "banner_note": style("banner_note", 9, alignment=1, textColor=colors.white),
        "small": style("small", 8, textColor=colors.HexColor("#555555")),
    }


def _esc(text: object) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _table(
    header: Sequence[str], rows: Sequence[Sequence[object]], widths: Sequence[float], cell: ParagraphStyle
) -> Table:
    data = [[Paragraph(_esc(v), cell) for v in row] for row in [header, *rows]]
    table = Table(data, colWidths=[w * PAGE_WIDTH for w in widths], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), cell.fontName),  # else the table sets Helvetica
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#9e9e9e")),
                ("BACKGROUND", (0, 0), (-1, 0), GREY),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def _list(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    widths: Sequence[float],
    st: Mapping[str, ParagraphStyle],
    empty: str,
) -> list[Flowable]:
    out: list[Flowable] = [Paragraph(_esc(title), st["h2"])]
    if not rows:
        return [*out, Paragraph(_esc(empty), st["body"])]
    out.append(_table(header, rows[:PDF_LIST_LIMIT], widths, st["cell"]))
    if len(rows) > PDF_LIST_LIMIT:
        out.append(Paragraph(f"另有 {len(rows) - PDF_LIST_LIMIT} 项未列出，详见 CSV。", st["small"]))
    return out


def _bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    font: str,
    *,
    width: float,
    top: float | None = None,
    label_format: str = "%.0f",
) -> Drawing:
    """A titled bar chart; ``top`` fixes the value axis (percentages, in steps of 20), else it fits counts."""
    drawing = Drawing(width, 62 * mm, initialFontName=font)  # reportlab would start with Helvetica
    drawing.add(String(width / 2, 58 * mm, title, fontName=font, fontSize=10, textAnchor="middle"))
    if not values:
        drawing.add(String(width / 2, 30 * mm, "无数据", fontName=font, fontSize=9, textAnchor="middle"))
        return drawing
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = int(12 * mm), int(14 * mm), int(width - 18 * mm), int(40 * mm)
    chart.data = [list(values)]
    chart.categoryAxis.categoryNames = list(labels)
    chart.categoryAxis.labels.fontName = font
    chart.categoryAxis.labels.fontSize = 7
    chart.categoryAxis.labels.angle = 30 if len(labels) > 5 else 0
    chart.categoryAxis.labels.boxAnchor = "ne" if len(labels) > 5 else "n"
    chart.valueAxis.labels.fontName = font
    chart.valueAxis.labels.fontSize = 7
    chart.valueAxis.valueMin = 0
    highest = max([1.0, *values])
    chart.valueAxis.valueMax = top if top is not None else highest * 1.15
    chart.valueAxis.valueStep = 20 if top is not None else max(1, math.ceil(highest / 5))
    chart.bars[0].fillColor = SERIES[0]
    chart.barLabels.fontName = font
    chart.barLabels.fontSize = 7
    chart.barLabelFormat = label_format
    chart.barLabels.nudge = 5
    drawing.add(chart)
    return drawing


def _task_pie(figures: DailyFigures, font: str, *, width: float) -> Drawing:
    t = figures.tasks
    drawing = Drawing(width, 62 * mm, initialFontName=font)  # reportlab would start with Helvetica
    drawing.add(String(width / 2, 58 * mm, "巡查任务完成情况", fontName=font, fontSize=10, textAnchor="middle"))
    parts = [(f"已完成 {t.done}", t.done), (f"漏巡 {t.missed}", t.missed), (f"未完成 {t.pending}", t.pending)]
    shown = [(label, n, SERIES[i]) for i, (label, n) in enumerate(parts) if n]
    if not shown:
        drawing.add(String(width / 2, 30 * mm, "当日无巡查任务", fontName=font, fontSize=9, textAnchor="middle"))
        return drawing
    pie = Pie()
    pie.x, pie.y, pie.width, pie.height = int(10 * mm), int(8 * mm), int(40 * mm), int(40 * mm)
    pie.data = [n for _, n, _ in shown]
    pie.slices.strokeColor = colors.white
    for i, (_, _, color) in enumerate(shown):
        pie.slices[i].fillColor = color
    legend = Legend()  # beside the pie: small slices' labels would overlap on it
    legend.x, legend.y = int(58 * mm), int(36 * mm)
    legend.fontName, legend.fontSize = font, 8
    legend.alignment = "right"
    legend.colorNamePairs = [(color, label) for label, _, color in shown]
    drawing.add(legend)
    drawing.add(pie)
    return drawing


def _charts(figures: DailyFigures, font: str) -> list[Flowable]:
    half = PAGE_WIDTH / 2
    by_type = sorted(figures.events.by_type.items(), key=lambda kv: (-kv[1], kv[0]))
    events = _bar_chart(
        "预警事件（按类型）",
        [EVENT_TYPES_ZH.get(k, k) for k, _ in by_type],
        [n for _, n in by_type],
        font,
        width=half,
    )
    row = Table(
        [[events, _task_pie(figures, font, width=half)]],
        colWidths=[half, half],
        style=[("FONTNAME", (0, 0), (-1, -1), font)],
    )
    districts = figures.coverage.by_district
    coverage = _bar_chart(
        "分区轮巡覆盖率（%）",
        [d.district_name for d in districts],
        [round(d.share * 100, 1) for d in districts],
        font,
        width=PAGE_WIDTH,
        top=110,
        label_format="%.1f",
    )
    return [row, coverage]


def _banner(figures: DailyFigures, st: Mapping[str, ParagraphStyle]) -> Table:
    if figures.zero:
        text, note, color = (
            "无事报平安",
            "nothing to report — all safe（当日无事件、无隐患、无异常、巡查任务全部完成）",
            GREEN,
        )
    else:
        text, note, color = "有事报情况", "；".join(figures.reason_labels()), AMBER
    banner = Table([[Paragraph(text, st["banner"])], [Paragraph(_esc(note), st["banner_note"])]], [PAGE_WIDTH])
    banner.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), st["banner"].fontName),
                ("BACKGROUND", (0, 0), (-1, -1), color),
                ("TOPPADDING", (0, 0), (-1, -1), 4),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 4),
            ]
        )
    )
    return banner


def _duty(figures: DailyFigures, names: Mapping[int, str], st: Mapping[str, ParagraphStyle]) -> list[Flowable]:
    out: list[Flowable] = [Paragraph("值班安排", st["h2"])]
    if not figures.duty:
        return [*out, Paragraph("当日无排班记录。", st["body"])]
    rows = [
        [
            s.label or f"#{s.shift_id}",
            f"{figures.local(s.starts_at)} – {figures.local(s.ends_at)}",
            names.get(s.leader_id, f"#{s.leader_id}"),
            "、".join(names.get(u, f"#{u}") for u in s.officer_ids) or "—",
        ]
        for s in figures.duty
    ]
    return [*out, _table(["班次", "时间", "带班领导", "值班员"], rows, [0.16, 0.36, 0.18, 0.30], st["cell"])]


def _figures_table(figures: DailyFigures, st: Mapping[str, ParagraphStyle]) -> Table:
    rows = [(label, value) for key, label, value in figures.metric_rows() if key != "zero"]
    half = (len(rows) + 1) // 2
    left, right = rows[:half], rows[half:] + [("", "")] * (2 * half - len(rows))
    data = [[a, b, c, d] for (a, b), (c, d) in zip(left, right, strict=True)]
    return _table(["指标", "数值", "指标", "数值"], data, [0.32, 0.18, 0.32, 0.18], st["cell"])


def _lists(figures: DailyFigures, st: Mapping[str, ParagraphStyle]) -> list[Flowable]:
    f = figures
    out: list[Flowable] = []
    out += _list(
        "未完成巡查任务",
        ["计划", "时段", "状态", "已查/摄像机"],
        [
            [t.plan_name, f"{f.local(t.window_start)} – {f.local(t.window_end)}", TASK_STATUS_ZH[t.status], done]
            for t in f.tasks.not_done
            for done in [f"{t.checked}/{t.cameras}"]
        ],
        [0.36, 0.36, 0.12, 0.16],
        st,
        "巡查任务全部完成。",
    )
    out += _list(
        "离线摄像机（按学校）",
        ["学校", "区", "数量", "摄像机"],
        [
            [f"{s.school_name}（{s.school_code}）", s.district_code, len(s.cameras), " ".join(s.cameras)]
            for s in f.offline.by_school
        ],
        [0.30, 0.10, 0.08, 0.52],
        st,
        "当日无离线摄像机。",
    )
    out += _list(
        "逾期未整改隐患",
        ["编号", "学校", "隐患", "等级", "整改期限"],
        [
            [h.id, f"{h.school_name}（{h.school_code}）", h.title, SEVERITY_ZH[h.severity], f.local(h.deadline)]
            for h in f.hazards.overdue_list
        ],
        [0.08, 0.28, 0.34, 0.08, 0.22],
        st,
        "无逾期隐患。",
    )
    if f.hazards.overdue > len(f.hazards.overdue_list):
        out.append(
            Paragraph(
                f"共 {f.hazards.overdue} 项逾期，仅列出最早到期的 {len(f.hazards.overdue_list)} 项。", st["small"]
            )
        )
    out += _list(
        "较大以上突发事件及报告时限",
        ["事件", "学校", "报告", "期限", "完成时间", "结果"],
        [
            [i.title, i.school_name, CLOCK_KINDS_ZH[c.kind], f.local(c.deadline), done, CLOCK_STATES_ZH[c.state]]
            for i in f.incidents.majors
            for c in i.clocks
            for done in [f.local(c.done_at) if c.done_at else "—"]
        ],
        [0.20, 0.18, 0.24, 0.14, 0.14, 0.10],
        st,
        "无较大以上突发事件。",
    )
    out += _list(
        "随机抽查",
        ["学校", "方式", "督导", "记录", "异常"],
        [
            [
                f"{i.school_name}（{i.school_code}）",
                METHODS_ZH.get(i.method, i.method),
                i.signed_name,
                i.findings,
                n,
            ]
            for i in f.spot_checks.signed_list
            for n in [i.abnormal]
        ],
        [0.36, 0.14, 0.22, 0.14, 0.14],
        st,
        "当日无已签名的抽查。",
    )
    if f.spot_checks.draws:
        out.append(Spacer(1, 2 * mm))
        out.append(
            _table(
                ["抽取", "周期", "起始日", "抽中学校", "已抽查"],
                [
                    [d.quota_name, PERIOD_ZH[d.period], d.period_start, " ".join(d.schools), progress]
                    for d in f.spot_checks.draws
                    for progress in [f"{d.inspected}/{len(d.schools)}"]
                ],
                [0.22, 0.08, 0.16, 0.40, 0.14],
                st["cell"],
            )
        )
    out += _list(
        "事件较多的学校",
        ["学校", "代码", "事件数"],
        [[s.school_name, s.school_code, s.count] for s in f.events.top_schools],
        [0.5, 0.3, 0.2],
        st,
        "当日无预警事件。",
    )
    return out


def _numbered_canvas(footer: str, font: str) -> type[Canvas]:
    class NumberedCanvas(Canvas):
        """Draws "page n of m" on every page once the page count is known."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["initialFontName"] = font  # no unembedded Helvetica either
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # noqa: N802 - reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()  # type: ignore[attr-defined]  # reportlab's (not in its stubs)

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self.setFont(font, 8)
                self.setFillColor(colors.HexColor("#555555"))
                self.drawCentredString(A4[0] / 2, 10 * mm, f"{footer}　第 {number} 页 / 共 {total} 页")
                super().showPage()
            super().save()

    return NumberedCanvas


def render_pdf(
    figures: DailyFigures,
    *,
    bureau_name: str,
    generated_at: datetime,
    names: Mapping[int, str] | None = None,
    font_path: Path | None = None,
) -> bytes:
    """The report as an A4 PDF: title, zero-report banner, figures, charts, lists, page numbers.

    ``names`` maps the user ids of the duty roster to the names printed (an id without a name prints as #id);
    ``font_path`` defaults to :data:`FONT_PATH`.
    """
    font = register_font(font_path or FONT_PATH)
    st = _styles(font)
    names = names or {}
    day = figures.day
    date_zh = f"{day.year}年{day.month}月{day.day}日（{WEEKDAYS_ZH[day.weekday()]}）"
    tz = ZoneInfo(figures.timezone)
    period = (
        f"统计时段：{figures.local(figures.starts_at)} 至 {figures.local(figures.ends_at)}（{figures.timezone}）"
    )
    story: list[Flowable] = [
        Paragraph(_esc(bureau_name), st["title"]),
        Paragraph(f"校园安全日报　{date_zh}　{day.isoformat()}", st["subtitle"]),
        _banner(figures, st),
        *_duty(figures, names, st),
        Paragraph("主要数据", st["h2"]),
        _figures_table(figures, st),
        Paragraph("图表", st["h2"]),
        *_charts(figures, font),
        *_lists(figures, st),
        Spacer(1, 6 * mm),
        Paragraph(
            f"{period}　生成时间 generated at：{generated_at.astimezone(tz):%Y-%m-%d %H:%M:%S}", st["small"]
        ),
    ]
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=18 * mm,
        title=f"{bureau_name} 校园安全日报 {day.isoformat()}",
        author=bureau_name,
        subject="日报告、零报告" if not figures.zero else "零报告：无事报平安",
        invariant=True,
    )
    doc.build(story, canvasmaker=_numbered_canvas(f"{bureau_name}　校园安全日报 {day.isoformat()}", font))
    return out.getvalue()
