"""What waits in the outbox (SQLite and PostgreSQL): major alarms are never held in a storm summary, and an
escalation whose event was acknowledged while it waited is not sent — its message ends dead saying why, or a
summary goes out without it."""

from __future__ import annotations

from sqlalchemy import event as sa_event
from sqlalchemy import select, update

from config.notify import StormConfig
from kernel.bus import InMemoryBus
from patrol.notify import WebhookReceiver
from patrol.tables import DeliveryAttempt, MessageKind, MessageStatus, NotifyStep, OutboxMessage
from tests.bureau import Bureau, ManualClock
from tests.patrol.notify.helpers import (
    acknowledge_on_console,
    event_id_of,
    items,
    messages,
    notify_config,
    stored_event,
    webhook,
    worker,
)


def test_past_the_threshold_a_major_alarm_goes_out_at_once_and_a_general_one_joins_the_summary(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    storm = StormConfig(window_s=60, threshold=3, max_lines=5)  # immediate_severities: ("major",), the default
    notifier = worker(duty, bus, clock, notify_config(webhook(hook.url), storm=storm))
    plan = [
        ("S11-GATE", "major"),
        ("S11-DORM", "major"),
        ("S11-CORR", "general"),  # the third in the window: still its own message
        ("S11-YARD", "general"),  # the majors counted towards the threshold: summed up
        ("S12-GATE", "major"),  # past the threshold, but major: its own message, at once
        ("S12-DORM", "general"),  # joins the summary
    ]
    for camera, severity in plan:
        clock.advance(seconds=1)
        bus.publish(stored_event(duty, clock.now, camera=camera, severity=severity))
        assert notifier.route_pending() == 1
    by_camera = {i.camera_code: i.message_id for i in items(duty)}
    kinds = {m.id: m.kind for m in messages(duty)}
    assert kinds[by_camera["S12-GATE"]] is MessageKind.SINGLE
    assert by_camera["S11-YARD"] == by_camera["S12-DORM"] and kinds[by_camera["S11-YARD"]] is MessageKind.SUMMARY
    assert notifier.dispatcher.run_once() == 4  # the next run sends the major one with the first three
    sent = [r.body for r in hook.accepted()]
    assert [b["items"][0]["camera_code"] for b in sent] == ["S11-GATE", "S11-DORM", "S11-CORR", "S12-GATE"]
    assert sent[-1]["kind"] == "single" and sent[-1]["title"] == "major intrusion at 第12中学 S12-GATE"
    assert notifier.dispatcher.run_once() == 0  # the summary waits for its window's end
    clock.advance(seconds=60)
    assert notifier.dispatcher.run_once() == 1
    summary = hook.accepted()[-1].body
    assert summary["kind"] == "summary"
    assert [i["camera_code"] for i in summary["items"]] == ["S11-YARD", "S12-DORM"]


def test_an_escalation_of_an_event_acknowledged_meanwhile_is_not_sent_and_says_why(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    notifier = worker(duty, bus, clock, notify_config(webhook(hook.url)))
    event = stored_event(duty, clock.now)
    bus.publish(event)
    notifier.route_pending()
    assert notifier.dispatcher.run_once() == 1
    clock.advance(minutes=5)
    assert notifier.check_escalations() == 1  # queued for the leader...
    acknowledge_on_console(duty, event_id_of(event), clock)  # ...and acknowledged before it went out
    clock.advance(seconds=1)
    assert notifier.dispatcher.run_once() == 0
    assert len(hook.received()) == 1  # only the first notice: no request for the escalation
    (message,) = [m for m in messages(duty) if m.recipients == [duty.users["leader1"]]]
    reason = f"not sent: event {event_id_of(event)} was acknowledged before the escalation went out"
    assert message.status is MessageStatus.DEAD
    assert message.last_error == reason
    assert message.sent_at is None and message.next_attempt_at is None
    with duty.factory() as session:
        log = list(session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.message_id == message.id)))
    assert [(a.attempt, a.ok, a.status_code, a.error) for a in log] == [(1, False, None, reason)]
    assert notifier.dispatcher.run_once() == 0  # final: never tried again
    assert len(hook.received()) == 1


