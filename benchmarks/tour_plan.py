"""Benchmark: planning a tour round over the whole fleet, against sorting the fleet's codes in the same run.

    .venv/bin/python benchmarks/tour_plan.py [--cameras 15000] [--tiles 16] [--repeat 20]

A round of ``--cameras`` cameras (10 % of them key scenes shown twice a round) is planned from scratch, as after
a restart or a change of the tour's camera set; then every page of the round is taken with 3 % of the cameras
offline. The wall rotator's whole re-plan is measured too: picking the tour's cameras out of the fleet
(``select_cameras``, here the gate and perimeter cameras, and the whole fleet) and planning their round.
Baseline: ``sorted()`` of the same codes (the least any ordering costs). Medians of ``--repeat`` runs.
Goal: plan_ms < 20. The last line is JSON: ``{"bench": "tour_plan", "cameras": N, "tiles": T, "plan_ms": ...}``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time

from patrol.camera_sets import CameraRef, CameraSet, select_cameras
from patrol.tours import TourPlanner
from registry.models import SceneType


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cameras", type=int, default=15_000)
    parser.add_argument("--tiles", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    rng = random.Random(7)
    codes = [f"3702{d:02d}{s:04d}13200{c:03d}" for d in range(6) for s in range(600) for c in range(25)]
    codes = codes[: args.cameras]
    keys = frozenset(rng.sample(codes, len(codes) // 10))
    offline = set(rng.sample(codes, len(codes) * 3 // 100))
    scenes = list(SceneType)
    fleet = [
        CameraRef(i, code, code, scenes[i % len(scenes)], code in keys, i // 25, code[:10], "", code[:6], ())
        for i, code in enumerate(codes)
    ]
    some, whole = CameraSet(scene_types=(SceneType.GATE, SceneType.PERIMETER)), CameraSet()
    plan: list[float] = []
    pages: list[float] = []
    base: list[float] = []
    replan_some: list[float] = []
    replan_whole: list[float] = []
    for _ in range(args.repeat):
        for camera_set, times in ((some, replan_some), (whole, replan_whole)):
            started = time.perf_counter()
            chosen = select_cameras(fleet, camera_set)
            TourPlanner(
                [c.code for c in chosen],
                tiles=args.tiles,
                key_scenes=frozenset(c.code for c in chosen if c.key_scene),
                key_repeat=2,
            )
            times.append(time.perf_counter() - started)
        started = time.perf_counter()
        sorted(codes)
        base.append(time.perf_counter() - started)
        started = time.perf_counter()
        planner = TourPlanner(codes, tiles=args.tiles, key_scenes=keys, key_repeat=2)
        plan.append(time.perf_counter() - started)
        started = time.perf_counter()
        count = 0
        while True:
            page = planner.next_page(lambda code: code not in offline)
            count += 1
            if page.round_ended:
                break
        pages.append((time.perf_counter() - started) / count)
    plan_ms, base_ms, page_us, some_ms, whole_ms = (
        statistics.median(v) * 1000 for v in (plan, base, pages, replan_some, replan_whole)
    )
    page_us *= 1000
    print(f"{args.cameras} cameras, {args.tiles} tiles, {len(keys)} key scenes x2, {len(offline)} offline")
    print(
        f"plan a round: {plan_ms:.2f} ms (goal < 20: {'met' if plan_ms < 20 else 'NOT MET'}); "
        f"sorted() of the codes: {base_ms:.2f} ms; ratio {plan_ms / base_ms:.2f}"
    )
    print(f"take a page: {page_us:.1f} us ({count} pages a round)")
    print(
        f"re-plan a wall's tour (select from the fleet + plan): gates and perimeters {some_ms:.2f} ms, "
        f"the whole fleet {whole_ms:.2f} ms"
    )
    print(
        json.dumps(
            {
                "bench": "tour_plan",
                "cameras": args.cameras,
                "tiles": args.tiles,
                "plan_ms": round(plan_ms, 3),
                "plan_over_sort": round(plan_ms / base_ms, 2),
                "page_us": round(page_us, 1),
                "replan_fleet_ms": round(whole_ms, 3),
                "replan_subset_ms": round(some_ms, 3),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
