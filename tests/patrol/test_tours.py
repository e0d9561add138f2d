"""Tours: rounds cover every online camera once (key scenes k times), skip offline ones and take them back,
and a restarted planner goes on from its stored state."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest

from patrol.errors import PatrolError
from patrol.tours import LAYOUT_TILES, TourPlanner, TourState, plan_round

CAMERAS = [f"C{i:03d}" for i in range(50)]


def run_round(planner: TourPlanner, online: set[str] | None = None) -> tuple[list[str], tuple[str, ...]]:
    shown: list[str] = []
    while True:
        page = planner.next_page(lambda code: online is None or code in online)
        assert len(page.cameras) <= planner.tiles
        assert len(set(page.cameras)) == len(page.cameras), "a camera twice on one page"
        shown += page.cameras
        if page.round_ended:
            return shown, page.never_online


def test_every_camera_once_and_key_scenes_k_times() -> None:
    keys = frozenset({"C003", "C040"})
    planner = TourPlanner(CAMERAS, tiles=16, key_scenes=keys, key_repeat=3)
    shown, never = run_round(planner)
    counts = Counter(shown)
    assert never == ()
    assert all(counts[c] == (3 if c in keys else 1) for c in CAMERAS)
    positions = [i for i, c in enumerate(shown) if c == "C003"]
    assert min(b - a for a, b in itertools.pairwise(positions)) >= 10  # spread, not in a row
    assert planner.state == TourState(round=2, order_size=len(CAMERAS) + 4)


def test_offline_cameras_are_skipped_and_taken_back_when_they_recover() -> None:
    planner = TourPlanner(CAMERAS, tiles=9)
    online = set(CAMERAS) - {"C001", "C002", "C030"}
    shown = list(planner.next_page(lambda c: c in online).cameras)
    assert "C001" not in shown and planner.state.skipped == ["C001", "C002"]
    online.add("C001")  # back during the round: on the very next page
    page = planner.next_page(lambda c: c in online)
    assert page.cameras[0] == "C001"
    rest, never = run_round(planner, online)
    shown += list(page.cameras) + rest
    assert sorted(shown) == sorted(set(CAMERAS) - {"C002", "C030"})
    assert set(never) == {"C002", "C030"}  # offline the whole round: reported
    # The next round starts over with everyone who is online.
    online |= {"C002", "C030"}
    again, _ = run_round(planner, online)
    assert sorted(again) == sorted(CAMERAS)


def test_a_restart_continues_the_round() -> None:
    first = TourPlanner(CAMERAS, tiles=16)
    first.next_page(lambda c: c != "C005")
    stored = first.state.model_dump_json()
    second = TourPlanner(CAMERAS, tiles=16, state=TourState.model_validate_json(stored))
    rest, _ = run_round(second)
    assert rest[0] == "C005"  # the skipped camera, back online after the restart
    assert len(rest) == len(CAMERAS) - 16


def test_layouts_and_bad_tours() -> None:
    assert LAYOUT_TILES["1+5"] == 6 and LAYOUT_TILES["1+12"] == 13 and LAYOUT_TILES["36"] == 36
    with pytest.raises(PatrolError, match="each camera once"):
        TourPlanner(["A", "A"], tiles=4)
    with pytest.raises(PatrolError, match="1 to 576 tiles"):
        TourPlanner(["A"], tiles=0)
    with pytest.raises(PatrolError, match="past the round"):
        TourPlanner(["A"], tiles=4, state=TourState(cursor=5))
    assert plan_round([], frozenset(), 3) == []
