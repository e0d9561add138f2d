"""The ``notify`` section: duty-phone alerts (channels, routing, escalation, retries, storm control).

A channel is chosen by its ``type`` (``dingtalk``, ``wecom``, ``webhook``, ``sms``, ``email``); each type has its
own model with only the fields it understands. Secrets (robot URLs with their access tokens, signing secrets,
gateway tokens, the SMTP password) are best given through the environment: every secret field ``x`` has a
companion ``x_env`` naming the environment variable that holds it, read when the configuration is loaded.
A secret is a :class:`~pydantic.SecretStr`: it is never shown in a log line, an error or an API answer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

ChannelName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
EnvName = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
HttpUrl = Annotated[str, Field(min_length=8, max_length=2000, pattern=r"^https?://")]


class _Model(BaseModel):
    # Not config.schema.Section: schema imports this module, so this one must not import schema.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _from_env(value: SecretStr | None, env: str | None, what: str) -> SecretStr | None:
    """``value``, or the environment variable ``env`` (an error when it is named but not set)."""
    if env is None:
        return value
    if value is not None:
        raise ValueError(f"give {what} or {what}_env, not both")
    found = os.environ.get(env)
    if not found:
        raise ValueError(f"{what}_env names the environment variable {env}, which is not set")
    return SecretStr(found)


class _ChannelBase(_Model):
    name: ChannelName = Field(description="Name of the channel (outbox rows and the API name it)")
    enabled: bool = Field(True, description="Send on this channel")
    timeout_s: float = Field(5.0, gt=0, le=60, description="Longest wait for the receiver's answer (seconds)")


class DingTalkChannelConfig(_ChannelBase):
    """A DingTalk custom robot (钉钉自定义机器人) of the duty group, signed (加签)."""

    type: Literal["dingtalk"] = "dingtalk"
    webhook_url: SecretStr | None = Field(
        None, description="Robot URL with its access_token (a secret: prefer webhook_url_env)"
    )
    webhook_url_env: EnvName | None = Field(None, description="Environment variable holding the robot URL")
    secret: SecretStr | None = Field(None, description="The robot's signing secret (SEC…; prefer secret_env)")
    secret_env: EnvName | None = Field(None, description="Environment variable holding the signing secret")
    msgtype: Literal["text", "markdown"] = Field("markdown", description="Message type sent")
    at_mobiles: bool = Field(True, description="@ the receivers by their phone numbers (users.phone)")

    @model_validator(mode="after")
    def _secrets(self) -> Self:
        url = _from_env(self.webhook_url, self.webhook_url_env, "webhook_url")
        if url is None:
            raise ValueError("a dingtalk channel needs webhook_url or webhook_url_env")
        object.__setattr__(self, "webhook_url", url)
        object.__setattr__(self, "secret", _from_env(self.secret, self.secret_env, "secret"))
        return self


class WeComChannelConfig(_ChannelBase):
    """A WeCom group robot (企业微信群机器人)."""

    type: Literal["wecom"] = "wecom"
    webhook_url: SecretStr | None = Field(
        None, description="Robot URL with its key (a secret: prefer webhook_url_env)"
    )
    webhook_url_env: EnvName | None = Field(None, description="Environment variable holding the robot URL")
    msgtype: Literal["text", "markdown"] = Field(
        "text", description="text @-mentions the receivers (mentioned_mobile_list); markdown names them"
    )
    at_mobiles: bool = Field(True, description="Mention the receivers by their phone numbers (users.phone)")

    @model_validator(mode="after")
    def _secrets(self) -> Self:
        url = _from_env(self.webhook_url, self.webhook_url_env, "webhook_url")
        if url is None:
            raise ValueError("a wecom channel needs webhook_url or webhook_url_env")
        object.__setattr__(self, "webhook_url", url)
        return self


class WebhookChannelConfig(_ChannelBase):
    """A generic JSON webhook, HMAC-SHA256 signed over ``<timestamp>.<body>``."""

    type: Literal["webhook"] = "webhook"
    url: HttpUrl = Field(description="Where the JSON is POSTed")
    secret: SecretStr | None = Field(None, description="HMAC key (prefer secret_env)")
    secret_env: EnvName | None = Field(None, description="Environment variable holding the HMAC key")
    signature_header: str = Field(
        "X-Campuswatch-Signature", min_length=1, max_length=64, description="Header carrying t=<ts>,v1=<hex>"
    )

    @model_validator(mode="after")
    def _secrets(self) -> Self:
        secret = _from_env(self.secret, self.secret_env, "secret")
        if secret is None:
            raise ValueError("a webhook channel needs secret or secret_env (its messages are signed)")
        object.__setattr__(self, "secret", secret)
        return self


class SmsChannelConfig(_ChannelBase):
    """An SMS gateway over HTTP: one POST per receiver's phone (users.phone)."""

    type: Literal["sms"] = "sms"
    url: HttpUrl = Field(description="The gateway's send endpoint")
    encoding: Literal["json", "form"] = Field("json", description="Body as JSON or as a urlencoded form")
    token: SecretStr | None = Field(None, description="The gateway's auth token (prefer token_env)")
    token_env: EnvName | None = Field(None, description="Environment variable holding the auth token")
    auth_header: str = Field("Authorization", min_length=1, max_length=64, description="Header of the token")
    auth_scheme: str = Field("Bearer", max_length=32, description="Written before the token ('' for none)")
    phone_field: str = Field("phone", min_length=1, max_length=64, description="Body field of the number")
    text_field: str = Field("text", min_length=1, max_length=64, description="Body field of the text")
    max_chars: int = Field(300, ge=70, le=2000, description="Texts are cut to this many characters")

    @model_validator(mode="after")
    def _secrets(self) -> Self:
        object.__setattr__(self, "token", _from_env(self.token, self.token_env, "token"))
        return self


