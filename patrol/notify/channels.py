"""The channel plugins by config ``type``, and building the configured channels."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from config.notify import (
    ChannelConfig,
    DingTalkChannelConfig,
    EmailChannelConfig,
    SmsChannelConfig,
    WebhookChannelConfig,
    WeComChannelConfig,
)
from patrol.notify.base import Channel, Outgoing, Recipient, SendResult
from patrol.notify.errors import ChannelDisabledError, UnknownChannelError
from patrol.notify.gateways import EmailChannel, SmsChannel, WebhookChannel
from patrol.notify.robots import DingTalkChannel, WeComChannel

AnyChannel = Channel[Any]
"""A channel of any type."""

__all__ = [
    "AnyChannel",
    "Channel",
    "Outgoing",
    "Recipient",
    "SendResult",
    "get_channel",
    "make_channel",
    "make_channels",
]


def make_channel(config: ChannelConfig) -> AnyChannel:
    """The channel for one config model."""
    channel: AnyChannel
    match config:
        case DingTalkChannelConfig():
            channel = DingTalkChannel(config)
        case WeComChannelConfig():
            channel = WeComChannel(config)
        case WebhookChannelConfig():
            channel = WebhookChannel(config)
        case SmsChannelConfig():
            channel = SmsChannel(config)
        case EmailChannelConfig():
            channel = EmailChannel(config)
    return channel


def make_channels(configs: Iterable[ChannelConfig], *, enabled_only: bool = True) -> dict[str, AnyChannel]:
    """The configured channels by name (the enabled ones only, unless told otherwise)."""
    return {c.name: make_channel(c) for c in configs if c.enabled or not enabled_only}


def get_channel(configs: Iterable[ChannelConfig], name: str) -> AnyChannel:
    """The enabled channel called ``name``: :class:`UnknownChannelError` or :class:`ChannelDisabledError`."""
    channels = make_channels(configs, enabled_only=False)
    channel = channels.get(name)
    if channel is None:
        known = ", ".join(sorted(channels)) or "none is configured"
        raise UnknownChannelError(f"no channel {name!r} (channels: {known})")
    if not channel.enabled:
        raise ChannelDisabledError(f"channel {name!r} is disabled in the configuration")
    return channel
