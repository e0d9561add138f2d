"""Configuration: good files, bad files with file:line:field errors, environment overrides, check-config."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from campuswatch.cli import main
from config import ConfigError, load_settings

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["example.yaml", "demo.yaml"])
def test_shipped_files_are_valid(name: str) -> None:
    settings = load_settings(REPO / "config" / name)
    assert settings.instance.timezone == "Asia/Shanghai"
    assert settings.bus.url.get_secret_value() == "memory://"


def test_defaults_without_a_file(tmp_path: Path) -> None:
    settings = load_settings(None, data_dir=tmp_path)
    assert settings.web.port == 8000
    assert settings.database_url() == f"sqlite:///{tmp_path.resolve() / 'campuswatch.db'}"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cw.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_error_names_file_line_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "instance:\n  name: X\n  timezone: Mars/Olympus\n"
        "web:\n  port: 70000\n  colour: blue\ndemo:\n  districts: 0\n",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    problems = info.value.problems
    assert f"{path}:3: instance.timezone: Value error, unknown timezone 'Mars/Olympus'" in problems[0]
    assert any(p.startswith(f"{path}:5: web.port:") and "65535" in p for p in problems)
    assert any(p.startswith(f"{path}:6: web.colour:") and "Extra inputs" in p for p in problems)
    assert any(p.startswith(f"{path}:8: demo.districts:") for p in problems)
    assert len(problems) == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("web: [1, 2\n", ":2: not valid YAML: expected ',' or ']'"),
        ("- a\n- b\n", ":1: the file must be a mapping of sections"),
        ("web:\n  port: 1\n  port: 2\n", ":3: web.port: duplicate key"),
        ("nosuchsection: {}\n", ":1: nosuchsection: Extra inputs are not permitted"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert expected in str(info.value)


def test_secrets_are_refused_in_the_file_and_accepted_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "storage:\n  database_url: postgresql://cw:hunter2@db/cw\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert f"{path}:2: storage.database_url" in message
    assert "CAMPUSWATCH_STORAGE__DATABASE_URL" in message
    assert "hunter2" not in message

    monkeypatch.setenv("CAMPUSWATCH_STORAGE__DATABASE_URL", "postgresql://cw:hunter2@db/cw")
    settings = load_settings(None)
    assert settings.database_url() == "postgresql://cw:hunter2@db/cw"
    assert "hunter2" not in repr(settings)


def test_environment_overrides_the_file_and_names_itself_in_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "web:\n  port: 8001\n")
    monkeypatch.setenv("CAMPUSWATCH_WEB__PORT", "9001")
    monkeypatch.setenv("CAMPUSWATCH_DATA_DIR", str(tmp_path / "d"))
    settings = load_settings(path)
    assert settings.web.port == 9001
    assert settings.data_dir == tmp_path / "d"
    monkeypatch.setenv("CAMPUSWATCH_WEB__PORT", "not-a-port")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    # The bad value came from the environment, not from line 2 of the file... but the file names the key too.
    assert "web.port" in str(info.value)


def test_keyword_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CAMPUSWATCH_DATA_DIR", "/nonexistent/env")
    assert load_settings(None, data_dir=tmp_path).data_dir == tmp_path


def test_check_config_command(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(main, ["check-config", str(REPO / "config" / "example.yaml")])
    assert good.exit_code == 0, good.output
    assert "OK" in good.output
    bad_path = _write(tmp_path, "web:\n  port: -1\n")
    bad = runner.invoke(main, ["check-config", str(bad_path)])
    assert bad.exit_code == 1
    assert f"{bad_path}:2: web.port" in bad.output
    missing = runner.invoke(main, ["check-config", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 1
    assert "cannot read" in missing.output


def test_analytics_rule_errors_name_the_camera_line(tmp_path: Path) -> None:
    config = tmp_path / "rules.yaml"
    config.write_text(
        "analytics:\n"
        "  cameras:\n"
        "    CAM1:\n"
        "      zones: [{name: yard, polygon: [[0, 0.5], [1, 0.5], [1, 1]]}]\n"
        "      rules:\n"
        "        - {type: intrusion, name: night, zone: roof}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert f"{config}:3: analytics.cameras.CAM1" in message  # the line of "CAM1:"
    assert "rule 'night' names zone 'roof'" in message
    settings = load_settings(REPO / "config" / "example.yaml")
    assert settings.analytics.cameras["37020200010013200005"].rules[0].type == "intrusion"
    assert settings.models_dir() == (settings.data_dir / "models").resolve()


def test_local_times_have_one_timezone(tmp_path: Path) -> None:
    config = _write(tmp_path, "instance:\n  timezone: Asia/Tokyo\nanalytics:\n  enabled: true\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    assert f"{config}:3: analytics" in str(caught.value)
    assert "analytics.calendar.timezone 'Asia/Shanghai' differs from instance.timezone 'Asia/Tokyo'" in str(
        caught.value
    )
    both = _write(tmp_path, "instance:\n  timezone: Asia/Tokyo\nanalytics:\n  calendar: {timezone: Asia/Tokyo}\n")
    assert load_settings(both).patrol.report.at.hour == 8
