"""The demo's duty room: a duty officer and a leader on duty, and a roster of 12-hour shifts around now.

The notifier sends an alarm to the officer on duty first and escalates to the leader on duty, so the demo needs
both on the roster. Their passwords are generated once and kept in ``<data_dir>/demo-passwords.txt`` (0600),
like the administrator's. Shifts change at 08:00 and 20:00 local time; missing shifts from yesterday to a week
ahead are added at every start.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from patrol.roster import create_shift, overlapping
from web.auth import create_user, generate_password
from web.models import Role, User

PASSWORD_FILE = "demo-passwords.txt"  # noqa: S105 - a file name, not a password
DUTY_USERS: tuple[tuple[str, Role, str, str], ...] = (
    ("duty", Role.DUTY_OFFICER, "演示值班员 Demo duty officer", "13800000001"),
    ("leader", Role.LEADER_ON_DUTY, "演示带班领导 Demo leader on duty", "13800000002"),
)
SHIFT_CHANGES = (time(8, 0), time(20, 0))
DAYS_AHEAD = 7


def seed_demo_duty(session: Session, data_dir: Path, zone: ZoneInfo, now: datetime) -> dict[str, str]:
    """Create the demo's duty users (new passwords returned by name) and the roster's missing shifts; the
    caller commits."""
    created: dict[str, str] = {}
    ids: dict[str, int] = {}
    for username, role, name, phone in DUTY_USERS:
        user = session.scalar(select(User).where(User.username == username))
        if user is None:
            password = generate_password()
            user = create_user(session, username, password, role, name)
            user.phone = phone
            user.email = f"{username}@demo.campuswatch.invalid"
            session.flush()
            created[username] = password
        ids[username] = user.id
    if created:
        _save_passwords(data_dir / PASSWORD_FILE, created)
    day = now.astimezone(zone).date() - timedelta(days=1)
    for _ in range(DAYS_AHEAD + 2):
        for n, change in enumerate(SHIFT_CHANGES):
            starts = datetime.combine(day, change, zone).astimezone(UTC)
            following = SHIFT_CHANGES[n + 1] if n + 1 < len(SHIFT_CHANGES) else SHIFT_CHANGES[0]
            end_day = day if n + 1 < len(SHIFT_CHANGES) else day + timedelta(days=1)
            ends = datetime.combine(end_day, following, zone).astimezone(UTC)
            if ends > now and overlapping(session, starts, ends) is None:
                create_shift(
                    session,
                    starts_at=starts,
                    ends_at=ends,
                    leader_id=ids["leader"],
                    officer_ids=[ids["duty"]],
                    now=now,
                    zone=zone,
                    label="演示班 demo shift",
                )
        day += timedelta(days=1)
    return created


def saved_passwords(data_dir: Path) -> dict[str, str]:
    """The duty users' passwords saved on the first start (empty when the file is gone)."""
    path = data_dir / PASSWORD_FILE
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        name, _, password = line.partition(" ")
        if name and password:
            found[name] = password.strip()
    return found


def _save_passwords(path: Path, passwords: dict[str, str]) -> None:
    known = {**saved_passwords(path.parent), **passwords}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.writelines(f"{name} {password}\n" for name, password in known.items())
