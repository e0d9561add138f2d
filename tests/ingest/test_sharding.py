"""Sharding the fleet over ingest workers: rendezvous hashing, membership, and shard watchers on a real Redis.

The Redis tests run a private ``redis-server`` (free port, no persistence, a password so that redaction is
exercised) that they can kill and restart without disturbing the shared server at 127.0.0.1:6379.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

from ingest.errors import IngestError
from ingest.membership import (
    LocalMembership,
    Membership,
    MembershipError,
    RedisMembership,
    new_worker_id,
)
from ingest.sharding import ShardingError, ShardWatcher, assigned, owner, owners, weight
from tests.servers import RedisServer, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Sh4rd-S3cret-pw"
HEARTBEAT_S = 0.2
TTL_S = 0.6
WAIT_S = 5.0  # upper bound of every wait; a pass takes a fraction of it


def fleet_codes(count: int) -> list[str]:
    """Realistic 20-digit national camera codes (district, school, camera)."""
    return [f"370202{school:06d}132{camera:05d}" for school, camera in ((i // 25, i % 25) for i in range(count))]


def wait_until(predicate: Callable[[], bool], timeout_s: float = WAIT_S, poll_s: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll_s)
    return predicate()


# -- rendezvous hashing ----------------------------------------------------------------------------------------

WORKERS_3 = ["ingest-a-1-000001", "ingest-b-2-000002", "ingest-c-3-000003"]


def reference_weight(code: str, worker: str) -> int:
    """The documented weight, written out independently of the implementation."""

    def h(text: str) -> int:
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8, person=b"cw-shard").digest(), "little")

    mask = (1 << 64) - 1
    z = h(code) ^ h(worker)
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
    return z ^ (z >> 31)


def test_weights_are_pinned_so_upgrades_do_not_reshuffle_the_fleet() -> None:
    assert weight("37020200010013200001", "ingest-a-1-000001") == 1321617945646153594
    for code in fleet_codes(50):
        for worker in WORKERS_3:
            assert weight(code, worker) == reference_weight(code, worker)
    assert [owner(f"3702020001001320000{i}", WORKERS_3)[7] for i in range(1, 6)] == ["c", "b", "c", "a", "a"]


def test_owner_is_deterministic_across_processes_and_worker_order() -> None:
    codes = fleet_codes(200)
    here = [owner(code, WORKERS_3) for code in codes]
    assert [owner(code, list(reversed(WORKERS_3))) for code in codes] == here
    assert [owner(code, WORKERS_3 + WORKERS_3[:1]) for code in codes] == here  # duplicates are ignored
    assert len(set(here)) == 3
    # A fresh interpreter with a different string-hash salt must agree (Python's hash() would not).
    script = (
        "import sys; from ingest.sharding import owner\n"
        "workers = sys.argv[1].split(','); codes = sys.argv[2].split(',')\n"
        "print(','.join(owner(c, workers) for c in codes))\n"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", script, ",".join(WORKERS_3), ",".join(codes)],
            cwd=REPO_ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert out.stdout.strip().split(",") == here


def test_vectorised_owners_and_assigned_agree_with_owner() -> None:
    codes = fleet_codes(2_000)
    workers = [f"host{i}-{100 + i}-abc{i:03d}" for i in range(7)]
    table = owners(codes, workers)
    assert table == {code: owner(code, workers) for code in codes}
    shares = {worker: assigned(codes, workers, worker) for worker in workers}
    assert set().union(*shares.values()) == set(codes)
    assert sum(len(share) for share in shares.values()) == len(codes)  # disjoint
    for worker, share in shares.items():
        assert share == {code for code, who in table.items() if who == worker}


def test_assignment_is_balanced_over_the_reference_fleet() -> None:
    codes = fleet_codes(15_000)
    workers = [f"ingest-{i}-{4000 + i}-{i:06x}" for i in range(5)]
    counts = {worker: len(assigned(codes, workers, worker)) for worker in workers}
    assert sum(counts.values()) == 15_000
    # 3,000 each ± 6 % (binomial σ ≈ 49, so this is about 3.7 σ; the codes are fixed, so the test is too).
    assert all(2_820 <= count <= 3_180 for count in counts.values()), counts


def test_a_join_or_leave_moves_about_one_nth_of_the_fleet() -> None:
    codes = fleet_codes(15_000)
    five = [f"ingest-{i}-{4000 + i}-{i:06x}" for i in range(5)]
    newcomer = "ingest-new-9999-abcdef"
    before = owners(codes, five)
    after_join = owners(codes, [*five, newcomer])
    moved = {code for code in codes if before[code] != after_join[code]}
    assert {after_join[code] for code in moved} == {newcomer}  # only cameras the newcomer wins move
    assert 0.14 <= len(moved) / len(codes) <= 0.195  # 1/6 ≈ 0.167

    leaver = five[2]
    after_leave = owners(codes, [w for w in five if w != leaver])
    moved = {code for code in codes if before[code] != after_leave[code]}
    assert moved == {code for code in codes if before[code] == leaver}  # only the leaver's cameras move
    assert 0.18 <= len(moved) / len(codes) <= 0.22  # 1/5


def test_edge_cases_of_assignment() -> None:
    with pytest.raises(ShardingError, match="no live worker") as info:
        owner("c1", [])
    assert isinstance(info.value, IngestError)
    with pytest.raises(ShardingError):
        owners(["c1"], [])
    assert owners([], []) == {}
    assert assigned(["c1", "c2"], [], "w1") == set()
    assert assigned(["c1", "c2"], ["w2", "w3"], "w1") == set()  # not live: owns nothing
    assert assigned(["c1", "c2"], ["w1"], "w1") == {"c1", "c2"}
    assert assigned([], ["w1", "w2"], "w1") == set()
    assert owners(["c1", "c1"], ["w1", "w2"]) == {"c1": owner("c1", ["w1", "w2"])}


# -- worker ids and local membership ---------------------------------------------------------------------------


def test_new_worker_id() -> None:
    ids = {new_worker_id() for _ in range(50)}
    assert len(ids) == 50
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())
    assert all(re.fullmatch(rf"{re.escape(host[:64])}-{os.getpid()}-[0-9a-f]{{6}}", i) for i in ids)
    assert re.fullmatch(rf"edge_7 a_b-{os.getpid()}-[0-9a-f]{{6}}".replace(" ", "_"), new_worker_id("edge/7 a@b"))
    assert new_worker_id("").startswith("host-")


def test_local_membership() -> None:
    local = LocalMembership("solo-1-abcdef")
    assert (local.heartbeat_s, local.ttl_s) == (2.0, 6.0)
    assert local.live_workers() == []
    local.join()
    assert local.live_workers() == ["solo-1-abcdef"]
    assert local.heartbeat() is True
    local.leave()
    assert local.live_workers() == []
    assert local.heartbeat() is False  # registered afresh
    assert local.live_workers() == ["solo-1-abcdef"]
    assert LocalMembership().worker_id.endswith(tuple("0123456789abcdef"))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LocalMembership(heartbeat_s=0.0), "heartbeat_s must be positive"),
        (lambda: LocalMembership(heartbeat_s=2.0, ttl_s=2.0), "must be longer than heartbeat_s"),
        (lambda: LocalMembership(""), "invalid worker id"),
        (lambda: LocalMembership(" padded"), "invalid worker id"),
        (lambda: LocalMembership("x" * 201), "invalid worker id"),
    ],
)
def test_membership_settings_are_checked(make: Callable[[], Membership], message: str) -> None:
    with pytest.raises(MembershipError, match=message):
        make()


# -- the watcher on the local membership (rounds driven by hand) -----------------------------------------------


@dataclass
class Share:
    """What one watcher's ``on_change`` was told: the cameras it should read and every call."""

    cameras: set[str] = field(default_factory=set)
    calls: list[tuple[set[str], set[str]]] = field(default_factory=list)
    fail: int = 0  # raise on the next ``fail`` calls
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, added: set[str], removed: set[str]) -> None:
        with self.lock:
            self.calls.append((set(added), set(removed)))
            if self.fail:
                self.fail -= 1
                raise RuntimeError("reader pool refused")
            assert not added & self.cameras, "added a camera it already reads"
            self.cameras = (self.cameras | added) - removed

    def snapshot(self) -> frozenset[str]:
        with self.lock:
            return frozenset(self.cameras)

    def call_count(self) -> int:
        with self.lock:
            return len(self.calls)


