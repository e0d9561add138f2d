"""The demo bureau's patrol: a tour of the whole fleet on the duty-room wall, patrol plans and a spot-check quota.

Created once (by name) on the demo's first start and left as the user changed them afterwards: the wall
rotates the 60 simulated cameras nine at a time, ten seconds a page, key scenes twice a round; scripted
incidents take a tile until acknowledged; the inspector's quota draws three schools a day.
"""

from __future__ import annotations

import secrets
from datetime import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from patrol.models import DayRule, QuotaPeriod, Takeover
from patrol.tables import PatrolPlan, SpotCheckQuota, Tour, VideoWall

TOUR_NAME = "全市轮巡 Whole-bureau tour"
WALL_NAME = "值班大屏 Duty-room wall"
QUOTA_NAME = "每日随机抽查 Daily spot check"


def seed_demo_patrol(session: Session) -> None:
    """Create the demo's tour, wall, plans and quota where missing (the caller commits)."""
    tour = session.scalar(select(Tour).where(Tour.name == TOUR_NAME))
    if tour is None:
        tour = Tour(
            name=TOUR_NAME,
            description="每个摄像头每轮出现一次，重点部位两次 Every camera once a round, key scenes twice",
            selector={},
            dwell_s=10,
            layout="9",
            key_repeat=2,
        )
        session.add(tour)
        session.flush()
    if session.scalar(select(VideoWall.id).where(VideoWall.name == WALL_NAME)) is None:
        session.add(
            VideoWall(
                name=WALL_NAME,
                layout="9",
                screens=1,
                takeover=Takeover.TILE,
                districts=[],
                schools=[],
                pinned={},
                tour_id=tour.id,
            )
        )
    plans = (
        ("校门早巡 Gates at arrival time", {"scene_types": ["gate"]}, DayRule.EVERY_DAY, time(7, 0), time(8, 0)),
        (
            "宿舍夜巡 Dormitories at night",
            {"scene_types": ["dormitory"]},
            DayRule.EVERY_DAY,
            time(22),
            time(22, 30),
        ),
    )
    for name, selector, rule, start, end in plans:
        if session.scalar(select(PatrolPlan.id).where(PatrolPlan.name == name)) is None:
            session.add(PatrolPlan(name=name, selector=selector, day_rule=rule, weekdays=[], start=start, end=end))
    if session.scalar(select(SpotCheckQuota.id).where(SpotCheckQuota.name == QUOTA_NAME)) is None:
        session.add(
            SpotCheckQuota(
                name=QUOTA_NAME,
                period=QuotaPeriod.DAY,
                min_count=3,
                max_count=3,
                exclude_days=2,
                districts=[],
                weights={},
                seed=secrets.randbits(63),
            )
        )
