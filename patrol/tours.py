"""Tours (轮巡): rotate a camera set through a wall's tiles so that every camera is seen, round after round.

A round is the tour's cameras in a fixed order (by the caller: district, school, camera), with each key scene
(``key_repeat``) repeated at evenly spaced places. Pages of ``tiles`` cameras are taken from a cursor: an offline
camera is skipped and remembered, and when it comes back during the round it goes on the next page, so every
camera online at some point of the round is shown in it exactly once (key scenes ``key_repeat`` times).
Cameras offline for the whole round are reported when it ends. The cursor, the round number and the skipped
cameras are the whole state (:class:`TourState`): stored after every page, a restarted planner goes on where it
stopped. When the tour's camera set has changed meanwhile (cameras added, removed or disabled), the planner
finds its place again by the last camera it showed: cameras added behind that place come in the next round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from patrol.errors import PatrolError

LAYOUT_TILES: dict[str, int] = {
    "1": 1,
    "4": 4,
    "9": 9,
    "16": 16,
    "25": 25,
    "36": 36,
    "1+5": 6,
    "1+7": 8,
    "1+12": 13,
}
"""Wall layouts and their tiles: square grids, and one big tile with 5, 7 or 12 small ones around it."""
Layout = Literal["1", "4", "9", "16", "25", "36", "1+5", "1+7", "1+12"]
"""A layout's name (the keys of :data:`LAYOUT_TILES`)."""
assert set(get_args(Layout)) == set(LAYOUT_TILES)


def as_layout(value: str) -> Layout:
    """``value`` as a :data:`Layout`, or a :class:`PatrolError` naming the layouts."""
    for layout in get_args(Layout):
        if layout == value:
            return layout
    raise PatrolError(f"unknown layout {value!r}; layouts: {', '.join(LAYOUT_TILES)}")


MAX_TILES = 16 * 36
"""The most tiles a page can have: a wall of 16 screens of 36 tiles."""


class TourState(BaseModel):
    """Where a tour is: stored after each page so that a restart continues the round."""

    model_config = ConfigDict(extra="forbid")

    round: int = Field(1, ge=1, description="Round number, from 1")
    cursor: int = Field(0, ge=0, description="Next entry of the round's order")
    skipped: list[str] = Field(default_factory=list, description="Cameras passed while offline this round")
    shown: int = Field(0, ge=0, description="Cameras shown this round so far")
    order_size: int = Field(0, ge=0, description="Entries of the round's order when the state was stored")
    last_code: str | None = Field(None, description="The last camera taken from the order")


@dataclass(frozen=True)
class Page:
    """One rotation of the wall."""

    round: int
    cameras: tuple[str, ...]
    """Cameras for the tiles, in tile order (fewer than the tiles at the end of a round)."""
    round_ended: bool = False
    never_online: tuple[str, ...] = ()
    """At the end of a round: its cameras that were offline the whole round."""
    carried: int = 0
    """Cameras at the end of a round's last page that open the next round (``fill_pages``)."""


