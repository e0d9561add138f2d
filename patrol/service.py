"""The patrol service: the duty room's background work, in two worker threads.

``patrol-walls`` ticks every ``patrol.tick_s``: it takes analytics events from the bus (consumer group
``patrol-walls`` on topic ``events``) and drives the walls (:class:`~patrol.wall_runner.WallRunner`).
``patrol-schedule`` runs every ``patrol.schedule_every_s``: patrol-plan tasks ahead of their window, missed
tasks, overdue hazards, overdue incident clocks, the spot-check draws of the day or week, and the daily report.
Each job runs in its own transaction, and what it announced is published after its commit; a failing job is
logged and tried again at the next run without holding up the others.

Run one patrol service per deployment: it is the only writer of the walls' state (the demo runs it in-process,
a distributed deployment runs ``campuswatch patrol``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from config.schema import Settings
from kernel.announce import commit_and_publish
from kernel.bus import Consumer, Delivery, EventBus
from kernel.clock import utcnow
from kernel.errors import KernelError
from patrol import hazards, incidents, plans, reports, spot_checks
from patrol.errors import PatrolError
from patrol.facts import FleetFacts
from patrol.notify import NotifyWorker, make_channels
from patrol.topics import ANALYTICS_EVENTS_TOPIC
from patrol.wall_runner import WallRunner

log = logging.getLogger(__name__)

CONSUMER_GROUP = "patrol-walls"
RECLAIM_EVERY_S = 30.0
"""How often events left pending by a failed tick (or a dead service) are taken back."""

Job = Callable[[Session, datetime], object]


class PatrolService:
    """Starts, runs and stops the patrol's worker threads (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        bus: EventBus,
        facts: FleetFacts,
        *,
        name: str = "patrol",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._settings = settings
        self._config = settings.patrol
        self._factory = session_factory
        self._bus = bus
        self._facts = facts
        self._name = name
        self._clock = clock
        self._zone = ZoneInfo(settings.instance.timezone)
        self._calendar = plans.plan_calendar(settings.analytics.calendar, settings.instance.timezone)
        self.runner = WallRunner(facts, self._config, timezone=self._zone, clock=clock)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._consumer: Consumer | None = None
        self._reclaimed_at: datetime | None = None
        channels = make_channels(settings.notify.channels)
        # The notifier (duty-phone alerts) runs here when it is enabled and has a channel to send on.
        self.notifier: NotifyWorker | None = (
            NotifyWorker(
                settings.notify,
                session_factory,
                bus,
                channels,
                zone=self._zone,
                name=f"{name}-notify",
                clock=clock,
            )
            if settings.notify.enabled and channels
            else None
        )

    def start(self) -> None:
        """Start the wall thread, then the scheduler thread, then the notifier's threads (if configured)."""
        self._consumer = self._bus.consumer(ANALYTICS_EVENTS_TOPIC, CONSUMER_GROUP, self._name, from_start=False)
        for name, target in (("patrol-walls", self._walls_loop), ("patrol-schedule", self._schedule_loop)):
            thread = threading.Thread(target=target, name=name)
            thread.start()
            self._threads.append(thread)
        if self.notifier is not None:
            self.notifier.start()
        log.info(
            "patrol service started (walls every %.1f s, schedule every %.0f s)",
            self._config.tick_s,
            self._config.schedule_every_s,
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the threads in reverse start order (the notifier first), then release the bus consumer."""
        if self.notifier is not None:
            self.notifier.stop(timeout_s)
        self._stop.set()
        for thread in reversed(self._threads):
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("%s did not stop within %.1f s", thread.name, timeout_s)
        self._threads.clear()
        if self._consumer is not None:
            self._consumer.close()
        log.info("patrol service stopped")

    def _walls_loop(self) -> None:
        # The fetch waits for events until the next tick is due, so an alarm is raised and shown the moment its
        # event arrives rather than at the next tick; without events the walls tick every tick_s.
        next_tick = time.monotonic() + self._config.tick_s
        while not self._stop.is_set():
            try:
                deliveries = self._fetch(block_s=max(0.0, next_tick - time.monotonic()))
                if deliveries:
                    self._raise_alarms(deliveries)
                if deliveries or time.monotonic() >= next_tick:
                    self._tick()
                    next_tick = time.monotonic() + self._config.tick_s
            except Exception:  # the thread must outlive any one bad tick: logged, retried
                log.exception("wall tick failed")
                self.runner.reset()
                self._stop.wait(self._config.tick_s)

    def _schedule_loop(self) -> None:
        self.run_schedule()
        while not self._stop.wait(self._config.schedule_every_s):
            self.run_schedule()

    def tick_walls(self) -> int:
        """Alarms for the events waiting on the bus, then one wall tick; pages shown (0 when the tick failed)."""
        self._raise_alarms(self._fetch())
        return self._tick()

    def _tick(self) -> int:
        try:
            with self._factory() as session:
                shown = self.runner.tick(session)
                commit_and_publish(session, self._bus)
        except (SQLAlchemyError, PatrolError, KernelError) as err:
            # What the runner holds ran ahead of what was stored: it reads the walls again next tick.
            log.error("wall tick failed: %s", err)
            self.runner.reset()
            return 0
        return shown

    def _raise_alarms(self, deliveries: list[Delivery]) -> None:
        """Each event's alarms in a transaction of its own, acknowledged once stored. An event the database
        refuses for what it says (a unique or foreign key) is dropped, logged; one that fails for another
        reason (the database unreachable) stays pending and is reclaimed later: no alarm lost to an outage."""
        done: list[Delivery] = []
        for delivery in deliveries:
            try:
                with self._factory() as session:
                    self.runner.raise_alarms(session, delivery)
                    commit_and_publish(session, self._bus)
            except IntegrityError as err:
                log.error("event %s raised no alarm (refused by the database): %s", delivery.event.id, err.orig)
            except (SQLAlchemyError, PatrolError, KernelError) as err:
                log.error("event %s raised no alarm yet (it stays pending): %s", delivery.event.id, err)
                continue
            done.append(delivery)
        if done and self._consumer is not None:
            try:
                self._consumer.ack(*done)
            except KernelError as err:
                log.error(
                    "could not acknowledge %d events (they may raise their alarms again): %s", len(done), err
                )

    def _fetch(self, block_s: float = 0.0) -> list[Delivery]:
        consumer = self._consumer
        if consumer is None or consumer.closed:
            if block_s:
                self._stop.wait(block_s)
            return []
        try:
            deliveries = consumer.fetch(max_count=200, block_s=block_s)
            now = self._clock()
            if self._reclaimed_at is None or now - self._reclaimed_at >= timedelta(seconds=RECLAIM_EVERY_S):
                self._reclaimed_at = now
                deliveries += consumer.reclaim(min_idle_s=RECLAIM_EVERY_S)
        except KernelError as err:
            log.error("could not read analytics events: %s", err)
            if block_s:
                self._stop.wait(block_s)  # no busy loop while the bus is down
            return []
        too_old = now - timedelta(seconds=self._config.alarm_max_age_s)
        stale = [d for d in deliveries if d.event.time < too_old]
        if stale:
            log.warning("%d events older than %.0f s raise no alarm", len(stale), self._config.alarm_max_age_s)
            try:
                consumer.ack(*stale)
            except KernelError as err:
                log.error("could not acknowledge stale events: %s", err)
        return [d for d in deliveries if d.event.time >= too_old]

    def jobs(self) -> dict[str, Job]:
        """The scheduler's jobs by name, each taking a session and ``now``."""
        cfg, zone, facts = self._config, self._zone, self._facts
        ahead = timedelta(hours=cfg.tasks_ahead_h)
        found: dict[str, Job] = {
            "plan tasks": lambda s, now: plans.create_due_tasks(s, now, ahead=ahead, calendar=self._calendar),
            "missed tasks": plans.mark_missed,
            "overdue hazards": lambda s, now: hazards.check_overdue(s, now, cfg.hazards),
            "incident clocks": incidents.check_clocks,
            "daily report": lambda s, now: reports.generate_due(
                s, now, facts, config=cfg.report, timezone=zone, bureau_name=self._settings.instance.name
            ),
        }
        if cfg.spot_checks.auto_draw:
            found["spot-check draws"] = lambda s, now: spot_checks.draw_due(
                s, now, facts, timezone=zone, recent_event_days=cfg.spot_checks.recent_event_days
            )
        return found

    def run_schedule(self) -> dict[str, object]:
        """Run every scheduler job once, each in its own transaction; what each returned (None: it failed)."""
        results: dict[str, object] = {}
        for name, job in self.jobs().items():
            if self._stop.is_set() and self._threads:
                break
            try:
                with self._factory() as session:
                    results[name] = job(session, self._clock())
                    commit_and_publish(session, self._bus)
            except (SQLAlchemyError, PatrolError, KernelError) as err:
                log.error("patrol job %r failed: %s", name, err)
                results[name] = None
            except Exception:  # one broken job must not stop the others or the thread
                log.exception("patrol job %r failed", name)
                results[name] = None
        return results
