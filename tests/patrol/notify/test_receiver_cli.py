"""``campuswatch notify receive``: a real receiver process that shows what arrived, and stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

from click.testing import CliRunner
from pydantic import SecretStr

from campuswatch.cli import main
from config.notify import WebhookChannelConfig
from patrol.notify import ChannelError, make_channel
from patrol.notify.base import Outgoing, Recipient
from tests.servers import free_port


def test_the_receiver_needs_its_secret() -> None:
    result = CliRunner().invoke(main, ["notify", "receive", "--secret-env", "CW_TEST_NO_SUCH_SECRET"])
    assert result.exit_code == 1
    assert "set the webhook secret in the environment variable CW_TEST_NO_SUCH_SECRET" in result.output


def test_the_receiver_command_verifies_and_shows_messages() -> None:
    port = free_port()
    env = {**os.environ, "CAMPUSWATCH_NOTIFY_RECEIVER_SECRET": "cli-secret"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "campuswatch.cli", "notify", "receive", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"listening on http://127.0.0.1:{port}/hook")
        message = Outgoing(
            message_id="0b8e5d4e-2f9c-4d2a-9a55-1f6e3e1c2b11",
            channel="hook",
            kind="test",
            title="Test message from Admin",
            text="Test message from Admin\nhello",
            markdown="hello",
            recipients=(Recipient(1, "Admin"),),
            created_at=datetime.now(UTC),
        )
        url = f"http://127.0.0.1:{port}/hook"
        for attempt in range(50):  # the socket is open before the line is printed; this is belt and braces
            try:
                make_channel(WebhookChannelConfig(name="hook", url=url, secret=SecretStr("cli-secret"))).send(
                    message
                )
                break
            except ChannelError:
                if attempt == 49:
                    raise
                time.sleep(0.1)
        line = proc.stdout.readline()
        assert " ok 0b8e5d4e-2f9c-4d2a-9a55-1f6e3e1c2b11 Test message from Admin" in line
        shown = "".join(iter(proc.stdout.readline, "}\n"))  # the JSON, up to its closing brace
        assert '"title": "Test message from Admin"' in shown
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out
