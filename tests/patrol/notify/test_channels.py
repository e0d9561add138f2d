"""Each channel against a real receiver on loopback: the signature and shape the receiver checks, its refusal
turned into a clear error, a timeout, and no secret in any error."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pytest
from pydantic import SecretStr, TypeAdapter, ValidationError

from config.notify import (
    ChannelConfig,
    DingTalkChannelConfig,
    EmailChannelConfig,
    NotifyConfig,
    SmsChannelConfig,
    WebhookChannelConfig,
    WeComChannelConfig,
)
from patrol.notify import ChannelError, WebhookReceiver, make_channel
from patrol.notify.base import Outgoing, Recipient
from patrol.notify.gateways import signature_header
from patrol.notify.receiver import verify_signature
from tests.patrol.notify.receivers import (
    HttpReceiver,
    SmtpServer,
    dingtalk_robot,
    self_signed,
    sleeping,
    sms_gateway,
    wecom_robot,
)

OFFICER = Recipient(7, "值班员一", phone="13800000001", email="officer1@bureau.example")
LEADER = Recipient(9, "带班领导", phone="13900000009", email="leader@bureau.example")


def _message(*recipients: Recipient) -> Outgoing:
    return Outgoing(
        message_id="8f0c7f54-4c6e-4f51-9d0e-3a1f5c2b7d10",
        channel="test",
        kind="single",
        title="major intrusion at 第11中学 S11-GATE",
        text="major intrusion at 第11中学 S11-GATE\nzone fence, 2 people",
        markdown="### major intrusion at 第11中学 S11-GATE\n\nzone fence",
        recipients=recipients or (OFFICER,),
        created_at=datetime(2026, 12, 1, 2, 0, tzinfo=UTC),
        items=({"subject": "event:1", "kind": "intrusion"},),
    )


@pytest.fixture
def robot() -> object:
    receiver = HttpReceiver(dingtalk_robot("SECabc", "tok123")).start()
    yield receiver
    receiver.stop()


def test_dingtalk_signed_markdown_mentions_the_phones(robot: HttpReceiver) -> None:
    config = DingTalkChannelConfig(
        name="ding",
        webhook_url=SecretStr(f"{robot.base}/robot/send?access_token=tok123"),
        secret=SecretStr("SECabc"),
    )
    result = make_channel(config).send(_message(OFFICER, LEADER))
    assert result.status_code == 200
    body = robot.recorded()[0].json()
    assert body["msgtype"] == "markdown"
    assert body["at"]["atMobiles"] == ["13800000001", "13900000009"]
    assert "@13800000001" in body["markdown"]["text"]
    assert body["markdown"]["title"].startswith("major intrusion")


def test_dingtalk_refusal_is_a_clear_error_without_the_secrets(robot: HttpReceiver) -> None:
    config = DingTalkChannelConfig(
        name="ding",
        msgtype="text",
        webhook_url=SecretStr(f"{robot.base}/robot/send?access_token=tok123"),
        secret=SecretStr("SECwrong"),
    )
    with pytest.raises(ChannelError, match="errcode 310000 sign not match") as info:
        make_channel(config).send(_message())
    assert "SECwrong" not in str(info.value) and "tok123" not in str(info.value)
    assert robot.recorded()[0].json()["text"]["content"].startswith("major intrusion")


def test_wecom_text_mentions_and_markdown(tmp_path: Path) -> None:
    receiver = HttpReceiver(wecom_robot("k-1")).start()
    try:
        url = SecretStr(f"{receiver.base}/cgi-bin/webhook/send?key=k-1")
        make_channel(WeComChannelConfig(name="wx", webhook_url=url)).send(_message(OFFICER))
        make_channel(WeComChannelConfig(name="wx2", webhook_url=url, msgtype="markdown")).send(_message(OFFICER))
        text, markdown = (h.json() for h in receiver.recorded())
        assert text["text"]["mentioned_mobile_list"] == ["13800000001"]
        assert "值班员一" in markdown["markdown"]["content"]
        bad = WeComChannelConfig(name="wx3", webhook_url=SecretStr(f"{receiver.base}/send?key=nope"))
        with pytest.raises(ChannelError, match="errcode 93000") as info:
            make_channel(bad).send(_message())
        assert "nope" not in str(info.value)
    finally:
        receiver.stop()


def test_webhook_is_signed_and_carries_the_idempotency_key() -> None:
    with WebhookReceiver("hook-secret") as receiver:
        config = WebhookChannelConfig(name="hook", url=receiver.url, secret=SecretStr("hook-secret"))
        make_channel(config).send(_message())
        make_channel(config).send(_message())  # the same message again (a lost answer): marked a repeat
        wrong = WebhookChannelConfig(name="hook2", url=receiver.url, secret=SecretStr("other"))
        with pytest.raises(ChannelError, match="HTTP 401") as info:
            make_channel(wrong).send(_message())
        assert "other" not in str(info.value)
        first, again, refused = receiver.received()
    assert first.verified and not first.duplicate
    assert first.message_id == "8f0c7f54-4c6e-4f51-9d0e-3a1f5c2b7d10"
    assert first.body["title"] == "major intrusion at 第11中学 S11-GATE"
    assert first.body["recipients"][0]["phone"] == "13800000001"
    assert again.duplicate and not refused.verified and refused.error == "signature does not match"


def test_signature_check_refuses_old_timestamps() -> None:
    body = b'{"a":1}'
    now = int(time.time())
    assert verify_signature("s", signature_header("s", now, body), body, now=now, tolerance_s=300) == ""
    assert "away" in verify_signature("s", signature_header("s", now - 301, body), body, now=now, tolerance_s=300)
    assert "header" in verify_signature("s", "", body, now=now, tolerance_s=300)


@pytest.mark.parametrize("encoding", ["json", "form"])
def test_sms_gateway_json_and_form(encoding: Literal["json", "form"]) -> None:
    receiver = HttpReceiver(sms_gateway("gw-token")).start()
    try:
        config = SmsChannelConfig(
            name="sms",
            url=f"{receiver.base}/send",
            encoding=encoding,
            token=SecretStr("gw-token"),
        )
        channel = make_channel(config)
        assert channel.per_person and channel.contact(OFFICER) == "13800000001"
        assert channel.send(_message()).status_code == 200
        hit = receiver.recorded()[0]
        assert hit.headers["Idempotency-Key"] == "8f0c7f54-4c6e-4f51-9d0e-3a1f5c2b7d10"
        assert b"13800000001" in hit.body
        unauthorised = SmsChannelConfig(name="sms2", url=f"{receiver.base}/send", token=SecretStr("bad-token"))
        with pytest.raises(ChannelError, match="HTTP 401") as info:
            make_channel(unauthorised).send(_message())
        assert info.value.status_code == 401 and "bad-token" not in str(info.value)
    finally:
        receiver.stop()


def test_a_receiver_that_hangs_times_out() -> None:
    receiver = HttpReceiver(sleeping(1.5)).start()
    try:
        config = WebhookChannelConfig(
            name="slow", url=f"{receiver.base}/hook", secret=SecretStr("slow-secret"), timeout_s=0.3
        )
        started = time.monotonic()
        with pytest.raises(ChannelError, match=r"did not answer within 0.3 s"):
            make_channel(config).send(_message())
        assert time.monotonic() - started < 1.2
    finally:
        receiver.stop()


def test_nothing_listening_is_a_clear_error() -> None:
    from tests.servers import free_port

    config = WebhookChannelConfig(
        name="gone", url=f"http://127.0.0.1:{free_port()}/x", secret=SecretStr("gone-secret")
    )
    with pytest.raises(ChannelError, match="could not be reached"):
        make_channel(config).send(_message())


def test_email_over_starttls_with_login(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    with SmtpServer(cert, key, user="duty", password="mail-pw") as smtp:
        config = EmailChannelConfig(
            name="mail",
            host="127.0.0.1",
            port=smtp.port,
            security="starttls",
            username="duty",
            password=SecretStr("mail-pw"),
            sender="campuswatch@bureau.example",
            ca_file=cert,
        )
        make_channel(config).send(_message(OFFICER))
        bad = config.model_copy(update={"password": SecretStr("wrong-pw")})
        with pytest.raises(ChannelError, match="535") as info:
            make_channel(bad).send(_message(OFFICER))
        assert "wrong-pw" not in str(info.value)
        envelope, mail = smtp.box.mails[0]
    assert envelope.rcpt_tos == ["officer1@bureau.example"]
    assert mail["Subject"] == "[campuswatch] major intrusion at 第11中学 S11-GATE"
    assert mail["X-Campuswatch-Message"] == "8f0c7f54-4c6e-4f51-9d0e-3a1f5c2b7d10"
    assert smtp.box.tls_used == [True]


def test_email_needs_an_address() -> None:
    config = EmailChannelConfig(name="mail", host="127.0.0.1", sender="cw@bureau.example", security="none")
    with pytest.raises(ChannelError, match="no recipient with an email"):
        make_channel(config).send(_message(Recipient(1, "nobody")))


def test_channel_configs_by_type_and_secrets_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CW_TEST_DING_URL", "https://oapi.dingtalk.com/robot/send?access_token=abc")
    monkeypatch.setenv("CW_TEST_DING_SECRET", "SECxyz")
    adapter: TypeAdapter[ChannelConfig] = TypeAdapter(ChannelConfig)
    ding = adapter.validate_python(
        {
            "type": "dingtalk",
            "name": "d",
            "webhook_url_env": "CW_TEST_DING_URL",
            "secret_env": "CW_TEST_DING_SECRET",
        }
    )
    assert isinstance(ding, DingTalkChannelConfig)
    assert ding.secret is not None and ding.secret.get_secret_value() == "SECxyz"
    assert "SECxyz" not in repr(ding) and "abc" not in repr(ding)
    with pytest.raises(ValidationError, match="CW_TEST_MISSING, which is not set"):
        adapter.validate_python(
            {"type": "webhook", "name": "w", "url": "http://x/y", "secret_env": "CW_TEST_MISSING"}
        )
    with pytest.raises(ValidationError, match="needs secret or secret_env"):
        adapter.validate_python({"type": "webhook", "name": "w", "url": "http://x/y"})
    with pytest.raises(ValidationError, match=r"union_tag_invalid|does not match any of the expected tags"):
        adapter.validate_python({"type": "pager", "name": "p"})
    with pytest.raises(ValidationError, match="given twice"):
        NotifyConfig(
            channels=(
                WebhookChannelConfig(name="a", url="http://x/y", secret=SecretStr("s")),
                WebhookChannelConfig(name="a", url="http://x/z", secret=SecretStr("s")),
            )
        )


def test_the_lease_must_outlast_a_claimed_batch() -> None:
    channel = {"type": "webhook", "name": "slow", "url": "http://127.0.0.1:9/hook", "secret": "s", "timeout_s": 60}
    with pytest.raises(ValueError, match="lease_s \\(120 s\\) must be longer than 4 times"):
        NotifyConfig.model_validate({"channels": [channel]})
    assert NotifyConfig.model_validate({"channels": [channel], "lease_s": 300}).lease_s == 300
