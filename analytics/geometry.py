"""Zones and lines in normalised picture coordinates: containment, sides and crossings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from config.rules import LineConfig, Point


def in_polygon(points: npt.NDArray[np.floating], polygon: Sequence[Point]) -> npt.NDArray[np.bool_]:
    """Which of ``points`` (N x 2) lie inside ``polygon`` (even-odd rule, vectorised over the points)."""
    inside = np.zeros(len(points), bool)
    if not len(points):
        return inside
    x, y = points[:, 0], points[:, 1]
    corners = list(polygon)
    for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1], strict=True):
        crosses = (y1 > y) != (y2 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
        inside ^= crosses & (x < x_at)
    return inside


def side(line: LineConfig, x: float, y: float) -> float:
    """Which side of ``line`` the point is on: the sign of the cross product (0 on the line)."""
    (ax, ay), (bx, by) = line.a, line.b
    return (bx - ax) * (y - ay) - (by - ay) * (x - ax)


def _segments_intersect(p: tuple[float, float], q: tuple[float, float], line: LineConfig) -> bool:
    """Whether segment p->q crosses the segment of ``line`` (not merely its extension)."""
    d1, d2 = side(line, *p), side(line, *q)
    if d1 * d2 >= 0:
        return False
    # And the line's ends lie on both sides of p->q.
    (ax, ay), (bx, by) = line.a, line.b
    e1 = (q[0] - p[0]) * (ay - p[1]) - (q[1] - p[1]) * (ax - p[0])
    e2 = (q[0] - p[0]) * (by - p[1]) - (q[1] - p[1]) * (bx - p[0])
    return e1 * e2 <= 0


def crossed(line: LineConfig, before: tuple[float, float], after: tuple[float, float]) -> bool:
    """Whether moving from ``before`` to ``after`` crosses ``line`` in its counted direction."""
    if not _segments_intersect(before, after, line):
        return False
    if line.entering_side is None:
        return True
    return side(line, *after) * side(line, *line.entering_side) > 0
