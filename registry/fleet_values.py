"""Parsing single cells of a fleet file: URLs (with credential extraction), booleans, tags and enums.

Every parser raises :class:`ValueError` with a message meant for the user. Messages never quote a URL's
user-info, host, port or path: a password with unescaped characters can end up in any of them, so only the
scheme (which cannot hold one) is ever quoted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar
from urllib.parse import unquote

from kernel.secrets import redact_url
from registry.models import Camera, District, SceneType, School, SchoolKind

#: Both streams must be RTSP: the ingest and the diagnosis speak RTSP only, and an HTTP URL would import fine
#: but fail later, far from the file that caused it.
ALLOWED_SCHEMES = ("rtsp", "rtsps")
_E = TypeVar("_E", bound=StrEnum)

_URL_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<netloc>[^/?#]*)(?P<rest>.*)$", re.DOTALL)
_HOST_RE = re.compile(r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)$")

_SPACE_RE = re.compile(r"\s")
_TRUE = frozenset({"true", "t", "yes", "y", "1", "on", "是", "启用", "开"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off", "否", "停用", "禁用", "关"})
_TAG_SPLIT_RE = re.compile(r"[;,；，]")

# Chinese names as bureau staff type them in Excel, besides the English values.
_SCENE_ALIASES = {
    "校门": SceneType.GATE,
    "大门": SceneType.GATE,
    "门口": SceneType.GATE,
    "操场": SceneType.PLAYGROUND,
    "运动场": SceneType.PLAYGROUND,
    "食堂": SceneType.CANTEEN,
    "宿舍": SceneType.DORMITORY,
    "走廊": SceneType.CORRIDOR,
    "楼道": SceneType.CORRIDOR,
    "周界": SceneType.PERIMETER,
    "围墙": SceneType.PERIMETER,
    "水域": SceneType.WATER,
    "泳池": SceneType.WATER,
    "门卫": SceneType.GUARD_POST,
    "门卫室": SceneType.GUARD_POST,
    "岗亭": SceneType.GUARD_POST,
    "教室": SceneType.CLASSROOM,
    "其他": SceneType.OTHER,
}
_KIND_ALIASES = {
    "幼儿园": SchoolKind.KINDERGARTEN,
    "小学": SchoolKind.PRIMARY,
    "初中": SchoolKind.MIDDLE,
    "中学": SchoolKind.MIDDLE,
    "高中": SchoolKind.HIGH,
    "职业学校": SchoolKind.VOCATIONAL,
    "职校": SchoolKind.VOCATIONAL,
    "中职": SchoolKind.VOCATIONAL,
    "其他": SchoolKind.OTHER,
}


def _length(column: object) -> int:
    length = getattr(getattr(column, "type", None), "length", None)
    if not isinstance(length, int):
        raise TypeError(f"{column} has no length")
    return length


#: Longest accepted value of each column, taken from the tables so the two never disagree.
MAX_LENGTHS: dict[str, int] = {
    "district_code": _length(District.__table__.c.code),
    "district_name": _length(District.__table__.c.name),
    "school_code": _length(School.__table__.c.code),
    "school_name": _length(School.__table__.c.name),
    "school_address": _length(School.__table__.c.address),
    "contact_name": _length(School.__table__.c.contact_name),
    "contact_phone": _length(School.__table__.c.contact_phone),
    "camera_code": _length(Camera.__table__.c.code),
    "camera_name": _length(Camera.__table__.c.name),
    "main_url": _length(Camera.__table__.c.main_url),
    "sub_url": _length(Camera.__table__.c.sub_url),
    "username": _length(Camera.__table__.c.username),
    "location": _length(Camera.__table__.c.location),
}


@dataclass(frozen=True)
class CleanUrl:
    """A stream URL without credentials, and the credentials that were in it (percent-decoded)."""

    url: str
    username: str | None
    password: str | None


def clean_url(value: str) -> CleanUrl:
    """Check a camera stream URL and move its user-info out of it.

    ``rtsp://admin:pw@10.1.2.3:554/Streaming/Channels/101`` → URL ``rtsp://10.1.2.3:554/Streaming/Channels/101``,
    user ``admin``, password ``pw``. The scheme is lower-cased; the rest is kept as written.
    """
    match = _URL_RE.match(value)
    if match is None:
        raise ValueError("not a URL (expected rtsp://host[:port]/path)")
    scheme = match.group("scheme").lower()
    if scheme not in ALLOWED_SCHEMES:
        raise ValueError(f"scheme {scheme!r} is not allowed (use rtsp or rtsps)")
    if _SPACE_RE.search(value):
        raise ValueError("the URL contains whitespace")
    netloc, rest = match.group("netloc"), match.group("rest")
    if "@" in rest:
        # Most likely a password holding '/', '?' or '#' that was not percent-encoded.
        raise ValueError(
            "the URL has an '@' after the host: percent-encode special characters of the user name and "
            "password, or put them in the username and password columns"
        )
    username = password = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, sep, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if sep and secret else None
    _check_hostport(netloc)
    url = f"{scheme}://{netloc}{rest}"
    # Only the query can still hold a credential (the user-info is gone); most URLs have none.
    if "?" in rest and redact_url(url) != url:
        raise ValueError(
            "the URL carries a credential in its query string: put it in the username and password columns"
        )
    return CleanUrl(url, username, password)


def _check_hostport(hostport: str) -> None:
    if hostport.startswith("["):
        host, _, after = hostport.partition("]")
        host += "]"
        port = after[1:] if after.startswith(":") else None
        if after and port is None:
            raise ValueError("the host is not valid")
    else:
        host, sep, port_text = hostport.partition(":")
        port = port_text if sep else None
    if not host:
        raise ValueError("the URL has no host")
    if _HOST_RE.match(host) is None:
        raise ValueError("the host is not a valid name or IP address")
    if port is not None and not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise ValueError("the port is not a number from 1 to 65535")


def parse_bool(value: str, default: bool) -> bool:
    """``true/false``, ``yes/no``, ``1/0``, ``y/n``, ``on/off``, ``是/否``; an empty cell gives ``default``."""
    if not value:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a yes/no value (use true or false)")


def parse_tags(value: str) -> list[str]:
    """Tags separated by ';' or ',' (full-width too), blanks dropped, duplicates removed, order kept."""
    return list(dict.fromkeys(t.strip() for t in _TAG_SPLIT_RE.split(value) if t.strip()))


def format_tags(tags: list[str]) -> str:
    """The cell text of a tag list, as export writes it."""
    return ";".join(tags)


def _parse_enum(value: str, cls: type[_E], aliases: dict[str, _E], what: str) -> _E:
    key = "_".join(value.replace("-", " ").lower().split())
    try:
        return cls(key)
    except ValueError:
        pass
    if value in aliases:
        return aliases[value]
    allowed = ", ".join(m.value for m in cls)
    raise ValueError(f"unknown {what} {value!r} (expected one of: {allowed})")


def parse_scene_type(value: str) -> SceneType:
    """A scene type by value (``guard_post``, ``Guard Post``) or Chinese name (``门卫室``)."""
    return _parse_enum(value, SceneType, _SCENE_ALIASES, "scene type")


def parse_school_kind(value: str) -> SchoolKind:
    """A school kind by value (``primary``) or Chinese name (``小学``)."""
    return _parse_enum(value, SchoolKind, _KIND_ALIASES, "school kind")