@dataclass
class TourPlanner:
    """Plans the pages of one tour. Not thread-safe: one planner per tour, driven by the patrol scheduler."""

    cameras: Sequence[str]
    tiles: int
    key_scenes: frozenset[str] = frozenset()
    key_repeat: int = 1
    state: TourState = field(default_factory=TourState)
    fill_pages: bool = True
    """A round's last page, when short, is filled from the start of the next round (never a camera twice on
    one page), so a wall shows no empty tile while its tour has cameras to show."""
    _order: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.tiles <= MAX_TILES:
            raise PatrolError(f"a page has 1 to {MAX_TILES} tiles, not {self.tiles}")
        if not 1 <= self.key_repeat <= 10:
            raise PatrolError(f"key scenes repeat 1 to 10 times a round, not {self.key_repeat}")
        if len(set(self.cameras)) != len(self.cameras):
            raise PatrolError("a tour lists each camera once")
        self._order = plan_round(self.cameras, self.key_scenes, self.key_repeat)
        state = self.state
        if state.cursor and state.order_size and state.order_size != len(self._order):
            self._find_place()
        elif state.cursor > len(self._order):
            raise PatrolError(f"stored cursor {state.cursor} is past the round's {len(self._order)} entries")
        state.order_size = len(self._order)

    def _find_place(self) -> None:
        """Re-anchor a stored cursor on a changed order: just after the last camera shown, if still there."""
        state, order = self.state, self._order
        members = set(self.cameras)
        state.skipped = [code for code in state.skipped if code in members]
        guess = round(state.cursor * len(order) / state.order_size)
        if state.last_code in members:
            places = [i for i, code in enumerate(order) if code == state.last_code]
            state.cursor = min(places, key=lambda i: abs(i + 1 - guess)) + 1
        else:
            state.cursor = min(guess, len(order))

    @property
    def order(self) -> list[str]:
        """The round's entries in order (key scenes several times)."""
        return self._order

    def next_page(self, online: Callable[[str], bool]) -> Page:
        """The next ``tiles`` cameras that are online now; advances the state."""
        page: list[str] = []
        ended = self._take(online, page, may_end=True)
        if ended is None:
            return Page(self.state.round, tuple(page))
        carried = 0
        if self.fill_pages and len(page) < self.tiles:
            before = len(page)
            self._take(online, page, may_end=False)
            carried = len(page) - before
        return Page(ended.round, tuple(page), round_ended=True, never_online=ended.never_online, carried=carried)

    def _take(self, online: Callable[[str], bool], page: list[str], *, may_end: bool) -> Page | None:
        """Add cameras to ``page`` from the cursor; when this call ended the round, its end (else None)."""
        state = self.state
        start = len(page)
        on_page = set(page)  # filling from the next round: these wait for a later page
        # Cameras skipped earlier in the round come first once they are back.
        back = [code for code in state.skipped if online(code) and code not in on_page][: self.tiles - start]
        if back:
            page += back
            taken = set(back)
            state.skipped = [code for code in state.skipped if code not in taken]
        skipped = set(state.skipped)  # a set beside the stored list: a long outage skips thousands
        order = self._order
        while len(page) < self.tiles and state.cursor < len(order):
            code = order[state.cursor]
            if code in on_page:
                break
            state.cursor += 1
            state.last_code = code
            if code in page:
                continue  # a key scene's repeat landing on the same page: it is shown there once
            if online(code):
                page.append(code)
            elif code not in skipped:
                skipped.add(code)
                state.skipped.append(code)
        state.shown += len(page) - start
        if not may_end or state.cursor < len(order) or any(online(code) for code in state.skipped):
            return None
        ended = Page(state.round, (), round_ended=True, never_online=tuple(state.skipped))
        self.state = TourState(round=state.round + 1, order_size=len(order))
        return ended


def plan_round(cameras: Sequence[str], key_scenes: frozenset[str], key_repeat: int) -> list[str]:
    """The order of one round: ``cameras`` as given, each key scene again ``key_repeat - 1`` times, spread out.

    A key scene's copies go at equal distances after it (a third of the round apart for three showings), so
    the wall comes back to it regularly instead of twice in a row.
    """
    n = len(cameras)
    if key_repeat <= 1 or not key_scenes or n == 0:
        return list(cameras)
    # Sort keys: (position in the round, tie-break) with copies at fractional positions between cameras.
    entries: list[tuple[float, int, str]] = [(float(i), 0, code) for i, code in enumerate(cameras)]
    step = n / key_repeat
    for i, code in enumerate(cameras):
        if code in key_scenes:
            for copy in range(1, key_repeat):
                entries.append(((i + copy * step) % n + 0.5, copy, code))
    entries.sort()
    return [code for _, _, code in entries]
