"""API of patrol plans and tasks: CRUD and validation, permissions, verdicts with and without a snapshot,
missed tasks in the list, the tasks of the shift on duty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from config import Settings
from ingest.thumbnails import MemoryThumbnailStore, Thumbnail, encode_jpeg
from kernel.bus import InMemoryBus
from kernel.db import session_scope
from patrol.plans import create_due_tasks, mark_missed, plan_calendar
from patrol.tables import DutyShift, DutyShiftOfficer, Hazard, PatrolTask
from tests.bureau import Bureau, ManualClock, login

PLAN: dict[str, Any] = {
    "name": "校门巡查",
    "description": "上学时段校门",
    "camera_set": {"cameras": ["S11-GATE", "S12-GATE"]},
    "day_rule": "every_day",
    "start": "09:30",
    "end": "11:00",
}
JPEG = encode_jpeg(np.full((180, 320, 3), 120, np.uint8))


def create_tasks(bureau: Bureau, settings: Settings, clock: ManualClock) -> list[int]:
    """What the patrol service does: create the due tasks (and commit)."""
    with session_scope(bureau.factory) as session:
        calendar = plan_calendar(settings.analytics.calendar, settings.instance.timezone)
        create_due_tasks(session, clock(), ahead=timedelta(hours=2), calendar=calendar)
        return list(session.scalars(select(PatrolTask.id).order_by(PatrolTask.id)))


def new_plan(api: TestClient, **changes: Any) -> dict[str, Any]:
    login(api, "admin")
    response = api.post("/api/patrol-plans", json=PLAN | changes)
    assert response.status_code == 201, response.text
    return dict(response.json())


def post_verdict(
    api: TestClient, task_id: int, camera: str, files: dict[str, Any] | None = None, **fields: Any
) -> Any:
    return api.post(
        f"/api/patrol-tasks/{task_id}/items/{camera}/verdict", data={"verdict": "normal"} | fields, files=files
    )


def test_plans_are_created_read_changed_and_deleted(api: TestClient) -> None:
    plan = new_plan(api)
    assert plan["camera_count"] == 2 and plan["past_midnight_window"] is False
    assert plan["camera_set_description"] == "2 listed cameras"
    # 10:00 local: today's 09:30-11:00 window is open.
    assert plan["next_window"] == {
        "day": "2026-12-01",
        "start": "2026-12-01T01:30:00Z",
        "end": "2026-12-01T03:00:00Z",
    }
    login(api, "officer1")  # anyone logged in reads
    assert [p["name"] for p in api.get("/api/patrol-plans").json()] == ["校门巡查"]
    assert api.get(f"/api/patrol-plans/{plan['id']}").json()["camera_count"] == 2
    login(api, "admin")
    changed = api.put(
        f"/api/patrol-plans/{plan['id']}",
        json=PLAN | {"camera_set": {"districts": ["D1"]}, "start": "23:30", "end": "00:30"},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["camera_count"] == 12 and body["past_midnight_window"] is True
    assert body["next_window"]["end"] == "2026-12-01T16:30:00Z"
    preview = api.get(f"/api/patrol-plans/{plan['id']}/preview", params={"day": "2026-12-04", "days": 3}).json()
    assert [(d["day"], d["school_day"], d["window"]["start"]) for d in preview["days"]] == [
        ("2026-12-04", True, "2026-12-04T15:30:00Z"),
        ("2026-12-05", False, "2026-12-05T15:30:00Z"),  # every day: weekends too
        ("2026-12-06", False, "2026-12-06T15:30:00Z"),
    ]
    assert preview["camera_count"] == 12
    assert api.get("/api/patrol-plans", params={"enabled": "false"}).json() == []
    assert api.delete(f"/api/patrol-plans/{plan['id']}").status_code == 204
    assert api.get(f"/api/patrol-plans/{plan['id']}").status_code == 404


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        ({"camera_set": {"districts": ["D9"]}}, 422, "unknown district 'D9'"),
        ({"camera_set": {"schools": ["S11"], "scene_types": ["canteen"]}}, 422, "matches no enabled camera"),
        ({"start": "08:00", "end": "08:00"}, 422, "a window needs a length"),
        ({"day_rule": "weekdays"}, 422, "needs at least one weekday"),
        ({"start": "08:00+08:00"}, 422, "has a UTC offset"),
        ({"colour": "red"}, 422, "Extra inputs are not permitted"),
    ],
)
def test_bad_plans_are_refused(api: TestClient, changes: dict[str, Any], status: int, message: str) -> None:
    login(api, "admin")
    response = api.post("/api/patrol-plans", json=PLAN | changes)
    assert response.status_code == status
    assert message in response.text
    assert api.get("/api/patrol-plans").json() == []


def test_plan_names_are_unique_and_only_administrators_write(api: TestClient) -> None:
    plan = new_plan(api)
    duplicate = api.post("/api/patrol-plans", json=PLAN)
    assert duplicate.status_code == 409 and "exists already" in duplicate.json()["detail"]
    login(api, "officer1")
    forbidden = api.post("/api/patrol-plans", json=PLAN | {"name": "other"})
    assert forbidden.status_code == 403 and "duty_officer may not" in forbidden.json()["detail"]
    assert api.put(f"/api/patrol-plans/{plan['id']}", json=PLAN).status_code == 403
    assert api.delete(f"/api/patrol-plans/{plan['id']}").status_code == 403
    api.cookies.clear()
    assert api.get("/api/patrol-plans").status_code == 401


def test_a_verdict_keeps_the_uploaded_snapshot_or_the_thumbnail(
    api: TestClient,
    bureau: Bureau,
    settings: Settings,
    clock: ManualClock,
    thumbnails: MemoryThumbnailStore,
    bus: InMemoryBus,
) -> None:
    new_plan(api)
    [task_id] = create_tasks(bureau, settings, clock)
    duty = bus.consumer("duty", "test", "t")
    login(api, "auditor")
    assert post_verdict(api, task_id, "S11-GATE").status_code == 403
    login(api, "officer1")
    uploaded = post_verdict(api, task_id, "S11-GATE", files={"snapshot": ("gate.jpg", JPEG, "image/jpeg")})
    assert uploaded.status_code == 200, uploaded.text
    body = uploaded.json()
    assert body["snapshot"] == "uploaded" and body["task_completed"] is False
    assert body["item"]["checked_by"] == {
        "id": bureau.users["officer1"],
        "username": "officer1",
        "display_name": "Officer1",
    }
    assert body["task"]["cameras_done"] == 1
    picture = api.get(body["item"]["snapshot_url"])
    assert picture.status_code == 200 and picture.content == JPEG
    assert picture.headers["content-type"] == "image/jpeg"
    # No upload: the camera's latest thumbnail is kept.
    thumbnails.put("S12-GATE", Thumbnail(JPEG[:-2] + b"\xff\xd9", datetime(2026, 12, 1, 1, 59, tzinfo=UTC)))
    thumbed = post_verdict(
        api, task_id, "S12-GATE", verdict="abnormal", note="gate open", open_hazard="true", hazard_severity="major"
    )
    assert thumbed.status_code == 200, thumbed.text
    result = thumbed.json()
    assert result["snapshot"] == "thumbnail" and result["hazard_opened"] is True
    assert result["task_completed"] is True and result["task"]["status"] == "done"
    assert api.get(result["item"]["snapshot_url"]).content == JPEG[:-2] + b"\xff\xd9"
    with bureau.factory() as session:
        hazard = session.get(Hazard, result["item"]["hazard_id"])
        assert hazard is not None and (hazard.title, hazard.severity.value) == ("gate open", "major")
    assert [d.event.type for d in duty.fetch(max_count=10)] == ["hazard.created", "task.done"]
    detail = api.get(f"/api/patrol-tasks/{task_id}").json()
    assert [(i["camera_code"], i["verdict"], i["school_code"]) for i in detail["items"]] == [
        ("S11-GATE", "normal", "S11"),
        ("S12-GATE", "abnormal", "S12"),
    ]
    assert detail["cameras_done"] == detail["cameras_total"] == 2
    # Replaced inside the window, with no upload and no thumbnail: none kept, and the answer says so.
    bare = post_verdict(api, task_id, "S11-GATE", note="checked again").json()
    assert bare["snapshot"] == "none"
    assert bare["snapshot_detail"] == "no snapshot uploaded and no thumbnail of camera 'S11-GATE' yet"
    assert bare["item"]["snapshot_url"] is None and bare["item"]["note"] == "checked again"
    assert api.get(f"/api/patrol-tasks/{task_id}/items/S11-GATE/snapshot.jpg").status_code == 404


def test_bad_verdicts_are_refused(api: TestClient, bureau: Bureau, settings: Settings, clock: ManualClock) -> None:
    new_plan(api)
    new_plan(api, name="later", start="11:30", end="12:00")
    early_id, now_id = sorted(create_tasks(bureau, settings, clock), reverse=True)
    login(api, "officer1")
    png = post_verdict(api, now_id, "S11-GATE", files={"snapshot": ("x.png", b"\x89PNG\r\n\x1a\n", "image/png")})
    assert png.status_code == 422 and "a PNG picture: send a JPEG" in png.json()["detail"]
    empty = post_verdict(api, now_id, "S11-GATE", files={"snapshot": ("x.jpg", b"", "image/jpeg")})
    assert empty.status_code == 422 and "is empty" in empty.json()["detail"]
    big = post_verdict(
        api, now_id, "S11-GATE", files={"snapshot": ("x.jpg", JPEG + b"\x00" * (5 * 1024 * 1024), "image/jpeg")}
    )
    assert big.status_code == 413
    assert post_verdict(api, now_id, "S11-GATE", verdict="maybe").status_code == 422
    assert post_verdict(api, now_id, "S13-GATE").status_code == 404
    assert post_verdict(api, 9999, "S11-GATE").status_code == 404
    naive = post_verdict(
        api, now_id, "S11-GATE", verdict="abnormal", open_hazard="true", hazard_deadline="2026-12-09T10:00"
    )
    assert naive.status_code == 422 and "UTC offset" in naive.json()["detail"]
    for field, value in (
        ("hazard_title", "x"),
        ("hazard_deadline", "2026-12-09T10:00+08:00"),
        ("hazard_severity", "major"),
    ):
        fields: dict[str, Any] = {"verdict": "abnormal", field: value}
        alone = post_verdict(api, now_id, "S11-GATE", **fields)
        assert alone.status_code == 422, field
        assert alone.json()["detail"] == f"{field}: the hazard fields are given only with open_hazard=true"
    both = post_verdict(api, now_id, "S11-GATE", hazard_title="x", hazard_severity="general").json()["detail"]
    assert both.startswith("hazard_title, hazard_severity:")
    normal = post_verdict(api, now_id, "S11-GATE", open_hazard="true")
    assert normal.status_code == 422 and "only an abnormal verdict opens a hazard" in normal.json()["detail"]
    early = post_verdict(api, early_id, "S11-GATE")
    assert early.status_code == 409 and "opens at 2026-12-01T11:30+08:00" in early.json()["detail"]
    detail = api.get(f"/api/patrol-tasks/{now_id}").json()
    assert all(i["verdict"] is None for i in detail["items"])  # nothing was recorded


def test_a_missed_task_is_listed_and_the_shift_sees_its_tasks(
    api: TestClient, bureau: Bureau, settings: Settings, clock: ManualClock
) -> None:
    with session_scope(bureau.factory) as session:
        shift = DutyShift(
            label="day",
            starts_at=clock() - timedelta(hours=2),
            ends_at=clock() + timedelta(hours=10),
            leader_id=bureau.users["leader1"],
            created_at=clock(),
        )
        session.add(shift)
        session.flush()
        session.add(DutyShiftOfficer(shift_id=shift.id, user_id=bureau.users["officer1"], position=0))
        shift_id = shift.id
    new_plan(api)
    [task_id] = create_tasks(bureau, settings, clock)
    login(api, "officer1")
    assert post_verdict(api, task_id, "S11-GATE").status_code == 200
    mine = api.get("/api/patrol-tasks", params={"mine": "true"}).json()
    assert (mine["total"], mine["offset"], mine["limit"]) == (1, 0, 100)
    assert [(t["id"], t["shift_id"], t["status"]) for t in mine["items"]] == [(task_id, shift_id, "pending")]
    login(api, "officer2")  # not on the shift
    off_duty = api.get("/api/patrol-tasks", params={"mine": "true", "limit": 5}).json()
    assert off_duty == {"total": 0, "offset": 0, "limit": 5, "items": []}
    clock.advance(hours=1)  # 11:00: the window has closed
    late = post_verdict(api, task_id, "S12-GATE")
    assert late.status_code == 409 and "closed" in late.json()["detail"]
    with session_scope(bureau.factory) as session:
        assert mark_missed(session, clock()) == 1
    missed = api.get("/api/patrol-tasks", params={"status": "missed", "day": "2026-12-01"}).json()["items"]
    assert [(t["id"], t["plan_name"], t["cameras_done"], t["cameras_total"]) for t in missed] == [
        (task_id, "校门巡查", 1, 2)
    ]
    assert missed[0]["missed_at"] == "2026-12-01T03:00:00Z"
    assert api.get("/api/patrol-tasks", params={"status": "pending"}).json()["total"] == 0
    assert api.get("/api/patrol-tasks", params={"day": "2026-12-02"}).json()["items"] == []
    assert api.get("/api/patrol-tasks/9999").status_code == 404
    login(api, "admin")  # a plan with a task that has opened is kept
    plan_id = missed[0]["plan_id"]
    kept = api.delete(f"/api/patrol-plans/{plan_id}")
    assert kept.status_code == 409 and "disable the plan instead" in kept.json()["detail"]


def test_tasks_are_listed_a_page_at_a_time(
    api: TestClient, bureau: Bureau, settings: Settings, clock: ManualClock
) -> None:
    for n, (start, end) in enumerate((("09:30", "11:00"), ("11:30", "12:00"), ("10:30", "11:30"))):
        new_plan(api, name=f"plan {n}", start=start, end=end)
    ids = create_tasks(bureau, settings, clock)
    login(api, "auditor")  # everybody reads
    first = api.get("/api/patrol-tasks", params={"limit": 2}).json()
    assert (first["total"], first["offset"], first["limit"], len(first["items"])) == (3, 0, 2, 2)
    rest = api.get("/api/patrol-tasks", params={"limit": 2, "offset": 2}).json()
    assert (rest["total"], rest["offset"], [t["plan_name"] for t in rest["items"]]) == (3, 2, ["plan 0"])
    newest_first = [t["id"] for t in first["items"] + rest["items"]]
    assert sorted(newest_first) == ids and newest_first[0] == ids[1]  # the 11:30 window first
    assert api.get("/api/patrol-tasks", params={"offset": -1}).status_code == 422
    assert api.get("/api/patrol-tasks", params={"limit": 0}).status_code == 422


def test_a_new_camera_set_reaches_the_tasks_not_open_yet(
    api: TestClient, bureau: Bureau, settings: Settings, clock: ManualClock
) -> None:
    opened = new_plan(api)  # 09:30-11:00: open now
    later = new_plan(api, name="later", start="11:30", end="12:00")
    open_id, later_id = create_tasks(bureau, settings, clock)
    login(api, "admin")
    for plan in (opened, later):
        body = PLAN | {"name": plan["name"], "start": plan["start"], "end": plan["end"]}
        changed = api.put(f"/api/patrol-plans/{plan['id']}", json=body | {"camera_set": {"schools": ["S13"]}})
        assert changed.status_code == 200, changed.text
    cameras = {
        task_id: [i["camera_code"] for i in api.get(f"/api/patrol-tasks/{task_id}").json()["items"]]
        for task_id in (open_id, later_id)
    }
    assert cameras == {
        open_id: ["S11-GATE", "S12-GATE"],  # open already: kept as it was
        later_id: ["S13-CORR", "S13-DORM", "S13-GATE", "S13-YARD"],
    }
