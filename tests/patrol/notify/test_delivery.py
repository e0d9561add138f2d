"""The outbox end to end against real receivers (SQLite and PostgreSQL): nothing lost, nothing sent twice to the
same receiver for the same event — when the bus hands an event out again, when a receiver fails or hangs, when
a dispatcher dies mid-way, and with two dispatchers at once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from config.notify import EmailChannelConfig, SmsChannelConfig
from kernel.bus import Delivery, Event, InMemoryBus
from patrol.notify import Dispatcher, WebhookReceiver, make_channels
from patrol.notify.outbox import claim
from patrol.tables import DeliveryAttempt, MessageStatus
from tests.bureau import Bureau, ManualClock
from tests.patrol.notify.helpers import (
    ZONE,
    items,
    messages,
    notify_config,
    status_counts,
    stored_event,
    user_ids,
    webhook,
    worker,
)
from tests.patrol.notify.receivers import (
    HttpReceiver,
    SmtpServer,
    failing_then_ok,
    self_signed,
    sleeping,
    sms_gateway,
)


def test_an_event_reaches_the_officers_on_every_channel_once(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver, tmp_path: Path
) -> None:
    gateway = HttpReceiver(sms_gateway("gw-token")).start()
    cert, key = self_signed(tmp_path)
    try:
        with SmtpServer(cert, key, user="duty", password="mail-pw") as smtp:
            config = notify_config(
                webhook(hook.url),
                SmsChannelConfig(name="sms", url=f"{gateway.base}/send", token=SecretStr("gw-token")),
                EmailChannelConfig(
                    name="mail",
                    host="127.0.0.1",
                    port=smtp.port,
                    username="duty",
                    password=SecretStr("mail-pw"),
                    sender="cw@bureau.example",
                    ca_file=cert,
                ),
            )
            notifier = worker(duty, bus, clock, config)
            event = stored_event(duty, clock.now)
            bus.publish(event)
            assert notifier.route_pending() == 5  # webhook (one, naming both), an SMS and a mail each
            # The bus hands it out again (a consumer that died before its ack), and a producer re-publishes the
            # same event under a new bus id: the outbox keys make both no-ops.
            again = Delivery("events", "notify", "x-1", 2, event)
            assert notifier.route_one(again) == 0
            bus.publish(
                Event(topic="events", type=event.type, time=event.time, source="test", payload=event.payload)
            )
            assert notifier.route_pending() == 0
            assert notifier.dispatcher.run_once() == 5
            assert notifier.dispatcher.run_once() == 0
            mails = [mail for _, mail in smtp.box.mails]
        sms = gateway.recorded()
    finally:
        gateway.stop()
    accepted = hook.accepted()
    assert len(accepted) == 1 and not [r for r in hook.received() if r.duplicate]
    body = accepted[0].body
    assert body["title"] == "major intrusion at 第11中学 S11-GATE"
    assert sorted(r["user_id"] for r in body["recipients"]) == user_ids(duty, "officer1", "officer2")
    assert body["items"][0]["event_id"] == event.payload["event_id"]
    assert sorted(h.json()["phone"] for h in sms) == ["13800000001", "13800000002"]
    assert sorted(m["To"] for m in mails) == ["officer1@bureau.example", "officer2@bureau.example"]
    assert status_counts(duty) == {"sent": 5}
    with duty.factory() as session:
        attempts = list(session.scalars(select(DeliveryAttempt)))
    assert len(attempts) == 5 and all(a.ok and a.duration_ms >= 0 for a in attempts)


def test_a_failing_receiver_is_retried_with_backoff_until_it_recovers(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock
) -> None:
    flaky = HttpReceiver(failing_then_ok(2)).start()
    try:
        notifier = worker(duty, bus, clock, notify_config(webhook(f"{flaky.base}/hook")))
        bus.publish(stored_event(duty, clock.now))
        notifier.route_pending()
        assert notifier.dispatcher.run_once() == 0
        (message,) = messages(duty)
        assert message.status is MessageStatus.FAILED and message.attempts == 1
        assert "HTTP 500" in message.last_error
        assert message.next_attempt_at is not None
        assert (message.next_attempt_at - clock.now).total_seconds() == pytest.approx(10)
        assert notifier.dispatcher.run_once() == 0  # not due yet: nothing is sent
        assert len(flaky.recorded()) == 1
        clock.advance(seconds=10)
        assert notifier.dispatcher.run_once() == 0
        (message,) = messages(duty)
        assert message.next_attempt_at is not None
        assert (message.next_attempt_at - clock.now).total_seconds() == pytest.approx(20)  # doubled
        clock.advance(seconds=20)
        assert notifier.dispatcher.run_once() == 1
        assert len(flaky.recorded()) == 3
    finally:
        flaky.stop()
    (message,) = messages(duty)
    assert message.status is MessageStatus.SENT and message.attempts == 3 and message.last_error == ""
    with duty.factory() as session:
        log = list(session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.attempt)))
    assert [(a.attempt, a.ok, a.status_code) for a in log] == [(1, False, 500), (2, False, 500), (3, True, 200)]


def test_a_hanging_receiver_ends_dead_with_its_reason_logged(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock
) -> None:
    slow = HttpReceiver(sleeping(0.8)).start()
    try:
        config = notify_config(webhook(f"{slow.base}/hook", timeout_s=0.2))
        notifier = worker(duty, bus, clock, config)
        bus.publish(stored_event(duty, clock.now))
        notifier.route_pending()
        for _ in range(config.retry.max_attempts):
            notifier.dispatcher.run_once()
            clock.advance(seconds=61)
        assert notifier.dispatcher.run_once() == 0
    finally:
        slow.stop()
    (message,) = messages(duty)
    assert message.status is MessageStatus.DEAD and message.attempts == 4 and message.next_attempt_at is None
    assert message.last_error.startswith("dead after 4 attempts:")
    assert "did not answer within 0.2 s" in message.last_error
    with duty.factory() as session:
        log = list(session.scalars(select(DeliveryAttempt)))
    assert len(log) == 4 and all(not a.ok and "did not answer" in a.error for a in log)


def test_a_dispatcher_that_dies_mid_way_loses_nothing_and_sends_nothing_twice(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    config = notify_config(webhook(hook.url))
    notifier = worker(duty, bus, clock, config)
    for camera in ("S11-GATE", "S12-GATE", "S13-GATE"):
        bus.publish(stored_event(duty, clock.now, camera=camera))
    assert notifier.route_pending() == 3
    # The first dispatcher sends one message and stops; a second one carries on.
    assert notifier.dispatcher.run_once(limit=1) == 1
    # A third claims the rest and dies before sending (its claim committed, nothing sent).
    with duty.factory() as session:
        taken = claim(session, now=clock.now, worker="crashed", limit=10, lease_s=30, max_attempts=4)
    assert len(taken) == 2
    channels = make_channels(config.channels)
    restarted = Dispatcher(duty.factory, config, channels, zone=ZONE, name="restarted", clock=clock)
    assert restarted.run_once() == 0  # still leased to the dead one
    clock.advance(seconds=31)
    assert restarted.run_once() == 2
    assert restarted.run_once() == 0
    assert len(hook.accepted()) == 3 and len(hook.received()) == 3
    assert {r.body["items"][0]["camera_code"] for r in hook.accepted()} == {"S11-GATE", "S12-GATE", "S13-GATE"}
    assert status_counts(duty) == {"sent": 3}
    with duty.factory() as session:
        lapsed = list(session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.ok.is_(False))))
    assert len(lapsed) == 2 and all("dispatcher crashed stopped before reporting" in a.error for a in lapsed)


def test_two_dispatchers_at_once_never_send_the_same_message(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    config = notify_config(webhook(hook.url), storm={"threshold": 100})
    notifier = worker(duty, bus, clock, config)
    cameras = [f"S{d}{s}-{k}" for d in (1, 2) for s in (1, 2, 3) for k in ("GATE", "DORM", "CORR")]
    for camera in cameras:
        bus.publish(stored_event(duty, clock.now, camera=camera))
    assert notifier.route_pending() == len(cameras)
    channels = make_channels(config.channels)
    pair = [Dispatcher(duty.factory, config, channels, zone=ZONE, name=f"d{n}", clock=clock) for n in (1, 2)]
    for dispatcher in pair:
        dispatcher.open()
    sent = [0, 0]

    def drain(n: int) -> None:
        while (count := pair[n].run_once(limit=3)) > 0:
            sent[n] += count

    threads = [threading.Thread(target=drain, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for dispatcher in pair:
        dispatcher.close()
    assert sum(sent) == len(cameras)
    assert len(hook.received()) == len(cameras) and len(hook.accepted()) == len(cameras)
    assert status_counts(duty) == {"sent": len(cameras)}


def test_a_person_without_the_contact_gets_a_dead_message_saying_so(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock
) -> None:
    from sqlalchemy import update

    from web.models import User

    with duty.factory() as session:
        session.execute(update(User).where(User.username == "officer2").values(phone=""))
        session.commit()
    gateway = HttpReceiver(sms_gateway("gw-token")).start()
    try:
        config = notify_config(
            SmsChannelConfig(name="sms", url=f"{gateway.base}/send", token=SecretStr("gw-token"))
        )
        notifier = worker(duty, bus, clock, config)
        bus.publish(stored_event(duty, clock.now))
        assert notifier.route_pending() == 2
        assert notifier.dispatcher.run_once() == 1
    finally:
        gateway.stop()
    by_status = {m.status: m for m in messages(duty)}
    assert by_status[MessageStatus.DEAD].last_error == "not sendable: Officer2 has no phone"
    assert by_status[MessageStatus.SENT].recipients == [duty.users["officer1"]]
    assert len(items(duty)) == 2
