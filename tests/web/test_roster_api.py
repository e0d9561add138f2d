"""Roster API: shifts rostered by the administrator, who is on duty now, generation, handover notes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from config import Settings
from kernel.db import session_scope
from patrol.plans import create_due_tasks, plan_calendar
from tests.bureau import Bureau, ManualClock, login

ZONE = ZoneInfo("Asia/Shanghai")


def sh(day: int, hour: int, minute: int = 0) -> str:
    """An ISO time in Asia/Shanghai, December 2026."""
    return datetime(2026, 12, day, hour, minute, tzinfo=ZONE).isoformat()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """The app clock's now (aware UTC) at a local time."""
    return datetime(2026, 12, day, hour, minute, tzinfo=ZONE).astimezone(UTC)


def shift(
    api: TestClient,
    start: str,
    end: str,
    leader: str = "leader1",
    officers: tuple[str, ...] = ("officer1",),
    **extra: Any,
) -> Any:
    body = {"starts_at": start, "ends_at": end, "leader": leader, "officers": list(officers), **extra}
    return api.post("/api/roster/shifts", json=body)


def day_and_night(api: TestClient) -> tuple[int, int]:
    login(api, "admin")
    day = shift(api, sh(1, 8), sh(1, 20), label="day")
    night = shift(api, sh(1, 20), sh(2, 8), leader="leader2", officers=("officer2",), label="night")
    assert day.status_code == night.status_code == 201, (day.text, night.text)
    return day.json()["id"], night.json()["id"]


def test_rostered_shifts_show_who_is_on_duty_now_and_next(api: TestClient, clock: ManualClock) -> None:
    day, night = day_and_night(api)
    login(api, "auditor")  # every role reads the roster
    now = api.get("/api/roster/now").json()
    assert now["shift"]["id"] == day and now["next"]["id"] == night
    assert now["shift"]["leader"] == {
        "id": now["shift"]["leader"]["id"],
        "username": "leader1",
        "display_name": "Leader1",
    }
    assert [o["username"] for o in now["shift"]["officers"]] == ["officer1"]
    clock.now = at(1, 20, 0)  # the day shift ends at 20:00 exactly
    now = api.get("/api/roster/now").json()
    assert now["shift"]["id"] == night and now["shift"]["leader"]["username"] == "leader2" and now["next"] is None
    clock.now = at(2, 8, 0)
    assert api.get("/api/roster/now").json() == {"at": "2026-12-02T00:00:00Z", "shift": None, "next": None}
    listed = api.get("/api/roster/shifts", params={"start": sh(1, 0), "end": sh(3, 0)}).json()
    assert [(s["id"], s["label"]) for s in listed] == [(day, "day"), (night, "night")]
    assert api.get("/api/roster/shifts", params={"start": sh(1, 21), "end": sh(1, 22)}).json()[0]["id"] == night
    assert api.get("/api/roster/shifts", params={"start": "2026-12-01T00:00:00"}).status_code == 422
    assert api.get(f"/api/roster/shifts/{day}").json()["starts_at"] == "2026-12-01T00:00:00Z"
    assert api.get("/api/roster/shifts/999").status_code == 404


def test_roster_writes_need_an_administrator(api: TestClient) -> None:
    day, _ = day_and_night(api)
    body = {"starts_at": sh(3, 8), "ends_at": sh(3, 20), "leader": "leader1", "officers": ["officer1"]}
    generate = {
        "first_day": "2026-12-05",
        "days": 1,
        "boundaries": ["08:00"],
        "teams": [["officer1"]],
        "leaders": ["leader1"],
    }
    for user in ("officer1", "leader1", "auditor"):
        login(api, user)
        assert api.post("/api/roster/shifts", json=body).status_code == 403
        assert api.put(f"/api/roster/shifts/{day}", json=body).status_code == 403
        assert api.delete(f"/api/roster/shifts/{day}").status_code == 403
        assert api.post("/api/roster/generate", json=generate).status_code == 403
    api.cookies.clear()
    assert api.get("/api/roster/now").status_code == 401


