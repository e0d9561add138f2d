"""Encryption at rest and redaction of credentials."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from kernel.errors import SecretsError
from kernel.secrets import (
    SECRET_KEY_ENV,
    RedactingFilter,
    SecretBox,
    load_or_create_key,
    redact_text,
    redact_url,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "rtsp://admin:S3cr3t!@10.0.0.5:554/Streaming/Channels/101",
            "rtsp://***:***@10.0.0.5:554/Streaming/Channels/101",
        ),
        ("rtsp://admin@10.0.0.5/live", "rtsp://***@10.0.0.5/live"),
        ("rtsp://10.0.0.5/cam?channel=1&password=S3cr3t", "rtsp://10.0.0.5/cam?channel=1&password=***"),
        (
            "rtsp://10.0.0.5/cam/realmonitor?channel=1&subtype=0",
            "rtsp://10.0.0.5/cam/realmonitor?channel=1&subtype=0",
        ),
        ("redis://:pw@redis:6379/0", "redis://***:***@redis:6379/0"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_text_finds_urls_inside_messages() -> None:
    text = "open 'rtsp://admin:S3cr3t@10.0.0.5/x' failed; retry rtsp://u:p%40ss@h/y?token=abc"
    out = redact_text(text, secrets=("extra-secret",))
    assert "S3cr3t" not in out
    assert "p%40ss" not in out
    assert "abc" not in out
    assert "rtsp://***:***@10.0.0.5/x" in out
    assert redact_text("no secrets: extra-secret", ("extra-secret",)) == "no secrets: ***"


def test_logging_filter_redacts_messages_and_exceptions(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("cw.test.redact")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="cw.test.redact"):
        logger.info("connecting to %s", "rtsp://admin:S3cr3t@cam/1")
        try:
            raise ConnectionError("refused: rtsp://admin:S3cr3t@cam/1")
        except ConnectionError:
            logger.exception("camera failed")
    text = caplog.text
    assert "S3cr3t" not in text
    assert "rtsp://***:***@cam/1" in text


def test_key_file_is_created_private_and_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_KEY_ENV, raising=False)
    key = load_or_create_key(tmp_path)
    path = tmp_path / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(tmp_path) == key
    box = SecretBox(key)
    token = box.encrypt("S3cr3t!")
    assert "S3cr3t" not in token
    assert SecretBox.for_data_dir(tmp_path).decrypt(token) == "S3cr3t!"
    os.chmod(path, 0o644)
    with pytest.raises(SecretsError, match="readable by others"):
        load_or_create_key(tmp_path)


def test_key_from_environment_and_wrong_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_KEY_ENV, Fernet.generate_key().decode())
    token = SecretBox.for_data_dir(tmp_path).encrypt("pw")
    assert not (tmp_path / "secret.key").exists()
    monkeypatch.setenv(SECRET_KEY_ENV, Fernet.generate_key().decode())
    with pytest.raises(SecretsError, match="wrong or rotated"):
        SecretBox.for_data_dir(tmp_path).decrypt(token)
    monkeypatch.setenv(SECRET_KEY_ENV, "too-short")
    with pytest.raises(SecretsError, match=f"environment variable {SECRET_KEY_ENV}"):
        load_or_create_key(tmp_path)
