"""The console's rules file: atomic per-camera writes, errors naming the line, and its place over the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError
from config.rules import CameraRulesConfig
from config.rules_file import effective_rules, read_rules_file, write_camera_rules

ZONE = {"name": "yard", "polygon": [[0, 0], [1, 0], [1, 1]]}


def rules(name: str) -> CameraRulesConfig:
    return CameraRulesConfig.model_validate(
        {"zones": [ZONE], "rules": [{"type": "intrusion", "name": name, "zone": "yard", "when": "always"}]}
    )


def test_writes_keep_the_other_cameras(tmp_path: Path) -> None:
    path = tmp_path / "data" / "camera_rules.yaml"
    assert read_rules_file(path) == {}
    write_camera_rules(path, "A", rules("a"))
    write_camera_rules(path, "B", rules("b"))
    write_camera_rules(path, "A", rules("a2"))
    stored = read_rules_file(path)
    assert {code: c.rules[0].name for code, c in stored.items()} == {"A": "a2", "B": "b"}
    assert path.read_text(encoding="utf-8").startswith("# Zones, lines and rules")
    write_camera_rules(path, "A", None)
    assert set(read_rules_file(path)) == {"B"}
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_bad_file_names_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "camera_rules.yaml"
    path.write_text("cameras:\n  A:\n    zones:\n      - {name: z, polygon: [[0, 0], [2, 0], [1, 1]]}\n", "utf-8")
    with pytest.raises(ConfigError) as info:
        read_rules_file(path)
    assert f"{path}:4: cameras.A.zones.0.polygon.1.0" in str(info.value)
    with pytest.raises(ConfigError):
        write_camera_rules(path, "B", rules("b"))
    assert "[2, 0]" in path.read_text(encoding="utf-8")  # left as it was


def test_console_entries_replace_configured_ones() -> None:
    configured = {"A": rules("from config"), "B": rules("b")}
    console = {"A": CameraRulesConfig(), "C": rules("c")}
    merged = effective_rules(configured, console)
    assert sorted(merged) == ["B", "C"]  # A's configured rules switched off by an empty entry
