"""The notifier: duty-phone alerts over DingTalk, WeCom, a signed webhook, an SMS gateway and email.

Analytics events go to the duty officers on duty first and to the leader on duty when nobody acknowledged them
in time; clock and hazard escalations, major incidents and the daily report go where ``notify.duty`` says.
Every message is written to the outbox before it is sent (:mod:`patrol.notify.outbox`), retried with back-off,
logged attempt by attempt, and storms are summed up (:mod:`patrol.notify.storm`).
"""

from patrol.notify.channels import AnyChannel, get_channel, make_channel, make_channels
from patrol.notify.dispatcher import Dispatcher, NotifyWorker
from patrol.notify.errors import ChannelError, NotifyError
from patrol.notify.receiver import Received, WebhookReceiver
from patrol.notify.routing import Router

__all__ = [
    "AnyChannel",
    "ChannelError",
    "Dispatcher",
    "NotifyError",
    "NotifyWorker",
    "Received",
    "Router",
    "WebhookReceiver",
    "get_channel",
    "make_channel",
    "make_channels",
]
