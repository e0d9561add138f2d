"""Pick the bus from a URL: ``memory://`` (or none) for embedded mode, ``redis://`` for distributed mode."""

from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import urlsplit

from kernel.bus.base import EventBus
from kernel.bus.memory import InMemoryBus
from kernel.bus.redis_streams import RedisStreamsBus
from kernel.errors import BusError
from kernel.secrets import redact_url

REDIS_SCHEMES = frozenset({"redis", "rediss", "unix"})


def create_bus(url: str | None, **options: Any) -> EventBus:
    """A bus for ``url``: ``None``/``memory://`` → :class:`InMemoryBus`, ``redis[s]://``/``unix://`` → Redis.

    ``options`` are the chosen class's keyword arguments (``maxlen``, ``dedup_ttl_s``; for Redis also
    ``key_prefix``, ``socket_timeout_s``, ``connect_timeout_s``). Raises :class:`BusError` for an unknown scheme
    or option; the message shows the URL with its password masked.
    """
    scheme = urlsplit(url).scheme.lower() if url else "memory"
    if scheme == "memory":
        _check_options(InMemoryBus, options)
        return InMemoryBus(**options)
    if url and scheme in REDIS_SCHEMES:
        _check_options(RedisStreamsBus, options)
        return RedisStreamsBus(url, **options)
    raise BusError(
        f"unsupported event bus URL {redact_url(url or '')!r}: expected memory:// or redis://host:port/db"
    )


def _check_options(cls: type[EventBus], options: dict[str, Any]) -> None:
    # A typo in a settings file should fail with the valid names, not with a TypeError from __init__.
    accepted = {
        name
        for name, param in inspect.signature(cls.__init__).parameters.items()
        if param.kind is inspect.Parameter.KEYWORD_ONLY
    }
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise BusError(f"unknown {cls.__name__} option(s) {unknown}; accepted: {sorted(accepted)}")
