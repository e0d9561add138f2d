"""A queue of records that one writer thread stores in batches and then announces on the bus.

Producers (reader threads, the detection thread) only enqueue and never wait for the database. The writer
commits every ``flush_s`` and publishes each batch's events after its commit, so the bus never announces what the
database lacks; a batch the database refuses is queued again for the next flush, so an outage delays records
but loses none (until the queue's bound, where the newest are dropped with an error).
"""

from __future__ import annotations

import logging
import queue
import threading
from abc import ABC, abstractmethod
from typing import Generic, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from kernel.bus import Event, EventBus
from kernel.errors import KernelError

log = logging.getLogger(__name__)

Item = TypeVar("Item")


class BatchWriter(ABC, Generic[Item]):
    """Subclasses store a batch in :meth:`store` and return the events to publish."""

    def __init__(self, bus: EventBus, *, name: str, flush_s: float, max_queue: int) -> None:
        self._bus = bus
        self._name = name
        self._flush_s = flush_s
        self._queue: queue.Queue[Item] = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @abstractmethod
    def store(self, items: list[Item], *, final: bool) -> list[Event]:
        """Store ``items`` in one transaction; the events to publish once it committed. ``final``: last flush."""

    def due(self, items: list[Item], *, final: bool) -> bool:
        """Whether this flush has anything to store (default: queued items)."""
        return bool(items)

    def put(self, item: Item) -> None:
        """Queue ``item`` (never blocks)."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            log.error("%s queue full: a record was dropped (is the database reachable?)", self._name)

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(target=self._run, name=self._name)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Store what is queued and stop the writer thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("%s did not stop within %.1f s", self._name, timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self._flush_s):
            self.flush()
        self.flush(final=True)

    def flush(self, *, final: bool = False) -> int:
        """Store and publish what is queued now; the number of items stored."""
        items: list[Item] = []
        while True:
            try:
                items.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not self.due(items, final=final):
            return 0
        try:
            events = self.store(items, final=final)
        except (SQLAlchemyError, KernelError) as err:
            log.error("%s: records not stored (%s); retrying at the next flush", self._name, err)
            for item in items:
                self.put(item)
            return 0
        for event in events:
            try:
                self._bus.publish(event)
            except KernelError as err:
                log.error("%s: could not publish %s: %s", self._name, event.type, err)
        return len(items)
