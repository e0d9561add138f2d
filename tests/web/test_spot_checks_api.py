"""Spot-check API: quota → draw → inspection → findings → sign → verify, with permissions and bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ingest.thumbnails import MemoryThumbnailStore, Thumbnail
from kernel.bus import InMemoryBus
from kernel.db import session_scope
from patrol import inspections
from patrol.models import InspectionMethod, InspectionStatus, Takeover
from patrol.spot_checks import period_seed
from patrol.tables import Hazard, Inspection, InspectionFinding, VideoWall
from tests.bureau import Bureau, login

JPEG = b"\xff\xd8\xff\xe0" + b"snapshot" * 20
PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 20


def _wall(bureau: Bureau, name: str = "duty wall") -> int:
    with session_scope(bureau.factory) as session:
        wall = VideoWall(name=name, layout="4", takeover=Takeover.TILE)
        session.add(wall)
        session.flush()
        return wall.id


def _wall_inspection(bureau: Bureau, wall_id: int) -> int | None:
    with bureau.factory() as session:
        return session.scalar(select(VideoWall.inspection_id).where(VideoWall.id == wall_id))


def _ref(bureau: Bureau, username: str) -> dict[str, Any]:
    """A user as the API names people."""
    return {"id": bureau.users[username], "username": username, "display_name": username.title()}


def _quota(api: TestClient, **fields: Any) -> dict[str, Any]:
    login(api, "admin")
    body = {"name": "每日抽查", "period": "day", "min_count": 2, "max_count": 2, "seed": 20261201} | fields
    response = api.post("/api/spot-checks/quotas", json=body)
    assert response.status_code == 201, response.text
    quota: dict[str, Any] = response.json()
    return quota


def _draw(api: TestClient, quota_id: int, user: str = "inspector") -> dict[str, Any]:
    login(api, user)
    response = api.post(f"/api/spot-checks/quotas/{quota_id}/draws", json={})
    assert response.status_code == 201, response.text
    draw: dict[str, Any] = response.json()
    return draw


def test_the_whole_flow_from_quota_to_a_verified_signed_inspection(
    api: TestClient, bureau: Bureau, bus: InMemoryBus, thumbnails: MemoryThumbnailStore
) -> None:
    duty = bus.consumer("duty", "test", "t")
    wall_id = _wall(bureau)
    quota = _quota(api, weights={"per_hazard": 2.0})
    assert quota["districts"] == [] and quota["weights"]["per_hazard"] == 2.0
    assert quota["weights"]["per_event"] == 0.5 and quota["exclude_days"] == 7 and quota["enabled"] is True
    draw = _draw(api, quota["id"])
    assert draw["period_start"] == "2026-12-01" and draw["period_end"] == "2026-12-02" and draw["count"] == 2
    assert draw["drawn_by"] == _ref(bureau, "inspector") and len(draw["inputs"]["schools"]) == 6
    assert draw["seed"] == str(period_seed(20261201, quota["id"], date(2026, 12, 1))) == draw["inputs"]["seed"]
    codes = [s["code"] for s in draw["schools"]]
    assert len(set(codes)) == 2 and all(s["inspection_id"] is None for s in draw["schools"])
    drawn_events = [d.event for d in duty.fetch(10) if d.event.type == "spotcheck.drawn"]
    assert [e.payload["school_codes"] for e in drawn_events] == [codes]
    again = api.post(f"/api/spot-checks/quotas/{quota['id']}/draws", json={"period_start": "2026-12-01"})
    assert (
        again.status_code == 200
        and again.json()["id"] == draw["id"]
        and again.json()["schools"] == draw["schools"]
    )
    listed = api.get("/api/spot-checks/draws", params={"quota": quota["id"], "since": "2026-12-01"}).json()
    assert (listed["total"], listed["offset"], listed["limit"]) == (1, 0, 100)
    assert [d["id"] for d in listed["items"]] == [draw["id"]] and "inputs" not in listed["items"][0]
    assert listed["items"][0]["drawn_by"] == _ref(bureau, "inspector")
    later = api.get("/api/spot-checks/draws", params={"since": "2026-12-02"}).json()
    assert later["total"] == 0 and later["items"] == []
    assert api.get(f"/api/spot-checks/draws/{draw['id']}").json()["inputs"] == draw["inputs"]
    verified = api.get(f"/api/spot-checks/draws/{draw['id']}/verify").json()
    assert verified["ok"] is True and verified["derived_schools"] == codes and verified["problems"] == []

    school = codes[0]
    started = api.post(
        "/api/inspections",
        json={"school_code": school, "method": "random", "draw_id": draw["id"], "wall_id": wall_id},
    )
    assert started.status_code == 201, started.text
    inspection = started.json()
    iid = inspection["id"]
    assert (
        inspection["status"] == "open" and inspection["wall_ids"] == [wall_id] and inspection["signature"] is None
    )
    assert inspection["inspector"] == _ref(bureau, "inspector") and "inspector_name" not in inspection
    assert [c["code"] for c in inspection["cameras"]] == [
        f"{school}-{s}" for s in ("CORR", "DORM", "GATE", "YARD")
    ]
    assert inspection["cameras"][0]["thumbnail_url"] == f"/api/cameras/{school}-CORR/thumbnail.jpg"
    assert _wall_inspection(bureau, wall_id) == iid

    uploaded = api.post(
        f"/api/inspections/{iid}/findings",
        data={"verdict": "normal", "camera_code": f"{school}-GATE", "note": "guard at post"},
        files={"snapshot": ("gate.jpg", JPEG, "image/jpeg")},
    )
    assert uploaded.status_code == 201, uploaded.text
    assert api.get(uploaded.json()["snapshot_url"]).content == JPEG
    thumbnails.put(f"{school}-DORM", Thumbnail(JPEG + b"thumb", datetime(2026, 12, 1, 1, 59, tzinfo=UTC)))
    abnormal = api.post(
        f"/api/inspections/{iid}/findings",
        data={
            "verdict": "abnormal",
            "camera_code": f"{school}-DORM",
            "note": "fire exit blocked",
            "thumbnail": "true",
            "open_hazard": "true",
            "hazard_deadline": "2026-12-05T18:00:00+08:00",
        },
    )
    assert abnormal.status_code == 201, abnormal.text
    finding = abnormal.json()
    assert finding["hazard_id"] is not None and finding["snapshot_url"] is not None
    assert api.get(finding["snapshot_url"]).content == JPEG + b"thumb"
    with bureau.factory() as session:
        hazard = session.get(Hazard, finding["hazard_id"])
        assert hazard is not None and hazard.source_id == finding["id"] and hazard.title == "fire exit blocked"
        assert hazard.deadline == datetime(2026, 12, 5, 10, tzinfo=UTC)
    school_wide = api.post(
        f"/api/inspections/{iid}/findings", data={"verdict": "normal", "note": "all staff present"}
    )
    assert school_wide.status_code == 201 and school_wide.json()["camera_code"] is None
    assert school_wide.json()["snapshot_url"] is None

    signed = api.post(f"/api/inspections/{iid}/sign", json={"signed_name": "王督导", "summary": "one hazard"})
    assert signed.status_code == 200, signed.text
    record = signed.json()
    assert record["status"] == "signed" and record["summary"] == "one hazard" and record["wall_ids"] == []
    assert record["signature"]["signed_name"] == "王督导" and len(record["signature"]["content_sha256"]) == 64
    assert record["finding_count"] == 3 and record["abnormal_count"] == 1
    assert [f["verdict"] for f in record["findings"]] == ["normal", "abnormal", "normal"]
    assert _wall_inspection(bureau, wall_id) is None
    check = api.get(f"/api/inspections/{iid}/verify").json()
    assert check["ok"] is True and check["computed_sha256"] == record["signature"]["content_sha256"]
    assert api.post(f"/api/inspections/{iid}/sign", json={"signed_name": "王督导"}).status_code == 409
    late = api.post(f"/api/inspections/{iid}/findings", data={"verdict": "normal"})
    assert late.status_code == 409 and "read-only" in late.json()["detail"]
    assert api.put(f"/api/inspections/{iid}/wall", json={"wall_id": wall_id}).status_code == 409

    login(api, "auditor")  # everyone reads
    draw_now = api.get(f"/api/spot-checks/draws/{draw['id']}").json()
    assert {s["code"]: s["inspection_status"] for s in draw_now["schools"]} == {school: "signed", codes[1]: None}
    signed_page = api.get("/api/inspections", params={"status": "signed"}).json()
    assert signed_page["total"] == 1 and [i["id"] for i in signed_page["items"]] == [iid]
    assert api.get("/api/inspections", params={"status": "open"}).json()["items"] == []
    by_draw = api.get("/api/inspections", params={"school": school, "draw": draw["id"]}).json()
    assert [i["id"] for i in by_draw["items"]] == [iid]
    mine = api.get("/api/inspections", params={"inspector": "inspector"}).json()["items"]
    assert [i["inspector"] for i in mine] == [_ref(bureau, "inspector")]
    assert api.get("/api/inspections", params={"inspector": "leader1"}).json()["total"] == 0
    with session_scope(bureau.factory) as session:  # an edit straight in the database
        session.execute(
            update(InspectionFinding).where(InspectionFinding.id == finding["id"]).values(note="nothing wrong")
        )
    tampered = api.get(f"/api/inspections/{iid}/verify").json()
    assert tampered["ok"] is False and "changed after signing" in tampered["verdict"]


def test_who_may_do_what(api: TestClient, bureau: Bureau) -> None:
    login(api, "inspector")
    body = {"name": "q", "period": "day", "min_count": 1, "max_count": 1}
    assert api.post("/api/spot-checks/quotas", json=body).status_code == 403  # quotas are configuration
    quota = _quota(api)
    for user in ("inspector", "auditor", "officer1"):
        login(api, user)
        assert api.patch(f"/api/spot-checks/quotas/{quota['id']}", json={"enabled": False}).status_code == 403
        assert api.delete(f"/api/spot-checks/quotas/{quota['id']}").status_code == 403
    login(api, "auditor")
    denied = api.post(f"/api/spot-checks/quotas/{quota['id']}/draws", json={})
    assert denied.status_code == 403 and "auditor" in denied.json()["detail"]
    assert api.get("/api/spot-checks/quotas").json()[0]["id"] == quota["id"]  # but reads
    draw = _draw(api, quota["id"], "leader1")  # a leader on duty may draw and inspect
    school = draw["schools"][0]["code"]
    login(api, "officer1")
    start = {"school_code": school, "draw_id": draw["id"]}
    assert api.post("/api/inspections", json=start).status_code == 403
    login(api, "inspector")
    iid = api.post("/api/inspections", json=start).json()["id"]
    assert api.post(f"/api/inspections/{iid}/findings", data={"verdict": "normal"}).status_code == 201
    for user in ("officer1", "leader1", "admin"):  # nobody signs or adds findings for the inspector
        login(api, user)
        signed = api.post(f"/api/inspections/{iid}/sign", json={"signed_name": "Wang"})
        assert signed.status_code == 403, user
        assert api.post(f"/api/inspections/{iid}/findings", data={"verdict": "normal"}).status_code == 403
        assert api.put(f"/api/inspections/{iid}/wall", json={"wall_id": None}).status_code == 403
    api.cookies.clear()
    assert api.get("/api/inspections").status_code == 401
    assert api.get("/api/spot-checks/draws").status_code == 401


def test_bad_input_is_refused_with_specific_errors(api: TestClient, bureau: Bureau) -> None:
    login(api, "admin")
    bad_quotas = (
        ({"name": "x", "period": "day", "min_count": 5, "max_count": 3}, "min_count <= max_count"),
        ({"name": "x", "period": "day", "min_count": 1, "max_count": 1, "districts": ["D9"]}, "unknown districts"),
        ({"name": "x", "period": "month", "min_count": 1, "max_count": 1}, "period"),
        ({"name": "x", "period": "day", "min_count": 1, "max_count": 1, "weights": {"per_dog": 1}}, "per_dog"),
        ({"name": "x", "period": "day", "min_count": 1, "max_count": 1, "seed": -1}, "seed"),
        ({"name": "x", "period": "day", "min_count": 1, "max_count": 1, "colour": "red"}, "colour"),
    )
    for body, expected in bad_quotas:
        response = api.post("/api/spot-checks/quotas", json=body)
        assert response.status_code == 422 and expected in response.text, (body, response.text)
    weekly = _quota(api, name="weekly", period="week", min_count=1, max_count=2)
    clash = api.post(
        "/api/spot-checks/quotas", json={"name": "weekly", "period": "day", "min_count": 1, "max_count": 1}
    )
    assert clash.status_code == 409
    login(api, "inspector")
    url = f"/api/spot-checks/quotas/{weekly['id']}/draws"
    tuesday = api.post(url, json={"period_start": "2026-12-01"})
    assert tuesday.status_code == 422 and "starts on a Monday" in tuesday.json()["detail"]
    future = api.post(url, json={"period_start": "2026-12-07"})
    assert future.status_code == 422 and "has not begun" in future.json()["detail"]
    assert api.post(url, json={"period_start": "2026-11-30", "extra": 1}).status_code == 422
    assert api.post("/api/spot-checks/quotas/999/draws", json={}).status_code == 404
    draw = api.post(url, json={}).json()
    assert draw["period_start"] == "2026-11-30" and 1 <= draw["count"] <= 2
    login(api, "admin")
    assert api.delete(f"/api/spot-checks/quotas/{weekly['id']}").status_code == 409  # kept for the audit
    assert api.patch(f"/api/spot-checks/quotas/{weekly['id']}", json={"enabled": False}).json()["enabled"] is False
    login(api, "inspector")
    disabled = api.post(url, json={})
    assert disabled.status_code == 409 and "disabled" in disabled.json()["detail"]
    assert api.get("/api/spot-checks/draws/999").status_code == 404
    assert api.get("/api/spot-checks/draws/999/verify").status_code == 404

    undrawn = next(code for code in sorted(bureau.schools) if code not in [s["code"] for s in draw["schools"]])
    refused = api.post("/api/inspections", json={"school_code": undrawn, "draw_id": draw["id"]})
    assert refused.status_code == 422 and f"school {undrawn} is not in draw" in refused.json()["detail"]
    assert api.post("/api/inspections", json={"school_code": "S99", "method": "directed"}).status_code == 404
    assert api.post("/api/inspections", json={"school_code": "S11", "method": "sneaky"}).status_code == 422
    wall_id = _wall(bureau)
    first = api.post("/api/inspections", json={"school_code": "S11", "method": "directed", "wall_id": wall_id})
    assert first.status_code == 201
    busy = api.post("/api/inspections", json={"school_code": "S12", "method": "directed", "wall_id": wall_id})
    assert busy.status_code == 409 and "shows open inspection" in busy.json()["detail"]
    iid = first.json()["id"]
    assert api.put(f"/api/inspections/{iid}/wall", json={"wall_id": None}).json()["wall_ids"] == []
    assert _wall_inspection(bureau, wall_id) is None
    findings = f"/api/inspections/{iid}/findings"
    cases: tuple[tuple[dict[str, str], dict[str, Any] | None, int, str], ...] = (
        ({"verdict": "normal"}, {"snapshot": ("a.png", PNG, "image/png")}, 422, "PNG"),
        ({"verdict": "normal"}, {"snapshot": ("a.jpg", b"", "image/jpeg")}, 422, "empty"),
        ({"verdict": "normal"}, {"snapshot": ("a.jpg", b"GIF89a....", "image/jpeg")}, 422, "not a JPEG"),
        (
            {"verdict": "normal"},
            {"snapshot": ("a.jpg", JPEG + b"x" * (5 * 1024 * 1024), "image/jpeg")},
            413,
            "larger than 5 MiB",
        ),
        ({"verdict": "maybe"}, None, 422, "verdict"),
        ({"verdict": "normal", "camera_code": "S21-GATE"}, None, 422, "not a camera of the inspected school"),
        ({"verdict": "normal", "thumbnail": "true"}, None, 422, "needs a camera_code"),
        ({"verdict": "normal", "camera_code": "S11-GATE", "thumbnail": "true"}, None, 422, "no thumbnail"),
        ({"verdict": "normal", "open_hazard": "true"}, None, 422, "only an abnormal finding"),
        (
            {"verdict": "abnormal", "open_hazard": "true", "hazard_deadline": "2026-12-05T10:00"},
            None,
            422,
            "UTC offset",
        ),
        ({"verdict": "normal", "mood": "good"}, None, 422, "mood"),
        (
            {"verdict": "normal", "thumbnail": "true", "camera_code": "S11-GATE"},
            {"snapshot": ("a.jpg", JPEG, "image/jpeg")},
            422,
            "not both",
        ),
    )
    for data, files, code, expected in cases:
        response = api.post(findings, data=data, files=files)
        assert response.status_code == code and expected in response.text, (data, response.text)
    assert api.get(f"/api/inspections/{iid}").json()["finding_count"] == 0  # nothing was kept
    no_findings = api.post(f"/api/inspections/{iid}/sign", json={"signed_name": "Wang"})
    assert no_findings.status_code == 422 and "no findings" in no_findings.json()["detail"]
    assert api.post(f"/api/inspections/{iid}/sign", json={"signed_name": ""}).status_code == 422
    assert api.post(f"/api/inspections/{iid}/sign", json={}).status_code == 422
    assert api.get("/api/inspections/999").status_code == 404
    assert api.get(f"/api/inspections/{iid}/findings/999/snapshot.jpg").status_code == 404
    open_check = api.get(f"/api/inspections/{iid}/verify").json()
    assert open_check["signed"] is False and open_check["ok"] is False


def test_a_past_period_can_be_drawn_and_draws_are_listed_newest_first(api: TestClient, bureau: Bureau) -> None:
    quota = _quota(api, name="daily", min_count=1, max_count=1)
    login(api, "inspector")
    url = f"/api/spot-checks/quotas/{quota['id']}/draws"
    yesterday = api.post(url, json={"period_start": "2026-11-30"})
    today = api.post(url, json={})
    assert yesterday.status_code == 201 and today.status_code == 201
    listed = api.get("/api/spot-checks/draws").json()["items"]
    assert [d["period_start"] for d in listed] == ["2026-12-01", "2026-11-30"]
    first = api.get("/api/spot-checks/draws", params={"limit": 1}).json()
    assert first["total"] == 2 and [d["period_start"] for d in first["items"]] == ["2026-12-01"]
    second = api.get("/api/spot-checks/draws", params={"limit": 1, "offset": 1}).json()
    assert (second["offset"], second["limit"]) == (1, 1)
    assert [d["period_start"] for d in second["items"]] == ["2026-11-30"]
    assert api.get("/api/spot-checks/draws", params={"offset": -1}).status_code == 422
    assert all(api.get(f"/api/spot-checks/draws/{d['id']}/verify").json()["ok"] for d in listed)
    assert listed[0]["seed"] != listed[1]["seed"]  # each period its own seed
    assert datetime.fromisoformat(listed[0]["drawn_at"]) - datetime(2026, 12, 1, 2, tzinfo=UTC) < timedelta(
        seconds=1
    )


def test_no_response_shows_a_quota_seed_and_a_draw_shows_only_its_own_period_seed(
    api: TestClient, bureau: Bureau
) -> None:
    secret = "314159265358979"
    quota = _quota(api, name="daily", seed=int(secret))
    quota_id = quota["id"]
    responses = [
        api.get("/api/spot-checks/quotas"),
        api.get(f"/api/spot-checks/quotas/{quota_id}"),
        api.patch(f"/api/spot-checks/quotas/{quota_id}", json={"exclude_days": 3}),
    ]
    assert all(r.status_code == 200 for r in responses)
    for body in [quota, responses[0].json()[0], responses[1].json(), responses[2].json()]:
        assert "seed" not in body, body
    assert all(secret not in r.text for r in responses)
    seeds = []
    login(api, "inspector")
    for day in ("2026-11-29", "2026-11-30", "2026-12-01"):
        drawn = api.post(f"/api/spot-checks/quotas/{quota_id}/draws", json={"period_start": day})
        assert drawn.status_code == 201 and secret not in drawn.text
        seeds.append(int(drawn.json()["seed"]))
        assert seeds[-1] == period_seed(int(secret), quota_id, date.fromisoformat(day))
        assert api.get(f"/api/spot-checks/draws/{drawn.json()['id']}/verify").json()["ok"] is True
    assert len(set(seeds)) == 3
    # A shown seed is no key to the next period: only the secret one derives it.
    assert period_seed(seeds[1], quota_id, date(2026, 12, 1)) != seeds[2]
    assert secret not in api.get("/api/spot-checks/draws").text
    login(api, "admin")
    assert api.patch(f"/api/spot-checks/quotas/{quota_id}", json={"seed": 1}).status_code == 422  # fixed


def test_a_concurrent_second_start_of_a_drawn_school_answers_the_specific_409(
    api: TestClient, bureau: Bureau, monkeypatch: pytest.MonkeyPatch
) -> None:
    quota = _quota(api)
    draw = _draw(api, quota["id"])
    school = draw["schools"][0]["code"]
    checked = inspections._inspection_of_draw
    racer: list[int] = []

    def start_in_between(session: Session, draw_id: int, school_id: int) -> int | None:
        """The check finds nothing, then the leader's start of the same school commits first."""
        if racer:
            return checked(session, draw_id, school_id)
        with session_scope(bureau.factory) as other:
            started = Inspection(
                school_id=school_id,
                draw_id=draw_id,
                method=InspectionMethod.RANDOM,
                inspector_id=bureau.users["leader1"],
                status=InspectionStatus.OPEN,
                started_at=datetime(2026, 12, 1, 2, tzinfo=UTC),
            )
            other.add(started)
            other.flush()
            racer.append(started.id)
        return None

    monkeypatch.setattr(inspections, "_inspection_of_draw", start_in_between)
    late = api.post("/api/inspections", json={"school_code": school, "draw_id": draw["id"]})
    assert late.status_code == 409, late.text
    assert late.json()["detail"] == f"school {school} of draw {draw['id']} has inspection {racer[0]} already"
    listed = api.get("/api/inspections", params={"draw": draw["id"]}).json()
    assert [i["id"] for i in listed["items"]] == racer and listed["items"][0]["inspector"] == _ref(
        bureau, "leader1"
    )
    again = api.post("/api/inspections", json={"school_code": school, "draw_id": draw["id"]})  # the plain check
    assert again.status_code == 409 and again.json()["detail"] == late.json()["detail"]