class Universe:
    """A camera list that tests can change or make fail."""

    def __init__(self, codes: Collection[str]) -> None:
        self.codes = set(codes)
        self.error: Exception | None = None

    def __call__(self) -> Collection[str]:
        if self.error is not None:
            raise self.error
        return set(self.codes)


def test_local_watcher_rounds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ingest")
    universe = Universe(["c1", "c2", "c3"])
    share = Share()
    local = LocalMembership("solo-1-abcdef", heartbeat_s=0.2, ttl_s=0.6)
    watcher = ShardWatcher(local, universe, share)
    watcher.run_once()
    assert share.calls == [({"c1", "c2", "c3"}, set())]
    assert watcher.owned == {"c1", "c2", "c3"} and watcher.live == ("solo-1-abcdef",)
    watcher.run_once()
    assert len(share.calls) == 1  # nothing changed, nothing reported

    universe.codes = {"c2", "c3", "c4"}
    watcher.run_once()
    assert share.calls[-1] == ({"c4"}, {"c1"})

    # The camera list fails: keep the previous universe (and so every camera), and say why, redacted.
    universe.error = RuntimeError("db down: postgresql://cw:dbpass@db/cw")
    watcher.run_once()
    assert len(share.calls) == 2 and watcher.owned == {"c2", "c3", "c4"}
    assert "could not list the cameras" in caplog.text and "dbpass" not in caplog.text
    universe.error = None

    # on_change raises: the same change is retried at the next round.
    universe.codes = {"c3", "c4", "c5"}
    share.fail = 1
    watcher.run_once()
    assert watcher.owned == {"c2", "c3", "c4"}
    watcher.run_once()
    assert share.calls[-2] == share.calls[-1] == ({"c5"}, {"c2"})
    assert watcher.owned == share.snapshot() == {"c3", "c4", "c5"}
    assert watcher.rounds == 6

    assert watcher.stop() is True
    assert local.live_workers() == []  # stop() left the membership
    universe.codes = {"c9"}
    watcher.run_once()  # after stop: nothing happens
    assert share.snapshot() == {"c3", "c4", "c5"} and watcher.rounds == 6


