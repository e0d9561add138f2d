"""The latest keyframe of every camera as a small JPEG, for the wall and the camera pages.

Embedded mode keeps them in memory (the web app runs in the same process); distributed mode keeps them in Redis
with a TTL, so any console replica can serve any camera's thumbnail and a dead worker's pictures age out.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime

import cv2
import redis

from ingest.errors import IngestError
from ingest.models import Image
from kernel.secrets import redact_url

log = logging.getLogger(__name__)


class ThumbnailError(IngestError):
    """A thumbnail could not be encoded or stored."""


@dataclass(frozen=True)
class Thumbnail:
    """A JPEG picture of a camera and when it was captured."""

    jpeg: bytes
    captured_at: datetime


def encode_jpeg(image: Image, quality: int = 70) -> bytes:
    """``image`` (BGR) as JPEG bytes."""
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ThumbnailError("JPEG encoding failed")
    return bytes(buffer)


class ThumbnailStore(ABC):
    """Where thumbnails are kept; thread-safe."""

    @abstractmethod
    def put(self, code: str, thumbnail: Thumbnail) -> None:
        """Replace camera ``code``'s thumbnail."""

    @abstractmethod
    def get(self, code: str) -> Thumbnail | None:
        """Camera ``code``'s latest thumbnail, or None."""

    def close(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections."""


class MemoryThumbnailStore(ThumbnailStore):
    """Thumbnails in this process (embedded mode)."""

    def __init__(self) -> None:
        self._items: dict[str, Thumbnail] = {}
        self._lock = threading.Lock()

    def put(self, code: str, thumbnail: Thumbnail) -> None:
        with self._lock:
            self._items[code] = thumbnail

    def get(self, code: str) -> Thumbnail | None:
        with self._lock:
            return self._items.get(code)


class RedisThumbnailStore(ThumbnailStore):
    """Thumbnails in Redis under ``<namespace>:<code>`` with a TTL (distributed mode)."""

    def __init__(self, url: str, *, ttl_s: int = 600, namespace: str = "campuswatch:thumb") -> None:
        self._client = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._url = url
        self._ttl_s = ttl_s
        self._namespace = namespace

    def put(self, code: str, thumbnail: Thumbnail) -> None:
        value = f"{thumbnail.captured_at.timestamp():.3f}|".encode() + thumbnail.jpeg
        try:
            self._client.set(f"{self._namespace}:{code}", value, ex=self._ttl_s)
        except redis.RedisError as err:
            # A lost thumbnail is replaced by the next keyframe; do not stop the reader for it.
            log.warning("thumbnail of %s not stored in %s: %s", code, redact_url(self._url), err)

    def get(self, code: str) -> Thumbnail | None:
        try:
            raw = self._client.get(f"{self._namespace}:{code}")
        except redis.RedisError as err:
            raise ThumbnailError(f"thumbnail store {redact_url(self._url)} unreachable: {err}") from err
        if not isinstance(raw, bytes) or b"|" not in raw:
            return None
        stamp, jpeg = raw.split(b"|", 1)
        return Thumbnail(jpeg, datetime.fromtimestamp(float(stamp), UTC))

    def close(self) -> None:
        self._client.close()


def create_thumbnail_store(bus_url: str, ttl_s: int = 600) -> ThumbnailStore:
    """In memory for an in-process bus (``memory://``), in Redis for a Redis bus."""
    if bus_url.startswith(("redis://", "rediss://", "unix://")):
        return RedisThumbnailStore(bus_url, ttl_s=ttl_s)
    return MemoryThumbnailStore()
