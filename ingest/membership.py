"""Which ingest workers are alive: heartbeats with a time to live.

:class:`LocalMembership` is embedded mode (one in-process worker, no Redis). :class:`RedisMembership` shares the
live set of every worker of a deployment through one Redis key, ``<namespace>:workers``: a sorted set whose
members are worker ids and whose scores are each worker's expiry time in milliseconds of the *Redis server's*
clock (so the workers' own clocks never matter). A heartbeat sets its worker's score to ``now + ttl``; a worker
counts as live while its score is in the future, so one that stops heartbeating (SIGKILL, a hung host, a lost
network) drops out of the live set ``ttl_s`` after its last heartbeat, and :meth:`Membership.leave` removes it at
once. Heartbeats also prune expired members, and the key expires after its newest member, so a deployment whose
workers are all gone leaves nothing behind.

If Redis restarts (and loses the set), the next heartbeat of every worker registers it again and reports that it
had to (:meth:`Membership.heartbeat` returns ``False``), which is how :class:`ingest.sharding.ShardWatcher`
notices that its peers may not be back yet.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from typing import cast
from urllib.parse import unquote, urlsplit

import redis
from redis import exceptions as redis_errors
from redis.backoff import NoBackoff
from redis.retry import Retry

from ingest.errors import IngestError
from kernel.secrets import redact_text, redact_url

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 2.0
"""Seconds between heartbeats (and between a :class:`ingest.sharding.ShardWatcher`'s rounds)."""

DEFAULT_TTL_S = 6.0
"""Seconds a worker stays live after its last heartbeat: three heartbeats, so one or two late ones are harmless."""

DEFAULT_NAMESPACE = "campuswatch:ingest"
"""Prefix of the Redis key; deployments sharing one Redis need different namespaces."""

_MAX_WORKER_ID = 200

# Heartbeat/join: returns 1 if this worker was live before the call, else 0.
# Times are the Redis server's (TIME), in ms. The key expires a second after its newest member's expiry.
_HEARTBEAT_LUA = """
local key, me, ttl = KEYS[1], ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prev = redis.call('ZSCORE', key, me)
local was = 0
if prev and tonumber(prev) > now then was = 1 end
redis.call('ZADD', key, string.format('%d', now + ttl), me)
redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now))
local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', key, string.format('%d', tonumber(top[2]) + 1000))
return was
"""

_LIVE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], string.format('(%d', now), '+inf')
"""


class MembershipError(IngestError):
    """The membership registry is unreachable or failed, or a membership setting is invalid."""


def new_worker_id(hostname: str | None = None) -> str:
    """A worker id unique across hosts and restarts: ``<hostname>-<pid>-<6 random hex digits>``.

    The random part keeps a restarted process that got the same pid from taking over its predecessor's entry
    (which may still be live for a TTL). Characters outside ``[A-Za-z0-9._-]`` in the host name become ``_``.
    """
    host = hostname if hostname is not None else socket.gethostname()
    host = re.sub(r"[^A-Za-z0-9._-]", "_", host)[:64] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def _check_worker_id(worker_id: str) -> str:
    if (
        not worker_id
        or len(worker_id) > _MAX_WORKER_ID
        or not worker_id.isprintable()
        or worker_id.strip() != worker_id
    ):
        raise MembershipError(f"invalid worker id {worker_id!r}: 1 to {_MAX_WORKER_ID} printable characters")
    return worker_id


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class Membership(ABC):
    """The live ingest workers of a deployment, as seen by one of them (``worker_id``).

    ``heartbeat_s`` is how often the owner should call :meth:`heartbeat`; ``ttl_s`` how long a worker stays live
    after its last one. Every method raises :class:`MembershipError` when the registry cannot be used.
    """

    def __init__(self, worker_id: str, *, heartbeat_s: float, ttl_s: float) -> None:
        if not heartbeat_s > 0:
            raise MembershipError(f"heartbeat_s must be positive, got {heartbeat_s}")
        # A TTL of one heartbeat or less would make every worker flap in and out of the live set.
        if not ttl_s > heartbeat_s:
            raise MembershipError(f"ttl_s ({ttl_s}) must be longer than heartbeat_s ({heartbeat_s})")
        self.worker_id = _check_worker_id(worker_id)
        self.heartbeat_s = heartbeat_s
        self.ttl_s = ttl_s

    @property
    def description(self) -> str:
        """Where the registry lives, safe to log (no credentials)."""
        return "in-process"

    @abstractmethod
    def join(self) -> None:
        """Register this worker as live (for ``ttl_s``)."""

    @abstractmethod
    def heartbeat(self) -> bool:
        """Renew this worker's registration for another ``ttl_s``.

        Returns ``True`` when it was still registered, ``False`` when it had to be registered afresh: it never
        joined, its entry expired (heartbeats came too late) or the registry lost it (Redis restarted or was
        flushed) — in the last case the other workers' entries are gone too until their next heartbeat.
        """

    @abstractmethod
    def live_workers(self) -> list[str]:
        """The ids of the live workers, sorted (this one included while it is registered)."""

    @abstractmethod
    def leave(self) -> None:
        """Remove this worker from the live set at once; safe to call when not registered."""

    def close(self) -> None:  # noqa: B027 - optional hook, most memberships hold nothing
        """Release connections this membership opened itself (not a client that was passed in)."""


class LocalMembership(Membership):
    """Embedded mode: the only worker is this one, no registry."""

    def __init__(
        self, worker_id: str | None = None, *, heartbeat_s: float = DEFAULT_HEARTBEAT_S, ttl_s: float | None = None
    ) -> None:
        super().__init__(
            worker_id if worker_id is not None else new_worker_id(),
            heartbeat_s=heartbeat_s,
            ttl_s=ttl_s if ttl_s is not None else 3 * heartbeat_s,
        )
        self._joined = False

    def join(self) -> None:
        """Mark this worker live."""
        self._joined = True

    def heartbeat(self) -> bool:
        """Always succeeds; ``False`` only when :meth:`join` was not called (or :meth:`leave` was) before."""
        was = self._joined
        self._joined = True
        return was

    def live_workers(self) -> list[str]:
        """``[worker_id]`` while joined, else ``[]``."""
        return [self.worker_id] if self._joined else []

    def leave(self) -> None:
        """Mark this worker gone."""
        self._joined = False


class RedisMembership(Membership):
    """Membership shared through Redis (distributed mode); see the module docstring for the data model.

    ``client_or_url`` is a ``redis://``, ``rediss://`` or ``unix://`` URL (only ever logged redacted), or a
    ``redis.Redis`` client the caller owns and configures (timeouts, retries). A client made from a URL bounds
    every call by ``socket_timeout_s`` (default: ``heartbeat_s``, at most 5 s) and retries a failed call once
    without waiting (which reconnects a pooled connection that a Redis restart broke); the caller's own retries
    happen at the next heartbeat. No connection is made until the first call. Thread-safe.
    """

    def __init__(
        self,
        client_or_url: redis.Redis | str,
        worker_id: str,
        *,
        heartbeat_s: float = DEFAULT_HEARTBEAT_S,
        ttl_s: float = DEFAULT_TTL_S,
        namespace: str = DEFAULT_NAMESPACE,
        socket_timeout_s: float | None = None,
    ) -> None:
        super().__init__(worker_id, heartbeat_s=heartbeat_s, ttl_s=ttl_s)
        if not namespace or any(ch.isspace() for ch in namespace):
            raise MembershipError(f"invalid namespace {namespace!r}")
        self.key = f"{namespace}:workers"
        self._ttl_ms = max(1, round(ttl_s * 1000))
        if isinstance(client_or_url, str):
            self._url = redact_url(client_or_url)
            password = urlsplit(client_or_url).password or ""
            self._secrets = (password, unquote(password)) if password else ()
            timeout = socket_timeout_s if socket_timeout_s is not None else min(max(heartbeat_s, 0.2), 5.0)
            try:
                self._client: redis.Redis = redis.Redis.from_url(
                    client_or_url,
                    socket_timeout=timeout,
                    socket_connect_timeout=timeout,
                    retry=Retry(NoBackoff(), 1),
                    protocol=2,
                )
            except ValueError as err:
                raise MembershipError(f"invalid Redis URL {self._url}: {self._redact(err)}") from err
            self._owns_client = True
        else:
            self._client = client_or_url
            self._url = self._describe_client(client_or_url)
            self._secrets = ()
            self._owns_client = False
        self._heartbeat_script = self._client.register_script(_HEARTBEAT_LUA)
        self._live_script = self._client.register_script(_LIVE_LUA)

    @staticmethod
    def _describe_client(client: redis.Redis) -> str:
        kwargs = client.connection_pool.connection_kwargs
        if "path" in kwargs:
            return f"unix://{kwargs['path']}"
        return f"redis://{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"

    @property
    def description(self) -> str:
        """The Redis server, redacted (``redis://***:***@host:6379/0``)."""
        return self._url

    def _redact(self, err: BaseException) -> str:
        return redact_text(str(err), self._secrets)

    @contextmanager
    def _call(self, action: str) -> Iterator[None]:
        """Turn redis-py errors into :class:`MembershipError` naming the action and the (redacted) server."""
        try:
            yield
        except redis_errors.AuthenticationError as err:  # a ConnectionError subclass, but a different fix
            reason = self._redact(err)
            raise MembershipError(f"Redis at {self._url} rejected the credentials ({action}): {reason}") from err
        except redis_errors.ConnectionError as err:
            raise MembershipError(f"cannot reach Redis at {self._url} to {action}: {self._redact(err)}") from err
        except redis_errors.TimeoutError as err:
            raise MembershipError(
                f"Redis at {self._url} timed out trying to {action}: {self._redact(err)}"
            ) from err
        except redis_errors.RedisError as err:
            raise MembershipError(f"Redis at {self._url} failed to {action}: {self._redact(err)}") from err

    def _register(self, action: str) -> bool:
        with self._call(action):
            was = cast(int, self._heartbeat_script(keys=[self.key], args=[self.worker_id, self._ttl_ms]))
        return int(was) == 1

    def join(self) -> None:
        """Register this worker; warns when the id is already live (another process using the same id?)."""
        if self._register(f"register worker {self.worker_id!r}"):
            logger.warning(
                "ingest worker id %s is already live in %s at %s: another process may be using the same id",
                self.worker_id,
                self.key,
                self._url,
            )
        logger.info("ingest worker %s joined %s at %s", self.worker_id, self.key, self._url)

    def heartbeat(self) -> bool:
        """Renew this worker's entry for ``ttl_s``; ``False`` when it had to be created afresh."""
        return self._register(f"heartbeat worker {self.worker_id!r}")

    def live_workers(self) -> list[str]:
        """The workers whose entries have not expired, by the Redis server's clock; sorted."""
        with self._call("read the live workers"):
            reply = cast(list[bytes | str], self._live_script(keys=[self.key]))
        return sorted(_text(member) for member in reply)

    def leave(self) -> None:
        """Remove this worker's entry (``ZREM``), so the others take its cameras at their next round."""
        with self._call(f"unregister worker {self.worker_id!r}"):
            self._client.zrem(self.key, self.worker_id)
        logger.info("ingest worker %s left %s at %s", self.worker_id, self.key, self._url)

    def close(self) -> None:
        """Close the connection pool if this membership created it from a URL."""
        if not self._owns_client:
            return
        try:
            self._client.close()
        except redis_errors.RedisError as err:
            logger.debug("closing the Redis membership client at %s: %s", self._url, self._redact(err))
