"""``campuswatch notify``: the notifier's command-line tools."""

from __future__ import annotations

import json
import os
import signal
import threading

import click

from patrol.notify.receiver import Received, WebhookReceiver

SECRET_ENV = "CAMPUSWATCH_NOTIFY_RECEIVER_SECRET"  # noqa: S105 (a variable name, not a secret)


@click.group("notify")
def notify_group() -> None:
    """Duty-phone alerts: tools for the notifier's channels."""


@notify_group.command("receive")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=9010, show_default=True, help="Port (0: any free).")
@click.option(
    "--secret-env",
    default=SECRET_ENV,
    show_default=True,
    help="Environment variable holding the webhook channel's HMAC secret.",
)
def receive(host: str, port: int, secret_env: str) -> None:
    """Run a local webhook receiver that checks the signature and shows each message as it arrives."""
    secret = os.environ.get(secret_env, "")
    if not secret:
        raise click.ClickException(f"set the webhook secret in the environment variable {secret_env}")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda _s, _f: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def show(hit: Received) -> None:
        state = "duplicate" if hit.duplicate else ("ok" if hit.verified else f"REFUSED ({hit.error})")
        title = hit.body.get("title", "")
        click.echo(f"{hit.received_at.isoformat(timespec='milliseconds')} {state} {hit.message_id} {title}")
        if hit.verified and not hit.duplicate:
            click.echo(json.dumps(hit.body, ensure_ascii=False, indent=2))

    try:
        receiver = WebhookReceiver(secret, host=host, port=port, on_receive=show)
    except OSError as err:
        raise click.ClickException(f"cannot listen on {host}:{port}: {err}") from err
    receiver.start()
    click.echo(f"listening on {receiver.url} (Ctrl-C to stop)")
    try:
        stop.wait()
    finally:
        receiver.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
