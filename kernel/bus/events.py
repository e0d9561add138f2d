"""The bus's typed interface: the :class:`Event` envelope and what a consumer receives (:class:`Delivery`)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, field_validator

from kernel.clock import utcnow
from kernel.errors import BusError

# Lowercase dotted names (``camera.health``); no ``:`` so a topic can never collide with the bus's own keys.
TOPIC_RE = re.compile(r"^[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*$")
# Group and consumer names (``web``, ``patrol-worker-3``); same reason for excluding ``:``.
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_NAME_LENGTH = 200


def check_topic(topic: str) -> str:
    """Return ``topic`` if it is a valid topic name, else raise :class:`ValueError`."""
    if len(topic) > MAX_NAME_LENGTH or not TOPIC_RE.match(topic):
        raise ValueError(f"invalid topic {topic!r}: expected a lowercase dotted name such as 'camera.health'")
    return topic


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is a valid group/consumer name, else raise :class:`BusError`."""
    if len(name) > MAX_NAME_LENGTH or not NAME_RE.match(name):
        raise BusError(f"invalid {kind} name {name!r}: use letters, digits, '_', '.' or '-'")
    return name


def _new_id() -> str:
    return str(uuid.uuid4())


class Event(BaseModel):
    """One immutable event on the bus.

    ``id`` is a UUID (canonical lowercase form) and is what consumer groups de-duplicate on: a producer that
    retries a publish must reuse the same ``id``. ``time`` is always timezone-aware UTC. ``payload`` holds
    JSON values only, so every event survives :meth:`to_json` / :meth:`from_json` unchanged.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=_new_id)
    topic: str
    type: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    time: AwareDatetime = Field(default_factory=utcnow)
    source: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    payload: dict[str, JsonValue] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _canonical_uuid(cls, value: str) -> str:
        # Canonical form so that "ABC..." and "abc..." are the same event for de-duplication.
        try:
            return str(uuid.UUID(value))
        except ValueError as err:
            raise ValueError(f"event id {value!r} is not a UUID") from err

    @field_validator("topic")
    @classmethod
    def _valid_topic(cls, value: str) -> str:
        return check_topic(value)

    @field_validator("time")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def to_json(self) -> str:
        """Serialise to a JSON object (the wire format of both bus implementations)."""
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> Event:
        """Parse :meth:`to_json` output; raises :class:`pydantic.ValidationError` (a ``ValueError``)."""
        return cls.model_validate_json(data)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One hand-over of an event to a consumer; pass it back to :meth:`Consumer.ack` once processed.

    ``delivery_id`` is the bus's entry id (a Redis stream id, or its in-memory equivalent), unique per topic and
    increasing in publish order. ``delivery_count`` is how many times the entry has been handed to the group,
    1 on first delivery and more after :meth:`Consumer.reclaim`.
    """

    topic: str
    group: str
    delivery_id: str
    delivery_count: int
    event: Event


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An entry a consumer group could not decode, set aside instead of stopping the group.

    ``raw`` is the entry's content as text (undecodable bytes replaced), ``error`` says what was wrong.
    """

    topic: str
    group: str
    consumer: str
    delivery_id: str
    raw: str
    error: str
    time: datetime