def test_bad_shifts_are_refused_with_the_reason(api: TestClient) -> None:
    day, _ = day_and_night(api)
    overlap = shift(api, sh(1, 19), sh(1, 21))
    assert overlap.status_code == 409
    local = "2026-12-01T08:00+08:00 to 2026-12-01T20:00+08:00"  # local times, as the administrator reads them
    assert overlap.json()["detail"] == f"the shift would overlap shift {day} (day), {local}"
    unknown = shift(api, sh(3, 8), sh(3, 20), leader="nobody", officers=("officer1", "ghost"))
    assert unknown.status_code == 422 and unknown.json()["detail"] == "unknown users: ghost, nobody"
    wrong_leader = shift(api, sh(3, 8), sh(3, 20), leader="officer2")
    assert wrong_leader.status_code == 422 and "officer2 (duty_officer)" in wrong_leader.json()["detail"]
    wrong_officer = shift(api, sh(3, 8), sh(3, 20), officers=("officer1", "inspector"))
    assert wrong_officer.status_code == 422 and "not duty officers" in wrong_officer.json()["detail"]
    assert "inspector (inspector)" in wrong_officer.json()["detail"]
    assert shift(api, sh(3, 8), sh(3, 20), leader="admin").status_code == 201  # an administrator may lead
    assert shift(api, "2026-12-04T08:00:00", sh(4, 20)).status_code == 422  # naive
    backwards = shift(api, sh(4, 20), sh(4, 8))
    assert backwards.status_code == 422 and "ends after it starts" in backwards.json()["detail"]
    assert shift(api, sh(4, 8), sh(4, 20), officers=()).status_code == 422
    assert shift(api, sh(4, 8), sh(4, 20), colour="red").status_code == 422  # extra field


def test_shifts_are_replaced_and_deleted_but_past_ones_kept(api: TestClient, clock: ManualClock) -> None:
    day, night = day_and_night(api)
    body = {"starts_at": sh(1, 20), "ends_at": sh(2, 8), "leader": "leader1", "officers": ["officer2", "officer1"]}
    replaced = api.put(f"/api/roster/shifts/{night}", json=body)
    assert replaced.status_code == 200, replaced.text
    assert [o["username"] for o in replaced.json()["officers"]] == ["officer2", "officer1"]
    assert api.put("/api/roster/shifts/999", json=body).status_code == 404
    clock.now = at(1, 21, 0)
    past = api.delete(f"/api/roster/shifts/{day}")
    assert past.status_code == 409 and "a past shift is kept" in past.json()["detail"]
    assert api.delete(f"/api/roster/shifts/{night}").status_code == 204
    assert api.get(f"/api/roster/shifts/{night}").status_code == 404


def test_shifts_are_generated_across_midnight_skipping_taken_slots(api: TestClient) -> None:
    login(api, "admin")
    taken = shift(api, sh(2, 20), sh(3, 8), leader="leader2").json()["id"]
    body = {
        "first_day": "2026-12-02",
        "days": 2,
        "boundaries": ["08:00", "20:00"],
        "teams": [["officer1"], ["officer2"]],
        "leaders": ["leader1", "leader2"],
    }
    result = api.post("/api/roster/generate", json=body)
    assert result.status_code == 201, result.text
    created = result.json()["created"]
    assert [(s["starts_at"], s["ends_at"], s["leader"]["username"]) for s in created] == [
        ("2026-12-02T00:00:00Z", "2026-12-02T12:00:00Z", "leader1"),
        ("2026-12-03T00:00:00Z", "2026-12-03T12:00:00Z", "leader1"),
        ("2026-12-03T12:00:00Z", "2026-12-04T00:00:00Z", "leader2"),
    ]
    assert [s["label"] for s in created][-1] == "2026-12-03 20:00–08:00"
    [skipped] = result.json()["skipped"]
    assert (skipped["starts_at"], skipped["conflicting_shift_id"]) == ("2026-12-02T12:00:00Z", taken)
    bad = api.post("/api/roster/generate", json={**body, "boundaries": ["20:00", "08:00"]})
    assert bad.status_code == 422 and "distinct and in order" in bad.json()["detail"]
    assert api.post("/api/roster/generate", json={**body, "days": 0}).status_code == 422
    unknown = api.post("/api/roster/generate", json={**body, "teams": [["officer9"]]})
    assert unknown.status_code == 422 and unknown.json()["detail"] == "unknown users: officer9"


