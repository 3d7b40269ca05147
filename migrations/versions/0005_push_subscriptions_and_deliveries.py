"""push subscriptions and deliveries

Adds push_subscriptions (each user's browsers' Web Push subscriptions, one
row per endpoint) and push_deliveries (one row per reminder and
subscription: the reminder dispatcher's claim on it, then what became of
it), and an index of the tasks whose reminders the dispatcher may send, by
time. Nothing existing changes; going down drops the two tables and the
index.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 09:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DUE_REMINDER = "remind_at IS NOT NULL AND deleted_at IS NULL AND NOT completed"
UNFINISHED = "lease_until IS NOT NULL"


def partial(where: str) -> dict:
    return {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}


def upgrade():
    op.create_index("ix_tasks_remind_at_id", "tasks", ["remind_at", "id"], **partial(DUE_REMINDER))
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("endpoint", sa.String(length=2048), nullable=False),
        sa.Column("p256dh", sa.String(length=88), nullable=False),
        sa.Column("auth", sa.String(length=24), nullable=False),
        sa.Column("expiration_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_push_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint("endpoint", name=op.f("uq_push_subscriptions_endpoint")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_push_subscriptions_user_id_id", "push_subscriptions", ["user_id", "id"])
    op.create_table(
        "push_deliveries",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("remind_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=32), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["tasks.id"],
            name=op.f("fk_push_deliveries_task_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["push_subscriptions.id"],
            name=op.f("fk_push_deliveries_subscription_id_push_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "task_id", "remind_at", "subscription_id", name=op.f("pk_push_deliveries")
        ),
    )
    op.create_index("ix_push_deliveries_subscription_id", "push_deliveries", ["subscription_id"])
    op.create_index(
        "ix_push_deliveries_lease_until", "push_deliveries", ["lease_until"], **partial(UNFINISHED)
    )


def downgrade():
    op.drop_index("ix_push_deliveries_lease_until", table_name="push_deliveries")
    op.drop_index("ix_push_deliveries_subscription_id", table_name="push_deliveries")
    op.drop_table("push_deliveries")
    op.drop_index("ix_push_subscriptions_user_id_id", table_name="push_subscriptions")
    op.drop_table("push_subscriptions")
    op.drop_index("ix_tasks_remind_at_id", table_name="tasks")
