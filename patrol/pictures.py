"""Pictures kept as evidence (patrol snapshots, inspection findings, hazard photos): checked by their magic bytes.

One rule for every upload: not empty, at most :data:`MAX_PICTURE_BYTES`, a JPEG (or, where allowed, a PNG).
"""

from __future__ import annotations

from patrol.errors import PatrolError, PatrolTooLargeError

JPEG_MAGIC = b"\xff\xd8\xff"
PNG_MAGIC = b"\x89PNG"
MAX_PICTURE_BYTES = 5 * 1024 * 1024
"""5 MiB: a camera snapshot or a phone photo of a rectification."""


def check_picture(data: bytes, *, what: str = "the picture", png: bool = False) -> str:
    """The content type of ``data`` (``image/jpeg``, or ``image/png`` when ``png``); a :class:`PatrolError`
    naming ``what`` for an empty file, a file over 5 MiB (:class:`PatrolTooLargeError`) or another type."""
    if not data:
        raise PatrolError(f"{what} is empty")
    if len(data) > MAX_PICTURE_BYTES:
        raise PatrolTooLargeError(f"{what} is larger than {MAX_PICTURE_BYTES // (1024 * 1024)} MiB")
    if data.startswith(JPEG_MAGIC):
        return "image/jpeg"
    if data.startswith(PNG_MAGIC):
        if png:
            return "image/png"
        raise PatrolError(f"{what} is a PNG picture: send a JPEG")
    wanted = "a JPEG or PNG picture" if png else "a JPEG"
    raise PatrolError(f"{what} is not {wanted} (it starts with {data[:4].hex(' ')})")
