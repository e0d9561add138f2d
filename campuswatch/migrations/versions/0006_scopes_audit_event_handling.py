"""user scopes and contacts, the append-only audit log, event handling

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_SCOPE_TARGET = (
    "(scope = 'bureau' AND district_id IS NULL AND school_id IS NULL)"
    " OR (scope = 'district' AND district_id IS NOT NULL AND school_id IS NULL)"
    " OR (scope = 'school' AND school_id IS NOT NULL AND district_id IS NULL)"
)


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column(
                "scope",
                _enum("user_scope", "bureau", "district", "school"),
                nullable=False,
                server_default="bureau",
            )
        )
        batch.add_column(sa.Column("district_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("school_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("phone", sa.String(length=40), nullable=False, server_default=""))
        batch.add_column(sa.Column("email", sa.String(length=200), nullable=False, server_default=""))
        batch.create_foreign_key(
            op.f("fk_users_district_id_districts"), "districts", ["district_id"], ["id"], ondelete="RESTRICT"
        )
        batch.create_foreign_key(
            op.f("fk_users_school_id_schools"), "schools", ["school_id"], ["id"], ondelete="RESTRICT"
        )
        batch.create_index(op.f("ix_users_district_id"), ["district_id"])
        batch.create_index(op.f("ix_users_school_id"), ["school_id"])
        batch.create_check_constraint("scope_target", _SCOPE_TARGET)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_action_at", "audit_log", ["action", "at"])
    op.create_index("ix_audit_log_actor_at", "audit_log", ["actor_name", "at"])
    _make_append_only("audit_log")

    op.create_table(
        "event_dispositions",
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column(
            "status", _enum("event_status", "new", "acknowledged", "dispatched", "resolved"), nullable=False
        ),
        sa.Column("acknowledged_by", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dispatched_to", sa.String(length=200), nullable=False),
        sa.Column("dispatched_by", sa.Integer(), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_dispositions_event_id_events"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_by"],
            ["users.id"],
            name=op.f("fk_event_dispositions_acknowledged_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["dispatched_by"],
            ["users.id"],
            name=op.f("fk_event_dispositions_dispatched_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"],
            ["users.id"],
            name=op.f("fk_event_dispositions_resolved_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_event_dispositions")),
    )
    op.create_index("ix_event_dispositions_status", "event_dispositions", ["status"])
    op.create_table(
        "event_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column(
            "action", _enum("event_action_kind", "acknowledge", "dispatch", "resolve", "note"), nullable=False
        ),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_event_actions_event_id_events"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_event_actions_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_actions")),
    )
    op.create_index("ix_event_actions_event_at", "event_actions", ["event_id", "at"])


def _make_append_only(table: str) -> None:
    """Triggers that refuse UPDATE and DELETE on ``table``."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""CREATE FUNCTION {table}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION '{table} is append-only'; END $$"""
        )
        op.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            f"FOR EACH ROW EXECUTE FUNCTION {table}_append_only()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {table}_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
            )


def downgrade() -> None:
    op.drop_table("event_actions")
    op.drop_table("event_dispositions")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE audit_log")
        op.execute("DROP FUNCTION audit_log_append_only()")
    else:
        op.drop_table("audit_log")
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_scope_target"), type_="check")
        batch.drop_constraint(op.f("ck_users_user_scope"), type_="check")
        batch.drop_index(op.f("ix_users_school_id"))
        batch.drop_index(op.f("ix_users_district_id"))
        batch.drop_constraint(op.f("fk_users_school_id_schools"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_users_district_id_districts"), type_="foreignkey")
        for name in ("email", "phone", "session_version", "school_id", "district_id", "scope"):
            batch.drop_column(name)
