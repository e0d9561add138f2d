"""Real receivers on loopback for the notifier tests: DingTalk-like and WeCom-like robots that check the
signature and the JSON's shape, an SMS gateway that checks its token, one that fails then recovers, one that
hangs past the client's timeout, and an SMTP server (aiosmtpd) with STARTTLS."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.servers import free_port


@dataclass(frozen=True)
class Hit:
    """A request that arrived."""

    at: float
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, dict[str, Any] | str]
Responder = Callable[[Hit], Reply]


class HttpReceiver:
    """A threaded HTTP server on 127.0.0.1 whose answers come from ``responder``; records every request."""

    def __init__(self, responder: Responder) -> None:
        self.responder = responder
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = urlsplit(self.path)
                hit = Hit(time.time(), parts.path, parse_qs(parts.query), dict(self.headers.items()), body)
                with outer._lock:
                    outer.hits.append(hit)
                status, answer = outer.responder(hit)
                data = (json.dumps(answer) if isinstance(answer, dict) else answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = False
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> HttpReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self._thread.join(5)
        self.server.server_close()

    def recorded(self) -> list[Hit]:
        with self._lock:
            return list(self.hits)


def dingtalk_robot(secret: str, token: str) -> Responder:
    """Answers like DingTalk: errcode 0 for a good token, fresh timestamp and sign, and a valid message."""

    def respond(hit: Hit) -> Reply:
        if hit.query.get("access_token") != [token]:
            return 200, {"errcode": 300001, "errmsg": "token is not exist"}
        stamp = hit.query.get("timestamp", [""])[0]
        sign = hit.query.get("sign", [""])[0]  # parse_qs has decoded it once already
        expected = base64.b64encode(
            hmac.new(secret.encode(), f"{stamp}\n{secret}".encode(), hashlib.sha256).digest()
        ).decode()
        if not stamp.isdigit() or abs(time.time() * 1000 - int(stamp)) > 3600_000 or sign != expected:
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
        data = hit.json()
        kind = data.get("msgtype")
        if kind == "markdown" and not (data["markdown"].get("title") and data["markdown"].get("text")):
            return 200, {"errcode": 40035, "errmsg": "missing markdown"}
        if kind == "text" and not data.get("text", {}).get("content"):
            return 200, {"errcode": 40035, "errmsg": "missing text"}
        if kind not in ("markdown", "text"):
            return 200, {"errcode": 40008, "errmsg": "bad msgtype"}
        return 200, {"errcode": 0, "errmsg": "ok"}

    return respond


def wecom_robot(key: str) -> Responder:
    """Answers like a WeCom group robot."""

    def respond(hit: Hit) -> Reply:
        if hit.query.get("key") != [key]:
            return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
        data = hit.json()
        kind = data.get("msgtype")
        if kind == "text" and isinstance(data["text"].get("content"), str):
            if not isinstance(data["text"].get("mentioned_mobile_list", []), list):
                return 200, {"errcode": 40058, "errmsg": "bad mentioned_mobile_list"}
            return 200, {"errcode": 0, "errmsg": "ok"}
        if kind == "markdown" and isinstance(data["markdown"].get("content"), str):
            return 200, {"errcode": 0, "errmsg": "ok"}
        return 200, {"errcode": 40008, "errmsg": "invalid message type"}

    return respond


def sms_gateway(token: str) -> Responder:
    """An SMS gateway: 401 without the bearer token, 400 without a phone and a text, else 200."""

    def respond(hit: Hit) -> Reply:
        if hit.headers.get("Authorization") != f"Bearer {token}":
            return 401, {"error": "unauthorised"}
        if hit.headers.get("Content-Type", "").startswith("application/json"):
            data = hit.json()
        else:
            data = {k: v[0] for k, v in parse_qs(hit.body.decode()).items()}
        if not data.get("phone") or not data.get("text"):
            return 400, {"error": "phone and text needed"}
        return 200, {"status": "queued"}

    return respond


def failing_then_ok(failures: int) -> Responder:
    """500 for the first ``failures`` requests, then 200."""
    count = {"n": 0}
    lock = threading.Lock()

    def respond(hit: Hit) -> Reply:
        with lock:
            count["n"] += 1
            n = count["n"]
        return (500, "boom") if n <= failures else (200, {"ok": True})

    return respond


def sleeping(seconds: float) -> Responder:
    """Answers 200, but only after ``seconds`` (past the client's timeout)."""

    def respond(hit: Hit) -> Reply:
        time.sleep(seconds)
        return 200, {"ok": True}

    return respond


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost and its key: (cert, key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    import ipaddress

    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp.crt", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class MailBox:
    """The aiosmtpd handler: keeps every mail that arrived."""

    def __init__(self) -> None:
        self.mails: list[tuple[Envelope, Message]] = []
        self.tls_used: list[bool] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd)
        content = envelope.original_content or b""
        self.mails.append((envelope, message_from_bytes(content, policy=policy.default)))
        self.tls_used.append(session.ssl is not None)
        return "250 OK"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 with STARTTLS offered (required when ``require_tls``) and LOGIN/PLAIN auth."""

    def __init__(self, cert: Path, key: Path, *, user: str, password: str, require_tls: bool = True) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.box = MailBox()
        self.port = free_port()

        def authenticate(
            server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth: Any
        ) -> AuthResult:
            ok = (
                isinstance(auth, LoginPassword)
                and auth.login == user.encode()
                and auth.password == password.encode()
            )
            return AuthResult(success=ok, handled=False)

        self.controller = Controller(
            self.box,
            hostname="127.0.0.1",
            port=self.port,
            tls_context=context,
            require_starttls=require_tls,
            authenticator=authenticate,
            auth_require_tls=require_tls,
        )

    def __enter__(self) -> SmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.controller.stop()


def started(responder: Responder) -> Iterator[HttpReceiver]:
    """A started receiver, stopped afterwards (for fixtures)."""
    receiver = HttpReceiver(responder).start()
    try:
        yield receiver
    finally:
        receiver.stop()