class EmailChannelConfig(_ChannelBase):
    """Email over SMTP, one mail per receiver (users.email)."""

    type: Literal["email"] = "email"
    host: str = Field(min_length=1, max_length=255, description="SMTP server")
    port: int = Field(587, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 SSL, 25 none)")
    security: Literal["starttls", "ssl", "none"] = Field("starttls", description="Transport security")
    username: str | None = Field(None, max_length=200, description="SMTP login (none: no AUTH)")
    password: SecretStr | None = Field(None, description="SMTP password (prefer password_env)")
    password_env: EnvName | None = Field(None, description="Environment variable holding the SMTP password")
    sender: str = Field(min_length=3, max_length=200, description="From address")
    subject_prefix: str = Field("[campuswatch] ", max_length=64, description="Written before every subject")
    ca_file: Path | None = Field(
        None, description="CA certificate(s) the server's certificate is checked against (default: the system's)"
    )

    @model_validator(mode="after")
    def _secrets(self) -> Self:
        object.__setattr__(self, "password", _from_env(self.password, self.password_env, "password"))
        return self


ChannelConfig = Annotated[
    DingTalkChannelConfig | WeComChannelConfig | WebhookChannelConfig | SmsChannelConfig | EmailChannelConfig,
    Field(discriminator="type"),
]

Target = Literal["officers", "leader", "all"]
Language = Literal["zh-CN", "en"]
"""The languages the notifier writes its messages in."""
Severity = Literal["general", "major"]
CLAIM_ROUNDS_PER_SENDER = 4
"""Messages a dispatcher claims at once for each of its senders (``senders`` × this)."""


class EventRouteConfig(_Model):
    """Which analytics events reach the duty phones, and when they escalate."""

    enabled: bool = Field(True, description="Send analytics events (event.started)")
    severities: tuple[Severity, ...] = Field(("general", "major"), min_length=1, description="Severities sent")
    types: tuple[str, ...] = Field((), max_length=32, description="Event types sent (empty: every type)")
    escalate_after_min: float = Field(
        5.0, ge=0.1, le=1440, description="Not acknowledged this many minutes: escalated to the leader on duty"
    )
    max_age_s: float = Field(
        3600.0, ge=10, le=7 * 86400, description="Older events (a notifier that was down) are not sent"
    )


