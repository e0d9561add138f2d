"""camera health and quality faults

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "camera_health",
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "online",
                "degraded",
                "offline",
                name="health_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "reason",
            sa.Enum(
                "ok",
                "refused",
                "timeout",
                "not_found",
                "no_data",
                "decode_errors",
                "bad_stream",
                name="health_reason",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.Column("bitrate_kbps", sa.Float(), nullable=False),
        sa.Column("fps", sa.Float(), nullable=False),
        sa.Column("keyframe_interval_s", sa.Float(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("last_frame_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reconnects", sa.Integer(), nullable=False),
        sa.Column("decode_errors", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"], ["cameras.id"], name=op.f("fk_camera_health_camera_id_cameras"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("camera_id", name=op.f("pk_camera_health")),
    )
    op.create_table(
        "camera_health_transitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "online",
                "degraded",
                "offline",
                name="health_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "reason",
            sa.Enum(
                "ok",
                "refused",
                "timeout",
                "not_found",
                "no_data",
                "decode_errors",
                "bad_stream",
                name="health_reason",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "previous_state",
            sa.Enum(
                "online",
                "degraded",
                "offline",
                name="previous_health_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("detail", sa.String(length=300), nullable=False),
        sa.Column("worker_id", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_camera_health_transitions_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camera_health_transitions")),
    )
    with op.batch_alter_table("camera_health_transitions", schema=None) as batch_op:
        batch_op.create_index("ix_camera_health_transitions_camera_at", ["camera_id", "at"], unique=False)

    op.create_table(
        "camera_quality_faults",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("camera_id", sa.Integer(), nullable=False),
        sa.Column(
            "fault",
            sa.Enum(
                "signal_loss",
                "black",
                "frozen",
                "blur",
                "occlusion",
                "too_dark",
                "too_bright",
                "colour_cast",
                name="quality_fault",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("open", sa.Boolean(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("snapshot_jpeg", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["camera_id"],
            ["cameras.id"],
            name=op.f("fk_camera_quality_faults_camera_id_cameras"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_camera_quality_faults")),
    )
    with op.batch_alter_table("camera_quality_faults", schema=None) as batch_op:
        batch_op.create_index("ix_camera_quality_faults_camera_open", ["camera_id", "open"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("camera_quality_faults", schema=None) as batch_op:
        batch_op.drop_index("ix_camera_quality_faults_camera_open")

    op.drop_table("camera_quality_faults")
    with op.batch_alter_table("camera_health_transitions", schema=None) as batch_op:
        batch_op.drop_index("ix_camera_health_transitions_camera_at")

    op.drop_table("camera_health_transitions")
    op.drop_table("camera_health")
