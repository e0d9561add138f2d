"""A small real webhook receiver: verifies the notifier's HMAC signature and records what arrived, with when.

For tests, the demo and ``campuswatch notify receive``::

    receiver = WebhookReceiver(secret="s3cret", port=9010)
    receiver.start()            # http://127.0.0.1:9010/ (any path)
    ...
    for hit in receiver.received():
        hit.message_id, hit.received_at, hit.body["title"]
    receiver.stop()

A request with a bad or missing signature, or a timestamp further than ``tolerance_s`` from now, is answered
401 and recorded with ``verified=False``; a repeat of a message id already accepted is answered 200 and
recorded with ``duplicate=True`` (what a receiver does with the idempotency key).
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from patrol.notify.gateways import IDEMPOTENCY_HEADER, webhook_signature

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
SIGNATURE_HEADER = "X-Campuswatch-Signature"


@dataclass(frozen=True, slots=True)
class Received:
    """One request that arrived."""

    received_at: datetime
    """When it arrived (UTC, the receiver's clock)."""
    path: str
    message_id: str
    """The idempotency key header ('' when absent)."""
    verified: bool
    duplicate: bool
    body: dict[str, Any]
    """The JSON body ({} when it was not a JSON object)."""
    error: str = ""
    """Why it was refused ('' when verified)."""


def verify_signature(secret: str, header: str, body: bytes, *, now: float, tolerance_s: float) -> str:
    """'' when ``header`` (``t=<ts>,v1=<hex>``) signs ``body`` under ``secret`` in time, else why not."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    stamp, given = parts.get("t", ""), parts.get("v1", "")
    if not stamp.isdigit() or not given:
        return "no t=<timestamp>,v1=<signature> header"
    if abs(now - int(stamp)) > tolerance_s:
        return f"timestamp {stamp} is more than {tolerance_s:g} s away"
    if not hmac.compare_digest(webhook_signature(secret, int(stamp), body), given):
        return "signature does not match"
    return ""


class WebhookReceiver:
    """A webhook receiver on ``host:port`` in a thread of its own (owner: this object; :meth:`stop` ends it)."""

    def __init__(
        self,
        secret: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tolerance_s: float = 300.0,
        signature_header: str = SIGNATURE_HEADER,
        on_receive: Callable[[Received], None] | None = None,
    ) -> None:
        self._secret = secret
        self._host = host
        self._tolerance_s = tolerance_s
        self._header = signature_header
        self._on_receive = on_receive
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._accepted: set[str] = set()
        self._arrived = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        # Handler threads are joined by server_close(), not left behind as daemons.
        self._server.daemon_threads = False
        self._server.timeout = 0.1

    @property
    def port(self) -> int:
        """The port listened on (useful with ``port=0``)."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://host:port/hook``: the URL to configure in a webhook channel."""
        return f"http://{self._host}:{self.port}/hook"

    def start(self) -> None:
        """Serve in a thread until :meth:`stop`."""
        self._thread = threading.Thread(target=self._serve, name=f"webhook-receiver-{self.port}")
        self._thread.start()
        log.info("webhook receiver listening on %s", self.url)

    def _serve(self) -> None:
        while not self._stop.wait(0):
            self._server.handle_request()  # returns after a request or server.timeout

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop serving and close the socket (waiting for requests under way)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def received(self) -> list[Received]:
        """Everything that arrived so far, in arrival order."""
        with self._lock:
            return list(self._received)

    def accepted(self) -> list[Received]:
        """What arrived verified and not a repeat: one entry per message."""
        return [r for r in self.received() if r.verified and not r.duplicate]

    def wait_for(self, count: int, timeout_s: float) -> list[Received]:
        """Wait until ``count`` messages were accepted (or the timeout); the accepted ones."""
        deadline = time.monotonic() + timeout_s
        with self._arrived:
            while sum(1 for r in self._received if r.verified and not r.duplicate) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.wait(left)
        return self.accepted()

    def _record(self, path: str, headers: Any, body: bytes) -> HTTPStatus:
        error = verify_signature(
            self._secret, headers.get(self._header, ""), body, now=time.time(), tolerance_s=self._tolerance_s
        )
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            data, error = {}, error or "the body is not JSON"
        message_id = str(headers.get(IDEMPOTENCY_HEADER, ""))
        with self._arrived:
            duplicate = not error and message_id in self._accepted
            if not error and message_id:
                self._accepted.add(message_id)
            hit = Received(
                received_at=datetime.now(UTC),
                path=path,
                message_id=message_id,
                verified=not error,
                duplicate=duplicate,
                body=data if isinstance(data, dict) else {},
                error=error,
            )
            self._received.append(hit)
            self._arrived.notify_all()
        if self._on_receive is not None:
            self._on_receive(hit)
        if error:
            log.warning("webhook receiver refused a request: %s", error)
            return HTTPStatus.UNAUTHORIZED
        return HTTPStatus.OK

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            # A client that connects and sends nothing must not hold a handler thread (and stop()) forever.
            timeout = 5.0

            def do_POST(self) -> None:
                given = self.headers.get("Content-Length") or "0"
                if not given.isdigit():
                    self.send_error(HTTPStatus.BAD_REQUEST, "Content-Length is not a number")
                    return
                length = int(given)
                if length > MAX_BODY:
                    self.send_error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
                    return
                status = receiver._record(self.path, self.headers, self.rfile.read(length))
                answer = json.dumps({"ok": status is HTTPStatus.OK}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("webhook receiver: " + format, *args)

        return Handler