class RetryConfig(_Model):
    """Retries of a failed send: exponential back-off with jitter, then dead."""

    max_attempts: int = Field(6, ge=1, le=50, description="Attempts before a message is dead")
    backoff_initial_s: float = Field(5.0, ge=0.01, le=3600, description="Wait after the first failure")
    backoff_max_s: float = Field(600.0, ge=0.01, le=86400, description="Longest wait between attempts")
    jitter: float = Field(0.2, ge=0, le=1, description="Each wait is randomised by ± this share")


class StormConfig(_Model):
    """Storm control: past ``threshold`` messages in ``window_s`` to one receiver on one channel, the rest of
    the window's events go out together as one summary message at the window's end — except those of the
    ``immediate_severities``, which always go out at once, each in its own message."""

    window_s: float = Field(60.0, ge=1, le=3600, description="The window (seconds)")
    threshold: int = Field(3, ge=1, le=1000, description="Messages sent one by one in a window before summing")
    max_lines: int = Field(20, ge=1, le=200, description="Events listed one by one in a summary (all counted)")
    immediate_severities: tuple[Severity, ...] = Field(
        ("major",),
        max_length=2,
        description="Events of these severities are never held in a summary: each goes out at once on its own "
        "(they still count towards the threshold for the others); empty: storm control holds every severity",
    )


def _default_duty() -> dict[str, Target]:
    return {
        "clock.overdue": "leader",
        "hazard.escalated": "leader",
        "incident.major": "all",
        "report.daily": "all",
    }


class NotifyConfig(_Model):
    """Duty-phone alerts: the officer on duty first, the leader on duty when unacknowledged."""

    enabled: bool = Field(True, description="Run the notifier (with at least one channel)")
    language: Language = Field(
        "zh-CN", description="Language of the messages' titles and texts: zh-CN (Simplified Chinese) or en"
    )
    channels: tuple[ChannelConfig, ...] = Field((), max_length=32, description="Where messages are sent")
    events: EventRouteConfig = Field(default_factory=EventRouteConfig, description="Analytics events")
    duty: dict[str, Target] = Field(
        default_factory=_default_duty,
        max_length=32,
        description="Duty-topic event types sent, and to whom (officers, leader or all on duty)",
    )
    retry: RetryConfig = Field(default_factory=RetryConfig, description="Retries with back-off")
    storm: StormConfig = Field(default_factory=StormConfig, description="Storm control")
    poll_s: float = Field(1.0, ge=0.01, le=60, description="How often the notifier looks for work (seconds)")
    lease_s: float = Field(
        120.0, ge=1, le=3600, description="A message claimed this long by a dispatcher that died is claimed again"
    )
    senders: int = Field(4, ge=1, le=64, description="Messages sent at the same time by one dispatcher")

    @model_validator(mode="after")
    def _lease_outlasts_a_batch(self) -> Self:
        # A dispatcher claims CLAIM_ROUNDS_PER_SENDER messages per sender; the last starts after the others'
        # timeouts. Past its lease another dispatcher would claim and send it too: a message sent twice.
        longest = max((c.timeout_s for c in self.channels), default=0.0)
        needed = longest * CLAIM_ROUNDS_PER_SENDER
        if needed >= self.lease_s:
            raise ValueError(
                f"lease_s ({self.lease_s:g} s) must be longer than {CLAIM_ROUNDS_PER_SENDER} times the longest "
                f"channel timeout ({longest:g} s): raise lease_s above {needed:g} or lower the timeout"
            )
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        names = [c.name for c in self.channels]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"channel names must be unique: {', '.join(twice)} given twice")
        return self
