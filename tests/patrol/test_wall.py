"""Walls: layouts over screens, pinned and rotating tiles, alarm takeover that pauses rotation, queued alarms."""

from __future__ import annotations

import pytest

from patrol.errors import PatrolError
from patrol.tours import TourPlanner
from patrol.wall import Alarm, Wall

CAMERAS = [f"C{i:03d}" for i in range(40)]
A1 = Alarm("a1", "C900", "S1", "D1")
A2 = Alarm("a2", "C901", "S2", "D1")
ELSEWHERE = Alarm("a3", "C902", "S9", "D9")


def test_tour_rotates_rotating_tiles_and_pinned_ones_stay() -> None:
    wall = Wall("main", "1+5", screens=2, pinned={0: "GATE"})
    assert wall.tiles == 12 and len(wall.rotating) == 11
    tour = TourPlanner(CAMERAS, tiles=wall.page_size())
    wall.show_page(tour.next_page(lambda _c: True).cameras)
    assert wall.showing[0] == "GATE" and [wall.showing[t] for t in wall.rotating] == CAMERAS[:11]
    wall.show_page(tour.next_page(lambda _c: True).cameras)
    assert [wall.showing[t] for t in wall.rotating] == CAMERAS[11:22]


def test_alarm_takes_the_big_tile_pauses_and_queues() -> None:
    wall = Wall("district 1", "1+7", districts=frozenset({"D1"}))
    tour = TourPlanner(CAMERAS, tiles=wall.page_size())
    wall.show_page(tour.next_page(lambda _c: True).cameras)
    assert wall.raise_alarm(A1) and not wall.raise_alarm(ELSEWHERE)
    assert wall.showing[0] == "C900" and wall.paused and wall.page_size() == 0
    assert wall.raise_alarm(A2) and wall.showing[0] == "C900" and wall.queued == [A2]
    assert not wall.raise_alarm(A1)  # the same alarm twice is one alarm
    wall.show_page(("X",) * 8)  # the scheduler's page while paused changes nothing
    assert wall.showing[0] == "C900"
    wall.acknowledge("a1")
    assert wall.showing[0] == "C901" and wall.paused
    wall.acknowledge("a2")
    assert not wall.paused and wall.page_size() == 8
    wall.show_page(tour.next_page(lambda _c: True).cameras)
    assert [wall.showing[t] for t in wall.rotating] == CAMERAS[8:16]  # rotation resumes where it stopped


def test_whole_wall_takeover_and_errors() -> None:
    wall = Wall("bureau", "4", screens=2, takeover="wall", pinned={7: "GATE"})
    wall.raise_alarm(A1)
    assert [wall.showing[t] for t in wall.rotating] == ["C900"] * 7 and wall.showing[7] == "GATE"
    with pytest.raises(PatrolError, match="not on wall"):
        wall.acknowledge("nope")
    with pytest.raises(PatrolError, match="unknown layout"):
        Wall("x", "3x3")
    with pytest.raises(PatrolError, match=r"pinned tiles \[4\]"):
        Wall("x", "4", pinned={4: "C"})
    with pytest.raises(PatrolError, match="every tile is pinned"):
        Wall("x", "1", pinned={0: "C"})
