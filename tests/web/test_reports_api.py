"""The daily-report API: generate and regenerate, list with filters, figures, PDF, CSV; permissions and errors."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from analytics.tables import SafetyEvent
from kernel.bus import InMemoryBus
from patrol import report_pdf
from patrol.tables import DutyShift
from tests.bureau import Bureau, ManualClock, login

# The clock stands at 2026-12-01 10:00 in Asia/Shanghai: 2026-11-30 is over, 2026-12-01 is not.
BUSY, QUIET, TODAY = "2026-11-30", "2026-11-29", "2026-12-01"


def _busy_day(bureau: Bureau) -> None:
    with bureau.factory() as s:
        s.add(
            SafetyEvent(
                camera_id=bureau.cameras["S11-GATE"],
                school_id=bureau.schools["S11"],
                type="intrusion",
                rule="after-hours",
                severity="general",
                started_at=datetime(2026, 11, 30, 14, 0, tzinfo=UTC),  # 22:00 local
            )
        )
        s.add(
            DutyShift(
                label="night",
                starts_at=datetime(2026, 11, 30, 12, 0, tzinfo=UTC),
                ends_at=datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
                leader_id=bureau.users["leader1"],
                created_at=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )
        s.commit()


def test_generate_list_and_download(api: TestClient, bureau: Bureau, bus: InMemoryBus, clock: ManualClock) -> None:
    _busy_day(bureau)
    duty = bus.consumer("duty", "test", "t")
    login(api, "officer1")
    made = api.post(f"/api/reports/{BUSY}/generate")
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["day"] == BUSY and body["zero"] is False and body["key_figures"]["events"] == 1
    assert body["figures"]["reasons"] == ["events"] and body["pdf_url"] == f"/api/reports/{BUSY}.pdf"
    assert body["users"] == [{"id": bureau.users["leader1"], "username": "leader1", "display_name": "Leader1"}]
    quiet = api.post(f"/api/reports/{QUIET}/generate")
    assert quiet.status_code == 201 and quiet.json()["zero"] is True
    clock.advance(minutes=5)
    again = api.post(f"/api/reports/{BUSY}/generate")  # regenerated from the current data
    assert again.status_code == 200 and again.json()["generated_at"] == "2026-12-01T02:05:00Z"
    announced = [d.event for d in duty.fetch(10)]
    assert [(e.type, e.payload["day"], e.payload["replaced"]) for e in announced] == [
        ("report.daily", BUSY, False),
        ("report.daily", QUIET, False),
        ("report.daily", BUSY, True),
    ]
    assert announced[1].payload["zero"] is True and announced[0].payload["csv_url"] == f"/api/reports/{BUSY}.csv"

    login(api, "auditor")  # reading is for every role
    listed = api.get("/api/reports")
    assert listed.status_code == 200 and [r["day"] for r in listed.json()["items"]] == [BUSY, QUIET]
    assert listed.json()["total"] == 2
    items = listed.json()["items"]
    assert items[0]["key_figures"]["zero"] is False and items[1]["key_figures"]["events"] == 0
    for params, days in [
        ({"since": BUSY}, [BUSY]),
        ({"until": QUIET}, [QUIET]),
        ({"zero": "true"}, [QUIET]),
        ({"zero": "false"}, [BUSY]),
        ({"limit": 1}, [BUSY]),
        ({"limit": 1, "offset": 1}, [QUIET]),
    ]:
        assert [r["day"] for r in api.get("/api/reports", params=params).json()["items"]] == days, params

    figures = api.get(f"/api/reports/{BUSY}")
    assert figures.status_code == 200 and figures.json()["figures"]["events"]["by_type"] == {"intrusion": 1}
    assert figures.json()["figures"]["day"] == BUSY and figures.json()["published_at"] is not None

    pdf = api.get(f"/api/reports/{QUIET}.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert 'filename="daily-report-2026-11-29.pdf"' in pdf.headers["content-disposition"]
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Municipal Education Bureau" in text and QUIET in text and "无事报平安" in text

    csv_file = api.get(f"/api/reports/{BUSY}.csv")
    assert csv_file.status_code == 200 and csv_file.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="daily-report-2026-11-30.csv"' in csv_file.headers["content-disposition"]
    assert csv_file.content.startswith(b"\xef\xbb\xbf")  # the BOM, for Excel
    rows = list(csv.reader(io.StringIO(csv_file.content.decode("utf-8-sig"))))
    assert ["events.total", "预警事件", "1"] in rows and ["day", "日期", BUSY] in rows


def test_only_finished_days_can_be_generated(api: TestClient) -> None:
    login(api, "leader1")
    for day in (TODAY, "2026-12-02", "2027-01-01"):
        refused = api.post(f"/api/reports/{day}/generate")
        assert refused.status_code == 422 and "not over yet" in refused.json()["detail"], day
    assert api.get("/api/reports").json()["items"] == []


def test_generating_needs_the_duty_room(api: TestClient) -> None:
    for username in ("auditor", "school11", "inspector"):
        login(api, username)
        assert api.post(f"/api/reports/{BUSY}/generate").status_code == 403, username
    login(api, "admin")
    assert api.post(f"/api/reports/{BUSY}/generate").status_code == 201


def test_missing_reports_and_bad_days(api: TestClient) -> None:
    assert api.get("/api/reports").status_code == 401
    login(api, "officer1")
    for path in (f"/api/reports/{QUIET}", f"/api/reports/{QUIET}.pdf", f"/api/reports/{QUIET}.csv"):
        missing = api.get(path)
        assert missing.status_code == 404 and missing.json()["detail"] == f"no daily report of {QUIET}", path
    for path in ("/api/reports/2026-13-01", "/api/reports/2026-02-30.pdf", "/api/reports/yesterday.csv"):
        assert api.get(path).status_code == 422, path
    bad = api.post("/api/reports/2026-02-30/generate")
    assert bad.status_code == 422 and "2026-02-30 is not a day" in bad.json()["detail"]
    assert api.get("/api/reports", params={"since": "30/11/2026"}).status_code == 422
    backwards = api.get("/api/reports", params={"since": BUSY, "until": QUIET})
    assert backwards.status_code == 422 and "before since" in backwards.json()["detail"]


def test_a_missing_font_is_the_servers_fault(
    api: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(report_pdf, "FONT_PATH", tmp_path / "wqy-microhei.ttc")
    login(api, "officer1")
    refused = api.post(f"/api/reports/{BUSY}/generate")
    assert refused.status_code == 503 and "fonts-wqy-microhei" in refused.json()["detail"]
    assert api.get(f"/api/reports/{BUSY}").status_code == 404  # nothing half-stored
