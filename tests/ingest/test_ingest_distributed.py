"""Sharded ingest end to end: three real ``campuswatch ingest`` processes, a private Redis, the real PostgreSQL.

Twelve simulated cameras (real RTSP) are shared by three worker processes through rendezvous hashing over the
Redis membership set. The tests break things the way production does — a worker SIGKILLed, Redis SIGKILLed and
started again with an empty memory — and check what the duty room would see in the database: every camera online,
read by the worker that rendezvous hashing names (``camera_health.worker_id``), its row fresh, and each camera
read by exactly one worker (the simulator counts the RTSP connections).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from campuswatch.database import upgrade
from ingest.membership import DEFAULT_NAMESPACE
from ingest.models import HealthReason, HealthState, StreamFigures
from ingest.recorder import HealthRecorder
from ingest.sharding import owners
from ingest.simulator import CameraSimulator, ClipLibrary, build_camera_specs
from ingest.tables import CameraHealth, CameraHealthTransition
from kernel.bus import InMemoryBus
from kernel.clock import utcnow
from kernel.db import make_engine, make_session_factory, session_scope
from kernel.secrets import SecretBox
from registry.fleet_file import FleetRow
from registry.fleet_io import import_rows
from registry.generate import generate_fleet
from registry.models import Camera
from tests.servers import RedisServer, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
MEMBERSHIP_KEY = f"{DEFAULT_NAMESPACE}:workers"  # see ingest/membership.py: one sorted set, scores = expiry (ms)
WORKERS = 3
FLEET_SEED = 4242
REGISTER_S = 40.0  # process start-up (imports: ~2.5 s of CPU each; generous for a loaded 2-CPU test machine)
SETTLE_S = 20.0  # from the three workers registering until every camera is online with its owner
FAILOVER_S = 10.0  # the rule: a killed worker's cameras are read again within 10 s
REDIS_RECOVERY_S = 15.0
STOP_S = 15.0
ATTRIBUTION_S = 4.0  # several figures_every_s periods: time enough for a row to be corrected
CONFIG = """\
data_dir: {data_dir}
bus:
  url: redis://127.0.0.1:{redis_port}/0
logging:
  level: INFO
ingest:
  heartbeat_s: 0.5
  heartbeat_ttl_s: 1.5
  read_timeout_s: 2
  open_timeout_s: 2
  backoff_initial_s: 0.3
  backoff_max_s: 2
  figures_every_s: 1
  fleet_refresh_s: 2
"""


def poll(check: Callable[[], str | None], timeout_s: float, interval_s: float = 0.1) -> str | None:
    """Call ``check`` until it returns ``None`` (done) or ``timeout_s`` passes; returns its last complaint."""
    deadline = time.monotonic() + timeout_s
    while True:
        complaint = check()
        if complaint is None or time.monotonic() >= deadline:
            return complaint
        time.sleep(interval_s)


# -- a private Redis server ------------------------------------------------------------------------------------


def live_workers(server: RedisServer) -> list[str]:
    """The members of the membership set that have not expired, by the Redis server's clock."""
    client = server.client()
    try:
        seconds, micros = client.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        members = client.zrangebyscore(MEMBERSHIP_KEY, f"({now_ms}", "+inf")
        return sorted(m.decode() if isinstance(m, bytes) else str(m) for m in members)
    finally:
        client.close()


# -- worker processes ------------------------------------------------------------------------------------------


def pid_of(worker_id: str) -> int:
    """The pid inside a worker id ``<host>-<pid>-<hex>`` (see ``ingest.membership.new_worker_id``)."""
    return int(worker_id.rsplit("-", 2)[1])


