"""Reading uploaded pictures: at most one byte past the limit is read, then :mod:`patrol.pictures` decides."""

from __future__ import annotations

from fastapi import UploadFile

from patrol.pictures import MAX_PICTURE_BYTES, check_picture


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