def test_handover_notes_from_the_shift_on_duty_to_the_next(api: TestClient, clock: ManualClock) -> None:
    day, night = day_and_night(api)
    login(api, "officer2")  # on the night shift, not the day shift
    outsider = api.post(f"/api/roster/shifts/{day}/handovers", json={"text": "x"})
    assert outsider.status_code == 403 and "not on shift" in outsider.json()["detail"]
    login(api, "auditor")
    assert api.post(f"/api/roster/shifts/{day}/handovers", json={"text": "x"}).status_code == 403
    login(api, "officer1")
    note = api.post(f"/api/roster/shifts/{day}/handovers", json={"text": "S12 gate camera offline since 09:40"})
    assert note.status_code == 201, note.text
    assert note.json()["author"]["username"] == "officer1" and note.json()["acknowledged_by"] is None
    assert api.post(f"/api/roster/shifts/{day}/handovers", json={"text": ""}).status_code == 422
    early = api.post(f"/api/roster/shifts/{night}/handovers", json={"text": "x"})
    assert early.status_code == 403  # officer1 is not on the night shift
    note_id = note.json()["id"]
    assert api.post(f"/api/roster/handovers/{note_id}/acknowledge").status_code == 403  # not on the next shift
    clock.now = at(1, 20, 0)
    assert api.post(f"/api/roster/shifts/{day}/handovers", json={"text": "late"}).status_code == 409
    login(api, "leader2")
    acked = api.post(f"/api/roster/handovers/{note_id}/acknowledge")
    assert acked.status_code == 200 and acked.json()["acknowledged_by"]["username"] == "leader2"
    assert acked.json()["acknowledged_at"] == "2026-12-01T12:00:00Z"
    again = api.post(f"/api/roster/handovers/{note_id}/acknowledge")
    assert again.status_code == 409 and "acknowledged at 2026-12-01T20:00+08:00" in again.json()["detail"]
    assert api.post("/api/roster/handovers/999/acknowledge").status_code == 404
    notes = api.get(f"/api/roster/shifts/{day}/handovers").json()
    assert [n["text"] for n in notes] == ["S12 gate camera offline since 09:40"]


def test_a_changed_or_removed_shift_hands_its_unopened_tasks_on(
    api: TestClient, bureau: Bureau, settings: Settings, clock: ManualClock
) -> None:
    day, _ = day_and_night(api)
    plan = {"name": "evening", "camera_set": {"cameras": ["S11-GATE"]}, "day_rule": "every_day"}
    assert api.post("/api/patrol-plans", json=plan | {"start": "19:00", "end": "19:30"}).status_code == 201
    with session_scope(bureau.factory) as session:
        calendar = plan_calendar(settings.analytics.calendar, settings.instance.timezone)
        create_due_tasks(session, clock(), ahead=timedelta(hours=10), calendar=calendar)
    [task] = api.get("/api/patrol-tasks").json()["items"]
    assert task["shift_id"] == day
    shorter = {"starts_at": sh(1, 8), "ends_at": sh(1, 18), "leader": "leader1", "officers": ["officer1"]}
    assert api.put(f"/api/roster/shifts/{day}", json=shorter).status_code == 200
    assert api.get(f"/api/patrol-tasks/{task['id']}").json()["shift_id"] is None
    evening = shift(api, sh(1, 18), sh(1, 20))
    assert evening.status_code == 201
    assert api.get(f"/api/patrol-tasks/{task['id']}").json()["shift_id"] == evening.json()["id"]
    assert api.delete(f"/api/roster/shifts/{evening.json()['id']}").status_code == 204
    assert api.get(f"/api/patrol-tasks/{task['id']}").json()["shift_id"] is None


def test_only_bureau_wide_accounts_are_rostered(api: TestClient) -> None:
    login(api, "admin")
    refused = shift(api, sh(2, 8), sh(2, 20), officers=("officer1", "officer_d1"))
    assert refused.status_code == 422, refused.text
    assert "only bureau-wide accounts" in refused.json()["detail"] and "officer_d1" in refused.json()["detail"]
    assert shift(api, sh(2, 8), sh(2, 20)).status_code == 201