def test_a_summary_sends_only_the_escalations_still_unacknowledged(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    storm = StormConfig(window_s=60, threshold=1, max_lines=5)
    notifier = worker(duty, bus, clock, notify_config(webhook(hook.url), storm=storm))
    acked, ignored = (
        stored_event(duty, clock.now, camera=c, severity="general") for c in ("S11-GATE", "S12-GATE")
    )
    for event in (acked, ignored):
        bus.publish(event)
    notifier.route_pending()
    assert notifier.dispatcher.run_once() == 1
    clock.advance(seconds=60)
    assert notifier.dispatcher.run_once() == 1  # the second first notice, summed up
    clock.advance(minutes=4)
    # A new event now fills the window, so the two escalations due next are summed up together.
    bus.publish(stored_event(duty, clock.now, camera="S13-GATE", severity="general"))
    notifier.route_pending()
    assert notifier.check_escalations() == 2
    (summary,) = [m for m in messages(duty) if m.kind is MessageKind.SUMMARY and m.status is MessageStatus.PENDING]
    assert summary.item_count == 2
    assert notifier.dispatcher.run_once() == 1  # the new event's first notice; the summary is held
    acknowledge_on_console(duty, event_id_of(acked), clock)
    clock.advance(seconds=60)
    assert notifier.dispatcher.run_once() == 1
    body = hook.accepted()[-1].body
    assert body["kind"] == "summary" and body["title"] == "1 more alarm within 60 s"
    assert [(i["event_id"], i["step"]) for i in body["items"]] == [(event_id_of(ignored), "escalation")]
    assert "S11" not in body["text"]
    assert [r["user_id"] for r in body["recipients"]] == [duty.users["leader1"]]
    with duty.factory() as session:
        (attempt,) = session.scalars(select(DeliveryAttempt).where(DeliveryAttempt.message_id == summary.id))
    assert (
        attempt.ok
        and attempt.error == f"escalation left out: event {event_id_of(acked)} was acknowledged meanwhile"
    )
    assert {i.step for i in items(duty) if i.message_id == summary.id} == {NotifyStep.ESCALATION}
    assert len(hook.accepted()) == 4


def test_an_item_never_joins_a_summary_a_dispatcher_claimed_meanwhile(
    duty: Bureau, bus: InMemoryBus, clock: ManualClock, hook: WebhookReceiver
) -> None:
    notifier = worker(duty, bus, clock, notify_config(webhook(hook.url)))
    for camera in ("S11-GATE", "S11-DORM", "S11-CORR", "S11-YARD"):  # three singles, then a summary
        clock.advance(seconds=1)
        bus.publish(stored_event(duty, clock.now, camera=camera, severity="general"))
        notifier.route_pending()
    (summary,) = [m for m in messages(duty) if m.kind is MessageKind.SUMMARY]
    engine = duty.factory.kw["bind"]
    # A dispatcher claims the summary just as the next item is being placed: on SQLite after the router read it
    # (its join must then fail and start a new summary), on PostgreSQL before (the router's FOR UPDATE would wait).
    moment = "UPDATE notify_outbox SET" if engine.dialect.name == "sqlite" else "FOR UPDATE"
    claimed: list[str] = []

    def claim_now(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if moment in statement and not claimed:
            claimed.append(statement)
            with engine.connect() as other:
                other.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == summary.id)
                    .values(status=MessageStatus.SENDING, claimed_by="other-dispatcher", claimed_until=clock.now)
                )
                other.commit()

    sa_event.listen(engine, "before_cursor_execute", claim_now)
    try:
        clock.advance(seconds=1)
        bus.publish(stored_event(duty, clock.now, camera="S12-GATE", severity="general"))
        assert notifier.route_pending() == 1
    finally:
        sa_event.remove(engine, "before_cursor_execute", claim_now)
    assert claimed, "the claim ran while the item was placed"
    late = next(i for i in items(duty) if i.camera_code == "S12-GATE")
    assert late.message_id != summary.id, "the item joined a summary already being sent"
    rows = {m.id: m for m in messages(duty)}
    assert rows[summary.id].item_count == 1
    assert rows[late.message_id].kind is MessageKind.SUMMARY and rows[late.message_id].item_count == 1
