"""Pictures kept as evidence: uploads (at most one byte past the limit is read, then :mod:`patrol.pictures`
decides) and the cameras' latest thumbnails."""

from __future__ import annotations

import logging

from fastapi import Request, UploadFile

from ingest.thumbnails import ThumbnailError, ThumbnailStore
from patrol.pictures import JPEG_MAGIC, MAX_PICTURE_BYTES, check_picture

log = logging.getLogger(__name__)


def read_picture(upload: UploadFile | None, *, what: str, png: bool = False) -> bytes | None:
    """The uploaded picture's bytes, checked (422 or 413 through the app's patrol error handler); None when no
    file was sent (a form's file field left empty arrives as an unnamed empty part)."""
    if upload is None:
        return None
    data = upload.file.read(MAX_PICTURE_BYTES + 1)
    if not data and not upload.filename:
        return None
    check_picture(data, what=f"{what} {upload.filename!r}" if upload.filename else what, png=png)
    return data


def latest_thumbnail(request: Request, camera_code: str) -> tuple[bytes | None, str]:
    """The camera's latest thumbnail as evidence: (JPEG, "") or (None, why there is none) — never yet read,
    the thumbnail store unreachable (logged), or not a JPEG."""
    store: ThumbnailStore = request.app.state.thumbnails
    try:
        thumbnail = store.get(camera_code)
    except ThumbnailError as err:
        log.warning("no thumbnail of %s as evidence: %s", camera_code, err)
        return None, f"the thumbnail store could not be read: {err}"
    if thumbnail is None:
        return None, f"no thumbnail of camera {camera_code!r} yet"
    if not thumbnail.jpeg.startswith(JPEG_MAGIC):
        return None, f"the thumbnail of camera {camera_code!r} is not a JPEG"
    return thumbnail.jpeg, ""
