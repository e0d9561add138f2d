"""The ``live`` section: live view of a camera in the console over WebRTC (``web.live``).

The camera's own H.264 is passed through to the browser without re-encoding; one RTSP pull per camera is shared
by all its viewers and ends with the last one.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class LiveConfig(BaseModel):
    """Live view over WebRTC: which stream, how many viewers, how long waits and sessions may last."""

    # Not config.schema.Section: schema imports this module, so this one must not import schema.
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Offer live view in the console (off: every offer answers 404)")
    prefer_sub_stream: bool = Field(
        True,
        description="Play a camera's sub stream when it has one (smaller, fits a wall tile); a viewer may ask "
        "for the main stream",
    )
    max_viewers_per_camera: int = Field(
        8, ge=1, le=100, description="Live viewers of one camera at the same time (all share one RTSP pull)"
    )
    max_sessions: int = Field(32, ge=1, le=1000, description="Live viewers in all, over every camera")
    max_sessions_per_user: int = Field(4, ge=1, le=100, description="Live views one user may have open at once")
    open_timeout_s: float = Field(
        5.0, ge=0.5, le=60, description="Longest wait to open a camera's stream before the offer fails"
    )
    read_timeout_s: float = Field(
        5.0, ge=0.5, le=60, description="A stream silent this long is stalled: its viewers' sessions end"
    )
    connect_timeout_s: float = Field(
        20.0,
        ge=2,
        le=300,
        description="A viewer whose WebRTC connection is not up this long after the answer ends",
    )
    max_session_s: int = Field(
        3600, ge=30, le=86_400, description="A live view ends after this many seconds (the viewer may start again)"
    )
    session_check_s: float = Field(
        2.0,
        ge=0.5,
        le=30,
        description="How often live views are checked against their viewers' console sessions (one query for "
        "all viewers): a view whose session ended (password, role or scope changed, account disabled) ends "
        "within this many seconds",
    )