def test_local_watcher_thread_starts_at_once_and_stops_bounded() -> None:
    share = Share()
    local = LocalMembership("solo-2-abcdef", heartbeat_s=5.0)  # the first round must not wait for a period
    watcher = ShardWatcher(local, lambda: ["c1", "c2"], share)
    watcher.start()
    try:
        assert wait_until(lambda: share.snapshot() == {"c1", "c2"}, timeout_s=2.0)
        with pytest.raises(ShardingError, match="started once"):
            watcher.start()
    finally:
        began = time.monotonic()
        assert watcher.stop(timeout_s=2.0) is True
    assert time.monotonic() - began < 1.0  # the 5 s wait is interrupted
    assert local.live_workers() == []
    with pytest.raises(ShardingError, match="below the membership's ttl_s"):
        ShardWatcher(local, lambda: [], share, heartbeat_s=15.0)


# -- a private Redis server ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis") / "redis.log", password=PASSWORD)
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def server(redis_server: RedisServer) -> RedisServer:
    """The private server, running (a previous test may have killed it)."""
    if not redis_server.running():
        redis_server.start()
    return redis_server


@dataclass
class Fleet:
    """Memberships and watchers of one test, in its own namespace; all stopped and closed afterwards."""

    server: RedisServer
    namespace: str = field(default_factory=lambda: f"cwtest:{uuid.uuid4().hex[:8]}")
    memberships: list[Membership] = field(default_factory=list)
    watchers: list[ShardWatcher] = field(default_factory=list)

    def membership(
        self, worker_id: str, *, heartbeat_s: float = HEARTBEAT_S, ttl_s: float = TTL_S
    ) -> RedisMembership:
        member = RedisMembership(
            self.server.url, worker_id, heartbeat_s=heartbeat_s, ttl_s=ttl_s, namespace=self.namespace
        )
        self.memberships.append(member)
        return member

    def watcher(
        self, worker_id: str, universe: Callable[[], Collection[str]], *, ttl_s: float = TTL_S, **kwargs: float
    ) -> tuple[ShardWatcher, Share]:
        share = Share()
        watcher = ShardWatcher(self.membership(worker_id, ttl_s=ttl_s), universe, share, **kwargs)
        self.watchers.append(watcher)
        watcher.start()
        return watcher, share

    def live(self) -> list[str]:
        """The unexpired workers, read directly (score = expiry in ms of the server's clock)."""
        client = self.server.client()
        try:
            seconds, micros = client.time()
            now_ms = seconds * 1000 + micros // 1000
            members = cast(list[bytes], client.zrangebyscore(f"{self.namespace}:workers", f"({now_ms}", "+inf"))
            return sorted(member.decode() for member in members)
        finally:
            client.close()


