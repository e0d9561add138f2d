"""``/ws/feed``: the console's real-time WebSocket (events, their handling, walls, incidents, hazards, camera
health), filtered by the user's scope. See :mod:`web.feed` for the fan-out.

The handshake must carry the console's session cookie (a valid login session, :func:`web.auth.session_valid`)
and, when the browser sends an ``Origin``, one whose host is the request's ``Host`` (a page of another site
cannot open the feed with the user's cookie: cross-site WebSocket hijacking). Refused handshakes are closed
before acceptance (the browser sees HTTP 403, close code 1008).

Protocol: the server sends a ``hello`` first, then feed messages, and a ``ping`` every ``heartbeat_s``; the
client answers ``{"type": "pong"}`` (anything it sends counts). A client silent for ``pong_timeout_s`` is closed
(4408), one whose session ended meanwhile (logged out, expired, password changed...: 4401, at the next
heartbeat), one that cannot keep up (4429), and all at shutdown (1001).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from sqlalchemy.orm import Session, sessionmaker
from starlette.websockets import WebSocketState

from kernel.clock import utcnow
from web.auth import session_login
from web.feed import FeedBroadcaster, FeedClient
from web.models import User
from web.scopes import Scope

log = logging.getLogger(__name__)
router = APIRouter(tags=["feed"])

CLOSE_POLICY = 1008
CLOSE_UNAVAILABLE = 1011
CLOSE_SESSION_ENDED = 4401
CLOSE_NO_PONG = 4408
CLOSE_WAIT_S = 2.0


def same_origin(websocket: WebSocket) -> bool:
    """Whether the handshake's ``Origin`` (if any: browsers always send one) names this server's ``Host``."""
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser: it could send any Origin, and has no victim's cookie to ride on
    host = websocket.headers.get("host", "")
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.netloc.lower() == host.lower()


def _session_user(factory: sessionmaker[Session], cookie: Mapping[str, object]) -> User | None:
    """The session's user if it is still valid (the check of :func:`web.auth.current_user`)."""
    with factory() as session:
        found = session_login(session, cookie)
        if found is None:
            return None
        session.expunge(found[0])
        return found[0]


def _visible(factory: sessionmaker[Session], user: User) -> tuple[frozenset[str] | None, str]:
    with factory() as session:
        scope = Scope.of(user)
        codes = scope.visible_school_codes(session)
        return (frozenset(codes) if codes is not None else None), scope.describe(session)


@router.websocket("/ws/feed")
async def feed(websocket: WebSocket) -> None:
    """The real-time feed of the logged-in user's scope."""
    broadcaster: FeedBroadcaster | None = getattr(websocket.app.state, "feed", None)
    factory: sessionmaker[Session] = websocket.app.state.session_factory
    if not same_origin(websocket):
        log.warning("feed: refused a handshake from origin %r", websocket.headers.get("origin"))
        await websocket.close(CLOSE_POLICY, "cross-origin")
        return
    cookie = dict(websocket.scope.get("session") or {})
    user = await asyncio.to_thread(_session_user, factory, cookie)
    if user is None:
        await websocket.close(CLOSE_POLICY, "login required")
        return
    if broadcaster is None or not broadcaster.running:
        await websocket.close(CLOSE_UNAVAILABLE, "feed not running")
        return
    visible, described = await asyncio.to_thread(_visible, factory, user)
    await websocket.accept()
    client = broadcaster.register(visible)
    try:
        await websocket.send_text(
            json.dumps(
                {
                    "type": "hello",
                    "user": {
                        "id": user.id,
                        "username": user.username,
                        "display_name": user.display_name,
                        "role": user.role.value,
                    },
                    "scope": described,
                    "heartbeat_s": broadcaster.heartbeat_s,
                    "time": utcnow().isoformat(),
                },
                ensure_ascii=False,
            )
        )
        await _serve(websocket, client, broadcaster, factory, cookie)
    except WebSocketDisconnect:
        pass
    finally:
        broadcaster.unregister(client)


async def _serve(
    websocket: WebSocket,
    client: FeedClient,
    broadcaster: FeedBroadcaster,
    factory: sessionmaker[Session],
    cookie: Mapping[str, object],
) -> None:
    """Run the sender, the receiver and the heartbeat until one ends; then close the socket if still open."""
    loop = asyncio.get_running_loop()
    last_heard = [loop.time()]

    async def send() -> None:
        while True:
            await websocket.send_text(await client.queue.get())
            client.sent += 1

    async def receive() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            last_heard[0] = loop.time()

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(broadcaster.heartbeat_s)
            if loop.time() - last_heard[0] > broadcaster.pong_timeout_s:
                client.kick(CLOSE_NO_PONG, "no answer to the pings")
                return
            if await anyio.to_thread.run_sync(_session_user, factory, cookie) is None:
                client.kick(CLOSE_SESSION_ENDED, "the session ended")
                return
            client.offer(json.dumps({"type": "ping", "time": utcnow().isoformat()}))

    async def until_kicked() -> None:
        await client.kicked.wait()

    # An anyio task group (not bare asyncio tasks): the server's (or TestClient's) cancel scope then reaches
    # all four, and the first one to end ends the others.
    async with anyio.create_task_group() as group:

        async def first_to_end(part: Callable[[], Awaitable[None]]) -> None:
            try:
                await part()
            except (WebSocketDisconnect, RuntimeError, OSError) as err:  # the socket went away under us
                log.debug("feed: %s ended by %r", part.__name__, err)
            group.cancel_scope.cancel()

        for part in (send, receive, heartbeat, until_kicked):
            group.start_soon(first_to_end, part)
    if client.kicked.is_set() and websocket.application_state is WebSocketState.CONNECTED:
        with anyio.move_on_after(CLOSE_WAIT_S), contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.close(client.close_code, client.close_reason)
