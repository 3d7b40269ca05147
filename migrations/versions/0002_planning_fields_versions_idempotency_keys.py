"""planning fields, versions, idempotency keys

Adds tasks.due_at, tasks.priority (a 0-2 rank), tasks.version (for ETags), an
index per sort order, and the idempotency_keys table. On SQLite the tasks
table is rebuilt so that ids are never reused (AUTOINCREMENT).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 07:29:18.062140

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SORT_INDEXES = {
    "ix_tasks_user_id_updated_at_id": ["user_id", "updated_at", "id"],
    "ix_tasks_user_id_title_id": ["user_id", "title", "id"],
    "ix_tasks_user_id_due_at_id": ["user_id", "due_at", "id"],
    "ix_tasks_user_id_priority_id": ["user_id", "priority", "id"],
}


def alter_tasks():
    # SQLite can only add AUTOINCREMENT by rebuilding the table; PostgreSQL alters in place.
    sqlite = op.get_bind().dialect.name == "sqlite"
    return op.batch_alter_table(
        "tasks",
        recreate="always" if sqlite else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    )


def upgrade():
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.SmallInteger(), nullable=True),
        sa.Column("headers", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])

    with alter_tasks() as batch_op:
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("priority", sa.SmallInteger(), server_default="1", nullable=False)
        )
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.create_check_constraint(op.f("ck_tasks_priority_rank"), "priority BETWEEN 0 AND 2")
        for name, columns in SORT_INDEXES.items():
            batch_op.create_index(name, columns, unique=False)


def downgrade():
    with op.batch_alter_table("tasks") as batch_op:
        for name in SORT_INDEXES:
            batch_op.drop_index(name)
        batch_op.drop_constraint(op.f("ck_tasks_priority_rank"), type_="check")
        batch_op.drop_column("version")
        batch_op.drop_column("priority")
        batch_op.drop_column("due_at")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