@pytest.fixture
def fleet(server: RedisServer) -> Iterator[Fleet]:
    made = Fleet(server)
    try:
        yield made
    finally:
        for watcher in made.watchers:
            watcher.stop(timeout_s=2.0, leave=False)
        for member in made.memberships:
            member.close()


def settled(made: list[tuple[ShardWatcher, Share]], universe: Collection[str]) -> bool:
    """Every watcher reads exactly its rendezvous share over these watchers (which then cover the fleet once)."""
    ids = [watcher.worker_id for watcher, _ in made]
    return all(
        share.snapshot() == watcher.owned == assigned(universe, ids, watcher.worker_id) for watcher, share in made
    )


def overlap(shares: list[Share]) -> int:
    """How many cameras more than one of the shares reads."""
    snapshots = [share.snapshot() for share in shares]
    return sum(map(len, snapshots)) - len(frozenset().union(*snapshots))


def exact_cover(shares: list[Share], universe: Collection[str]) -> bool:
    """Every camera read by exactly one of the shares."""
    snapshots = [share.snapshot() for share in shares]
    return frozenset().union(*snapshots) == frozenset(universe) and sum(map(len, snapshots)) == len(universe)


# -- Redis membership ------------------------------------------------------------------------------------------


def test_a_worker_that_stops_heartbeating_expires_after_the_ttl(fleet: Fleet) -> None:
    a, b = fleet.membership("worker-a"), fleet.membership("worker-b")
    a.join()
    b.join()
    joined = time.monotonic()
    assert a.live_workers() == b.live_workers() == ["worker-a", "worker-b"]
    # b stops heartbeating (as after SIGKILL); a keeps going.
    time.sleep(TTL_S / 3)
    assert a.heartbeat() is True
    assert a.live_workers() == ["worker-a", "worker-b"]  # not before the TTL

    def b_gone() -> bool:
        a.heartbeat()
        return a.live_workers() == ["worker-a"]

    assert wait_until(b_gone, timeout_s=2.0, poll_s=0.05)
    assert time.monotonic() - joined >= TTL_S - 0.1
    assert b.heartbeat() is False  # b had expired: registered afresh
    assert b.heartbeat() is True
    assert a.live_workers() == ["worker-a", "worker-b"]


def test_leave_removes_a_worker_at_once_and_the_key_expires(fleet: Fleet) -> None:
    a, b = fleet.membership("worker-a"), fleet.membership("worker-b")
    a.join()
    b.join()
    b.leave()
    assert a.live_workers() == ["worker-a"]
    b.leave()  # not registered: fine
    client = fleet.server.client()
    try:
        # The key outlives its newest member by a second, no more: a dead deployment leaves nothing behind.
        assert 0 < client.pttl(a.key) <= TTL_S * 1000 + 1000
    finally:
        client.close()
    assert a.description == f"redis://***:***@127.0.0.1:{fleet.server.port}/0"


def test_membership_on_a_callers_client(fleet: Fleet) -> None:
    client = fleet.server.client()
    try:
        member = RedisMembership(client, "worker-c", heartbeat_s=0.2, ttl_s=0.6, namespace=fleet.namespace)
        member.join()
        assert member.live_workers() == ["worker-c"]
        assert member.description == f"redis://127.0.0.1:{fleet.server.port}/0"
        member.close()  # the caller's client stays open
        assert client.ping()
        member.leave()
        assert member.live_workers() == []
    finally:
        client.close()
    with pytest.raises(MembershipError, match="invalid namespace"):
        RedisMembership(fleet.server.url, "w", namespace="")
    with pytest.raises(MembershipError, match="invalid Redis URL"):
        RedisMembership(f"redis://:{PASSWORD}@127.0.0.1:notaport/0", "w")


