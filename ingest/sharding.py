"""Sharding the camera fleet over the live ingest workers.

**Assignment.** Each camera goes to the live worker with the highest weight ``w(camera, worker)`` (rendezvous or
highest-random-weight hashing): every worker computes the same answer from the same live set without talking to
the others, and when a worker joins or leaves only the cameras it wins or held move — about 1/N of the fleet. The
weight is the splitmix64 finaliser of ``h(camera) XOR h(worker)``, with ``h`` the 64-bit BLAKE2b of the UTF-8
text (personalised ``cw-shard``), so it is stable across processes, hosts and Python versions (unlike the salted
``hash()``). Changing it reshuffles a running fleet, which is why a test pins a few values. :func:`assigned`
computes the weights with numpy, one vector per worker; camera hashes are cached, so reassigning 15,000 cameras
over 10 workers takes a few milliseconds.

**Watching.** A :class:`ShardWatcher` runs one round at start and then every ``heartbeat_s``: it heartbeats its
:class:`~ingest.membership.Membership`, reads the live workers and the camera universe, and reports the change in
this worker's share through ``on_change(added, removed)``. How this meets the issue's rules, with the defaults
``heartbeat_s`` = 2 s and ``ttl_s`` = 6 s:

* *A killed worker's cameras are read again within 10 s.* Its entry expires ``ttl_s`` after its last heartbeat
  and every other worker sees that at its next round, so its cameras move within ``ttl_s + heartbeat_s`` (8 s)
  plus one round's duration. A clean stop (:meth:`ShardWatcher.stop` with ``leave=True``) removes the entry at
  once, so its cameras move within one heartbeat period.
* *No camera is read by two workers for longer than one heartbeat period.* A joining worker starts its share at
  once; the current holders see it at their next round, at most ``heartbeat_s`` later, and drop those cameras.
  That period is the only overlap by design: at a cold start of the whole deployment the first worker briefly
  owns everything, until the others appear in its next round. (If ``on_change`` raises, the change is retried at
  the next round, which can lengthen the overlap by a round.)
* *Redis restarts.* Heartbeats re-register the workers one by one. A worker that finds it had to re-register
  while it knew of peers *settles*: it keeps exactly the cameras it has (minus ones deleted from the registry)
  until every peer it knew of is live again or ``settle_s`` (default ``ttl_s``) has passed, and only then
  reassigns. Without this the first worker back would see itself alone and start the whole fleet.
* *Redis unreachable.* The worker keeps reading what it has and logs one warning (the URL redacted), then a
  reminder every minute, and takes up its rounds again when Redis answers. A worker cut off from Redis while the
  others are not keeps its cameras too, and the others take them over after the TTL, so those cameras are read
  twice until the partition heals: the issue asks for that over dropping them.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from types import TracebackType

import numpy as np
import numpy.typing as npt

from ingest.errors import IngestError
from ingest.membership import (
    DEFAULT_HEARTBEAT_S,
    DEFAULT_NAMESPACE,
    DEFAULT_TTL_S,
    LocalMembership,
    Membership,
    MembershipError,
    RedisMembership,
    new_worker_id,
)
from kernel.secrets import redact_text

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "DEFAULT_NAMESPACE",
    "DEFAULT_TTL_S",
    "LocalMembership",
    "Membership",
    "MembershipError",
    "RedisMembership",
    "ShardWatcher",
    "ShardingError",
    "assigned",
    "new_worker_id",
    "owner",
    "owners",
    "weight",
]

logger = logging.getLogger(__name__)

_MASK = (1 << 64) - 1
_PERSON = b"cw-shard"
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB
_OUTAGE_REMINDER_S = 60.0


class ShardingError(IngestError):
    """Sharding was asked something impossible (no workers) or a watcher was misused."""


# -- rendezvous hashing ----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1 << 16)  # the fleet's codes are hashed once, not every round (15,000 ≈ 3 MB)
def _hash64(text: str) -> int:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, person=_PERSON).digest()
    return int.from_bytes(digest, "little")


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK
    return z ^ (z >> 31)


def _mix_array(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    # Same arithmetic as _mix: uint64 array products wrap modulo 2**64 (no overflow warning for arrays).
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


def _sorted_workers(workers: Iterable[str]) -> list[str]:
    # Sorted so that ties (probability 2**-64) go to the same worker whatever order the caller passes.
    return sorted(set(workers))


def weight(camera_code: str, worker_id: str) -> int:
    """The rendezvous weight of ``camera_code`` on ``worker_id``: a stable 64-bit integer."""
    return _mix(_hash64(camera_code) ^ _hash64(worker_id))


def owner(camera_code: str, workers: Iterable[str]) -> str:
    """The worker among ``workers`` that reads ``camera_code``; raises :class:`ShardingError` if there is none."""
    ordered = _sorted_workers(workers)
    if not ordered:
        raise ShardingError(f"no live worker to own camera {camera_code!r}")
    code_hash = _hash64(camera_code)
    best_worker, best = ordered[0], -1
    for worker in ordered:
        value = _mix(code_hash ^ _hash64(worker))
        if value > best:  # strict: the first of equal weights wins, as numpy's argmax in _owner_index
            best_worker, best = worker, value
    return best_worker


def _owner_index(codes: Sequence[str], ordered: Sequence[str]) -> npt.NDArray[np.intp]:
    """For each code, the index in ``ordered`` of its owner."""
    code_hashes = np.fromiter((_hash64(code) for code in codes), dtype=np.uint64, count=len(codes))
    weights = np.empty((len(ordered), len(codes)), dtype=np.uint64)
    for row, worker in enumerate(ordered):
        weights[row] = _mix_array(code_hashes ^ np.uint64(_hash64(worker)))
    return weights.argmax(axis=0)


def owners(codes: Iterable[str], workers: Iterable[str]) -> dict[str, str]:
    """Camera code → owning worker for every code; raises :class:`ShardingError` if ``workers`` is empty."""
    ordered = _sorted_workers(workers)
    code_list = list(dict.fromkeys(codes))
    if not ordered:
        if not code_list:
            return {}
        raise ShardingError(f"no live worker to own {len(code_list)} cameras")
    if len(ordered) == 1:
        return dict.fromkeys(code_list, ordered[0])
    index = _owner_index(code_list, ordered).tolist()
    return {code: ordered[i] for code, i in zip(code_list, index, strict=True)}


def assigned(codes: Iterable[str], workers: Iterable[str], worker_id: str) -> set[str]:
    """The codes among ``codes`` that ``worker_id`` reads when ``workers`` are live (empty if it is not live)."""
    ordered = _sorted_workers(workers)
    if worker_id not in ordered:
        return set()
    if len(ordered) == 1:
        return set(codes)
    code_list = list(dict.fromkeys(codes))
    if not code_list:
        return set()
    mine = np.flatnonzero(_owner_index(code_list, ordered) == ordered.index(worker_id)).tolist()
    return {code_list[i] for i in mine}


# -- the watcher -----------------------------------------------------------------------------------------------

OnChange = Callable[[set[str], set[str]], None]
"""``on_change(added, removed)``: start reading ``added``, stop reading ``removed``."""


class ShardWatcher:
    """Keeps this worker's share of the fleet up to date; one thread, owned and stopped by its creator.

    ``codes()`` returns the camera universe (the enabled cameras' codes); it is called every round and may raise,
    in which case the previous universe is kept. ``on_change(added, removed)`` is called from the watcher's
    thread whenever this worker's share changes, the first time with everything it should read; it should be
    quick (start or stop readers, not wait for them) and idempotent, because a call that raises is logged and
    retried with the same change at the next round. It is never called once :meth:`stop` has begun.

    Rounds run every ``heartbeat_s`` (default ``membership.heartbeat_s``; it must be below the membership's
    ``ttl_s``), the first at once; see the module docstring for how rounds meet the fail-over and overlap rules.
    ``settle_s`` (default ``membership.ttl_s``) bounds how long a worker whose registration was lost (Redis
    restarted) waits for the peers it knew before reassigning.

    The watcher does not own the membership: the creator closes it after :meth:`stop`.
    """

    def __init__(
        self,
        membership: Membership,
        codes: Callable[[], Collection[str]],
        on_change: OnChange,
        *,
        heartbeat_s: float | None = None,
        settle_s: float | None = None,
    ) -> None:
        self.membership = membership
        self.worker_id = membership.worker_id
        self.heartbeat_s = heartbeat_s if heartbeat_s is not None else membership.heartbeat_s
        # Rounds are the heartbeats: a period at or beyond the TTL would let this worker expire between them.
        if not 0 < self.heartbeat_s < membership.ttl_s:
            raise ShardingError(
                f"heartbeat_s must be positive and below the membership's ttl_s ({membership.ttl_s}), "
                f"got {self.heartbeat_s}"
            )
        self.settle_s = settle_s if settle_s is not None else membership.ttl_s
        if self.settle_s < 0:
            raise ShardingError(f"settle_s must not be negative, got {self.settle_s}")
        self._codes = codes
        self._on_change = on_change
        self._stop = threading.Event()
        self._round_lock = threading.Lock()  # run_once() may be driven by hand; never two rounds at once
        self._thread: threading.Thread | None = None
        self._leave_on_stop = True
        self._joined = False
        self._owned: frozenset[str] = frozenset()
        self._universe: frozenset[str] | None = None
        self._live: tuple[str, ...] = ()
        self._known_peers: frozenset[str] = frozenset()  # peers of the last settled view
        self._settle_until: float | None = None
        self._awaited: frozenset[str] = frozenset()
        self._outage_since: float | None = None
        self._outage_logged = 0.0
        self._rounds = 0

    # -- state, safe to read from any thread (each attribute is replaced whole, never mutated) ---------------

    @property
    def owned(self) -> frozenset[str]:
        """The camera codes this worker reads, as last reported through ``on_change``."""
        return self._owned

    @property
    def live(self) -> tuple[str, ...]:
        """The live workers seen at the last round that reached the registry."""
        return self._live

    @property
    def rounds(self) -> int:
        """Rounds completed so far (whether or not they reached the registry)."""
        return self._rounds

    @property
    def registry_ok(self) -> bool:
        """Whether the last round reached the membership registry."""
        return self._outage_since is None and self._joined

    @property
    def settling(self) -> bool:
        """Whether the watcher is holding its share while peers re-register after a lost registration."""
        return self._settle_until is not None

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the watcher's thread; the first round runs at once. A watcher can be started once."""
        if self._thread is not None or self._stop.is_set():
            raise ShardingError("a ShardWatcher can be started once")
        self._thread = threading.Thread(target=self._run, name=f"shard-watcher-{self.worker_id}")
        self._thread.start()
        logger.info(
            "ingest worker %s watching its share of the fleet (%s, heartbeat %.1f s, ttl %.1f s)",
            self.worker_id,
            self.membership.description,
            self.heartbeat_s,
            self.membership.ttl_s,
        )

    def stop(self, timeout_s: float = 5.0, *, leave: bool = True) -> bool:
        """Stop the rounds and join the thread for at most ``timeout_s``; returns whether it ended.

        With ``leave`` (the default) the thread leaves the membership as it ends, so the other workers take this
        worker's cameras at their next round; without it they wait for the TTL, as after a crash. The caller
        stops its own readers (``on_change`` is not called for them). Safe to call more than once.
        """
        thread = self._thread
        if not self._stop.is_set():
            self._leave_on_stop = leave  # read by the thread after it sees the event
        self._stop.set()
        if thread is None:
            # Rounds were driven by hand through run_once(): leave here, as the thread would have.
            with self._round_lock:
                self._leave_if_joined()
            return True
        if thread is threading.current_thread():
            return False  # called from on_change: the thread ends (and leaves) once this round returns
        thread.join(timeout_s)
        if thread.is_alive():
            logger.warning(
                "shard watcher of ingest worker %s did not stop within %.1f s (a registry call is hanging); "
                "it will %s when that call returns",
                self.worker_id,
                timeout_s,
                "leave" if leave else "end",
            )
            return False
        return True

    def __enter__(self) -> ShardWatcher:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            while True:
                began = time.monotonic()
                try:
                    self.run_once()
                except Exception:
                    # A bug in a round must not end the thread silently and freeze the share for good.
                    logger.exception("shard watcher round of ingest worker %s failed", self.worker_id)
                # Keep the cadence at heartbeat_s whatever the round took, yet never spin.
                delay = max(self.heartbeat_s - (time.monotonic() - began), self.heartbeat_s / 10)
                if self._stop.wait(delay):
                    break
        finally:
            self._leave_if_joined()

    def _leave_if_joined(self) -> None:
        if not (self._leave_on_stop and self._joined):
            return
        self._joined = False
        try:
            self.membership.leave()
        except MembershipError as err:
            logger.warning(
                "ingest worker %s could not leave (its entry expires after %.1f s): %s",
                self.worker_id,
                self.membership.ttl_s,
                redact_text(str(err)),
            )

    # -- one round -------------------------------------------------------------------------------------------

    def run_once(self) -> None:
        """One round: heartbeat, read the live workers and the universe, report a changed share.

        The thread started by :meth:`start` calls this; it is public so that a caller (or a test) can drive
        rounds itself instead. Does nothing once :meth:`stop` has been called.
        """
        with self._round_lock:
            if self._stop.is_set():
                return
            try:
                self._round()
            finally:
                self._rounds += 1

    def _round(self) -> None:
        now = time.monotonic()
        try:
            if self._joined:
                fresh = not self.membership.heartbeat()
            else:
                self.membership.join()
                self._joined, fresh = True, False  # a first join is not a lost registration
            live = self.membership.live_workers()
        except MembershipError as err:
            self._registry_down(now, err)
            return
        self._registry_up(now)
        self._live = tuple(live)
        if fresh:
            self._begin_settling(now, "its registration was lost (Redis restarted or heartbeats came too late)")
        if self.worker_id not in live:
            # The registry lost this worker between the heartbeat and the read (a restart in between); the next
            # heartbeat registers it again. Computing a share now would drop everything.
            self._begin_settling(now, "it was missing from the live workers right after its heartbeat")
            return
        universe = self._read_universe()
        if universe is None:
            return
        if self._still_settling(now, live):
            target = self._owned & universe  # hold the share, only dropping cameras deleted from the registry
        else:
            target = frozenset(assigned(universe, live, self.worker_id))
            self._known_peers = frozenset(live) - {self.worker_id}
        self._apply(target, len(universe), len(live))

    def _begin_settling(self, now: float, why: str) -> None:
        if self._settle_until is not None:
            return  # already settling: keep the original deadline and the peers it waits for
        self._awaited = self._known_peers
        if not self._awaited or self.settle_s <= 0:
            return
        self._settle_until = now + self.settle_s
        logger.warning(
            "ingest worker %s re-registered in %s because %s; holding its %d cameras until its %d peers are "
            "back (at most %.1f s)",
            self.worker_id,
            self.membership.description,
            why,
            len(self._owned),
            len(self._awaited),
            self.settle_s,
        )

    def _still_settling(self, now: float, live: Sequence[str]) -> bool:
        if self._settle_until is None:
            return False
        missing = self._awaited - set(live)
        if missing and now < self._settle_until:
            return True
        if missing:
            logger.warning(
                "ingest worker %s stops waiting for %d peers that did not come back (%s); reassigning",
                self.worker_id,
                len(missing),
                ", ".join(sorted(missing)[:5]),
            )
        else:
            logger.info("ingest worker %s: all peers are back; reassigning", self.worker_id)
        self._settle_until = None
        self._awaited = frozenset()
        return False

    def _read_universe(self) -> frozenset[str] | None:
        try:
            self._universe = frozenset(self._codes())
        except Exception as err:  # noqa: BLE001 - any failure of the caller's query: keep the previous universe
            # Only the redacted message: a database error can carry a connection URL with its password.
            logger.warning(
                "ingest worker %s could not list the cameras (%s: %s); %s",
                self.worker_id,
                type(err).__name__,
                redact_text(str(err)),
                "keeping the previous list" if self._universe is not None else "will retry next round",
            )
        return self._universe

    def _apply(self, target: frozenset[str], universe_size: int, live_count: int) -> None:
        added = target - self._owned
        removed = self._owned - target
        if not added and not removed:
            return
        if self._stop.is_set():
            return  # stop() has begun: the caller is tearing its readers down, do not start more
        try:
            self._on_change(set(added), set(removed))
        except Exception:
            logger.exception(
                "ingest worker %s: on_change(+%d, -%d) failed; retrying at the next round",
                self.worker_id,
                len(added),
                len(removed),
            )
            return
        self._owned = target
        logger.info(
            "ingest worker %s reads %d of %d cameras over %d live workers (+%d, -%d)",
            self.worker_id,
            len(target),
            universe_size,
            live_count,
            len(added),
            len(removed),
        )

    def _registry_down(self, now: float, err: MembershipError) -> None:
        reason = redact_text(str(err))
        keeping = (
            f"keeping the {len(self._owned)} cameras it reads"
            if self._joined
            else "it reads no cameras until it can join"
        )
        if self._outage_since is None:
            self._outage_since = self._outage_logged = now
            logger.warning(
                "ingest worker %s cannot use the worker registry: %s; %s until it is back",
                self.worker_id,
                reason,
                keeping,
            )
        elif now - self._outage_logged >= _OUTAGE_REMINDER_S:
            self._outage_logged = now
            logger.warning(
                "ingest worker %s still cannot use the worker registry after %.0f s: %s; %s",
                self.worker_id,
                now - self._outage_since,
                reason,
                keeping,
            )
        else:
            logger.debug("ingest worker %s: registry still unreachable: %s", self.worker_id, reason)

    def _registry_up(self, now: float) -> None:
        if self._outage_since is not None:
            logger.info(
                "ingest worker %s reaches the worker registry (%s) again after %.1f s",
                self.worker_id,
                self.membership.description,
                now - self._outage_since,
            )
            self._outage_since = None
