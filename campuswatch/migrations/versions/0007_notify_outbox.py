"""the notifier's outbox, items, delivery log and escalation watches

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    op.create_table(
        "notify_outbox",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("receiver_key", sa.String(length=100), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=False),
        sa.Column("kind", _enum("notify_message_kind", "single", "summary", "test"), nullable=False),
        sa.Column(
            "status",
            _enum("notify_message_status", "pending", "sending", "sent", "failed", "dead"),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_outbox")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notify_outbox_dedupe_key")),
    )
    op.create_index("ix_notify_outbox_due", "notify_outbox", ["status", "next_attempt_at"])
    op.create_index("ix_notify_outbox_created", "notify_outbox", ["created_at"])
    op.create_index("ix_notify_outbox_receiver", "notify_outbox", ["channel", "receiver_key", "status"])

    op.create_table(
        "notify_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("step", _enum("notify_step", "first", "escalation", "duty", "test"), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("receiver_key", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("school_code", sa.String(length=32), nullable=False),
        sa.Column("camera_code", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("text", sa.String(length=2000), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["notify_outbox.id"],
            name=op.f("fk_notify_items_message_id_notify_outbox"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_notify_items_event_id_events"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_items")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notify_items_dedupe_key")),
    )
    op.create_index("ix_notify_items_storm", "notify_items", ["channel", "receiver_key", "created_at"])
    op.create_index("ix_notify_items_message", "notify_items", ["message_id"])
    op.create_index("ix_notify_items_subject", "notify_items", ["subject"])

    op.create_table(
        "notify_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("dispatcher", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["notify_outbox.id"],
            name=op.f("fk_notify_attempts_message_id_notify_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_attempts")),
    )
    op.create_index("ix_notify_attempts_message_at", "notify_attempts", ["message_id", "at"])

    op.create_table(
        "notify_watches",
        sa.Column("subject", sa.String(length=100), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("escalate_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_to", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_notify_watches_event_id_events"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["escalated_to"], ["users.id"], name=op.f("fk_notify_watches_escalated_to_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_notify_watches")),
    )
    op.create_index("ix_notify_watches_due", "notify_watches", ["escalated_at", "acknowledged_at", "escalate_at"])


def downgrade() -> None:
    op.drop_table("notify_watches")
    op.drop_table("notify_attempts")
    op.drop_table("notify_items")
    op.drop_table("notify_outbox")