@dataclass
class Cluster:
    """Ingest worker processes (``python -m campuswatch.cli ingest``) and the views the tests check them by."""

    config_file: Path
    env: dict[str, str]
    log_dir: Path
    redis_server: RedisServer
    simulator: CameraSimulator
    factory: sessionmaker[Session]
    codes: list[str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: dict[int, Path] = field(default_factory=dict)

    # -- processes -----------------------------------------------------------------------------------------------

    def spawn(self) -> subprocess.Popen[bytes]:
        log_path = self.log_dir / f"worker-{len(self.logs) + 1}.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "campuswatch.cli", "ingest", "--config", str(self.config_file)],
                env=self.env,
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs.append(proc)
        self.logs[proc.pid] = log_path
        return proc

    def proc(self, worker_id: str) -> subprocess.Popen[bytes]:
        pid = pid_of(worker_id)
        return next(p for p in self.procs if p.pid == pid)

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def terminate(self, procs: list[subprocess.Popen[bytes]], timeout_s: float = STOP_S) -> dict[int, int | None]:
        """SIGTERM ``procs`` together; their exit codes (None: still running after ``timeout_s``)."""
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        codes: dict[int, int | None] = {}
        for proc in procs:
            try:
                codes[proc.pid] = proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                codes[proc.pid] = None
        return codes

    def kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL is not refused; just bounded
                proc.wait(5)

    # -- views -------------------------------------------------------------------------------------------------

    def rows(self) -> dict[str, CameraHealth]:
        """The ``camera_health`` row of every camera that has one, by camera code."""
        with session_scope(self.factory) as session:
            result = session.execute(
                select(Camera.code, CameraHealth).join(CameraHealth, Camera.id == CameraHealth.camera_id)
            )
            return dict(result.tuples().all())

    def transitions_since(self, since: datetime) -> list[tuple[str, str, str, str]]:
        """(code, state, worker_id, at) of every health transition stored at or after ``since``."""
        with session_scope(self.factory) as session:
            result = session.execute(
                select(Camera.code, CameraHealthTransition)
                .join(CameraHealthTransition, Camera.id == CameraHealthTransition.camera_id)
                .where(CameraHealthTransition.at >= since)
                .order_by(CameraHealthTransition.at)
            )
            return [(c, t.state.value, t.worker_id, t.at.isoformat()) for c, t in result.tuples()]

    def live_workers(self) -> list[str]:
        try:
            return live_workers(self.redis_server)
        except redis.RedisError:
            return []

    def rtsp_clients(self) -> int:
        return self.simulator.stats().clients

    def reading_problem(self, *, updated_after: datetime | None = None) -> str | None:
        """``None`` when every camera is online, its row (optionally) fresh, and the simulator serves exactly one
        RTSP connection per camera; else what is wrong."""
        rows = self.rows()
        wrong = []
        for code in self.codes:
            row = rows.get(code)
            if row is None:
                wrong.append(f"{code}: no row")
            elif row.state is not HealthState.ONLINE:
                wrong.append(f"{code}: {row.state.value} ({row.reason.value} {row.detail})")
            elif updated_after is not None and row.updated_at <= updated_after:
                wrong.append(
                    f"{code}: not updated since {updated_after.isoformat()} ({row.updated_at.isoformat()})"
                )
        if wrong:
            return "; ".join(wrong)
        clients = self.rtsp_clients()
        if clients != len(self.codes):
            return f"{clients} RTSP connections for {len(self.codes)} cameras (each should be read exactly once)"
        return None

    def attribution_problem(self, expected: dict[str, str]) -> str | None:
        """``None`` when every camera's row names its rendezvous owner ``expected[code]``; else the others."""
        rows = self.rows()
        wrong = [
            f"{code}: row names {rows[code].worker_id}, read by {owner}"
            for code, owner in sorted(expected.items())
            if code in rows and rows[code].worker_id != owner
        ]
        return "; ".join(wrong) or None

    def coverage_problem(self, expected: dict[str, str], *, updated_after: datetime | None = None) -> str | None:
        """Both of the above."""
        return self.reading_problem(updated_after=updated_after) or self.attribution_problem(expected)

    def report(self) -> str:
        """Everything useful for a failure: live set, rows, RTSP connections, each worker's exit code and log."""
        lines = [f"live workers in Redis: {self.live_workers()}", f"RTSP connections: {self.rtsp_clients()}"]
        for code, row in sorted(self.rows().items()):
            lines.append(f"  {code} {row.state.value:8} {row.worker_id} updated {row.updated_at.isoformat()}")
        for proc in self.procs:
            log = self.logs[proc.pid].read_text(errors="replace").splitlines()
            lines.append(f"--- worker pid {proc.pid}, exit code {proc.poll()}, last log lines:")
            lines.extend(log[-25:])
        return "\n".join(lines)

    # -- settling ------------------------------------------------------------------------------------------------

    def start_settled(self) -> dict[str, str]:
        """Start the workers and wait until each reads a non-empty share and every camera is online with its owner.

        Worker ids are random, so rendezvous hashing may leave one of three workers without any of the 12
        cameras (about 2 % of runs); such a worker is replaced by a fresh one (new id) so that all three read.
        Returns camera code → owning worker id.
        """
        for _ in range(WORKERS):
            self.spawn()
        for _attempt in range(4):
            complaint = poll(self._three_live, REGISTER_S)
            if complaint is not None:
                pytest.fail(
                    f"the {WORKERS} workers did not register in Redis within {REGISTER_S} s of starting: "
                    f"{complaint}\n{self.report()}"
                )
            live = self.live_workers()
            expected = owners(self.codes, live)
            idle = [w for w in live if w not in expected.values()]
            if not idle:
                break
            self.terminate([self.proc(w) for w in idle], timeout_s=STOP_S)
            for _ in idle:
                self.spawn()
        else:
            pytest.fail(f"could not get {WORKERS} workers that each own a camera\n{self.report()}")
        deadline = time.monotonic() + SETTLE_S
        assert len(set(expected.values())) == WORKERS
        complaint = poll(self.reading_problem, max(0.0, deadline - time.monotonic()))
        assert complaint is None, (
            f"within {SETTLE_S} s of the workers registering, every camera should be online and read by exactly "
            f"one worker: "
            f"{complaint}\n{self.report()}"
        )
        # The hand-over of the cold start (the first worker briefly reads everything) must leave every row naming
        # the worker that reads the camera: the console shows it as "Ingest worker reading the camera".
        complaint = poll(
            lambda: self.attribution_problem(expected), max(ATTRIBUTION_S, deadline - time.monotonic())
        )
        assert complaint is None, (
            f"BUG (ingest/recorder.py): camera_health.worker_id names a worker that does not read the camera, "
            f"although the reading worker refreshes the row every figures_every_s: {complaint}. A late "
            f"transition from the camera's previous holder (a reader retired during the hand-over still reported "
            f"its keyframe) overwrote the row, and HealthRecorder._store_figures never writes worker_id, so the "
            f"row is never corrected (see test_health_row_names_the_reader_after_a_late_report_from_the_previous_"
            f"holder)"
            f"\n{self.report()}"
        )
        return expected

    def _three_live(self) -> str | None:
        dead = {p.pid: p.returncode for p in self.procs if p.poll() is not None and p.returncode != 0}
        if dead:
            pytest.fail(f"worker processes exited (pid: code): {dead}\n{self.report()}")
        live = self.live_workers()
        ours = {p.pid for p in self.alive()}
        if len(live) != WORKERS or {pid_of(w) for w in live} != ours:
            return f"live set {live}, worker pids {sorted(ours)}"
        return None


# -- fixtures --------------------------------------------------------------------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def fleet_rows() -> list[dict[str, str]]:
    """Twelve cameras (1 district, 3 schools, 4 cameras each) as a fleet file would hold them."""
    return generate_fleet(1, 3, 4, FLEET_SEED)


@pytest.fixture
def simulator(
    fleet_rows: list[dict[str, str]], sim_clips: ClipLibrary, tmp_path: Path
) -> Iterator[CameraSimulator]:
    codes = [row["camera_code"] for row in fleet_rows]
    sim = CameraSimulator(build_camera_specs(codes), cache_dir=tmp_path / "unused-clips", port=0, clips=sim_clips)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop(timeout_s=4.0)


def seed_fleet(
    engine: Engine, rows: list[dict[str, str]], camera_url: Callable[[str], str], data_dir: Path
) -> None:
    """Migrate and import ``rows`` with each main stream at ``camera_url(code)`` and no credentials."""
    upgrade(engine)
    rows = [
        {**row, "main_url": camera_url(row["camera_code"]), "sub_url": "", "username": "", "password": ""}
        for row in rows
    ]
    data_dir.mkdir(parents=True, exist_ok=True)
    with session_scope(make_session_factory(engine)) as session:
        result = import_rows(
            session,
            [FleetRow(n, row) for n, row in enumerate(rows, start=2)],
            SecretBox.for_data_dir(data_dir),  # creates <data_dir>/secret.key, shared by every worker
            source="test",
        )
    assert result.cameras.created == len(rows), result.summary()


@pytest.fixture
def database(
    postgres_schema_url: tuple[str, str],
    fleet_rows: list[dict[str, str]],
    simulator: CameraSimulator,
    tmp_path: Path,
) -> Iterator[tuple[str, Engine]]:
    """The fresh PostgreSQL schema, migrated, holding the 12 cameras pointed at the simulator (no credentials)."""
    url, _schema = postgres_schema_url
    engine = make_engine(url)
    try:
        seed_fleet(engine, fleet_rows, simulator.url, tmp_path / "data")
        yield url, engine
    finally:
        engine.dispose()


@pytest.fixture
def cluster(
    database: tuple[str, Engine],
    redis_server: RedisServer,
    simulator: CameraSimulator,
    fleet_rows: list[dict[str, str]],
    tmp_path: Path,
) -> Iterator[Cluster]:
    """No worker yet; every worker started through it is killed at teardown, whatever happened."""
    url, engine = database
    config_file = tmp_path / "ingest.yaml"
    config_file.write_text(
        CONFIG.format(data_dir=tmp_path / "data", redis_port=redis_server.port), encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAMPUSWATCH_")}
    env.update(CAMPUSWATCH_STORAGE__DATABASE_URL=url, PYTHONUNBUFFERED="1")
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    cluster = Cluster(
        config_file=config_file,
        env=env,
        log_dir=log_dir,
        redis_server=redis_server,
        simulator=simulator,
        factory=make_session_factory(engine),
        codes=[row["camera_code"] for row in fleet_rows],
    )
    try:
        yield cluster
    finally:
        cluster.kill_all()


# -- the tests -------------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.rtsp
def test_sigkilled_worker_cameras_move_to_the_others_within_10_s(cluster: Cluster) -> None:
    expected = cluster.start_settled()
    workers = sorted(set(expected.values()))
    victim = max(workers, key=lambda w: sum(1 for owner in expected.values() if owner == w))
    survivors = [w for w in workers if w != victim]
    orphaned = sorted(code for code, owner in expected.items() if owner == victim)
    kept = sorted(code for code, owner in expected.items() if owner != victim)
    after = owners(cluster.codes, survivors)

    killed_at = utcnow()
    began = time.monotonic()
    victim_proc = cluster.proc(victim)
    victim_proc.send_signal(signal.SIGKILL)
    victim_proc.wait(5)

    def moved() -> str | None:
        rows = cluster.rows()
        wrong = []
        for code in orphaned:
            row = rows[code]
            if row.state is not HealthState.ONLINE or row.worker_id == victim or row.updated_at < killed_at:
                wrong.append(f"{code}: {row.state.value} by {row.worker_id} at {row.updated_at.isoformat()}")
        return "; ".join(wrong) or None

    complaint = poll(moved, FAILOVER_S)
    took = time.monotonic() - began
    assert complaint is None, (
        f"the {len(orphaned)} cameras of the SIGKILLed worker {victim} should be online under another worker "
        f"within {FAILOVER_S} s of the kill: {complaint}\n{cluster.report()}"
    )
    assert took <= FAILOVER_S
    # Rendezvous hashing: each orphan goes to its runner-up, the survivors keep what they had, nobody reads twice.
    complaint = poll(lambda: cluster.coverage_problem(after, updated_after=killed_at), 3.0)
    assert complaint is None, f"after the fail-over: {complaint}\n{cluster.report()}"
    assert all(after[code] == expected[code] for code in kept)
    # Every transition since the kill comes from the camera's new owner: nothing else changed hands.
    strays = [t for t in cluster.transitions_since(killed_at) if t[2] != after[t[0]]]
    assert strays == [], f"transitions from workers that do not own the camera: {strays}\n{cluster.report()}"
    assert cluster.live_workers() == survivors, "the killed worker should have expired from the membership set"
    alive = cluster.alive()
    assert sorted(pid_of(w) for w in survivors) == sorted(p.pid for p in alive), cluster.report()

    began = time.monotonic()
    codes = cluster.terminate(alive, timeout_s=STOP_S)
    assert codes == {p.pid: 0 for p in alive}, (
        f"SIGTERM should stop every worker with exit code 0 within {STOP_S} s: {codes}\n{cluster.report()}"
    )
    assert time.monotonic() - began <= STOP_S
    assert cluster.live_workers() == [], "a worker stopped by SIGTERM should leave the membership set"
    assert poll(lambda: None if cluster.rtsp_clients() == 0 else "connections open", 3.0) is None, (
        f"stopped workers should close their RTSP connections: {cluster.rtsp_clients()} still open"
    )


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.rtsp
def test_redis_restart_keeps_every_camera_read_exactly_once(cluster: Cluster) -> None:
    expected = cluster.start_settled()
    workers = sorted(set(expected.values()))

    running = cluster.alive()
    outage_at = utcnow()
    cluster.redis_server.kill()
    # Down for 2 s, longer than the 1.5 s TTL: every registration would have expired anyway. Meanwhile each
    # worker keeps reading its share (a single stream reconnecting may lower a sample; nothing may raise it).
    samples = []
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        samples.append(cluster.rtsp_clients())
        time.sleep(0.2)
    dead = {p.pid: p.returncode for p in running if p.poll() is not None}
    assert dead == {}, f"workers exited while Redis was down (pid: code): {dead}\n{cluster.report()}"
    full = sum(1 for n in samples if n == len(cluster.codes))
    assert max(samples) <= len(cluster.codes) and full >= len(samples) // 2, (
        f"while Redis is down every worker should keep reading its cameras, and only those: RTSP connections "
        f"sampled {samples}\n{cluster.report()}"
    )
    cluster.redis_server.start()
    restarted_at = utcnow()
    began = time.monotonic()

    def recovered() -> str | None:
        live = cluster.live_workers()
        if live != workers:
            return f"live set {live}, expected the same {WORKERS} workers {workers}"
        return cluster.coverage_problem(expected, updated_after=restarted_at)

    complaint = poll(recovered, REDIS_RECOVERY_S)
    assert complaint is None, (
        f"within {REDIS_RECOVERY_S} s of the Redis restart the same {WORKERS} workers should be live again and "
        f"every camera online, freshly updated and read once by its owner: {complaint}\n{cluster.report()}"
    )
    assert time.monotonic() - began <= REDIS_RECOVERY_S

    # A few more heartbeats (beyond the 1.5 s settle period): the share holds, nobody takes the whole fleet.
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        live, clients = cluster.live_workers(), cluster.rtsp_clients()
        assert live == workers, f"live set changed after the restart: {live}\n{cluster.report()}"
        # A reconnect of one stream may briefly lower the count; a second reader of a camera would raise it.
        assert clients <= len(cluster.codes), f"{clients} RTSP connections after the restart\n{cluster.report()}"
        time.sleep(0.2)
    # No camera changed hands: every transition since the outage (a stream may reconnect) is its owner's.
    strays = [t for t in cluster.transitions_since(outage_at) if t[2] != expected[t[0]]]
    assert strays == [], (
        f"no camera should be read by another worker through a Redis restart, yet: {strays}\n{cluster.report()}"
    )
    dead = {p.pid: p.returncode for p in running if p.poll() is not None}
    assert dead == {}, f"workers exited after the Redis restart (pid: code): {dead}\n{cluster.report()}"

    codes = cluster.terminate(running, timeout_s=STOP_S)
    assert codes == {p.pid: 0 for p in running}, (
        f"SIGTERM should stop every worker with exit code 0 within {STOP_S} s: {codes}\n{cluster.report()}"
    )


@pytest.mark.postgres
def test_health_row_names_the_reader_after_a_late_report_from_the_previous_holder(
    postgres_schema_url: tuple[str, str], fleet_rows: list[dict[str, str]], tmp_path: Path
) -> None:
    """The race the cold start above runs into, made deterministic with two workers' recorders on one database.

    A camera changes hands (a worker joined): the new holder's reader reports ``online`` and its recorder
    commits first; the retired reader of the previous holder had a keyframe in flight and its ``online`` is
    committed at that worker's next flush, later. From then on only the new holder reads the camera and refreshes
    its row every ``figures_every_s``: the row must name it.
    """
    url, _schema = postgres_schema_url
    engine = make_engine(url)
    try:
        seed_fleet(engine, fleet_rows, "rtsp://127.0.0.1:9/{}".format, tmp_path / "data")
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            ids = dict(session.execute(select(Camera.code, Camera.id)).tuples().all())
        code = fleet_rows[0]["camera_code"]
        reading = {
            code: StreamFigures(bitrate_kbps=512.0, fps=15.0, width=640, height=360, last_frame_at=utcnow())
        }
        bus = InMemoryBus()

        def recorder(worker_id: str, figures: dict[str, StreamFigures]) -> HealthRecorder:
            # Long periods: only stop() flushes (with the figures), so the order of the commits is the test's.
            rec = HealthRecorder(
                factory,
                bus,
                worker_id=worker_id,
                camera_ids=lambda: ids,
                figures=lambda: figures,
                flush_s=60.0,
                figures_every_s=60.0,
            )
            rec.start()
            return rec

        previous = recorder("worker-previous", {})  # its reader of the camera was retired in the hand-over
        holder = recorder("worker-holder", reading)
        previous.transition(code, HealthState.ONLINE, HealthReason.OK, "")  # the keyframe in flight
        holder.transition(code, HealthState.ONLINE, HealthReason.OK, "")
        holder.stop()  # the new holder commits first ...
        previous.stop()  # ... the previous holder's flush lands later
        refreshed_after = utcnow()
        recorder("worker-holder", reading).stop()  # the holder's next flush: its figures for the camera

        with session_scope(factory) as session:
            row = session.get(CameraHealth, ids[code])
        assert row is not None
        assert row.state is HealthState.ONLINE
        assert row.updated_at > refreshed_after, "the holder's figures flush should have refreshed the row"
        assert row.worker_id == "worker-holder", (
            f"BUG (ingest/recorder.py): the row of {code}, refreshed by worker-holder (the only worker reading "
            f"it), names {row.worker_id!r}: HealthRecorder._store_transition lets a late transition of the "
            f"previous holder overwrite the row, and _store_figures never writes worker_id, so it is never "
            f"corrected"
        )
    finally:
        engine.dispose()
