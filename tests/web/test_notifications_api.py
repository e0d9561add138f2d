"""The notifications API: the outbox with filters and pages, a message's delivery log, test messages — and who
may read or send them."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from config import Settings, load_settings
from kernel.bus import InMemoryBus
from patrol.notify import NotifyWorker, WebhookReceiver, make_channels
from tests.bureau import Bureau, ManualClock, login
from tests.patrol.notify.helpers import SECRET, ZONE, event_id_of, prepare, stored_event
from tests.servers import free_port
from web.audit import AuditEntry

HOOK_PORT = free_port()


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET, port=HOOK_PORT) as receiver:
        yield receiver


@pytest.fixture
def settings(tmp_path: Path, hook: WebhookReceiver) -> Settings:
    """The app's settings: a webhook channel to the receiver, a disabled one and one that nothing listens on."""
    channels = [
        {"type": "webhook", "name": "hook", "url": hook.url, "secret": SECRET},
        {"type": "webhook", "name": "off", "url": hook.url, "secret": SECRET, "enabled": False},
        {"type": "webhook", "name": "gone", "url": f"http://127.0.0.1:{free_port()}/", "secret": SECRET},
    ]
    return load_settings(None, data_dir=tmp_path / "data", notify={"channels": channels})


def _notified(bureau: Bureau, bus: InMemoryBus, clock: ManualClock, settings: Settings, count: int) -> list[int]:
    """``count`` events routed and dispatched (the gone channel fails each); their ids."""
    prepare(bureau, clock)
    worker = NotifyWorker(
        settings.notify,
        bureau.factory,
        bus,
        make_channels(settings.notify.channels),
        zone=ZONE,
        clock=clock,
        rng=random.Random(3),
    )
    worker.subscribe()
    cameras = ["S11-GATE", "S12-GATE", "S13-GATE", "S21-GATE", "S22-GATE"][:count]
    events = [stored_event(bureau, clock.now, camera=c) for c in cameras]
    for event in events:
        bus.publish(event)
    worker.route_pending()
    worker.dispatcher.run_once(limit=50)
    return [event_id_of(e) for e in events]


def test_the_outbox_with_filters_and_pages(
    api: TestClient, bureau: Bureau, bus: InMemoryBus, clock: ManualClock, settings: Settings
) -> None:
    event_ids = _notified(bureau, bus, clock, settings, 3)
    login(api, "officer1")
    page = api.get("/api/notifications").json()
    assert page["total"] == 6 and len(page["items"]) == 6  # 3 events x 2 enabled channels
    first = page["items"][0]
    assert {r["username"] for r in first["recipients"]} == {"officer1", "officer2"}
    assert first["steps"] == ["first"] and first["kind"] == "single"
    sent = api.get("/api/notifications", params={"status": "sent"}).json()
    assert sent["total"] == 3 and {m["channel"] for m in sent["items"]} == {"hook"}
    failed = api.get("/api/notifications", params={"channel": "gone"}).json()["items"]
    assert {m["status"] for m in failed} == {"failed"}
    assert all("could not be reached" in m["last_error"] for m in failed)
    one = api.get("/api/notifications", params={"event_id": event_ids[1]}).json()
    assert one["total"] == 2 and all(m["event_ids"] == [event_ids[1]] for m in one["items"])
    second_page = api.get("/api/notifications", params={"limit": 4, "offset": 4}).json()
    assert second_page["total"] == 6 and len(second_page["items"]) == 2
    assert api.get("/api/notifications", params={"status": "lost"}).status_code == 422
    assert api.get("/api/notifications", params={"since": "2026-12-01T00:00:00"}).status_code == 422


def test_a_messages_delivery_log(
    api: TestClient, bureau: Bureau, bus: InMemoryBus, clock: ManualClock, settings: Settings
) -> None:
    _notified(bureau, bus, clock, settings, 1)
    login(api, "auditor")
    failed = api.get("/api/notifications", params={"channel": "gone"}).json()["items"][0]
    (attempt,) = api.get(f"/api/notifications/{failed['id']}/attempts").json()
    assert attempt["attempt"] == 1 and attempt["ok"] is False and attempt["status_code"] is None
    assert "could not be reached" in attempt["error"]
    sent = api.get("/api/notifications", params={"channel": "hook"}).json()["items"][0]
    (ok,) = api.get(f"/api/notifications/{sent['id']}/attempts").json()
    assert ok["ok"] is True and ok["status_code"] == 200
    assert api.get("/api/notifications/no-such-id/attempts").status_code == 404


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("officer1", 200),
        ("leader1", 200),
        ("admin", 200),
        ("auditor", 200),
        ("inspector", 403),
        ("school11", 403),
        ("officer_d1", 403),
    ],
)
def test_who_may_read_the_outbox(api: TestClient, name: str, code: int) -> None:
    login(api, name)
    assert api.get("/api/notifications").status_code == code
    assert api.get("/api/notifications/x/attempts").status_code == (404 if code == 200 else 403)


def test_reading_needs_a_login(api: TestClient) -> None:
    assert api.get("/api/notifications").status_code == 401


def test_an_admin_sends_a_test_message(
    api: TestClient, bureau: Bureau, hook: WebhookReceiver, clock: ManualClock
) -> None:
    login(api, "admin")
    response = api.post("/api/notifications/test", json={"channel": "hook", "text": "hello duty room"})
    assert response.status_code == 201, response.text
    (message,) = response.json()
    assert message["status"] == "sent" and message["kind"] == "test" and message["steps"] == ["test"]
    (hit,) = hook.accepted()
    assert hit.body["text"].startswith("Test message from Admin\nhello duty room")
    assert hit.message_id == message["id"]
    failed = api.post("/api/notifications/test", json={"channel": "gone", "to": ["officer1"]}).json()[0]
    assert failed["status"] == "failed" and "could not be reached" in failed["last_error"]
    assert [r["username"] for r in failed["recipients"]] == ["officer1"]
    with bureau.factory() as session:
        audits = list(session.scalars(select(AuditEntry).where(AuditEntry.target.like("notify channel %"))))
    assert [a.target for a in audits] == ["notify channel hook", "notify channel gone"]


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        ({"channel": "nope"}, 404, "no channel 'nope'"),
        ({"channel": "off"}, 409, "disabled"),
        ({"channel": "hook", "to": ["ghost"]}, 404, "no user ghost"),
        ({"channel": ""}, 422, ""),
    ],
)
def test_bad_test_messages(api: TestClient, body: dict[str, object], code: int, text: str) -> None:
    login(api, "admin")
    response = api.post("/api/notifications/test", json=body)
    assert response.status_code == code
    assert text in response.text


@pytest.mark.parametrize("name", ["officer1", "leader1", "auditor", "school11"])
def test_only_admins_send_test_messages(api: TestClient, hook: WebhookReceiver, name: str) -> None:
    login(api, name)
    assert api.post("/api/notifications/test", json={"channel": "hook"}).status_code == 403
    assert hook.received() == []


def test_a_test_message_needs_the_csrf_header(api: TestClient, hook: WebhookReceiver) -> None:
    login(api, "admin")
    api.headers.pop("X-CSRF-Token")
    assert api.post("/api/notifications/test", json={"channel": "hook"}).status_code == 403
    assert hook.received() == []
