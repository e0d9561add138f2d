"""Counters of a running simulator and a meter of its CPU cost per watched stream."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SimulatorStats:
    """A snapshot of the simulator's counters."""

    cameras: int
    """Mounts served."""
    streams: int
    """Cameras whose stream is being sent to at least one reader (shared media playing)."""
    clients: int
    """RTSP connections open."""
    frames_sent: int
    """Frames pushed into the streams since start (all cameras)."""
    cpu_s: float
    """CPU time of the whole process (all threads) since it started; the simulator's own when run alone."""
    uptime_s: float
    """Seconds since the simulator started."""


@dataclass(frozen=True)
class CpuSample:
    """CPU use between two meter readings."""

    interval_s: float
    cpu_cores: float
    """Process CPU seconds per wall-clock second (1.0 = one core busy)."""
    streams: int
    """Watched streams at the end of the interval."""
    clients: int

    @property
    def cores_per_stream(self) -> float | None:
        """``cpu_cores / streams``, or None when nothing is watched."""
        return self.cpu_cores / self.streams if self.streams else None


class CpuMeter:
    """Process CPU time delta over wall time, divided by the number of streams being watched.

    The CPU time is the whole process's: run readers in another process for a clean per-stream figure.
    """

    def __init__(self, stats: Callable[[], SimulatorStats]) -> None:
        self._stats = stats
        self._wall = time.monotonic()
        self._cpu = time.process_time()

    def sample(self) -> CpuSample:
        """CPU use since the previous sample (or since the meter was made)."""
        wall, cpu = time.monotonic(), time.process_time()
        snapshot = self._stats()
        interval = max(wall - self._wall, 1e-9)
        sample = CpuSample(interval, (cpu - self._cpu) / interval, snapshot.streams, snapshot.clients)
        self._wall, self._cpu = wall, cpu
        return sample
