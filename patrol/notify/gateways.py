"""Channels to a system of the bureau's own: a generic signed webhook, an SMS gateway over HTTP, email (SMTP)."""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any
from urllib.parse import urlencode

from config.notify import EmailChannelConfig, SmsChannelConfig, WebhookChannelConfig
from kernel.secrets import redact_url
from patrol.notify.base import Channel, Outgoing, SendResult, http_post, json_body
from patrol.notify.errors import ChannelError

IDEMPOTENCY_HEADER = "Idempotency-Key"
"""Carries the outbox message id: a message sent again (after a lost answer) has the same key."""


def webhook_signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """``t=<timestamp>,v1=<hex>``: the value of the webhook's signature header."""
    return f"t={timestamp},v1={webhook_signature(secret, timestamp, body)}"


class WebhookChannel(Channel[WebhookChannelConfig]):
    """A JSON POST of the whole message, signed (``X-Campuswatch-Signature: t=<ts>,v1=<hex>``) and carrying
    its idempotency key; any 2xx answer is a success."""

    def secrets(self) -> tuple[str, ...]:
        """The HMAC key."""
        return tuple(s.get_secret_value() for s in (self.config.secret,) if s is not None)

    def payload(self, message: Outgoing) -> dict[str, Any]:
        """The JSON sent."""
        return {
            "id": message.message_id,
            "channel": message.channel,
            "kind": message.kind,
            "title": message.title,
            "text": message.text,
            "created_at": message.created_at.isoformat(),
            "recipients": [
                {"user_id": r.user_id, "name": r.name, "phone": r.phone, "email": r.email}
                for r in message.recipients
            ],
            "items": list(message.items),
        }

    def send(self, message: Outgoing) -> SendResult:
        """POST the signed JSON; 2xx or a :class:`ChannelError`."""
        assert self.config.secret is not None  # the config's validator guarantees it
        body = json_body(self.payload(message))
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            self.config.signature_header: signature_header(self.config.secret.get_secret_value(), stamp, body),
            IDEMPOTENCY_HEADER: message.message_id,
        }
        try:
            answer = http_post(
                self.config.url,
                body,
                headers,
                timeout_s=self.config.timeout_s,
                shown_url=redact_url(self.config.url),
            )
        except ChannelError as err:
            raise ChannelError(self._safe(str(err)), status_code=err.status_code) from None
        return SendResult(answer.status)


class SmsChannel(Channel[SmsChannelConfig]):
    """One POST per recipient's phone to an SMS gateway, JSON or form, with the token in a header."""

    per_person = True
    contact_field = "phone"

    def secrets(self) -> tuple[str, ...]:
        """The gateway token."""
        return tuple(s.get_secret_value() for s in (self.config.token,) if s is not None)

    def fields(self, message: Outgoing) -> dict[str, str]:
        """The body's fields: the phone, the text (cut to ``max_chars``) and the message id."""
        phones = [r.phone for r in message.recipients if r.phone]
        if not phones:
            raise ChannelError("the message has no recipient with a phone number")
        text = message.text or message.title
        if len(text) > self.config.max_chars:
            text = text[: self.config.max_chars - 1] + "…"
        return {self.config.phone_field: ",".join(phones), self.config.text_field: text, "id": message.message_id}

    def send(self, message: Outgoing) -> SendResult:
        """POST the text; 2xx or a :class:`ChannelError`."""
        config = self.config
        fields = self.fields(message)
        if config.encoding == "json":
            body, content_type = json_body(dict(fields)), "application/json; charset=utf-8"
        else:
            body, content_type = urlencode(fields).encode(), "application/x-www-form-urlencoded; charset=utf-8"
        headers = {"Content-Type": content_type, IDEMPOTENCY_HEADER: message.message_id}
        if config.token is not None:
            scheme = f"{config.auth_scheme} " if config.auth_scheme else ""
            headers[config.auth_header] = scheme + config.token.get_secret_value()
        try:
            answer = http_post(
                config.url, body, headers, timeout_s=config.timeout_s, shown_url=redact_url(config.url)
            )
        except ChannelError as err:
            raise ChannelError(self._safe(str(err)), status_code=err.status_code) from None
        return SendResult(answer.status)


class EmailChannel(Channel[EmailChannelConfig]):
    """One mail per recipient over SMTP, with STARTTLS, implicit TLS (SSL) or neither, and optional AUTH."""

    per_person = True
    contact_field = "email"

    def secrets(self) -> tuple[str, ...]:
        """The SMTP password."""
        return tuple(s.get_secret_value() for s in (self.config.password,) if s is not None)

    def mail(self, message: Outgoing) -> EmailMessage:
        """The mail for ``message``."""
        addresses = [r.email for r in message.recipients if r.email]
        if not addresses:
            raise ChannelError("the message has no recipient with an email address")
        mail = EmailMessage()
        mail["From"] = self.config.sender
        mail["To"] = ", ".join(addresses)
        mail["Subject"] = f"{self.config.subject_prefix}{message.title}"
        mail["Date"] = format_datetime(message.created_at)
        # A stable Message-ID: a mail sent again after a lost answer is recognisably the same mail.
        mail["Message-ID"] = make_msgid(idstring=message.message_id, domain="campuswatch.local")
        mail["X-Campuswatch-Message"] = message.message_id
        mail.set_content(message.text)
        return mail

    def _context(self) -> ssl.SSLContext:
        ca = self.config.ca_file
        return ssl.create_default_context(cafile=str(ca) if ca is not None else None)

    def send(self, message: Outgoing) -> SendResult:
        """Hand the mail to the SMTP server; its acceptance or a :class:`ChannelError`."""
        config = self.config
        mail = self.mail(message)
        where = f"SMTP server {config.host}:{config.port}"
        try:
            smtp: smtplib.SMTP
            if config.security == "ssl":
                smtp = smtplib.SMTP_SSL(
                    config.host, config.port, timeout=config.timeout_s, context=self._context()
                )
            else:
                smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
            with smtp:
                if config.security == "starttls":
                    smtp.starttls(context=self._context())
                if config.username is not None:
                    password = config.password.get_secret_value() if config.password is not None else ""
                    smtp.login(config.username, password)
                refused = smtp.send_message(mail)
        except smtplib.SMTPResponseException as err:
            detail = err.smtp_error.decode("utf-8", "replace") if isinstance(err.smtp_error, bytes) else ""
            raise ChannelError(
                self._safe(f"{where} answered {err.smtp_code} {detail}".strip()), status_code=err.smtp_code
            ) from None
        except smtplib.SMTPRecipientsRefused as err:
            raise ChannelError(self._safe(f"{where} refused every recipient: {sorted(err.recipients)}")) from None
        except (TimeoutError, ssl.SSLError, smtplib.SMTPException, OSError) as err:
            raise ChannelError(self._safe(f"{where} failed: {type(err).__name__}: {err}")) from None
        if refused:
            raise ChannelError(self._safe(f"{where} refused {sorted(refused)}"))
        return SendResult(250)
