"""Live view of a camera over WebRTC: the browser's offer in, aiortc's answer out (see :mod:`web.live`).

Who may watch: every role but the auditor, and only cameras inside the user's scope (others answer 404, as if
missing). The auditor reads who watched what in the audit log; watching school cameras is not part of auditing,
so the auditor gets 403. A session is stopped by its viewer or an administrator; ``GET /api/live/sessions``
(administrators) lists the live ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from ingest.fleet import with_credentials
from kernel.errors import SecretsError
from kernel.secrets import SecretBox
from registry.models import Camera
from web.auth import CurrentUser, client_address, current_login
from web.deps import AppSettings, DbSession
from web.live import (
    REASON_VIEWER_LEFT,
    CameraSource,
    LiveClosedError,
    LiveError,
    LiveLimitError,
    LiveManager,
    LiveOfferError,
    LiveSession,
    LiveStreamError,
    StreamKind,
    Viewer,
)
from web.models import Role, ScopeKind, User
from web.permissions import BureauAdminUser, require_roles
from web.scopes import UserScope, not_found

router = APIRouter(prefix="/api/live", tags=["live"])

LIVE_ROLES = tuple(role for role in Role if role is not Role.AUDITOR)
"""Who may watch live video: everybody but the auditor."""
LiveViewerUser = Annotated[User, Depends(require_roles(*LIVE_ROLES))]


class LiveOfferCreate(BaseModel):
    """The browser's SDP offer: one receive-only video transceiver, ICE candidates gathered (no trickle)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["offer"] = Field("offer", description="Always offer")
    sdp: str = Field(min_length=1, max_length=100_000, description="The offer (RTCSessionDescription.sdp)")


class LiveAnswerPublic(BaseModel):
    """aiortc's answer and the session it starts."""

    session_id: str = Field(description="Stop it with DELETE /api/live/sessions/{id}")
    type: Literal["answer"] = Field("answer", description="Always answer")
    sdp: str = Field(description="The answer, to pass to setRemoteDescription")
    camera_code: str = Field(description="Camera watched")
    stream: StreamKind = Field(description="The camera stream played (main or sub)")
    codec: str = Field(description="Negotiated codec: always video/H264, the camera's own bitstream")
    width: int = Field(description="Picture width the camera sends")
    height: int = Field(description="Picture height the camera sends")
    started_at: datetime = Field(description="When the session started")
    max_duration_s: int = Field(description="The session ends by itself after this many seconds")


class LiveSessionPublic(BaseModel):
    """A live view, playing or recently ended."""

    id: str = Field(description="Session id")
    camera_code: str = Field(description="Camera watched")
    username: str = Field(description="Who watches")
    stream: StreamKind = Field(description="The camera stream played")
    state: Literal["connecting", "playing", "ended"] = Field(description="connecting, playing or ended")
    reason: str = Field("", description="Why it ended")
    started_at: datetime = Field(description="When it started")
    ended_at: datetime | None = Field(None, description="When it ended")
    duration_s: float | None = Field(None, description="How long it lasted (seconds), once ended")
    packets_sent: int = Field(description="H.264 access units passed to the viewer")


def get_live(request: Request) -> LiveManager:
    """The app's live-view manager."""
    manager: LiveManager = request.app.state.live
    return manager


AppLive = Annotated[LiveManager, Depends(get_live)]


def _secret_box(request: Request, settings: AppSettings) -> SecretBox:
    box: SecretBox | None = getattr(request.app.state, "live_secret_box", None)
    if box is None:
        box = request.app.state.live_secret_box = SecretBox.for_data_dir(settings.data_dir)
    return box


def live_camera(
    camera_code: str,
    request: Request,
    session: DbSession,
    scope: UserScope,
    settings: AppSettings,
    _viewer: LiveViewerUser,
    stream: Annotated[
        StreamKind | None, Query(description="main or sub; default: the sub stream when the camera has one")
    ] = None,
) -> CameraSource:
    """The camera stream to pull, with its decrypted credentials; 404 outside the user's scope."""
    if not settings.live.enabled:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "live view is turned off (live.enabled)")
    camera = session.scalar(select(Camera).where(Camera.code == camera_code, scope.cameras(Camera.id)))
    if camera is None:
        raise not_found(f"camera {camera_code}")
    if not camera.enabled:
        raise HTTPException(status.HTTP_409_CONFLICT, f"camera {camera_code} is disabled")
    want_sub = stream is StreamKind.SUB or (stream is None and settings.live.prefer_sub_stream)
    kind, url = (
        (StreamKind.SUB, camera.sub_url) if want_sub and camera.sub_url else (StreamKind.MAIN, camera.main_url)
    )
    password = ""
    if camera.password_encrypted:
        try:
            password = _secret_box(request, settings).decrypt(camera.password_encrypted)
        except SecretsError as err:
            raise HTTPException(status.HTTP_409_CONFLICT, f"camera {camera_code}: {err}") from err
    return CameraSource(
        camera.id, camera.code, kind, with_credentials(url, camera.username, password or None), password
    )


