"""The readers of one worker: started and stopped as the worker's share of the fleet changes."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

from ingest.fleet import CameraTarget
from ingest.models import ReadMode, StreamFigures
from ingest.reader import OpenGate, ReaderSettings, StreamReader, StreamSink

log = logging.getLogger(__name__)


class ReaderPool:
    """Owns one :class:`StreamReader` per assigned camera."""

    def __init__(
        self,
        sink: StreamSink,
        settings: ReaderSettings,
        *,
        max_concurrent_opens: int,
        on_removed: Callable[[str], None] | None = None,
    ) -> None:
        self._sink = sink
        self._settings = settings
        self._gate = OpenGate(max_concurrent_opens)
        self._on_removed = on_removed
        self._readers: dict[str, tuple[StreamReader, CameraTarget]] = {}
        self._retiring: list[StreamReader] = []
        self._lock = threading.Lock()
        self._closed = False

    def codes(self) -> set[str]:
        """Codes of the cameras being read."""
        with self._lock:
            return set(self._readers)

    def apply(self, targets: Mapping[str, CameraTarget]) -> None:
        """Read exactly ``targets``: start new ones, stop the rest, restart those whose URL changed.

        Returns at once: readers being stopped finish their current read (at most a read timeout) on their own
        and are joined by :meth:`stop`.
        """
        with self._lock:
            if self._closed:
                return
            stale = [
                code
                for code, (_, old) in self._readers.items()
                if code not in targets or targets[code].url != old.url
            ]
            retiring = [self._readers.pop(code)[0] for code in stale]
            for reader in retiring:
                reader.request_stop()
            self._retiring = [r for r in self._retiring if not r.join(0)] + retiring
            for code, target in targets.items():
                if code not in self._readers:
                    reader = StreamReader(code, target.url, self._sink, self._settings, self._gate)
                    self._readers[code] = (reader, target)
                    reader.start()
        for reader in retiring:
            if reader.code not in targets and self._on_removed is not None:
                self._on_removed(reader.code)
        if retiring:
            log.debug("reading %d cameras (%d stopped)", len(targets), len(retiring))

    def set_mode(self, code: str, mode: ReadMode) -> bool:
        """Switch camera ``code`` to ``mode``; False if this pool does not read it."""
        with self._lock:
            entry = self._readers.get(code)
        if entry is None:
            return False
        entry[0].set_mode(mode)
        return True

    def mode(self, code: str) -> ReadMode | None:
        """The read mode of camera ``code`` (None if no reader reads it)."""
        with self._lock:
            entry = self._readers.get(code)
        return None if entry is None else entry[0].mode

    def figures(self) -> dict[str, StreamFigures]:
        """Every reader's figures."""
        with self._lock:
            readers = [reader for reader, _ in self._readers.values()]
        return {reader.code: reader.figures() for reader in readers}

    def since_keyframe(self) -> dict[str, float]:
        """Seconds since the last keyframe arrived, for every connected reader."""
        with self._lock:
            readers = [reader for reader, _ in self._readers.values()]
        ages = {reader.code: reader.since_keyframe_s() for reader in readers}
        return {code: age for code, age in ages.items() if age is not None}

    def stop(self, timeout_s: float) -> None:
        """Stop every reader, waiting ``timeout_s`` in all."""
        with self._lock:
            self._closed = True
            readers = [reader for reader, _ in self._readers.values()] + self._retiring
            self._readers.clear()
            self._retiring = []
        self._stop_readers(readers, timeout_s)

    @staticmethod
    def _stop_readers(readers: list[StreamReader], timeout_s: float) -> None:
        for reader in readers:
            reader.request_stop()
        deadline = time.monotonic() + timeout_s
        stuck = [r.code for r in readers if not r.join(max(0.0, deadline - time.monotonic()))]
        if stuck:
            # A read blocked in FFmpeg ends within its read timeout; the thread then exits on its own.
            log.warning("%d reader(s) still finishing a blocked read: %s", len(stuck), ", ".join(stuck[:10]))
