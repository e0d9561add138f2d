"""The notifier tests' fixtures (see :mod:`tests.bureau`): the bureau, and a webhook receiver and duty shift."""

from collections.abc import Iterator

import pytest

from patrol.notify.receiver import WebhookReceiver
from tests.bureau import Bureau, ManualClock, api, bureau, bus, clock, thumbnails
from tests.patrol.notify.helpers import SECRET, prepare

__all__ = ["api", "bureau", "bus", "clock", "duty", "hook", "thumbnails"]


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    """A signature-checking webhook receiver on loopback (the helpers' SECRET)."""
    with WebhookReceiver(SECRET) as receiver:
        yield receiver


@pytest.fixture
def duty(bureau: Bureau, clock: ManualClock) -> Bureau:
    """The bureau with a shift on duty now (officers and a leader rostered)."""
    prepare(bureau, clock)
    return bureau
