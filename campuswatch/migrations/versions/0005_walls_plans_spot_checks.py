"""walls, tours, patrol plans and tasks, spot checks and inspections

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrol_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("selector", sa.JSON(), nullable=False),
        sa.Column(
            "day_rule",
            sa.Enum(
                "school_days",
                "every_day",
                "weekdays",
                name="plan_day_rule",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("weekdays", sa.JSON(), nullable=False),
        sa.Column("start", sa.Time(), nullable=False),
        sa.Column("end", sa.Time(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_plans")),
        sa.UniqueConstraint("name", name=op.f("uq_patrol_plans_name")),
    )
    op.create_table(
        "spot_check_quotas",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "period",
            sa.Enum("day", "week", name="quota_period", native_enum=False, create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column("min_count", sa.Integer(), nullable=False),
        sa.Column("max_count", sa.Integer(), nullable=False),
        sa.Column("exclude_days", sa.Integer(), nullable=False),
        sa.Column("districts", sa.JSON(), nullable=False),
        sa.Column("weights", sa.JSON(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("min_count >= 1 AND max_count >= min_count", name=op.f("ck_spot_check_quotas_counts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_check_quotas")),
        sa.UniqueConstraint("name", name=op.f("uq_spot_check_quotas_name")),
    )
    op.create_table(
        "tours",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("selector", sa.JSON(), nullable=False),
        sa.Column("dwell_s", sa.Integer(), nullable=False),
        sa.Column("layout", sa.String(length=8), nullable=False),
        sa.Column("key_repeat", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("dwell_s >= 5 AND dwell_s <= 300", name=op.f("ck_tours_dwell")),
        sa.CheckConstraint("key_repeat >= 1 AND key_repeat <= 10", name=op.f("ck_tours_key_repeat")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tours")),
        sa.UniqueConstraint("name", name=op.f("uq_tours_name")),
    )
    op.create_table(
        "spot_check_draws",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quota_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("schools", sa.JSON(), nullable=False),
        sa.Column("inputs", sa.JSON(), nullable=False),
        sa.Column("inputs_sha256", sa.String(length=64), nullable=False),
        sa.Column("drawn_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("drawn_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["drawn_by"], ["users.id"], name=op.f("fk_spot_check_draws_drawn_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["quota_id"],
            ["spot_check_quotas.id"],
            name=op.f("fk_spot_check_draws_quota_id_spot_check_quotas"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spot_check_draws")),
        sa.UniqueConstraint("quota_id", "period_start", name="uq_spot_check_draws_quota_period"),
    )
    op.create_table(
        "inspections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("school_id", sa.Integer(), nullable=False),
        sa.Column("draw_id", sa.Integer(), nullable=True),
        sa.Column(
            "method",
            sa.Enum(
                "random",
                "directed",
                "fixed_point",
                "lead",
                "covert",
                "video",
                name="inspection_method",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("inspector_id", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "open", "signed", name="inspection_status", native_enum=False, create_constraint=True, length=32
            ),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_name", sa.String(length=100), nullable=True),
        sa.Column("content_sha256", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["draw_id"],
            ["spot_check_draws.id"],
            name=op.f("fk_inspections_draw_id_spot_check_draws"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["inspector_id"], ["users.id"], name=op.f("fk_inspections_inspector_id_users"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["school_id"], ["schools.id"], name=op.f("fk_inspections_school_id_schools"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspections")),
        sa.UniqueConstraint("draw_id", "school_id", name="uq_inspections_draw_school"),
    )
    op.create_index("ix_inspections_school_started", "inspections", ["school_id", "started_at"], unique=False)
    op.create_table(
        "patrol_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shift_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "done",
                "missed",
                name="patrol_task_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("missed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["patrol_plans.id"], name=op.f("fk_patrol_tasks_plan_id_patrol_plans"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["shift_id"],
            ["duty_shifts.id"],
            name=op.f("fk_patrol_tasks_shift_id_duty_shifts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_tasks")),
        sa.UniqueConstraint("plan_id", "window_start", name="uq_patrol_tasks_plan_window"),
    )
    op.create_index("ix_patrol_tasks_day", "patrol_tasks", ["day"], unique=False)
    op.create_index("ix_patrol_tasks_status_end", "patrol_tasks", ["status", "window_end"], unique=False)
    op.create_table(
        "tour_coverage",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("first_shown_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_shown_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("shows", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_tour_coverage_camera_id_cameras"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("day", "camera_id", name=op.f("pk_tour_coverage")),
    )
    op.create_table(
        "walls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("layout", sa.String(length=8), nullable=False),
        sa.Column("screens", sa.Integer(), nullable=False),
        sa.Column(
            "takeover",
            sa.Enum("tile", "wall", name="wall_takeover", native_enum=False, create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column("districts", sa.JSON(), nullable=False),
        sa.Column("schools", sa.JSON(), nullable=False),
        sa.Column("pinned", sa.JSON(), nullable=False),
        sa.Column("tour_id", sa.Integer(), nullable=True),
        sa.Column("inspection_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("screens >= 1 AND screens <= 16", name=op.f("ck_walls_screens")),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["inspections.id"],
            name=op.f("fk_walls_inspection_id_inspections"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tour_id"], ["tours.id"], name=op.f("fk_walls_tour_id_tours"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_walls")),
        sa.UniqueConstraint("name", name=op.f("uq_walls_name")),
    )
    op.create_table(
        "inspection_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inspection_id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=True),
        sa.Column(
            "verdict",
            sa.Enum(
                "normal", "abnormal", name="finding_verdict", native_enum=False, create_constraint=True, length=32
            ),
            nullable=False,
        ),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("snapshot_jpeg", sa.LargeBinary(), nullable=True),
        sa.Column("snapshot_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hazard_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_inspection_findings_camera_id_cameras"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["hazard_id"],
            ["hazards.id"],
            name=op.f("fk_inspection_findings_hazard_id_hazards"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["inspection_id"],
            ["inspections.id"],
            name=op.f("fk_inspection_findings_inspection_id_inspections"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_findings")),
    )
    op.create_table(
        "patrol_task_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "verdict",
            sa.Enum(
                "normal", "abnormal", name="patrol_verdict", native_enum=False, create_constraint=True, length=32
            ),
            nullable=True,
        ),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("snapshot_jpeg", sa.LargeBinary(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_by", sa.Integer(), nullable=True),
        sa.Column("hazard_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_patrol_task_items_camera_id_cameras"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["checked_by"], ["users.id"], name=op.f("fk_patrol_task_items_checked_by_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["hazard_id"], ["hazards.id"], name=op.f("fk_patrol_task_items_hazard_id_hazards"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["patrol_tasks.id"],
            name=op.f("fk_patrol_task_items_task_id_patrol_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrol_task_items")),
        sa.UniqueConstraint("task_id", "camera_id", name="uq_patrol_task_items_task_camera"),
    )
    op.create_table(
        "wall_alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("wall_id", sa.Integer(), nullable=False),
        sa.Column("alarm_key", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("camera_code", sa.String(length=64), nullable=False),
        sa.Column("school_code", sa.String(length=32), nullable=False),
        sa.Column("district_code", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"],
            ["users.id"],
            name=op.f("fk_wall_alarms_acknowledged_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_wall_alarms_event_id_events"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["wall_id"], ["walls.id"], name=op.f("fk_wall_alarms_wall_id_walls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wall_alarms")),
        sa.UniqueConstraint("wall_id", "alarm_key", name="uq_wall_alarms_wall_key"),
    )
    op.create_index("ix_wall_alarms_wall_open", "wall_alarms", ["wall_id", "acknowledged_at"], unique=False)
    op.create_table(
        "wall_states",
        sa.Column("wall_id", sa.Integer(), nullable=False),
        sa.Column("tour_id", sa.Integer(), nullable=True),
        sa.Column("tour_state", sa.JSON(), nullable=True),
        sa.Column("showing", sa.JSON(), nullable=False),
        sa.Column("alarm_tiles", sa.JSON(), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_rotation_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["wall_id"], ["walls.id"], name=op.f("fk_wall_states_wall_id_walls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("wall_id", name=op.f("pk_wall_states")),
    )


def downgrade() -> None:
    op.drop_table("wall_states")
    op.drop_index("ix_wall_alarms_wall_open", table_name="wall_alarms")
    op.drop_table("wall_alarms")
    op.drop_table("patrol_task_items")
    op.drop_table("inspection_findings")
    op.drop_table("walls")
    op.drop_table("tour_coverage")
    op.drop_index("ix_patrol_tasks_status_end", table_name="patrol_tasks")
    op.drop_index("ix_patrol_tasks_day", table_name="patrol_tasks")
    op.drop_table("patrol_tasks")
    op.drop_index("ix_inspections_school_started", table_name="inspections")
    op.drop_table("inspections")
    op.drop_table("spot_check_draws")
    op.drop_table("tours")
    op.drop_table("spot_check_quotas")
    op.drop_table("patrol_plans")
