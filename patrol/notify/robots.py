"""Group robots: DingTalk custom robot (signed) and WeCom group robot. Both answer ``{"errcode": 0}`` when they
took the message; any other errcode is a failed send."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import quote_plus

from config.notify import DingTalkChannelConfig, WeComChannelConfig
from patrol.notify.base import Channel, HttpAnswer, Outgoing, SendResult, http_post, json_body
from patrol.notify.errors import ChannelError


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's 加签: base64(HMAC-SHA256(secret, "<timestamp>\\n<secret>")), URL-encoded."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


def _check_errcode(answer: HttpAnswer, where: str) -> SendResult:
    data = answer.json()
    if not isinstance(data, dict) or "errcode" not in data:
        raise ChannelError(
            f"{where} answered without an errcode: {answer.body[:200]!r}", status_code=answer.status
        )
    if data["errcode"] != 0:
        raise ChannelError(
            f"{where} refused the message: errcode {data['errcode']} {data.get('errmsg', '')}".strip(),
            status_code=answer.status,
        )
    return SendResult(answer.status, str(data.get("errmsg", "ok")))


def _mobiles(message: Outgoing) -> list[str]:
    return [r.phone for r in message.recipients if r.phone]


class DingTalkChannel(Channel[DingTalkChannelConfig]):
    """DingTalk custom robot: text or markdown, @-mentioning the recipients by phone, signed when a secret is
    configured (``timestamp`` and ``sign`` query parameters)."""

    def secrets(self) -> tuple[str, ...]:
        """The robot URL (it holds the access token) and the signing secret."""
        config = self.config
        return tuple(s.get_secret_value() for s in (config.webhook_url, config.secret) if s is not None)

    def signed_url(self, timestamp_ms: int | None = None) -> str:
        """The robot URL with ``timestamp`` and ``sign`` appended (unchanged without a secret)."""
        assert self.config.webhook_url is not None  # the config's validator guarantees it
        url = self.config.webhook_url.get_secret_value()
        if self.config.secret is None:
            return url
        stamp = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
        sign = dingtalk_sign(self.config.secret.get_secret_value(), stamp)
        return f"{url}{'&' if '?' in url else '?'}timestamp={stamp}&sign={sign}"

    def payload(self, message: Outgoing) -> dict[str, Any]:
        """The robot's JSON for ``message``."""
        mobiles = _mobiles(message) if self.config.at_mobiles else []
        at = {"atMobiles": mobiles, "isAtAll": False}
        # DingTalk only shows an @ that also appears in the text.
        mentions = " ".join(f"@{m}" for m in mobiles)
        if self.config.msgtype == "markdown":
            text = f"{message.markdown}\n\n{mentions}" if mentions else message.markdown
            return {"msgtype": "markdown", "markdown": {"title": message.title, "text": text}, "at": at}
        text = f"{message.text}\n{mentions}" if mentions else message.text
        return {"msgtype": "text", "text": {"content": text}, "at": at}

    def send(self, message: Outgoing) -> SendResult:
        """POST to the signed robot URL; errcode 0 or a :class:`ChannelError`."""
        where = f"DingTalk robot {self.name}"
        try:
            answer = http_post(
                self.signed_url(),
                json_body(self.payload(message)),
                {"Content-Type": "application/json; charset=utf-8"},
                timeout_s=self.config.timeout_s,
                shown_url=where,
            )
            return _check_errcode(answer, where)
        except ChannelError as err:
            raise ChannelError(self._safe(str(err)), status_code=err.status_code) from None


class WeComChannel(Channel[WeComChannelConfig]):
    """WeCom group robot: text with ``mentioned_mobile_list``, or markdown naming the recipients."""

    def secrets(self) -> tuple[str, ...]:
        """The robot URL (its ``key`` is the credential)."""
        return tuple(s.get_secret_value() for s in (self.config.webhook_url,) if s is not None)

    def payload(self, message: Outgoing) -> dict[str, Any]:
        """The robot's JSON for ``message``."""
        mobiles = _mobiles(message) if self.config.at_mobiles else []
        if self.config.msgtype == "markdown":
            # WeCom markdown has no mobile mentions: the names are written out.
            names = "、".join(r.name for r in message.recipients)
            content = f"{message.markdown}\n> {names}" if names else message.markdown
            return {"msgtype": "markdown", "markdown": {"content": content}}
        return {"msgtype": "text", "text": {"content": message.text, "mentioned_mobile_list": mobiles}}

    def send(self, message: Outgoing) -> SendResult:
        """POST to the robot URL; errcode 0 or a :class:`ChannelError`."""
        assert self.config.webhook_url is not None  # the config's validator guarantees it
        where = f"WeCom robot {self.name}"
        try:
            answer = http_post(
                self.config.webhook_url.get_secret_value(),
                json_body(self.payload(message)),
                {"Content-Type": "application/json; charset=utf-8"},
                timeout_s=self.config.timeout_s,
                shown_url=where,
            )
            return _check_errcode(answer, where)
        except ChannelError as err:
            raise ChannelError(self._safe(str(err)), status_code=err.status_code) from None
