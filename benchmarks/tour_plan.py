"""Benchmark: planning a tour round over the whole fleet, against sorting the fleet's codes in the same run.

    .venv/bin/python benchmarks/tour_plan.py [--cameras 15000] [--tiles 16] [--repeat 20]

A round of ``--cameras`` cameras (10 % of them key scenes shown twice a round) is planned from scratch, as after
a restart or a change of the tour's camera set; then every page of the round is taken with 3 % of the cameras
offline. Baseline: ``sorted()`` of the same codes (the least any ordering costs). Medians of ``--repeat`` runs.
Goal: plan_ms < 20. The last line is JSON: ``{"bench": "tour_plan", "cameras": N, "tiles": T, "plan_ms": ...}``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time

from patrol.tours import TourPlanner


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
    plan, pages, base = [], [], []
    for _ in range(args.repeat):
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
    plan_ms, base_ms, page_us = (statistics.median(v) * 1000 for v in (plan, base, pages))
    page_us *= 1000
    print(f"{args.cameras} cameras, {args.tiles} tiles, {len(keys)} key scenes x2, {len(offline)} offline")
    print(
        f"plan a round: {plan_ms:.2f} ms (goal < 20: {'met' if plan_ms < 20 else 'NOT MET'}); "
        f"sorted() of the codes: {base_ms:.2f} ms; ratio {plan_ms / base_ms:.2f}"
    )
    print(f"take a page: {page_us:.1f} us ({count} pages a round)")
    print(
        json.dumps(
            {
                "bench": "tour_plan",
                "cameras": args.cameras,
                "tiles": args.tiles,
                "plan_ms": round(plan_ms, 3),
                "plan_over_sort": round(plan_ms / base_ms, 2),
                "page_us": round(page_us, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
