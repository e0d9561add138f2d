"""Tours: rounds cover every online camera once (key scenes k times), skip offline ones and take them back,
and a restarted planner goes on from its stored state."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import pytest

from patrol.errors import PatrolError
from patrol.tours import LAYOUT_TILES, TourPlanner, TourState, plan_round

CAMERAS = [f"C{i:03d}" for i in range(50)]


@dataclass
class Round:
    shown: list[str]
    never_online: tuple[str, ...]
    carried: tuple[str, ...]
    """The next round's cameras that filled the last page."""


def run_round(planner: TourPlanner, online: set[str] | None = None, carried_in: tuple[str, ...] = ()) -> Round:
    """Pages until the round ends; the cameras shown in it (what the last page carries over is left out)."""
    shown: list[str] = list(carried_in)
    while True:
        page = planner.next_page(lambda code: online is None or code in online)
        assert len(page.cameras) <= planner.tiles
        assert len(set(page.cameras)) == len(page.cameras), "a camera twice on one page"
        cut = len(page.cameras) - page.carried
        shown += page.cameras[:cut]
        if page.round_ended:
            return Round(shown, page.never_online, page.cameras[cut:])


def test_every_camera_once_and_key_scenes_k_times() -> None:
    keys = frozenset({"C003", "C040"})
    planner = TourPlanner(CAMERAS, tiles=16, key_scenes=keys, key_repeat=3)
    first = run_round(planner)
    shown = first.shown
    counts = Counter(shown)
    assert first.never_online == ()
    assert all(counts[c] == (3 if c in keys else 1) for c in CAMERAS)
    positions = [i for i, c in enumerate(shown) if c == "C003"]
    assert min(b - a for a, b in itertools.pairwise(positions)) >= 10  # spread, not in a row
    assert planner.state.round == 2 and planner.state.shown == len(first.carried) == 16 - (len(shown) % 16)


def test_offline_cameras_are_skipped_and_taken_back_when_they_recover() -> None:
    planner = TourPlanner(CAMERAS, tiles=9)
    online = set(CAMERAS) - {"C001", "C002", "C030"}
    shown = list(planner.next_page(lambda c: c in online).cameras)
    assert "C001" not in shown and planner.state.skipped == ["C001", "C002"]
    online.add("C001")  # back during the round: on the very next page
    page = planner.next_page(lambda c: c in online)
    assert page.cameras[0] == "C001"
    rest = run_round(planner, online)
    shown += list(page.cameras) + rest.shown
    assert sorted(shown) == sorted(set(CAMERAS) - {"C002", "C030"})
    assert set(rest.never_online) == {"C002", "C030"}  # offline the whole round: reported
    # The next round starts over with everyone who is online.
    online |= {"C002", "C030"}
    again = run_round(planner, online, rest.carried)
    assert sorted(again.shown) == sorted(CAMERAS)


def test_a_restart_continues_the_round() -> None:
    first = TourPlanner(CAMERAS, tiles=16)
    first.next_page(lambda c: c != "C005")
    stored = first.state.model_dump_json()
    second = TourPlanner(CAMERAS, tiles=16, state=TourState.model_validate_json(stored))
    rest = run_round(second).shown
    assert rest[0] == "C005"  # the skipped camera, back online after the restart
    assert len(rest) == len(CAMERAS) - 16


def test_a_short_last_page_is_filled_from_the_next_round_without_a_camera_twice() -> None:
    planner = TourPlanner(CAMERAS[:12], tiles=9)
    first, second = planner.next_page(lambda _c: True), planner.next_page(lambda _c: True)
    assert first.cameras == tuple(CAMERAS[:9]) and not first.round_ended
    assert second.round_ended and second.carried == 6
    assert second.cameras == (*CAMERAS[9:12], *CAMERAS[:6])  # no empty tile
    third = planner.next_page(lambda _c: True)
    assert third.cameras == tuple(CAMERAS[6:12]) + tuple(CAMERAS[:3]) and third.carried == 3
    # A tour smaller than the wall shows each of its cameras once a page and leaves the other tiles empty.
    small = TourPlanner(CAMERAS[:5], tiles=9)
    assert [small.next_page(lambda _c: True).cameras for _ in range(2)] == [tuple(CAMERAS[:5])] * 2
    unfilled = TourPlanner(CAMERAS[:12], tiles=9, fill_pages=False)
    unfilled.next_page(lambda _c: True)
    assert unfilled.next_page(lambda _c: True).cameras == tuple(CAMERAS[9:12])


def test_layouts_and_bad_tours() -> None:
    assert LAYOUT_TILES["1+5"] == 6 and LAYOUT_TILES["1+12"] == 13 and LAYOUT_TILES["36"] == 36
    with pytest.raises(PatrolError, match="each camera once"):
        TourPlanner(["A", "A"], tiles=4)
    with pytest.raises(PatrolError, match="1 to 576 tiles"):
        TourPlanner(["A"], tiles=0)
    with pytest.raises(PatrolError, match="past the round"):
        TourPlanner(["A"], tiles=4, state=TourState(cursor=5))
    assert plan_round([], frozenset(), 3) == []
