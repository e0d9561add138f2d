"""API: the daily report and zero report (日报告、零报告): the list, a day's figures, its PDF and CSV, and
generating (or regenerating) the report of a finished day.

Days are local days of ``instance.timezone``, written ``YYYY-MM-DD``. The patrol service generates each day's
report at ``patrol.report.at`` the next morning; the duty room may generate a missing one or regenerate one.
The figures are the whole bureau's: every endpoint needs a bureau-scoped account (403 otherwise, see
:mod:`web.scopes`), and each PDF or CSV download is audited as an export.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from patrol.report_figures import DailyFigures, key_figures
from patrol.report_pdf import ReportFontError
from patrol.reports import generate_report, report_urls
from patrol.tables import DailyReport
from web.deps import AppFacts, AppSettings, Clock, DbSession, UnitOfWork
from web.permissions import BureauDutyUser
from web.routers.audit import record_export
from web.schemas import Page, UserRef, user_refs
from web.scopes import BureauUser

router = APIRouter(prefix="/api", tags=["reports"])

_NOT_FOUND: dict[int | str, dict[str, object]] = {404: {"description": "No report of that day"}}
DayPath = Annotated[
    str,
    Path(
        pattern=r"^\d{4}-\d{2}-\d{2}$",
        description="The local day of the report, YYYY-MM-DD",
        examples=["2026-12-01"],
    ),
]


class KeyFiguresPublic(BaseModel):
    """The headline figures of a report."""

    zero: bool = Field(description="A zero report: nothing to report, all safe (无事报平安)")
    coverage_share: float = Field(ge=0, le=1, description="Share of enabled cameras shown on a wall that day")
    tasks_not_done: int = Field(ge=0, description="Patrol-plan tasks missed or left pending")
    events: int = Field(ge=0, description="Events that started that day")
    major_events: int = Field(ge=0, description="Major events")
    incidents: int = Field(ge=0, description="Incidents that occurred that day")
    major_incidents: int = Field(ge=0, description="Major incidents")
    hazards_found: int = Field(ge=0, description="Hazards found that day")
    hazards_rectified: int = Field(ge=0, description="Hazards closed (verified rectified) that day")
    hazards_overdue: int = Field(ge=0, description="Hazards overdue at the end of the day")
    offline_cameras: int = Field(ge=0, description="Cameras offline at some time that day")
    spot_checks_signed: int = Field(ge=0, description="Spot-check inspections signed that day")


class ReportSummary(BaseModel):
    """A daily report in the list."""

    day: date = Field(description="The local day")
    zero: bool = Field(description="A zero report (无事报平安)")
    generated_at: datetime = Field(description="When it was generated")
    published_at: datetime | None = Field(None, description="When it was announced to the duty topic")
    key_figures: KeyFiguresPublic = Field(description="Headline figures")
    url: str = Field(max_length=64, description="Its figures (JSON)")
    pdf_url: str = Field(max_length=64, description="The printable PDF")
    csv_url: str = Field(max_length=64, description="The CSV (UTF-8 with BOM)")


class ReportPublic(ReportSummary):
    """A daily report with all its figures."""

    figures: DailyFigures = Field(description="Everything the report says")
    users: list[UserRef] = Field(description="The users the figures name by id (the duty roster)")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"{text} is not a day of the calendar (YYYY-MM-DD)"
        ) from err


def _summary(
    day: date, figures: DailyFigures, generated_at: datetime, published_at: datetime | None
) -> ReportSummary:
    return ReportSummary(
        day=day,
        zero=figures.zero,
        generated_at=generated_at,
        published_at=published_at,
        key_figures=KeyFiguresPublic.model_validate(key_figures(figures)),
        **report_urls(day),
    )


def _public(session: Session, report: DailyReport) -> ReportPublic:
    figures = DailyFigures.model_validate(report.figures)
    summary = _summary(report.day, figures, report.generated_at, report.published_at)
    users = user_refs(session, figures.user_ids())
    return ReportPublic(**summary.model_dump(), figures=figures, users=[users[i] for i in sorted(users)])


def _no_report(day: date) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no daily report of {day.isoformat()}")


@router.get("/reports", summary="Daily reports")
def list_reports(
    session: DbSession,
    _user: BureauUser,
    since: Annotated[date | None, Query(description="Days on or after (YYYY-MM-DD)")] = None,
    until: Annotated[date | None, Query(description="Days on or before (YYYY-MM-DD)")] = None,
    zero: Annotated[bool | None, Query(description="Only zero reports (true) or only the others (false)")] = None,
    limit: Annotated[int, Query(ge=1, le=366, description="At most this many")] = 31,
    offset: Annotated[int, Query(ge=0, description="Reports skipped")] = 0,
) -> Page[ReportSummary]:
    """The daily reports, newest day first, with their headline figures."""
    if since is not None and until is not None and until < since:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"until {until} is before since {since}")
    stmt = select(DailyReport.day, DailyReport.figures, DailyReport.generated_at, DailyReport.published_at)
    if since is not None:
        stmt = stmt.where(DailyReport.day >= since)
    if until is not None:
        stmt = stmt.where(DailyReport.day <= until)
    if zero is not None:
        stmt = stmt.where(DailyReport.zero.is_(zero))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.execute(stmt.order_by(DailyReport.day.desc()).offset(offset).limit(limit)).all()
    items = [
        _summary(day, DailyFigures.model_validate(figures), generated_at, published_at)
        for day, figures, generated_at, published_at in rows
    ]
    return Page(total=total, offset=offset, limit=limit, items=items)


# The .pdf and .csv routes come before /reports/{day}: its pattern would refuse "2026-12-01.pdf" with 422.
@router.get(
    "/reports/{day}.pdf",
    summary="A daily report as PDF",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, **_NOT_FOUND},
)
def report_pdf(day: DayPath, request: Request, session: DbSession, user: BureauUser) -> Response:
    """The printable A4 PDF of the report, with charts (Chinese font embedded); the download is audited."""
    the_day = _day(day)
    pdf = session.scalar(select(DailyReport.pdf).where(DailyReport.day == the_day))
    if pdf is None:
        raise _no_report(the_day)
    record_export(session, request, user, f"daily report {the_day.isoformat()}", format="pdf", bytes=len(pdf))
    session.commit()
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="daily-report-{the_day.isoformat()}.pdf"'},
    )


@router.get(
    "/reports/{day}.csv",
    summary="A daily report as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, **_NOT_FOUND},
)
def report_csv(day: DayPath, request: Request, session: DbSession, user: BureauUser) -> Response:
    """The report as CSV: UTF-8 with a BOM (Excel opens it), metrics first, then the lists; the download is
    audited."""
    the_day = _day(day)
    text = session.scalar(select(DailyReport.csv).where(DailyReport.day == the_day))
    if text is None:
        raise _no_report(the_day)
    data = text.encode("utf-8")
    record_export(session, request, user, f"daily report {the_day.isoformat()}", format="csv", bytes=len(data))
    session.commit()
    return Response(
        data,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="daily-report-{the_day.isoformat()}.csv"'},
    )


@router.get("/reports/{day}", summary="A daily report's figures", responses=_NOT_FOUND)
def get_report(day: DayPath, session: DbSession, _user: BureauUser) -> ReportPublic:
    """Every figure of the report of ``day``, and the users it names."""
    the_day = _day(day)
    report = session.scalars(select(DailyReport).where(DailyReport.day == the_day)).first()
    if report is None:
        raise _no_report(the_day)
    return _public(session, report)


@router.post(
    "/reports/{day}/generate",
    status_code=status.HTTP_201_CREATED,
    summary="Generate or regenerate a daily report",
    responses={
        200: {"description": "An existing report was regenerated"},
        403: {"description": "Not the bureau's duty room (duty officer, leader on duty, administrator)"},
        503: {"description": "The report's Chinese font is not installed (package fonts-wqy-microhei)"},
    },
)
def generate(
    day: DayPath,
    response: Response,
    work: UnitOfWork,
    facts: AppFacts,
    settings: AppSettings,
    clock: Clock,
    _user: BureauDutyUser,
) -> ReportPublic:
    """Generate the report of a finished day (201), or regenerate it from the current data (200); announces
    ``report.daily``. Today and later days are refused (422): the day is not over."""
    the_day = _day(day)
    existed = work.session.scalar(select(DailyReport.id).where(DailyReport.day == the_day)) is not None
    try:
        report = generate_report(
            work.session,
            the_day,
            facts,
            timezone=ZoneInfo(settings.instance.timezone),
            bureau_name=settings.instance.name,
            now=clock(),
            replace=True,
        )
    except ReportFontError as err:  # the server lacks the font: not the request's fault
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(err)) from err
    public = _public(work.session, report)
    try:
        work.commit()
    except IntegrityError as err:  # the patrol service stored the same day a moment before
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"the report of {the_day} was being generated at the same time: try again"
        ) from err
    if existed:
        response.status_code = status.HTTP_200_OK
    return public
