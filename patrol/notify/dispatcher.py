"""The notifier's workers: routing bus events into the outbox, and dispatching the outbox to the channels.

:class:`Dispatcher` claims due messages (:func:`patrol.notify.outbox.claim`), renders and sends each on its
channel in a small pool of sender threads (a receiver that hangs holds up one sender for its timeout, not the
others), and records the outcome. At send time it leaves out the escalations of events acknowledged while they
waited (held in a storm summary or for a retry); a message left with nothing is not sent but ends dead, its
attempt and ``last_error`` saying why. Several dispatchers (processes) may share one PostgreSQL database.

:class:`NotifyWorker` owns two threads: ``notify-route`` reads topics ``events`` and ``duty`` (consumer group
``notify``) and checks the escalations due; ``notify-send`` runs the dispatcher. Both loop
``while not stop.wait(poll_s)``; :meth:`NotifyWorker.stop` joins them in reverse start order.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from config.notify import CLAIM_ROUNDS_PER_SENDER, NotifyConfig
from kernel.announce import take_announced
from kernel.bus import Consumer, Delivery, EventBus
from kernel.clock import utcnow
from kernel.errors import KernelError
from patrol.notify.base import Channel, Outgoing
from patrol.notify.errors import ChannelError, NotifyError
from patrol.notify.outbox import Outcome, claim, finish, recipients_of
from patrol.notify.routing import Router, acknowledged
from patrol.notify.storm import render
from patrol.tables import NotifyStep, OutboxItem, OutboxMessage
from patrol.topics import ANALYTICS_EVENTS_TOPIC, DUTY_TOPIC

log = logging.getLogger(__name__)
CONSUMER_GROUP = "notify"
CLAIM_ROUNDS = CLAIM_ROUNDS_PER_SENDER
RECLAIM_EVERY_S = 30.0
"""How often bus events left pending by a failed routing (or a dead notifier) are taken back."""


class Dispatcher:
    """Sends the outbox's due messages (see the module docstring)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        config: NotifyConfig,
        channels: Mapping[str, Channel[Any]],
        *,
        zone: ZoneInfo,
        name: str = "notify",
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._factory = session_factory
        self._config = config
        self._channels = dict(channels)
        self._zone = zone
        self.name = name
        # What claims carry: unique per dispatcher, so two processes started with one name never take each
        # other's claims for their own.
        self.worker_id = f"{name}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not cryptography)
        self._pool: ThreadPoolExecutor | None = None

    def open(self) -> None:
        """Start the sender pool (else :meth:`run_once` sends one message after the other)."""
        if self._pool is None and self._config.senders > 1:
            self._pool = ThreadPoolExecutor(self._config.senders, thread_name_prefix=f"{self.name}-send")

    def close(self) -> None:
        """Wait for the sends under way, then stop the sender pool."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def run_once(self, *, limit: int | None = None) -> int:
        """Claim the due messages and send them; how many were sent successfully."""
        with self._factory() as session:
            ids = claim(
                session,
                now=self._clock(),
                worker=self.worker_id,
                # Up to CLAIM_ROUNDS messages a sender; NotifyConfig checks they all fit inside the lease.
                limit=limit or self._config.senders * CLAIM_ROUNDS,
                lease_s=self._config.lease_s,
                max_attempts=self._config.retry.max_attempts,
            )
        if not ids:
            return 0
        if self._pool is None:
            return sum(self.deliver(mid) for mid in ids)
        return sum(self._pool.map(self.deliver, ids))

    def send_now(self, message_id: str) -> bool:
        """Claim and send one message at once (the API's test message); whether it was sent."""
        with self._factory() as session:
            ids = claim(
                session,
                now=self._clock(),
                worker=self.worker_id,
                limit=1,
                lease_s=self._config.lease_s,
                max_attempts=self._config.retry.max_attempts,
                message_id=message_id,
            )
        return bool(ids) and self.deliver(ids[0])

    def render(
        self, session: Session, message: OutboxMessage, items: Sequence[OutboxItem] | None = None
    ) -> Outgoing:
        """The message as its channel sends it (with ``items``: just those of its items)."""
        if items is None:
            items = list(session.scalars(select(OutboxItem).where(OutboxItem.message_id == message.id)))
        recipients = recipients_of(session, [int(i) for i in message.recipients])
        return render(
            message, items, recipients, zone=self._zone, config=self._config.storm, language=self._config.language
        )

    def deliver(self, message_id: str) -> bool:
        """Send one claimed message and record how it went; whether it was sent.

        Escalations of events acknowledged since they were queued (in a storm summary, or waiting for a retry)
        are left out; a message left with nothing ends dead without a send, the attempt saying why.
        """
        started = time.monotonic()
        try:
            with self._factory() as session:
                message = session.get(OutboxMessage, message_id)
                if message is None:
                    return False
                items = list(session.scalars(select(OutboxItem).where(OutboxItem.message_id == message.id)))
                settled = settled_escalations(session, items)
                kept = [i for i in items if i not in settled]
                outgoing = self.render(session, message, kept) if kept or not settled else None
                channel = self._channels.get(message.channel)
            if outgoing is None:
                outcome = Outcome(False, None, _not_sent(settled), _ms(started), final=True)
            else:
                if channel is None:
                    raise ChannelError(f"channel {outgoing.channel!r} is not configured (or disabled) any more")
                result = channel.send(outgoing)
                outcome = Outcome(True, result.status_code, _left_out(settled), _ms(started))
        except ChannelError as err:
            outcome = Outcome(False, err.status_code, str(err), _ms(started))
        except SQLAlchemyError as err:
            # The message stays claimed: it is sent again once its lease runs out.
            log.error("notification %s could not be read: %s", message_id, err)
            return False
        try:
            with self._factory() as session:
                status = finish(
                    session,
                    message_id,
                    worker=self.worker_id,
                    now=self._clock(),
                    outcome=outcome,
                    retry=self._config.retry,
                    rng=self._rng,
                )
        except SQLAlchemyError as err:
            log.error("the outcome of notification %s could not be stored (sent again later): %s", message_id, err)
            return False
        return outcome.ok and status is not None


def settled_escalations(session: Session, items: Sequence[OutboxItem]) -> list[OutboxItem]:
    """The escalation items whose event has been acknowledged (as :func:`~patrol.notify.routing.acknowledged`
    decides) since they were queued: the leader need not be told any more."""
    known: dict[int, bool] = {}
    settled = []
    for item in items:
        if item.step is not NotifyStep.ESCALATION or item.event_id is None:
            continue
        if item.event_id not in known:
            known[item.event_id] = acknowledged(session, item.event_id)
        if known[item.event_id]:
            settled.append(item)
    return settled


def _acknowledged(items: Sequence[OutboxItem]) -> str:
    ids = sorted({i.event_id for i in items if i.event_id is not None})
    if len(ids) == 1:
        return f"event {ids[0]} was acknowledged"
    return f"events {', '.join(str(i) for i in ids)} were acknowledged"


def _not_sent(settled: Sequence[OutboxItem]) -> str:
    return f"not sent: {_acknowledged(settled)} before the escalation went out"


def _left_out(settled: Sequence[OutboxItem]) -> str:
    return f"escalation left out: {_acknowledged(settled)} meanwhile" if settled else ""


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


class NotifyWorker:
    """Routes bus events and dispatches the outbox, in two threads (see the module docstring)."""

    def __init__(
        self,
        config: NotifyConfig,
        session_factory: sessionmaker[Session],
        bus: EventBus,
        channels: Mapping[str, Channel[Any]],
        *,
        zone: ZoneInfo,
        name: str = "notify",
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._config = config
        self._factory = session_factory
        self._bus = bus
        self._name = name
        self._clock = clock
        self.router = Router(config, channels, zone=zone)
        self.dispatcher = Dispatcher(session_factory, config, channels, zone=zone, name=name, clock=clock, rng=rng)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._consumers: list[Consumer] = []
        self._reclaimed_at: datetime | None = None

    def subscribe(self) -> None:
        """Join consumer group ``notify`` on topics ``events`` and ``duty`` (done by :meth:`start`)."""
        if not self._consumers:
            self._consumers = [
                self._bus.consumer(topic, CONSUMER_GROUP, self._name, from_start=False)
                for topic in (ANALYTICS_EVENTS_TOPIC, DUTY_TOPIC)
            ]

    def start(self) -> None:
        """Subscribe, then start the routing thread and the sending thread."""
        self.subscribe()
        self.dispatcher.open()
        for name, target in (("notify-route", self._route_loop), ("notify-send", self._send_loop)):
            thread = threading.Thread(target=target, name=name)
            thread.start()
            self._threads.append(thread)
        log.info("notifier started (every %.2f s)", self._config.poll_s)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the threads in reverse start order, the sender pool, then release the bus consumers."""
        self._stop.set()
        for thread in reversed(self._threads):
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("%s did not stop within %.1f s", thread.name, timeout_s)
        self._threads.clear()
        self.dispatcher.close()
        for consumer in self._consumers:
            consumer.close()
        self._consumers = []
        log.info("notifier stopped")

    def _route_loop(self) -> None:
        while not self._stop.wait(self._config.poll_s):
            try:
                self.route_pending()
                self.check_escalations()
            except Exception:  # the thread must outlive any one bad round: logged, tried again
                log.exception("notify routing failed")

    def _send_loop(self) -> None:
        while not self._stop.wait(self._config.poll_s):
            try:
                while self.dispatcher.run_once() and not self._stop.is_set():
                    pass  # more may be due right away: keep going until a round sends nothing
            except Exception:  # as above
                log.exception("notify dispatch failed")

    def route_pending(self) -> int:
        """Route the bus events waiting (each in its own transaction, acknowledged once stored); items added."""
        added = 0
        now = self._clock()
        reclaim = self._reclaimed_at is None or now - self._reclaimed_at >= timedelta(seconds=RECLAIM_EVERY_S)
        if reclaim:
            self._reclaimed_at = now
        for consumer in self._consumers:
            if consumer.closed:
                continue
            try:
                deliveries = consumer.fetch(max_count=200, block_s=0)
                if reclaim:
                    deliveries += consumer.reclaim(min_idle_s=RECLAIM_EVERY_S)
            except KernelError as err:
                log.error("could not read %s: %s", consumer.topic, err)
                continue
            done: list[Delivery] = []
            for delivery in deliveries:
                routed = self.route_one(delivery)
                if routed is not None:
                    added += routed
                    done.append(delivery)
            if done:
                try:
                    consumer.ack(*done)
                except KernelError as err:
                    # They come back: routing them again adds nothing (the outbox keys).
                    log.error("could not acknowledge %d events: %s", len(done), err)
        return added

    def route_one(self, delivery: Delivery) -> int | None:
        """Route one bus event in a transaction; items added, or None when it must stay pending (retried)."""
        for attempt in (1, 2):
            try:
                with self._factory() as session:
                    added = self.router.route(session, delivery.event, self._clock())
                    take_announced(session)  # the notifier announces nothing
                    session.commit()
                return added
            except IntegrityError as err:
                # Another notifier stored the same item a moment before: again, it is now found and skipped.
                if attempt == 2:
                    log.error("event %s could not be routed: %s", delivery.event.id, err.orig)
            except (SQLAlchemyError, NotifyError) as err:
                log.error("event %s not routed yet (it stays pending): %s", delivery.event.id, err)
                return None
        return None

    def check_escalations(self) -> int:
        """Escalate the unacknowledged events that are due; how many were escalated."""
        try:
            with self._factory() as session:
                escalated = self.router.escalate_due(session, self._clock())
                session.commit()
        except SQLAlchemyError as err:
            log.error("escalations not checked: %s", err)
            return 0
        return escalated