LiveCamera = Annotated[CameraSource, Depends(live_camera)]


def _public(session: LiveSession) -> LiveSessionPublic:
    return LiveSessionPublic(
        id=session.id,
        camera_code=session.source.code,
        username=session.viewer.username,
        stream=session.source.stream,
        state=session.state,
        reason=session.reason,
        started_at=session.started_at,
        ended_at=session.ended_at,
        duration_s=session.duration_s,
        packets_sent=session.packets_sent,
    )


def _http_error(err: LiveError) -> HTTPException:
    if isinstance(err, LiveOfferError):
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err))
    if isinstance(err, LiveLimitError):
        return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(err))
    if isinstance(err, LiveStreamError):
        code = status.HTTP_504_GATEWAY_TIMEOUT if err.timeout else status.HTTP_502_BAD_GATEWAY
        return HTTPException(code, f"the camera's stream cannot be played: {err}")
    if isinstance(err, LiveClosedError):
        return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(err))
    return HTTPException(status.HTTP_409_CONFLICT, str(err))


@router.post(
    "/{camera_code}/offer",
    status_code=status.HTTP_201_CREATED,
    summary="Start a live view: WebRTC offer in, answer out",
    responses={
        404: {"description": "No such camera, or outside the user's scope"},
        422: {"description": "Malformed offer, or one without H.264"},
        429: {"description": "Too many live viewers"},
        502: {"description": "The camera's stream cannot be opened or is not H.264"},
        504: {"description": "The camera did not answer in time"},
    },
)
async def start_live(
    body: LiveOfferCreate, source: LiveCamera, user: LiveViewerUser, request: Request, live: AppLive
) -> LiveAnswerPublic:
    """Answer the browser's offer with the camera's own H.264 (one RTSP pull shared by all its viewers)."""
    viewer = Viewer(
        user.id,
        user.username,
        client_address(request),
        session_version=user.session_version,
        login_session_id=current_login(request).id,
    )
    try:
        session, answer = await live.open(viewer, source, body.sdp)
    except LiveError as err:
        raise _http_error(err) from err
    return LiveAnswerPublic(
        session_id=session.id,
        sdp=answer,
        camera_code=source.code,
        stream=source.stream,
        codec=session.codec,
        width=session.info.width,
        height=session.info.height,
        started_at=session.started_at,
        max_duration_s=live.config.max_session_s,
    )


@router.get("/sessions", summary="Live views now (bureau administrators)")
async def list_live(_admin: BureauAdminUser, live: AppLive) -> list[LiveSessionPublic]:
    """Every live view not ended, oldest first."""
    return [_public(s) for s in live.sessions()]


def _own_session(live: LiveManager, session_id: str, user: User) -> LiveSession:
    session = live.get(session_id)
    bureau_admin = user.role is Role.ADMINISTRATOR and user.scope is ScopeKind.BUREAU
    if session is None or (session.viewer.user_id != user.id and not bureau_admin):
        raise not_found(f"live session {session_id}")
    return session


@router.get("/sessions/{session_id}", summary="One live view: its state, and why it ended")
async def get_live_session(session_id: str, user: CurrentUser, live: AppLive) -> LiveSessionPublic:
    """The viewer's own session (a bureau administrator's: any), live or recently ended."""
    return _public(_own_session(live, session_id, user))


@router.delete(
    "/sessions/{session_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Stop a live view (audited)"
)
async def stop_live(session_id: str, user: CurrentUser, live: AppLive) -> Response:
    """Stop the viewer's own session (a bureau administrator: any); stopping an ended one is a no-op."""
    session = _own_session(live, session_id, user)
    own = session.viewer.user_id == user.id
    await live.end(session.id, REASON_VIEWER_LEFT if own else f"stopped by administrator {user.username}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
