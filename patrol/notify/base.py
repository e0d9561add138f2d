"""What every channel shares: the message handed to a channel, the channel's abstract base, and HTTP posting.

HTTP goes through :mod:`urllib.request` (standard library, always with a timeout): the project's runtime
dependencies have no HTTP client, and one POST per message needs none.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import JsonValue

from kernel.secrets import redact_text
from patrol.notify.errors import ChannelError

MAX_ANSWER_BYTES = 64 * 1024
"""A receiver's answer is read up to this size (it is only checked for its status or errcode)."""
USER_AGENT = "campuswatch-notifier/0.1"


@dataclass(frozen=True, slots=True)
class Recipient:
    """A person a message is for, with the contacts the channels use."""

    user_id: int
    name: str
    phone: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message as a channel sends it (rendered from the outbox row and its items)."""

    message_id: str
    """The outbox message id: the idempotency key of the receiver."""
    channel: str
    kind: str
    title: str
    text: str
    """Plain text, title first (SMS, email, robots' text messages)."""
    markdown: str
    """The same in Markdown (robots' markdown messages)."""
    recipients: tuple[Recipient, ...]
    created_at: datetime
    items: tuple[dict[str, JsonValue], ...] = field(default=())
    """What the message is about, one entry per event or duty item (the webhook's JSON carries them)."""


@dataclass(frozen=True, slots=True)
class SendResult:
    """A send the receiver accepted."""

    status_code: int | None
    detail: str = ""


ConfigT = TypeVar("ConfigT")


class Channel(ABC, Generic[ConfigT]):
    """A way to reach the duty phones; built from its config model (picked by the config's ``type``).

    ``per_person`` channels (SMS, email) get one message per recipient; the others (group robots, a webhook)
    get one message per subject and step that names all its recipients.
    """

    per_person: ClassVar[bool] = False
    contact_field: ClassVar[str] = ""
    """For a per-person channel: the Recipient field it sends to (``phone`` or ``email``)."""

    def __init__(self, config: ConfigT) -> None:
        self.config = config

    @property
    def name(self) -> str:
        """The channel's configured name."""
        name: str = getattr(self.config, "name")  # noqa: B009 (every channel config has a name)
        return name

    @property
    def enabled(self) -> bool:
        """Whether the channel is enabled."""
        enabled: bool = getattr(self.config, "enabled")  # noqa: B009
        return enabled

    def contact(self, recipient: Recipient) -> str:
        """The address of ``recipient`` on a per-person channel ('' when the user has none)."""
        return str(getattr(recipient, self.contact_field, "")) if self.contact_field else ""

    @abstractmethod
    def send(self, message: Outgoing) -> SendResult:
        """Send ``message``; raise :class:`~patrol.notify.errors.ChannelError` unless the receiver accepted it."""

    def secrets(self) -> tuple[str, ...]:
        """The channel's secret values, masked in any error text."""
        return ()

    def _safe(self, text: str) -> str:
        return redact_text(text, self.secrets())


def url_without_query(url: str) -> str:
    """``url`` without query, fragment or user info: robots carry their access token in the query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """A receiver's HTTP answer (2xx)."""

    status: int
    body: bytes

    def json(self) -> Any:
        """The body as JSON (an error unless it is)."""
        try:
            return json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ChannelError(f"the answer is not JSON: {self.body[:200]!r}", status_code=self.status) from err


def http_post(
    url: str, body: bytes, headers: dict[str, str], *, timeout_s: float, shown_url: str | None = None
) -> HttpAnswer:
    """POST ``body`` to ``url``; a 2xx answer, else :class:`ChannelError` (status, timeout, refused, ...).

    ``shown_url`` is what errors name instead of ``url`` (default: ``url`` without its query).
    """
    where = shown_url or url_without_query(url)
    request = urllib.request.Request(  # noqa: S310 (the URL is configured, http(s) only: checked by its model)
        url, data=body, method="POST", headers={"User-Agent": USER_AGENT, **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            status = int(response.status)
            answer = response.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as err:
        detail = err.read(500).decode("utf-8", "replace").strip()
        err.close()
        raise ChannelError(
            f"{where} answered HTTP {err.code}{': ' + detail if detail else ''}", status_code=err.code
        ) from None
    except TimeoutError as err:
        raise ChannelError(f"{where} did not answer within {timeout_s:g} s") from err
    except urllib.error.URLError as err:
        reason = err.reason
        if isinstance(reason, TimeoutError):
            raise ChannelError(f"{where} did not answer within {timeout_s:g} s") from None
        raise ChannelError(f"{where} could not be reached: {reason}") from None
    except (OSError, ValueError) as err:  # a connection reset mid-answer, a malformed status line
        raise ChannelError(f"{where} failed: {type(err).__name__}: {err}") from None
    if not 200 <= status < 300:
        raise ChannelError(f"{where} answered HTTP {status}", status_code=status)
    return HttpAnswer(status, answer)


def json_body(data: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (Chinese text as is, not escaped)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
