"""``campuswatch ingest`` as a real process runs the analytics of its cameras: events stored with evidence, for
rules in the config file and for rules the console gives cameras of a fresh install while the process runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from analytics.tables import SafetyEvent
from campuswatch.database import upgrade
from config.rules import CameraRulesConfig
from config.rules_file import rules_file_path, write_camera_rules
from ingest.simulator import CameraSchedule, CameraSimulator, ClipLibrary, SceneKind, build_camera_specs
from kernel.db import make_engine, make_session_factory, session_scope
from kernel.secrets import SecretBox
from registry.fleet_file import FleetRow
from registry.fleet_io import import_rows
from registry.generate import generate_fleet

RULES = {
    "zones": [{"name": "yard", "polygon": [[0, 0.58], [1, 0.58], [1, 1], [0, 1]]}],
    "rules": [{"type": "intrusion", "name": "night", "zone": "yard"}],
}


@pytest.mark.parametrize("rules_from", ["config", "console"])
def test_ingest_process_raises_events(
    tmp_path: Path, sim_clips: ClipLibrary, models_dir: Path, rules_from: str
) -> None:
    rows = generate_fleet(1, 1, 2, seed=21)
    walkers, empty = (row["camera_code"] for row in rows)
    schedules = {walkers: CameraSchedule.showing(SceneKind.PEOPLE_WALKING)}
    simulator = CameraSimulator(
        build_camera_specs([walkers, empty], schedules), cache_dir=tmp_path / "c", port=0, clips=sim_clips
    )
    simulator.start()
    config = tmp_path / "ingest.yaml"
    cameras = (
        "  cameras:\n"
        f"    '{walkers}': &rules\n"
        "      zones: [{name: yard, polygon: [[0, 0.58], [1, 0.58], [1, 1], [0, 1]]}]\n"
        "      rules: [{type: intrusion, name: night, zone: yard}]\n"
        f"    '{empty}': *rules\n"
    )
    config.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        "analytics:\n"
        f"  models_dir: {models_dir}\n"
        "  calendar: {holidays: [{start: 2000-01-01, end: 2099-12-31}]}\n"
        + (cameras if rules_from == "config" else ""),
        encoding="utf-8",
    )
    (tmp_path / "data").mkdir()
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'campuswatch.db'}")
    process: subprocess.Popen[str] | None = None
    try:
        upgrade(engine)
        factory = make_session_factory(engine)
        for row in rows:
            row.update(main_url=simulator.url(row["camera_code"]), sub_url="", username="", password="")
        with session_scope(factory) as session:
            box = SecretBox.for_data_dir(tmp_path / "data")
            import_rows(session, [FleetRow(i + 2, r) for i, r in enumerate(rows)], box, source="test")
        process = subprocess.Popen(
            [sys.executable, "-m", "campuswatch.cli", "ingest", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONFAULTHANDLER": "1"},
        )
        if rules_from == "console":
            # A fresh install: no camera has rules when the process starts; the console's rules editor then
            # writes the rules file (what PUT /api/cameras/{code}/rules does), and analytics must start.
            time.sleep(3.0)
            for code in (walkers, empty):
                write_camera_rules(
                    rules_file_path(tmp_path / "data"), code, CameraRulesConfig.model_validate(RULES)
                )
        deadline = time.monotonic() + 30
        events: list[SafetyEvent] = []
        while time.monotonic() < deadline and not events:
            time.sleep(0.5)
            with session_scope(factory) as session:
                events = list(session.scalars(select(SafetyEvent)))
                session.expunge_all()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.communicate()
        simulator.stop()
        engine.dispose()
    assert process.returncode == 0, output
    if rules_from == "config":
        assert "with analytics" in output
    else:
        assert "no camera has analytics rules yet" in output and "analytics started" in output, output[-3000:]
    assert [(e.type, e.evidence_jpeg is not None) for e in events] == [("intrusion", True)], output[-3000:]
