"""tags, recurrence, reminders

Adds to tasks: tags (a JSON array as text, [] for existing tasks), recurrence,
time_zone, series_id, occurrence (1), spawned_at_version and remind_at (null
for existing tasks), with an index for sort=remind_at; and the task_tags
table, which indexes each task's tags by user and case-folded name.

On PostgreSQL both tables are kept out of parallel query (parallel_workers =
0): every query reads one user's rows and stops early (LIMIT), and starting
workers cost more than it saved (docs/performance.md has the figures).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 02:30:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def new_columns() -> list[sa.Column]:
    return [
        sa.Column("tags", sa.Text(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("recurrence", sa.String(length=200), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("series_id", sa.Integer(), nullable=True),
        sa.Column("occurrence", sa.Integer(), server_default="1", nullable=False),
        sa.Column("spawned_at_version", sa.Integer(), nullable=True),
        sa.Column("remind_at", sa.DateTime(timezone=True), nullable=True),
    ]


def alter_tasks():
    # Should SQLite rebuild the table (dropping columns does), ids stay never reused.
    return op.batch_alter_table("tasks", table_kwargs={"sqlite_autoincrement": True})


def upgrade():
    with alter_tasks() as batch_op:
        for column in new_columns():
            batch_op.add_column(column)
        batch_op.create_index(
            "ix_tasks_user_id_remind_at_id", ["user_id", "remind_at", "id"], unique=False
        )
    op.create_table(
        "task_tags",
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("name_folded", sa.String(length=120), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["tasks.id"], name=op.f("fk_task_tags_task_id_tasks"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("task_id", "name_folded", name=op.f("pk_task_tags")),
    )
    op.create_index(
        "ix_task_tags_user_id_name_folded_task_id",
        "task_tags",
        ["user_id", "name_folded", "task_id"],
        unique=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        for table in ("tasks", "task_tags"):
            op.execute(f"ALTER TABLE {table} SET (parallel_workers = 0)")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE tasks RESET (parallel_workers)")
    op.drop_index("ix_task_tags_user_id_name_folded_task_id", table_name="task_tags")
    op.drop_table("task_tags")
    with alter_tasks() as batch_op:
        batch_op.drop_index("ix_tasks_user_id_remind_at_id")
        for column in reversed(new_columns()):
            batch_op.drop_column(column.name)