def test_unreachable_redis_fails_fast_with_a_redacted_url() -> None:
    port = free_port()  # nothing listens there
    member = RedisMembership(f"redis://:{PASSWORD}@127.0.0.1:{port}/0", "worker-x", heartbeat_s=0.2, ttl_s=0.6)
    try:
        began = time.monotonic()
        for call in (member.join, member.heartbeat, member.live_workers, member.leave):
            with pytest.raises(MembershipError, match="cannot reach Redis") as info:
                call()
            assert f"redis://***:***@127.0.0.1:{port}/0" in str(info.value)
            assert PASSWORD not in str(info.value)
        assert time.monotonic() - began < 2.0  # no long retry loop
    finally:
        member.close()


# -- shard watchers on Redis -----------------------------------------------------------------------------------


def test_three_watchers_cover_the_fleet_once_and_take_over_a_killed_one(fleet: Fleet) -> None:
    codes = fleet_codes(300)
    ids = ["worker-a", "worker-b", "worker-c"]
    made = [fleet.watcher(worker_id, lambda: codes) for worker_id in ids]
    shares = [share for _, share in made]
    assert wait_until(lambda: settled(made, codes) and fleet.live() == ids)
    assert exact_cover(shares, codes)
    for (watcher, share), worker_id in zip(made, ids, strict=True):
        assert share.snapshot() == watcher.owned == assigned(codes, ids, worker_id)
        assert 60 <= len(watcher.owned) <= 140

    # Kill worker-c: no leave, its readers keep going until the process dies; the others wait for its TTL.
    dead_watcher, dead_share = made[2]
    dead = dead_share.snapshot()
    before = [share.snapshot() for share in shares[:2]]
    assert dead_watcher.stop(timeout_s=2.0, leave=False) is True
    killed = time.monotonic()
    assert wait_until(lambda: settled(made[:2], codes), timeout_s=TTL_S + 3 * HEARTBEAT_S + 2.0)
    took = time.monotonic() - killed
    assert took <= TTL_S + 2 * HEARTBEAT_S + 0.5, took  # TTL + a round, with room for a slow machine
    assert fleet.live() == ids[:2]
    gained = [share.snapshot() - old for share, old in zip(shares[:2], before, strict=True)]
    assert gained[0] | gained[1] == dead  # only the dead worker's cameras moved
    assert all(old <= share.snapshot() for share, old in zip(shares[:2], before, strict=True))


def test_a_clean_stop_hands_over_within_a_round_not_a_ttl(fleet: Fleet) -> None:
    codes = fleet_codes(120)
    long_ttl = 5.0
    made = [fleet.watcher(worker_id, lambda: codes, ttl_s=long_ttl) for worker_id in ("w1", "w2", "w3")]
    shares = [share for _, share in made]
    assert wait_until(lambda: settled(made, codes) and len(fleet.live()) == 3)
    assert made[0][0].stop(timeout_s=2.0) is True  # leaves
    assert fleet.live() == ["w2", "w3"]
    stopped = time.monotonic()
    assert wait_until(lambda: settled(made[1:], codes), timeout_s=long_ttl - 1.0)
    assert exact_cover(shares[1:], codes)
    assert time.monotonic() - stopped <= 2 * HEARTBEAT_S + 1.0


