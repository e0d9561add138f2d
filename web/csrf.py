"""CSRF protection: every state-changing request of a logged-in session must echo the session's token.

The token is made at login, kept in the signed session and handed to the page's JavaScript in the readable cookie
``cw_csrf``; the console sends it back in the ``X-CSRF-Token`` header (``console.js`` does this for every
fetch). Another site can make the browser send the session cookie, but it cannot read ``cw_csrf``, so it cannot
forge the header. Login itself is exempt (there is no session yet); it is rate limited instead.
"""

from __future__ import annotations

import hmac
import json
import secrets

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_SESSION_KEY = "csrf"
CSRF_COOKIE = "cw_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EXEMPT_PATHS = frozenset({"/login"})


def new_csrf_token() -> str:
    """A fresh token for a new session."""
    return secrets.token_urlsafe(32)


class CSRFMiddleware:
    """Refuses (403) unsafe requests of a logged-in session whose ``X-CSRF-Token`` is not the session's token.

    Must sit inside Starlette's ``SessionMiddleware`` (add it to the app before that one)."""

    def __init__(self, app: ASGIApp, *, secure_cookie: bool = False) -> None:
        self.app = app
        self.secure_cookie = secure_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session: dict[str, object] = scope.get("session", {})
        token = session.get(CSRF_SESSION_KEY)
        if scope["method"] not in SAFE_METHODS and scope["path"] not in EXEMPT_PATHS and "uid" in session:
            sent = ""
            for name, value in scope["headers"]:
                if name == CSRF_HEADER.encode():
                    sent = value.decode("latin-1")
            if not isinstance(token, str) or not hmac.compare_digest(sent, token):
                await _forbidden(send)
                return

        async def send_with_cookie(message: Message) -> None:
            # Keep the readable cookie in step with the session (set after login, cleared after logout).
            if message["type"] == "http.response.start":
                current = scope.get("session", {}).get(CSRF_SESSION_KEY)
                if current != token or (isinstance(current, str) and _cookie(scope) != current):
                    headers = MutableHeaders(scope=message)
                    secure = "; Secure" if self.secure_cookie else ""
                    if isinstance(current, str):
                        headers.append("set-cookie", f"{CSRF_COOKIE}={current}; Path=/; SameSite=Strict{secure}")
                    else:
                        headers.append("set-cookie", f"{CSRF_COOKIE}=; Path=/; Max-Age=0; SameSite=Strict{secure}")
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def _cookie(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == CSRF_COOKIE:
                    return val
    return None


async def _forbidden(send: Send) -> None:
    body = json.dumps({"detail": "missing or wrong X-CSRF-Token header (reload the page)"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
