"""A video wall: its layout over one or more screens, pinned tiles, rotating tiles, and alarm takeover.

Tiles are numbered screen by screen; in the ``1+N`` layouts tile 0 of each screen is the big one. A tile is pinned
to a camera or rotating (fed by the wall's tour). A new alarm on a camera this wall watches (its district or
school) takes a tile — the first rotating big tile, else the first rotating tile — or, with ``takeover="wall"``,
every rotating tile; rotation pauses until the alarm is acknowledged. Several alarms queue; acknowledging one
brings the next, and after the last the rotation resumes where it stopped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from patrol.errors import PatrolError
from patrol.tours import LAYOUT_TILES


@dataclass(frozen=True)
class Alarm:
    """An alarm as the wall needs it."""

    alarm_id: str
    camera_code: str
    school_code: str
    district_code: str


@dataclass
class Wall:
    """One wall and what its tiles show now."""

    name: str
    layout: str
    screens: int = 1
    pinned: dict[int, str] = field(default_factory=dict)
    """Tile index -> camera code, for tiles that never rotate."""
    districts: frozenset[str] = frozenset()
    schools: frozenset[str] = frozenset()
    """What the wall watches (alarms from elsewhere do not take it); both empty: the whole bureau."""
    takeover: Literal["tile", "wall"] = "tile"
    showing: dict[int, str] = field(default_factory=dict, init=False)
    _alarms: deque[Alarm] = field(default_factory=deque, init=False, repr=False)
    _held: list[int] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.layout not in LAYOUT_TILES:
            raise PatrolError(f"unknown layout {self.layout!r}; layouts: {', '.join(LAYOUT_TILES)}")
        if not 1 <= self.screens <= 16:
            raise PatrolError(f"a wall spans 1 to 16 screens, not {self.screens}")
        bad = [i for i in self.pinned if not 0 <= i < self.tiles]
        if bad:
            raise PatrolError(f"pinned tiles {bad} are not on a {self.tiles}-tile wall")
        if len(self.rotating) == 0:
            raise PatrolError("every tile is pinned: nothing left to rotate or to take an alarm")
        self.showing = dict(self.pinned)

    @property
    def tiles(self) -> int:
        """Tiles over all screens."""
        return LAYOUT_TILES[self.layout] * self.screens

    @property
    def rotating(self) -> list[int]:
        """Tiles fed by the tour, in order."""
        return [i for i in range(self.tiles) if i not in self.pinned]

    @property
    def paused(self) -> bool:
        """Rotation is paused while an alarm is on the wall."""
        return bool(self._alarms)

    @property
    def alarm(self) -> Alarm | None:
        """The alarm shown now (None: rotating)."""
        return self._alarms[0] if self._alarms else None

    @property
    def queued(self) -> list[Alarm]:
        """Alarms waiting behind the one shown."""
        return list(self._alarms)[1:]

    def watches(self, alarm: Alarm) -> bool:
        """Whether alarms of this camera's school or district come to this wall."""
        if not self.districts and not self.schools:
            return True
        return alarm.district_code in self.districts or alarm.school_code in self.schools

    def page_size(self) -> int:
        """How many cameras the tour should hand for the next rotation (0 while paused)."""
        return 0 if self.paused else len(self.rotating)

    def show_page(self, cameras: tuple[str, ...]) -> None:
        """Put a tour page on the rotating tiles (ignored while an alarm holds the wall)."""
        if self.paused:
            return
        if len(cameras) > len(self.rotating):
            raise PatrolError(f"a page of {len(cameras)} cameras for {len(self.rotating)} rotating tiles")
        for tile in self.rotating:
            self.showing.pop(tile, None)
        for tile, code in zip(self.rotating, cameras, strict=False):
            self.showing[tile] = code

    def raise_alarm(self, alarm: Alarm) -> bool:
        """Queue ``alarm`` if this wall watches it; True if it did. The first one takes over at once."""
        if not self.watches(alarm) or any(a.alarm_id == alarm.alarm_id for a in self._alarms):
            return False
        self._alarms.append(alarm)
        if len(self._alarms) == 1:
            self._take_over(alarm)
        return True

    def acknowledge(self, alarm_id: str) -> None:
        """Acknowledge an alarm: the next queued one takes over, or rotation resumes (the tour's next page)."""
        for alarm in self._alarms:
            if alarm.alarm_id == alarm_id:
                break
        else:
            raise PatrolError(f"alarm {alarm_id!r} is not on wall {self.name!r}")
        shown_now = self._alarms[0].alarm_id == alarm_id
        self._alarms.remove(alarm)
        if shown_now and self._alarms:
            self._take_over(self._alarms[0])

    def sync_alarms(self, alarms: Sequence[Alarm]) -> bool:
        """Make the queue ``alarms`` (the stored unacknowledged ones, oldest first; those this wall does not
        watch are left out). True when the alarm shown changed: a takeover, the next alarm, or the last one gone
        (then the caller shows the tour's next page)."""
        before = self.alarm
        self._alarms = deque(a for a in alarms if self.watches(a))
        head = self.alarm
        if head is not None and (before is None or before.alarm_id != head.alarm_id):
            self._take_over(head)
        return (before.alarm_id if before else None) != (head.alarm_id if head else None)

    def alarm_tiles(self) -> list[int]:
        """The tiles the shown alarm holds (empty while rotating)."""
        return list(self._held) if self._alarms else []

    def _take_over(self, alarm: Alarm) -> None:
        if self.takeover == "wall":
            tiles = self.rotating
        else:
            per_screen = LAYOUT_TILES[self.layout]
            big = [i for i in self.rotating if "+" in self.layout and i % per_screen == 0]
            tiles = (big or self.rotating)[:1]
        self._held = list(tiles)
        for tile in tiles:
            self.showing[tile] = alarm.camera_code