def test_a_joining_worker_overlaps_the_others_for_at_most_a_round(fleet: Fleet) -> None:
    codes = fleet_codes(200)
    first = [fleet.watcher(worker_id, lambda: codes, ttl_s=5.0) for worker_id in ("w1", "w2")]
    shares = [share for _, share in first]
    assert wait_until(lambda: settled(first, codes))
    made = [*first, fleet.watcher("w3", lambda: codes, ttl_s=5.0)]
    newcomer = made[2][1]
    shares.append(newcomer)
    overlap_seen: list[float] = []
    joined = time.monotonic()

    def done() -> bool:
        if overlap(shares):
            overlap_seen.append(time.monotonic() - joined)
        return settled(made, codes)

    assert wait_until(done, poll_s=0.01)
    assert time.monotonic() - joined <= 2 * HEARTBEAT_S + 1.0
    assert newcomer.snapshot() == assigned(codes, ["w1", "w2", "w3"], "w3")
    # The newcomer starts at once; the others drop its cameras at their next round: one period, plus slack.
    assert not overlap_seen or overlap_seen[-1] <= HEARTBEAT_S + 0.6, overlap_seen[-1]


def test_watchers_keep_their_cameras_while_redis_is_down_and_recover_after_a_restart(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ingest")
    codes = fleet_codes(300)
    ids = ["worker-a", "worker-b", "worker-c"]
    # A long settle window: the test checks that the watchers end it early, as soon as their peers are back.
    made = [fleet.watcher(worker_id, lambda: codes, settle_s=3.0) for worker_id in ids]
    watchers = [watcher for watcher, _ in made]
    shares = [share for _, share in made]
    assert wait_until(lambda: settled(made, codes) and all(w.registry_ok for w in watchers))
    before = [share.snapshot() for share in shares]
    calls = [share.call_count() for share in shares]

    fleet.server.kill()  # the worker set is lost with it
    assert wait_until(lambda: not any(w.registry_ok for w in watchers), timeout_s=2.0)
    rounds = [w.rounds for w in watchers]
    # Down for longer than the TTL, so every entry would have expired anyway.
    assert wait_until(lambda: all(w.rounds >= r + 4 for w, r in zip(watchers, rounds, strict=True)))
    assert [share.snapshot() for share in shares] == before  # nothing dropped
    assert [w.owned for w in watchers] == before
    outage = [r for r in caplog.records if "cannot use the worker registry" in r.getMessage()]
    assert sorted(r.getMessage().split()[2] for r in outage) == ids  # one warning per worker, not per round
    assert all(r.levelno == logging.WARNING for r in outage)

    fleet.server.start()  # empty: no workers registered
    assert wait_until(lambda: fleet.live() == ids and all(w.registry_ok and not w.settling for w in watchers))
    rounds = [w.rounds for w in watchers]
    assert wait_until(lambda: all(w.rounds >= r + 2 for w, r in zip(watchers, rounds, strict=True)))
    assert settled(made, codes) and exact_cover(shares, codes)
    assert [share.snapshot() for share in shares] == before
    # The first worker back saw itself alone but held its share until its peers were back: no churn at all.
    assert [share.call_count() for share in shares] == calls
    assert "re-registered" in caplog.text and "all peers are back" in caplog.text
    assert PASSWORD not in caplog.text


def test_a_watcher_started_while_redis_is_down_joins_when_it_is_back(
    fleet: Fleet, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ingest")
    codes = fleet_codes(50)
    fleet.server.kill()
    watcher, share = fleet.watcher("worker-late", lambda: codes)
    assert wait_until(lambda: watcher.rounds >= 3, timeout_s=3.0)
    assert share.snapshot() == frozenset() and not watcher.registry_ok
    assert "reads no cameras until it can join" in caplog.text
    assert f"redis://***:***@127.0.0.1:{fleet.server.port}/0" in caplog.text and PASSWORD not in caplog.text
    fleet.server.start()
    assert wait_until(lambda: share.snapshot() == frozenset(codes) and fleet.live() == ["worker-late"])


def test_stop_from_on_change_does_not_deadlock() -> None:
    local = LocalMembership("solo-3-abcdef", heartbeat_s=0.2)
    calls: list[set[str]] = []

    def on_change(added: set[str], removed: set[str]) -> None:
        calls.append(added)
        assert watcher.stop(timeout_s=1.0) is False  # from its own thread: no join, the thread ends after

    watcher = ShardWatcher(local, lambda: ["c1"], on_change)
    watcher.start()
    try:
        assert wait_until(lambda: local.live_workers() == [] and bool(calls), timeout_s=2.0)
    finally:
        assert watcher.stop(timeout_s=2.0) is True
    assert calls == [{"c1"}]
